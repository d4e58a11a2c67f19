"""The edgecache.testing plugin in an app author's own suite, run through pytester in
a subprocess each (Django's settings are process-wide): a Flask, a Django and a
Starlette app, each with passing assertions and one failing one whose message names
the reason in words."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

FLASK = """
    import pytest
    from flask import Flask, make_response

    from edgecache.testing import assert_cached, assert_not_cached

    app = Flask(__name__)

    @app.get("/news")
    def news():
        answer = make_response("news")
        answer.headers["Cache-Control"] = "public, max-age=60"
        answer.headers["Vary"] = "Accept-Language"
        return answer

    @app.get("/login")
    def login():
        answer = make_response("login form")
        answer.headers["Cache-Control"] = "public, max-age=60"
        answer.set_cookie("session", "s1")
        return answer

    @pytest.fixture
    def edge_app():
        app.config.update(TESTING=True)
        return app

    def test_news_is_shared_per_language(edge):
        first = edge.get("/news", headers={"Accept-Language": "en"})
        assert first.cache_status.stored
        assert_cached(first, ttl=60, vary={"accept-language"})
        assert edge.get("/news", headers={"Accept-Language": "en"}).cache_status.hit
        assert edge.get("/news", headers={"Accept-Language": "fr"}).cache_status.fwd == "vary-miss"

    def test_login_is_not_shared(edge):
        assert_not_cached(edge.get("/login"), reason="set-cookie")

    def test_login_is_cached(edge):
        assert_cached(edge.get("/login"), ttl=60)
"""

DJANGO = """
    import django
    import pytest
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        SECRET_KEY="not-secret",
        MIDDLEWARE=[],
    )
    django.setup()

    from django.core.wsgi import get_wsgi_application
    from django.http import HttpResponse
    from django.urls import path
    from django.views.decorators.cache import cache_control
    from django.views.decorators.vary import vary_on_headers

    from edgecache.testing import assert_cached, assert_not_cached

    @cache_control(public=True, max_age=300)
    @vary_on_headers("Accept-Language")
    def catalogue(request):
        return HttpResponse("catalogue")

    @cache_control(private=True, max_age=300)
    def account(request):
        return HttpResponse("your account")

    urlpatterns = [path("catalogue", catalogue), path("account", account)]

    @pytest.fixture
    def edge_app():
        return get_wsgi_application()

    def test_catalogue_is_shared(edge):
        first = edge.get("/catalogue", headers={"Accept-Language": "de"})
        assert_cached(first, ttl=300, vary={"accept-language"})
        edge.advance(301)
        assert edge.get("/catalogue", headers={"Accept-Language": "de"}).cache_status.fwd == "stale"

    def test_account_is_private(edge):
        assert_not_cached(edge.get("/account"), reason="private")

    def test_account_is_cached(edge):
        assert_cached(edge.get("/account"))
"""

STARLETTE = """
    import contextlib

    import pytest
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from edgecache.testing import assert_cached, assert_not_cached

    built = []
    started = []

    async def feed(request):
        built.append(1)
        return PlainTextResponse(
            f"feed {len(built)}",
            headers={"Cache-Control": "max-age=10, stale-while-revalidate=60"},
        )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        started.append(1)
        yield

    app = Starlette(routes=[Route("/feed", feed)], lifespan=lifespan)

    @pytest.fixture
    def edge_app():
        built.clear()
        return app

    def test_feed_is_served_stale_while_it_revalidates(edge):
        assert started, "the app's lifespan ran"
        assert_cached(edge.get("/feed"), ttl=10)
        edge.advance(15)
        stale = edge.get("/feed")
        assert stale.cache_status.detail == "stale-while-revalidate"
        assert stale.text == "feed 1"
        fresh = edge.get("/feed")  # the background refresh finished before get returned
        assert fresh.cache_status.hit
        assert fresh.text == "feed 2"

    def test_starlettes_own_test_client_on_the_edge(edge):
        with TestClient(edge.app) as client:
            assert client.get("/feed").headers["cache-status"].endswith("stored")
        assert edge.explain("/feed").stored

    def test_feed_is_not_cached(edge):
        assert_not_cached(edge.get("/feed"), reason="set-cookie")
"""

CASES = [
    pytest.param(
        FLASK,
        "expected GET /login to be cached, but not stored: "
        "the answer sets a cookie (cache_set_cookie is off)",
        id="flask",
    ),
    pytest.param(
        DJANGO,
        "expected GET /account to be cached, but not stored: the answer is private",
        id="django",
    ),
    pytest.param(
        STARLETTE,
        "expected GET /feed not to be cached because the answer sets a cookie "
        "(cache_set_cookie is off), but it is stored, with a lifetime from max-age",
        id="starlette",
    ),
]


@pytest.mark.parametrize(("source", "message"), CASES)
def test_the_plugin_in_an_app_authors_suite(
    pytester: pytest.Pytester, source: str, message: str
) -> None:
    pytester.makepyfile(test_app=textwrap.dedent(source))
    result = pytester.runpytest_subprocess("-p", "edgecache.testing", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    assert message in result.stdout.str()


def test_without_an_edge_app_fixture_the_failure_says_what_to_define(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_it(edge):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "edgecache.testing", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    assert "define a fixture named edge_app" in result.stdout.str()
