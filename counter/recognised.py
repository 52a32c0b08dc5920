"""The recogniser deciding one item or two where the classical splitter may be wrong (issue 12, round 4).

``plan`` segments a photo (``BackgroundSegmenter.working``) and proposes other cuts of its blobs
(``counter/alternatives.py``); ``Plan.items`` takes the recogniser's similarities of the crops and keeps a
proposal only when its parts are recognised clearly better than the parts it replaces
(``counter/hypotheses.py``). The recogniser is a **scorer** passed in, ``crops -> (n, products)`` best
similarity of each crop to each product of the gallery, called once per photo with every crop to judge (one
batch): this package knows no embedder and no gallery (the service, or a benchmark, owns them).
``RecognisedSegmenter`` is the ``Segmenter`` (photo -> boxes) that does both with a synchronous scorer;
where nothing is proposed the scorer is not called and the boxes are the classical segmenter's. A caller
that embeds every crop anyway (a checkout) can embed ``Plan.boxes`` in one batch, score the judged rows and
keep the vectors of ``Plan.items``. ``DecisionConfig(verifier=...)`` has a learned verifier
(``counter/verifier.py``, round 5, measured and not the default) judge the changes instead of the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from counter.alternatives import ProposalConfig, proposals
from counter.blobs import Working
from counter.boxes import Box, reading_order
from counter.hypotheses import Change, DecisionConfig, apply, choose
from counter.segment import BackgroundSegmenter, Segmenter
from counter.verifier import choose_learned
from counter.verifier_features import Shapes

DEFAULT_DECISION = DecisionConfig()
DEFAULT_PROPOSAL = ProposalConfig()

Scorer = Callable[[list[np.ndarray]], np.ndarray]  # crops ((h, w, 3) uint8 RGB) -> (n, products) similarities


@dataclass(frozen=True)
class Plan:
    """A photo's candidate items as crops: ``boxes`` (working copy) holds every blob part and thin item (the
    classical segmenter's items, ``baseline``), then every proposed part."""

    work: Working
    boxes: list[Box]
    baseline: list[int]  # the classical segmenter's items (indices into ``boxes``)
    changes: list[Change]  # the proposals, as indices into ``boxes``
    shapes: list[Shapes] = field(default_factory=list)  # each change's masks (``counter/verifier_features.py``)

    @property
    def judged(self) -> list[int]:
        """The crops the recogniser is asked about: those of some change, in order."""
        return sorted({i for c in self.changes for i in (*c.replaces, *c.into)})

    def crops(self, indices: list[int]) -> list[np.ndarray]:
        """The photo's pixels of these crops (padded like the answered boxes)."""
        return [self.work.crop(self.boxes[i]) for i in indices]

    def items(self, sims: np.ndarray | None, config: DecisionConfig) -> list[int]:
        """The crops that are items, in reading order, after the changes that ``sims`` (a row per judged crop)
        justify; the classical segmenter's items when there are none."""
        items = self.baseline
        if sims is not None and self.changes:
            rows = np.full((len(self.boxes), sims.shape[1]), np.nan)
            rows[self.judged] = sims
            taken = (
                choose_learned(self.changes, self.shapes, rows, config.verifier, self.work.item_area)
                if config.verifier is not None
                else choose(self.changes, rows, config)
            )
            items = apply(self.baseline, taken)
        order = reading_order([self.work.photo_box(self.boxes[i]) for i in items])
        return [items[i] for i in order]

    def photo_boxes(self, items: list[int]) -> list[Box]:
        return [self.work.photo_box(self.boxes[i]) for i in items]


def plan(
    segmenter: BackgroundSegmenter, photo: np.ndarray, background: np.ndarray | None, config: ProposalConfig
) -> Plan:
    """``photo`` segmented, and the other cuts of its blobs worth asking the recogniser about."""
    work = segmenter.working(photo, background)
    boxes = [box for blob in work.blobs for box in blob.boxes] + work.thin
    baseline = list(range(len(boxes)))
    changes: list[Change] = []
    shapes: list[Shapes] = []
    first = 0
    for blob in work.blobs:
        for proposal in proposals(blob, work.min_area, work.item_area, config):
            start = len(boxes)
            boxes += [blob.box(mask) for mask in proposal.into]
            changes.append(Change(tuple(first + i for i in proposal.replaces), tuple(range(start, len(boxes)))))
            shapes.append(Shapes([blob.parts[i] for i in proposal.replaces], proposal.into))
        first += len(blob.parts)
    return Plan(work, boxes, baseline, changes, shapes)


class RecognisedSegmenter(Segmenter):
    """``base``'s boxes, with its uncertain blobs cut as the recogniser (``scorer``) finds best."""

    def __init__(
        self,
        base: BackgroundSegmenter,
        scorer: Scorer,
        decision: DecisionConfig = DEFAULT_DECISION,
        proposal: ProposalConfig = DEFAULT_PROPOSAL,
    ):
        self.base, self.scorer, self.decision, self.proposal = base, scorer, decision, proposal

    def with_item_area(self, item_area: float) -> RecognisedSegmenter:
        base = self.base.with_item_area(item_area)
        return self if base is self.base else RecognisedSegmenter(base, self.scorer, self.decision, self.proposal)

    def segment(self, photo: np.ndarray, background: np.ndarray | None = None) -> list[Box]:
        found = plan(self.base, photo, background, self.proposal)
        sims = np.asarray(self.scorer(found.crops(found.judged)), np.float64) if found.changes else None
        return found.photo_boxes(found.items(sims, self.decision))
