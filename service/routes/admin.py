"""Administration: the open-set threshold, what is loaded.

Re-indexing is not an HTTP operation: it embeds every reference image, which inside a serving
worker would take the cores from checkout inference, hold a second index in memory, and be done
by one worker of several. ``skulens reindex`` does it beside the running server (it resumes, and
the server picks the new index up when restarted with the new model).
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from service.deps import Admin, AppState, StateDep

router = APIRouter(prefix="/v1/admin", tags=["administration"])


class ThresholdIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(ge=-1.0, le=1.0)


#: the threshold's scale: which decision score it is compared with (``gallery.open_set_score``)
SCORE_DESCRIPTION = (
    'The decision score the threshold is compared with: "similarity", or the model\'s adjusted score, e.g. '
    "\"runner-up-0.4\" (the similarity less 0.4 x the second SKU's; the weight is the model's own); a threshold "
    "belongs to one score."
)


class ThresholdOut(BaseModel):
    threshold: float
    model_version: str
    overridden_by_setting: bool
    decision_score: str = Field(description=SCORE_DESCRIPTION)


class InfoOut(BaseModel):
    model_version: str
    embedding_dim: int
    input_size: int
    skus: int
    reference_images: int
    index_kind: str
    index_vectors: int  # rows in the index: one per reference image, plus its catalogue views
    index_images: int  # reference images in the index
    vectors_by_model: dict[str, int]
    threshold: float
    decision_score: str = Field(description=SCORE_DESCRIPTION)


@router.put("/threshold", response_model=ThresholdOut, summary="Store the open-set threshold for the serving model")
async def put_threshold(body: ThresholdIn, state: StateDep, _role: str | None = Admin) -> ThresholdOut:
    await run_in_threadpool(state.gallery.set_threshold, body.threshold)  # and catches up
    return ThresholdOut(
        threshold=state.threshold(),
        model_version=state.embedder.version,
        overridden_by_setting=state.settings.threshold is not None,
        decision_score=state.gallery.open_set_score.label,
    )


@router.get("/info", response_model=InfoOut, summary="Model, gallery and index as loaded")
async def info(state: StateDep, _role: str | None = Admin) -> InfoOut:
    return await run_in_threadpool(_info, state)


def _info(state: AppState) -> InfoOut:
    """Blocking (catches up with other workers, reads SQLite): runs in a worker thread."""
    gallery = state.gallery
    rows, images = gallery.index_size()
    skus, reference_images = gallery.counts()
    return InfoOut(
        model_version=state.embedder.version,
        embedding_dim=state.embedder.embedding_dim,
        input_size=state.embedder.input_size,
        skus=skus,
        reference_images=reference_images,
        index_kind=state.settings.index_kind,
        index_vectors=rows,
        index_images=images,
        vectors_by_model=gallery.store.model_versions(),
        threshold=state.threshold(),
        decision_score=gallery.open_set_score.label,
    )
