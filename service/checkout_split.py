"""A counter photo's items with the recogniser deciding one item or two (``counter/recognised.py``), for
``POST /v1/checkout`` while ``SKULENS_COUNTER_RECOGNISED_SPLIT`` is on (the default since round 4:
docs/checkout.md, "Letting the recogniser decide one item or two").

The photo is segmented and the uncertain blobs' other cuts proposed (``counter.recognised.plan``, with the settings
fitted for the segmenter's cut: ``split_settings``) in a worker thread; every crop, the segmenter's items and the
proposed parts alike, goes to the micro-batcher as
**one submission** and is searched once; the proposals are judged on those searches (each crop's matches, one
per SKU, as its similarity to each SKU), and the items kept take the answers already computed:
the only extra work over a plain checkout is the proposed parts' crops, and only where something is proposed.
Imported by ``service.checkout`` only when the setting is on (it needs OpenCV).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from starlette.concurrency import run_in_threadpool

from counter.hypotheses import DecisionConfig
from counter.recognised import Plan, plan, split_settings
from counter.segment import BackgroundSegmenter
from service import checkout

if TYPE_CHECKING:
    from counter.boxes import Box
    from gallery.types import Recognition
    from service.deps import AppState


@dataclass(frozen=True)
class PlannedPhoto:
    """A counter photo's crops, with the plan they come from and the decision fitted for its cut."""

    plan: Plan | None  # None: the segmenter proposes nothing (not a background segmenter)
    decision: DecisionConfig | None
    crops: checkout.Segmented


def plan_photo(state: AppState, photo_bytes: bytes, lane: str | None) -> PlannedPhoto:
    """The photo's crops: the plan's (its items and every proposed part) where the segmenter cuts the difference
    against the background (classical or learned; each with the settings fitted for it), else the segmenter's
    items (no plan: nothing to propose)."""
    counter = checkout.counter_photo(state, photo_bytes, lane)
    segmenter, photo, background = counter.segmenter, counter.photo, counter.background.pixels
    if not isinstance(segmenter, BackgroundSegmenter):
        return PlannedPhoto(
            None, None, counter.segmented(segmenter.segment(photo, background), state.embedder.input_size)
        )
    settings = split_settings(segmenter)
    found = plan(segmenter, photo, background, settings.proposal)
    boxes = found.photo_boxes(list(range(len(found.boxes))))
    return PlannedPhoto(found, settings.decision, counter.segmented(boxes, state.embedder.input_size))


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
) -> tuple[list[Box], list[Recognition], checkout.Segmented]:
    """The photo's items (boxes in reading order) and their answers, one embedding submission for every crop."""
    planned = await run_in_threadpool(plan_photo, state, photo, lane)
    found, crops = planned.plan, planned.crops
    if len(crops.pixels) == 0:
        return [], [], crops
    answers = await checkout.recognise(state, crops.pixels)
    if found is None or planned.decision is None:
        return crops.boxes, answers, crops
    judged = found.judged
    items = found.items(similarities([answers[i] for i in judged]) if judged else None, planned.decision)
    return [crops.boxes[i] for i in items], [answers[i] for i in items], crops
