"""A minimal Django project with edgecache as its first MIDDLEWARE entry, as a
newcomer would write it (no wsgi.py change)."""

SECRET_KEY = "edgecache-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.django.site.urls"
WSGI_APPLICATION = "tests.django.site.wsgi.application"
INSTALLED_APPS: list[str] = []
USE_TZ = True

MIDDLEWARE = [
    "edgecache.django.EdgeCacheMiddleware",
    "django.middleware.common.CommonMiddleware",
]

# edgecache's own settings; unset ones come from EDGECACHE_* variables, then defaults.
EDGECACHE = {"max_bytes": "16M", "max_entry_bytes": "1M"}

LOGGING = {"version": 1, "disable_existing_loggers": False}
