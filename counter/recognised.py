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

What is proposed and how it is judged depends on the cut the proposals start from (``split_settings``): round 4's
margins were fitted on the classical cut; on the learned centres' cut (round 9, ``bench/counter_rule_refit.py``)
merges never helped and only a clear split does, so there nothing is merged and a split needs more evidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from counter.alternatives import ProposalConfig, proposals
from counter.blobs import Working
from counter.boxes import Box, reading_order
from counter.centres import LearnedSegmenter
from counter.hypotheses import Change, DecisionConfig, apply, choose
from counter.segment import BackgroundSegmenter, Segmenter
from counter.verifier import choose_learned
from counter.verifier_features import Shapes

DEFAULT_DECISION = DecisionConfig()
DEFAULT_PROPOSAL = ProposalConfig()


@dataclass(frozen=True)
class SplitSettings:
    """What to propose and how to judge it, for one kind of cut."""

    proposal: ProposalConfig
    decision: DecisionConfig


CLASSICAL_SPLIT = SplitSettings(DEFAULT_PROPOSAL, DEFAULT_DECISION)  # round 4, fitted on the classical cut
# Round 9, refitted on the learned cut (tuning seeds 1000-1399; docs/checkout.md): no merge proposed, a split taken
# when its parts' mean best similarity beats the whole's by 0.2 per item added.
LEARNED_SPLIT = SplitSettings(
    ProposalConfig(merge_items=0.0), DecisionConfig(split_margin=0.2, merge_margin=math.inf, coherence=0.0)
)


def split_settings(segmenter: BackgroundSegmenter) -> SplitSettings:
    """The settings fitted for ``segmenter``'s cut."""
    return LEARNED_SPLIT if isinstance(segmenter, LearnedSegmenter) else CLASSICAL_SPLIT


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
        decision: DecisionConfig | None = None,
        proposal: ProposalConfig | None = None,
    ):
        """``decision`` and ``proposal``: those fitted for ``base``'s cut (``split_settings``) unless given."""
        fitted = split_settings(base)
        self.base, self.scorer = base, scorer
        self.decision = decision if decision is not None else fitted.decision
        self.proposal = proposal if proposal is not None else fitted.proposal

    def with_item_area(self, item_area: float) -> RecognisedSegmenter:
        base = self.base.with_item_area(item_area)
        return self if base is self.base else RecognisedSegmenter(base, self.scorer, self.decision, self.proposal)

    def segment(self, photo: np.ndarray, background: np.ndarray | None = None) -> list[Box]:
        found = plan(self.base, photo, background, self.proposal)
        sims = np.asarray(self.scorer(found.crops(found.judged)), np.float64) if found.changes else None
        return found.photo_boxes(found.items(sims, self.decision))
