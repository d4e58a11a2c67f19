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


SHARED_POOL = """
[[pool]]
name = "api"
servers = ["http://127.0.0.1:9", "http://127.0.0.1:10"]
health_path = "/healthz"

[[route]]
path = "/api/"
pool = "api"

[[route]]
path = "/v2/"
pool = "api"
compress = false
"""


def test_routes_on_one_pool_share_its_balancer_and_one_store(tmp_path: Path) -> None:
    """Two routes naming one pool get one Forwarder (one balancer, one health prober),
    and every route caches into the one store, so max_bytes is a true total."""
    from edgecache.core.headers import Headers
    from edgecache.core.model import Entry
    from edgecache.stack import cache_layers

    config = tmp_path / "edgecache.toml"
    config.write_text(SHARED_POOL)
    settings = Settings(max_bytes=64 * 1024, max_entry_bytes=8 * 1024)
    router = Router(load_routes(str(config), settings), settings)
    assert len(router.pools) == 1
    layers = cache_layers(router)
    assert len(layers) == 2
    assert layers[0].engine.store is layers[1].engine.store is router.store
    body = b"x" * 4096
    for i in range(40):  # 2 x 40 x 4 KiB = 320 KiB through two routes into a 64 KiB store
        for n, layer in enumerate(layers):
            entry = Entry(200, Headers(), body, 0.0, 0.0, 0.0, 0.0, 3600.0)
            layer.engine.save(f"http://h/r{n}/{i}", entry)
    assert router.store is not None
    assert 0 < router.store.nbytes <= settings.max_bytes  # type: ignore[attr-defined]
