"""Static files: edgecache's static route against nginx serving the same directory,
one core each (core 0), wrk on core 1, same minute. Plain (no Accept-Encoding) and with
precompressed ``.br`` siblings (``edgecache compress-static``; nginx's brotli_static
module from Debian's libnginx-mod-http-brotli-static).

    python -m benchmarks.static [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile

from benchmarks.apps import html_page
from benchmarks.common import edgecache_proxy, nginx, wrk
from edgecache.static_compress import compress_tree

BROTLI_MODULE = "/usr/lib/nginx/modules/ngx_http_brotli_static_module.so"
NGINX_CONF = """
server {{
    listen 127.0.0.1:{port};
    access_log off;
    root {root};
    gzip_static on;
    {brotli}
    etag on;
}}
"""


def edgecache_static(root: str, core: int = 0) -> contextlib.AbstractContextManager[int]:
    folder = tempfile.mkdtemp()
    config = os.path.join(folder, "static.toml")
    with open(config, "w") as f:
        f.write(f'[[route]]\npath = "/"\nstatic = "{root}"\n')
    return edgecache_proxy("--config", config, core=core)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="edgecache-static-")
    with open(os.path.join(root, "index.html"), "wb") as f:
        f.write(html_page(10240))
    compress_tree(root)
    has_brotli = os.path.exists(BROTLI_MODULE)
    main_conf = f"load_module {BROTLI_MODULE};\n" if has_brotli else ""
    brotli = "brotli_static on;" if has_brotli else ""
    cases = {"plain": {}, "br": {"Accept-Encoding": "br"}}
    rps: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name in ("nginx", "edgecache"):
            server = (
                nginx(NGINX_CONF, core=0, main=main_conf, root=root, brotli=brotli)
                if name == "nginx"
                else edgecache_static(root)
            )
            with server as port:
                for case, headers in cases.items():
                    url = f"http://127.0.0.1:{port}/index.html"
                    wrk(url, 2, headers=headers)
                    result = wrk(url, args.seconds, headers=headers)
                    assert result["errors"] == 0, (name, case, result)
                    rps.setdefault((name, case), []).append(result["rps"])
    for case in cases:
        values = {n: statistics.median(rps[(n, case)]) for n in ("nginx", "edgecache")}
        for n, v in values.items():
            runs = ", ".join(f"{x:.0f}" for x in rps[(n, case)])
            print(f"{case:5s} {n:9s}: {v:8.0f} req/s (runs {runs})")
        print(f"{case:5s} edgecache/nginx: {values['edgecache'] / values['nginx']:.2f}")
    if not has_brotli:
        print("nginx had no brotli_static module: its 'br' case served gzip or identity")


if __name__ == "__main__":
    main()
