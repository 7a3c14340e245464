"""The daemon's local HTTP endpoint: ``/healthz``, ``/metrics``, ``/status``.

Bound to 127.0.0.1 only (there is no option to listen elsewhere: put a reverse proxy
in front if a remote scraper needs it), off unless ``[ops] port`` is set.
"""

from __future__ import annotations

import json

from aiohttp import web

from arbot.ops.metrics import CONTENT_TYPE, render
from arbot.ops.status import StatusSource, health

HOST = "127.0.0.1"


def make_app(source: StatusSource) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        ok, problems = health(source.status())
        body = {"ok": ok, "problems": problems}
        return web.json_response(body, status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=render(source), headers={"Content-Type": CONTENT_TYPE})

    async def status(_: web.Request) -> web.Response:
        return web.Response(
            text=json.dumps(source.status(), indent=2), content_type="application/json"
        )

    app = web.Application()
    app.add_routes(
        [web.get("/healthz", healthz), web.get("/metrics", metrics), web.get("/status", status)]
    )
    return app


class OpsServer:
    """Serves :func:`make_app` on 127.0.0.1:``port`` (0 picks a free port; see ``.port``)."""

    def __init__(self, source: StatusSource, port: int) -> None:
        self.source = source
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        self._runner = web.AppRunner(make_app(self.source), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
