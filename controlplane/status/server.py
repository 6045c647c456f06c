"""FastAPI application: health, readiness and the JSON API."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response

from controlplane.status.view import StatusView


def create_app(view: StatusView) -> FastAPI:
    """The status application over `view`."""
    app = FastAPI(title="controlplane", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(response: Response) -> dict[str, bool]:
        ready = view.ready()
        response.status_code = 200 if ready else 503
        return {"ready": ready}

    @app.get("/api/config")
    def config() -> dict[str, Any]:
        return view.config()

    @app.get("/api/nodes")
    def nodes() -> list[dict[str, Any]]:
        return view.nodes()

    return app
