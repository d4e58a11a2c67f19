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


def test_what_make_serve_says_to_try(tmp_path: Path) -> None:
    """The README's first command prints these: a hit from the same worker, a br
    answer, and a private page never stored."""
    with serving(tmp_path, "examples.flask_app:app", "--workers", "2") as served:
        first = httpx.get(served.url + "/")
        second = httpx.get(served.url + "/")
        encoded = httpx.get(served.url + "/", headers={"accept-encoding": "br"})
        private = [httpx.get(served.url + "/account") for _ in range(2)]
    assert second.headers["cache-status"].startswith("edgecache; hit")
    assert "age" in second.headers and second.text == first.text  # the same worker's pid
    assert encoded.headers["content-encoding"] == "br" and encoded.text == first.text
    assert all("stored" not in p.headers["cache-status"] for p in private)
