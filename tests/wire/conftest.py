from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.proxy.conftest import Proxy, start_proxy
from tests.proxy.origin import Origin, running_origin


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with running_origin() as o:
        yield o


@pytest.fixture(scope="module")
def proxy(origin: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """``edgecache proxy`` on the wire layer, ."""
    with start_proxy(
        tmp_path_factory.mktemp("wire"),
        "--upstream",
        origin.url,
        "--max-body-size",
        "1M",
    ) as p:
        yield p
        assert "Traceback" not in p.log(), p.log()[-3000:]


@pytest.fixture(scope="module")
def hasty_proxy(origin: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """The wire proxy with short deadlines, for the tests that wait for them."""
    with start_proxy(
        tmp_path_factory.mktemp("wire-hasty"),
        "--upstream",
        origin.url,
        "--header-timeout",
        "1",
        "--keepalive-timeout",
        "1",
        "--send-timeout",
        "1",
    ) as p:
        yield p
        assert "Traceback" not in p.log(), p.log()[-3000:]
