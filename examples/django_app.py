"""A Django project in one file, under gunicorn workers behind edgecache:

    edgecache serve examples.django_app:application --workers 4

A real project is served by its WSGI module: ``edgecache serve mysite.wsgi:application``.
Django's ``cache_control`` decorator says what may be shared.
"""

import os

import django
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.cache import cache_control

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="example-only-not-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
    )
    django.setup()


@cache_control(public=True, max_age=30)
def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"<h1>Hello from Django in worker {os.getpid()}</h1>\n")


urlpatterns = [path("", home)]
application = get_wsgi_application()
