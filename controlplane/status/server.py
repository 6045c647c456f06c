"""FastAPI application: health, readiness, the JSON API, and the few authenticated actions."""

from __future__ import annotations

import hmac
import time
from typing import Any

from fastapi import Depends, FastAPI, Header, HTTPException, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, field_validator

from controlplane.status.page import render
from controlplane.status.view import StatusView
from controlplane.telemetry.alerts import ALERT_NAMES, MAX_SILENCE_SECONDS

SECURITY_HEADERS = {
    # No scripts, no remote anything: the page is self-contained HTML with inline styles and SVG.
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class RollbackRequest(BaseModel):
    """Which earlier version to pin (the full version, or a unique prefix of 6+ characters)."""

    version: str


class SilenceRequest(BaseModel):
    """Stop notifying one alert (by name, optionally narrowed by labels) for a while."""

    name: str
    labels: dict[str, str] = {}
    minutes: float = Field(gt=0, le=MAX_SILENCE_SECONDS / 60)
    comment: str = Field(default="", max_length=500)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in ALERT_NAMES:
            raise ValueError(f"unknown alert {name!r}; alerts are: {', '.join(ALERT_NAMES)}")
        return name


def admin_guard(token: str | None) -> Any:
    """A dependency that lets a request through only with `Authorization: Bearer <token>`.

    Without a configured token every action is refused: read-only is the default.
    """

    def check(authorization: str = Header(default="")) -> None:
        if token is None:
            raise HTTPException(403, "admin actions are disabled: start serve with --admin-token-file")
        supplied = authorization.removeprefix("Bearer ").strip()
        if not authorization.startswith("Bearer ") or not hmac.compare_digest(supplied.encode(), token.encode()):
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    return check


def create_app(view: StatusView, admin_token: str | None = None) -> FastAPI:
    """The status application over `view`.

    Every endpoint is `async`: it then runs on the event loop that owns the state it reads or
    changes (a plain `def` would run in a worker thread, racing the xDS server).
    """
    app = FastAPI(title="controlplane", docs_url=None, redoc_url=None)
    _add_probes(app, view)
    _add_reads(app, view)
    _add_history(app, view)
    _add_actions(app, view, Depends(admin_guard(admin_token)))
    return app


def _add_probes(app: FastAPI, view: StatusView) -> None:
    """The page, health and readiness, and Prometheus metrics."""

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        text = render(view.config(), view.nodes(), view.services(), view.active_alerts(), time.time())
        return HTMLResponse(text, headers=SECURITY_HEADERS)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, bool]:
        ready = view.ready()
        response.status_code = 200 if ready else 503
        return {"ready": ready}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(view.metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8")


def _add_reads(app: FastAPI, view: StatusView) -> None:
    """The JSON API."""

    @app.get("/api/config")
    async def config() -> dict[str, Any]:
        return view.config()

    @app.get("/api/nodes")
    async def nodes() -> list[dict[str, Any]]:
        return view.nodes()

    @app.get("/api/services")
    async def services() -> list[dict[str, Any]]:
        return view.services()

    @app.get("/api/alerts")
    async def alerts() -> list[dict[str, Any]]:
        return view.active_alerts()

    @app.get("/api/silences")
    async def silences() -> list[dict[str, Any]]:
        return view.silences()

    @app.get("/debug/config")
    async def debug_config(node: str) -> list[dict[str, Any]]:
        found = view.debug_config(node)
        if not found:
            raise HTTPException(404, f"no Envoy with node id {node!r} is connected")
        return found


def _add_history(app: FastAPI, view: StatusView) -> None:
    """Kept versions, for `controlplane history` and `diff`."""

    @app.get("/api/history")
    async def history() -> list[dict[str, Any]]:
        return view.history()

    @app.get("/api/history/{version}")
    async def history_config(version: str, node_cluster: str = "") -> dict[str, Any]:
        found = view.history_config(version, node_cluster)
        if found is None:
            raise HTTPException(404, f"version {version} is not in the history")
        return found


def _add_actions(app: FastAPI, view: StatusView, admin: Any) -> None:
    """The only state-changing calls, each behind the admin token."""

    @app.post("/api/rollback", dependencies=[admin])
    async def rollback(request: RollbackRequest) -> dict[str, str]:
        pinned = view.pin(request.version)
        if pinned is None:
            raise HTTPException(404, f"version {request.version} is not in the history")
        return {"pinned": pinned}

    @app.delete("/api/rollback", dependencies=[admin])
    async def lift() -> dict[str, str]:
        view.unpin()
        return {"pinned": ""}

    @app.post("/api/silences", dependencies=[admin], status_code=201)
    async def silence(request: SilenceRequest) -> dict[str, Any]:
        return view.silence(request.name, request.labels, request.minutes * 60, request.comment)

    @app.delete("/api/silences/{silence_id}", dependencies=[admin])
    async def unsilence(silence_id: str) -> dict[str, str]:
        if not view.unsilence(silence_id):
            raise HTTPException(404, f"no silence {silence_id!r}")
        return {"ended": silence_id}
