"""The editor routes served by a real aiohttp application, as ComfyUI's PromptServer holds them."""
from __future__ import annotations

import pytest


def routes_app(monkeypatch: pytest.MonkeyPatch):
    """``routes.register()`` wired into a new aiohttp ``Application`` (skips without aiohttp)."""
    aiohttp_web = pytest.importorskip("aiohttp.web")
    from vanish.nodes import routes

    table = aiohttp_web.RouteTableDef()
    monkeypatch.setattr(routes._comfy, "prompt_server_routes", lambda: table)
    monkeypatch.setattr(routes._comfy, "web_responses", lambda: aiohttp_web)
    routes.register()
    app = aiohttp_web.Application()
    app.add_routes(table)
    return app
