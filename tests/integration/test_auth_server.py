"""Basic auth through real servers and a real client: 401, then 200 with credentials."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import httpx
import pytest

from edgecache import EdgeCache
from tests.integration.origins import Script, flask_app, starlette_app
from tests.integration.servers import asgi_server, wsgi_server


@pytest.mark.parametrize("kind", ["wsgi-flask-werkzeug", "asgi-starlette-uvicorn"])
def test_401_then_200(kind: str, tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("alice:" + bcrypt.hashpw(b"wonderland", bcrypt.gensalt(4)).decode() + "\n")
    script = Script()
    script.route(
        "/admin/report",
        headers=[("Cache-Control", "max-age=60")],
        body=b"report",
        echo_header="X-Remote-User",
    )
    script.route("/", body=b"home")
    make = flask_app if kind.startswith("wsgi") else starlette_app
    serve = wsgi_server if kind.startswith("wsgi") else asgi_server
    app = EdgeCache(make(script), auth=[("/admin/", str(users), "Reports")], auth_failure_delay=0)
    with serve(app) as url:
        assert httpx.get(url + "/").text == "home"
        first = httpx.get(url + "/admin/report")
        assert first.status_code == 401
        assert first.headers["www-authenticate"] == 'Basic realm="Reports", charset="UTF-8"'
        ok = httpx.get(url + "/admin/report", auth=("alice", "wonderland"))
        assert ok.status_code == 200 and ok.text == "alice"
        assert "authorization" not in script.seen_headers["/admin/report"]
        again = httpx.get(url + "/admin/report", auth=("alice", "wonderland"))
        assert "hit" in again.headers["cache-status"]
        assert httpx.get(url + "/admin/report").status_code == 401
        assert httpx.get(url + "/admin/report", auth=("alice", "x")).status_code == 401
