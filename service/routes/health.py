"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from gallery.stores.base import CatalogUnreachable
from gallery.types import ModelMismatch
from service.metrics import CONTENT_TYPE
from service.schemas import Health, Ready

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz", response_model=Ready, summary="Model and gallery are loaded and agree", responses={503: {"model": Ready}}
)
async def readyz(request: Request) -> Ready | JSONResponse:
    state = getattr(request.app.state, "skulens", None)
    if state is None:
        return JSONResponse(Ready(status="loading").model_dump(), status_code=503)
    reachable = state.gallery.store.reachable
    try:
        await run_in_threadpool(state.gallery.check_model)  # may catch up with other workers: off the loop
    except CatalogUnreachable:
        reachable = False
    except ModelMismatch as exc:
        skus, images = state.gallery.counts()
        ready = Ready(status="model_mismatch", model_version=state.embedder.version, skus=skus, reference_images=images)
        ready.detail = str(exc)
        return JSONResponse(ready.model_dump(), status_code=503)
    skus, images = state.gallery.counts()  # memory, as of the catch-up just made
    if not reachable:  # 200: recognition still answers from memory, so a load balancer keeps this replica
        return Ready(
            status="degraded",
            model_version=state.embedder.version,
            skus=skus,
            reference_images=images,
            detail="the shared catalogue cannot be reached: recognition answers from memory, "
            "writes answer 503 until it is back",
        )
    return Ready(status="ready", model_version=state.embedder.version, skus=skus, reference_images=images)


@router.get("/metrics", response_class=Response, summary="Prometheus text metrics (all workers)")
async def metrics(request: Request) -> Response:
    state = getattr(request.app.state, "skulens", None)
    registry = request.app.state.metrics
    if state is None:
        text = await run_in_threadpool(registry.render)
    else:  # gallery figures from memory; the multi-process collection reads files: off the loop
        skus, images = state.gallery.counts()
        text = await run_in_threadpool(registry.render, skus, images, state.gallery.index_rows)
    return Response(text, media_type=CONTENT_TYPE)
