"""The README's examples, each under ``edgecache serve --workers 2``: the second
request is a hit that no app process saw."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import serving


@pytest.mark.parametrize(
    "spec",
    [
        "examples.flask_app:app",
        "examples.starlette_app:app",
        "examples.django_app:application",
        "examples.hello:app",
    ],
)
def test_example_is_served_and_cached(tmp_path: Path, spec: str) -> None:
    with serving(tmp_path, spec, "--workers", "2") as served:
        first = httpx.get(served.url + "/")
        second = httpx.get(served.url + "/")
        assert first.status_code == 200 and "fwd=uri-miss" in first.headers["cache-status"]
        assert second.headers["cache-status"].startswith("edgecache; hit")
        assert second.text == first.text
