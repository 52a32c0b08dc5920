"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from gallery.types import ModelMismatch
from service.schemas import Health, Ready

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, summary="Model and gallery are loaded and agree",
            responses={503: {"model": Ready}})
async def readyz(request: Request):
    state = getattr(request.app.state, "skulens", None)
    if state is None:
        return JSONResponse(Ready(status="loading").model_dump(), status_code=503)
    skus, images = state.gallery.counts()
    ready = Ready(status="ready", model_version=state.embedder.version, skus=skus, reference_images=images)
    try:
        state.gallery.check_model()
    except ModelMismatch as exc:
        ready.status, ready.detail = "model_mismatch", str(exc)
        return JSONResponse(ready.model_dump(), status_code=503)
    return ready


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text metrics")
async def metrics(request: Request) -> PlainTextResponse:
    state = getattr(request.app.state, "skulens", None)
    gauges = {}
    if state is not None:
        skus, images = state.gallery.counts()
        gauges = {"skulens_gallery_skus": skus, "skulens_gallery_reference_images": images,
                  "skulens_index_vectors": state.gallery.size,
                  "skulens_inference_batches_total": state.batcher.batches,
                  "skulens_inference_images_total": state.batcher.images}
    text = request.app.state.metrics.render(gauges)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
