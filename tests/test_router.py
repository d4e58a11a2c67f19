"""The route table and router, in process: matching, per-route auth and headers,
redirects."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest

from edgecache.config import Settings
from edgecache.errors import ConfigError
from edgecache.proxy.router import Router
from edgecache.proxy.routes import load_routes
from tests.drive import call_asgi

CONFIG = """
[[route]]
path = "/"
static = "{site}"

[[route]]
path = "/"
host = "docs.example"
static = "{docs}"

[[route]]
path = "/admin/"
static = "{site}"
auth = {{user_file = "{users}", realm = "Staff"}}
headers = {{"X-Frame-Options" = "DENY"}}

[[route]]
path = "/old/"
redirect = "https://new.example/"
status = 308
"""


@pytest.fixture
def router(tmp_path: Path) -> Router:
    site, docs = tmp_path / "site", tmp_path / "docs"
    (site / "admin").mkdir(parents=True)
    docs.mkdir()
    (site / "index.html").write_text("site")
    (site / "admin" / "index.html").write_text("admin")
    (docs / "index.html").write_text("docs")
    users = tmp_path / "users"
    users.write_text("ann:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode() + "\n")
    config = tmp_path / "edgecache.toml"
    config.write_text(CONFIG.format(site=site, docs=docs, users=users))
    settings = Settings(auth_failure_delay=0)
    return Router(load_routes(str(config), settings), settings)


def test_host_and_longest_prefix(router: Router) -> None:
    assert call_asgi(router, path="/").body == b"site"
    assert call_asgi(router, path="/", headers={"Host": "docs.example:8080"}).body == b"docs"


def test_per_route_auth_and_headers(router: Router) -> None:
    denied = call_asgi(router, path="/admin/")
    assert denied.status == 401 and b"Staff" in denied.headers.get(b"www-authenticate")
    assert denied.headers.get(b"x-frame-options") == b"DENY"
    ok = call_asgi(router, path="/admin/", headers={"Authorization": "Basic YW5uOnB3"})
    assert ok.status == 200 and ok.body == b"admin"


def test_redirect_keeps_the_rest_of_the_path(router: Router) -> None:
    reply = call_asgi(router, path="/old/a/b?c=1")
    assert reply.status == 308
    assert reply.headers.get(b"location") == b"https://new.example/a/b?c=1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[route]]\npath = "api"\nstatic = "/tmp"\n', ":2: [[route]] #1 key 'path'"),
        ('[[route]]\npath = "/"\n', ":1: [[route]] #1: needs exactly one of"),
        ('[[route]]\npath = "/"\nredirect = "x"\nstatus = 200\n', ":4: [[route]] #1 key 'status'"),
        (
            '[[pool]]\nname = "p"\nservers = "http://x"\n[[route]]\npath = "/"\npool = "p"\n',
            ":3: [[pool]] #1 key 'servers'",
        ),
        (
            '[[pool]]\nname = "p"\nservers = ["http://x"]\nbalance = "random"\n'
            '[[route]]\npath = "/"\npool = "p"\n',
            "balance",
        ),
        (
            '[[route]]\npath = "/"\nstatic = "/tmp"\n[[route.rules]]\nmatch = "("\n',
            "bad regular expression",
        ),
        ("[[nope]]\n", "unknown table"),
    ],
)
def test_route_file_validation(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "r.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_routes(str(config), Settings())
    assert message in str(error.value)
