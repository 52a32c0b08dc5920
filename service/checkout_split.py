"""A counter photo's items with the recogniser deciding one item or two (``counter/recognised.py``), for
``POST /v1/checkout`` while ``SKULENS_COUNTER_RECOGNISED_SPLIT`` is on (the default since round 4:
docs/checkout.md, "Letting the recogniser decide one item or two").

The photo is segmented and the uncertain blobs' other cuts proposed (``counter.recognised.plan``) in a worker
thread; every crop, the classical segmenter's items and the proposed parts alike, goes to the micro-batcher as
**one submission** and is searched once; the proposals are judged on those searches (each crop's matches, one
per SKU, as its similarity to each SKU), and the items kept take the vectors and answers already computed:
the only extra work over a plain checkout is the proposed parts' crops, and only where something is proposed.
Imported by ``service.checkout`` only when the setting is on (it needs OpenCV).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from starlette.concurrency import run_in_threadpool

from counter.alternatives import ProposalConfig
from counter.hypotheses import DecisionConfig
from counter.recognised import Plan, plan
from counter.segment import BackgroundSegmenter
from service import checkout
from service.lanes import background_for
from service.photos import decode_photo

if TYPE_CHECKING:
    from counter.boxes import Box
    from gallery.types import Recognition
    from service.deps import AppState

PROPOSALS = ProposalConfig()
DECISION = DecisionConfig()


@dataclass(frozen=True)
class Planned:
    plan: Plan | None  # None: the segmenter is not the classical one (nothing to propose)
    boxes: list[Box]  # every crop's box in the photo: the plan's, or the segmenter's items
    pixels: np.ndarray  # (n, size, size, 3): each box cropped and letterboxed
    segmentation: str
    note: str | None


def plan_photo(state: AppState, photo_bytes: bytes, lane: str | None) -> Planned:
    segmenter = checkout.load_segmenter()  # through the module: a test's stand-in is seen here too
    photo = decode_photo(photo_bytes, state.settings.max_pixels)
    background = background_for(state.gallery, lane, photo.shape, state.settings.max_pixels)
    if lane is not None:
        segmenter = checkout.segmenter_for(segmenter, state.gallery.lanes.settings.current(lane))
    found = plan(segmenter, photo, background.pixels, PROPOSALS) if isinstance(segmenter, BackgroundSegmenter) else None
    boxes = found.photo_boxes(list(range(len(found.boxes)))) if found else segmenter.segment(photo, background.pixels)
    how = checkout.LANE_BACKGROUND if background.pixels is not None else checkout.PLAIN_COUNTER
    return Planned(found, boxes, checkout.crops_of(photo, boxes, state.embedder.input_size), how, background.note)


def similarities(recognitions: list[Recognition]) -> np.ndarray:
    """One row per answer: its similarity to each SKU among all the answers' matches (one per SKU); a SKU not
    among an answer's matches gets the lowest it shows (at least as high as the truth: cautious)."""
    skus = sorted({m.sku for r in recognitions for m in r.matches})
    column = {sku: i for i, sku in enumerate(skus)}
    rows = np.zeros((len(recognitions), max(1, len(skus))))
    for row, r in zip(rows, recognitions, strict=True):
        row[:] = min((m.score for m in r.matches), default=0.0)
        for m in r.matches:
            row[column[m.sku]] = m.score
    return rows


async def items_of_photo(
    state: AppState, photo: bytes, lane: str | None
) -> tuple[list[Box], list[Recognition], Planned]:
    """The photo's items (boxes in reading order) and their answers, one embedding submission for every crop."""
    found = await run_in_threadpool(plan_photo, state, photo, lane)
    if len(found.pixels) == 0:
        return [], [], found
    await run_in_threadpool(state.gallery.check_model)  # 409 before inference when the gallery is not ready
    answers = await state.recognize_batched(await checkout.embed(state, found.pixels))
    if found.plan is None:
        return found.boxes, answers, found
    judged = found.plan.judged
    items = found.plan.items(similarities([answers[i] for i in judged]) if judged else None, DECISION)
    return [found.boxes[i] for i in items], [answers[i] for i in items], found
