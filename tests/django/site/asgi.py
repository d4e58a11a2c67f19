"""The project's asgi.py, as ``django-admin startproject`` writes it: untouched."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.site.settings")
application = get_asgi_application()
