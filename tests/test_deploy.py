"""deploy/: the compose file reproducing the seed article's set-up (an edge serving a
static build and proxying /api/ to gunicorn) parses and names only what exists, and its
route file, deploy/seed.toml, passes check-config and behaves as the seed's nginx.conf
under a real ``edgecache proxy`` (docker itself cannot run here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.proxy.conftest import ROOT, start_proxy
from tests.proxy.origin import running_origin

DEPLOY = Path(ROOT) / "deploy"
SEED = DEPLOY / "seed.toml"


def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def test_the_compose_file_names_only_what_exists() -> None:
    services = compose()["services"]
    assert {"edge", "app"} <= services.keys()
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", (DEPLOY / "Dockerfile").read_text(), re.M))
    for service in services.values():
        if "build" in service:
            assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
            assert service["build"]["target"] in targets
    edge = services["edge"]
    mounts = dict(v.split(":")[:2] for v in edge["volumes"] if v.startswith("."))
    for source in mounts:
        assert (DEPLOY / source).exists(), source
    # The route file the edge reads is the one mounted, and what it names is mounted
    # where it names it (relative to the edge's working directory).
    config = edge["environment"]["EDGECACHE_CONFIG"]
    assert mounts["./seed.toml"] == f"{edge['working_dir']}/{config}"
    assert mounts["../examples/seed/frontend"] == f"{edge['working_dir']}/examples/seed/frontend"
    assert "http://app:8000" in SEED.read_text()


def test_the_seed_route_file_passes_check_config() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgecache",
            "check-config",
            "--config",
            str(SEED.relative_to(ROOT)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "configuration ok" in result.stdout


def test_the_seed_route_file_serves_the_build_and_the_api(tmp_path: Path) -> None:
    with running_origin() as origin:
        config = tmp_path / "seed.toml"
        config.write_text(SEED.read_text().replace("http://app:8000", origin.url))
        with (
            start_proxy(tmp_path, "--config", str(config)) as p,
            httpx.Client(base_url=p.url) as client,
        ):
            api = client.get("/api/echo?x=1")
            assert api.status_code == 200 and api.json()["path"] == "/api/echo?x=1"
            # nginx's proxy_set_header lines, without asking: Host kept, X-Forwarded-*.
            seen = dict(api.json()["headers"])
            assert seen["host"] == f"127.0.0.1:{p.port}"
            assert seen["x-forwarded-for"] == "127.0.0.1" and seen["x-forwarded-proto"] == "http"
            index = client.get("/", headers={"Accept-Encoding": "br"})
            assert index.headers["content-encoding"] == "br" and '<div id="app">' in index.text
            spa = client.get("/dashboard/settings")
            assert spa.status_code == 200 and spa.text == index.text  # try_files ... /index.html
            worker = client.get("/service-worker.js")
            assert worker.headers["cache-control"].startswith("no-store")
            asset = client.get("/assets/index.8d3b7f40.js")
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
