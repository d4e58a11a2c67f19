"""How high a Python cache hit can go on this machine: nginx, a bare probe, edgecache.

The hit goal of benchmarks/proxy.py (1.2x nginx ``proxy_cache``) was set on a machine
where a bare uvloop + httptools server answering a pre-serialised 10 KB page from
memory reached 1.7-1.8x nginx (../shared/DESIGN.md, "Why the wire layer"). That ratio
is a property of the machine (the interpreter's build, the cost of a loopback write),
not of edgecache. This benchmark measures it here, in the same minute as nginx and as
edgecache's own hit, so the proxy's figure can be read against what is reachable:

- ``probe``: the protocol below and nothing else: no key, no freshness, no log;
- ``edgecache/probe``: the share of that ceiling the real hit path keeps.

Each server on core 0, wrk on core 1, the access log on for nginx and edgecache.

    python -m benchmarks.ceiling [--seconds 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile

from benchmarks.apps import BODY
from benchmarks.common import free_port, nginx, pinned_module, wrk
from benchmarks.proxy import NGINX_CONF, ORIGIN_CONF, edgecache_router, warm

_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncache-control: max-age=3600\r\n"
    b"content-length: %d\r\ndate: Wed, 02 Dec 2026 00:00:00 GMT\r\n" % len(BODY),
    b"age: 1\r\ncache-status: edgecache; hit\r\n\r\n",
    BODY,
)


def probe(port: int) -> None:
    """The ceiling: httptools parses, one ``writelines`` per request, nothing else."""
    import httptools
    import uvloop

    class Probe(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpRequestParser(self)

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            self.transport.writelines(_ANSWER)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Probe, "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    uvloop.run(main())


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--probe":
        probe(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rps: dict[str, list[float]] = {"nginx": [], "probe": [], "edgecache": []}
    with tempfile.TemporaryDirectory() as root:
        with open(os.path.join(root, "page.html"), "wb") as f:
            f.write(BODY)
        with nginx(ORIGIN_CONF, core=1, root=root) as upstream:
            for _ in range(args.rounds):
                for name in rps:
                    if name == "nginx":
                        server = nginx(NGINX_CONF, upstream=upstream, core=0, streams="1")
                    elif name == "probe":
                        port = free_port()
                        spec = ["benchmarks.ceiling", "--probe", str(port)]
                        server = pinned_module(spec, port, 0)
                    else:
                        log = os.path.join(root, "edgecache.log")
                        server = edgecache_router(upstream, 1, log)  # type: ignore[assignment]
                    with server as port:
                        url = f"http://127.0.0.1:{port}/page"
                        if name != "probe":
                            warm(port)
                        wrk(url, 2)
                        result = wrk(url, args.seconds)
                        assert result["errors"] == 0, (name, result)
                        rps[name].append(result["rps"])
    median = {name: statistics.median(runs) for name, runs in rps.items()}
    for name, runs in rps.items():
        shown = ", ".join(f"{r:.0f}" for r in runs)
        print(f"{name:9s}: {median[name]:8.0f} req/s (runs {shown})")
    print(f"probe/nginx     : {median['probe'] / median['nginx']:.2f} (the ceiling here)")
    print(f"edgecache/nginx : {median['edgecache'] / median['nginx']:.2f}")
    print(f"edgecache/probe : {median['edgecache'] / median['probe']:.2f}")


if __name__ == "__main__":
    main()
