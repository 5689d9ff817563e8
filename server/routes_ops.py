"""Operations: `GET /healthz` (the process is up), `GET /readyz` (a model is loaded and the server is not
draining: 503 otherwise), `GET /v1/models`, `GET /metrics` (Prometheus text), and the live-caption page at `GET /`
with its assets under `/static/` (`page`, included when clients/web is there).

/v1/models and /metrics need an API key when the server has keys; the probes never do.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse, Response

from server.deps import ServiceDep, require_api_key
from server.metrics import CONTENT_TYPE

# The live-caption page (static files, no build step), served at / with its assets under /static/.
WEB_DIR = Path(__file__).resolve().parents[1] / "clients" / "web"
SDK_DIR = Path(__file__).resolve().parents[1] / "clients" / "js"  # the JavaScript client, served at /sdk

router = APIRouter()
page = APIRouter()


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(service: ServiceDep) -> JSONResponse:
    if service.ready:
        return JSONResponse({"status": "ready"})
    status = "draining" if service.draining else "no model loaded"
    return JSONResponse({"status": status}, status_code=503)


@router.get("/v1/models", dependencies=[Depends(require_api_key)])
async def models(service: ServiceDep) -> JSONResponse:
    return JSONResponse(service.models())


@router.get("/metrics", dependencies=[Depends(require_api_key)])
async def metrics_text(service: ServiceDep) -> Response:
    service.metrics.api_keys.set(len(service.keys.accepted()))
    service.metrics.key_file_stale.set(int(service.keys.stale))
    return Response(service.metrics.exposition(), media_type=CONTENT_TYPE)


@page.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html")
