"""The project's wsgi.py, as ``django-admin startproject`` writes it: untouched."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.site.settings")
application = get_wsgi_application()
