"""Administration: re-index with the serving model, the open-set threshold, what is loaded."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from gallery.reindex import reindex
from service.deps import Admin, StateDep

router = APIRouter(prefix="/v1/admin", tags=["administration"])


class ReindexOut(BaseModel):
    model_version: str
    embedded: int
    failed: dict[int, str]
    seconds: float


class ThresholdIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(ge=-1.0, le=1.0)


class ThresholdOut(BaseModel):
    threshold: float
    model_version: str
    overridden_by_setting: bool


class InfoOut(BaseModel):
    model_version: str
    embedding_dim: int
    input_size: int
    skus: int
    reference_images: int
    index_kind: str
    index_vectors: int
    vectors_by_model: dict[str, int]
    threshold: float


@router.post("/reindex", response_model=ReindexOut,
             summary="Embed every reference image that lacks a vector of the serving model (blocks until done)")
async def reindex_now(state: StateDep, _role=Admin) -> ReindexOut:
    report = await run_in_threadpool(reindex, state.settings.data_dir, state.embedder,
                                     index_kind=state.settings.index_kind)
    return ReindexOut(model_version=report.model_version, embedded=report.embedded, failed=report.failed,
                      seconds=report.seconds)


@router.put("/threshold", response_model=ThresholdOut, summary="Store the open-set threshold for the serving model")
async def put_threshold(body: ThresholdIn, state: StateDep, _role=Admin) -> ThresholdOut:
    await run_in_threadpool(state.gallery.set_threshold, body.threshold)
    return ThresholdOut(threshold=state.threshold(), model_version=state.embedder.version,
                        overridden_by_setting=state.settings.threshold is not None)


@router.get("/info", response_model=InfoOut, summary="Model, gallery and index as loaded")
async def info(state: StateDep, _role=Admin) -> InfoOut:
    skus, images = await run_in_threadpool(state.gallery.counts)
    return InfoOut(model_version=state.embedder.version, embedding_dim=state.embedder.embedding_dim,
                   input_size=state.embedder.input_size, skus=skus, reference_images=images,
                   index_kind=state.settings.index_kind, index_vectors=state.gallery.size,
                   vectors_by_model=state.gallery.store.model_versions(), threshold=state.threshold())
