"""One access-log line per request, combined format or JSON, with the cache status and
the upstream's time (never credentials: the request line, status, sizes and who), and
the request counters (``proxy.traffic``), counted always, log or no log."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from edgecache.asgi.types import ASGIApp, Message, Receive, Scope, Send
from edgecache.metrics import OUTCOME_NOTE, UPSTREAM_SECONDS
from edgecache.proxy.forward import LOG_KEY
from edgecache.proxy.traffic import TRAFFIC

access = logging.getLogger("edgecache.access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, style: str = "combined") -> None:
        self.app = app
        self.style = style

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        note: dict[str, Any] = {}
        scope[LOG_KEY] = note
        started = time.time()
        state: dict[str, Any] = {"status": 0, "bytes": 0, "cache": ""}

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                for name, value in message["headers"]:
                    if name == b"cache-status":
                        state["cache"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            TRAFFIC.count(note.get(OUTCOME_NOTE), scope["path"], state["bytes"])
            if "upstream_time" in note:
                UPSTREAM_SECONDS.observe(note["upstream_time"])
            if self.style != "off":
                access.info(self._line(scope, state, note, started))

    def _line(
        self, scope: Scope, state: dict[str, Any], note: dict[str, Any], started: float
    ) -> str:
        headers = dict(scope["headers"])
        client = scope.get("client")
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        user = scope.get("edgecache.user") or scope.get(LOG_KEY, {}).get("user") or "-"
        upstream = note.get("upstream_time")
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "client": client[0] if client else "-",
            "user": user,
            "method": scope["method"],
            "path": path,
            "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
            "status": state["status"],
            "bytes": state["bytes"],
            "referer": headers.get(b"referer", b"").decode("latin-1"),
            "user_agent": headers.get(b"user-agent", b"").decode("latin-1"),
            "cache": state["cache"],
            "upstream_time": None if upstream is None else round(upstream, 6),
            "duration": round(time.time() - started, 6),
        }
        if "upstream_error" in note:
            record["upstream_error"] = note["upstream_error"]
        if self.style == "json":
            return json.dumps(record, separators=(",", ":"))
        when = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(started))
        upstream_text = "-" if upstream is None else f"{upstream:.6f}"
        return (
            f'{record["client"]} - {user} [{when}] "{record["method"]} {path} '
            f'{record["protocol"]}" {record["status"]} {record["bytes"]} '
            f'"{record["referer"] or "-"}" "{record["user_agent"] or "-"}" '
            f'cache="{record["cache"]}" upstream_time={upstream_text}'
        )
