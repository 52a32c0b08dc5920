"""What an evaluation run returns: small dataclasses, JSON-ready through ``evaluation.evaluate.to_jsonable``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evaluation import metrics
from evaluation.calibrate import Calibration, CrossFit


@dataclass(frozen=True)
class GroupScore:
    name: str
    queries: int
    top1: float
    top5: float


@dataclass(frozen=True)
class ClosedSet:
    gallery_images: int
    gallery_skus: int
    queries: int  # queries whose SKU is in the gallery
    top1: float
    top5: float
    recall_at_k: dict[int, float]
    map_at_r: float
    groups: list[GroupScore]
    per_sku: list[metrics.SkuAccuracy]
    confused: list[metrics.Confusion]


@dataclass(frozen=True)
class OpenSet:
    gallery_skus: int
    unknown_skus: list[str]
    auroc: float
    threshold_source: str  # "given" or "calibrated on these queries"
    at_threshold: metrics.OpenSetResult
    calibration: Calibration | None
    cross_fitted: CrossFit | None
    operating_points: list[metrics.OpenSetResult]  # thresholds rejecting given fractions of the unknowns
    known_scores: list[float]  # best score of each known query (histograms)
    unknown_scores: list[float]
    unknown_examples: list[QueryOutcome]  # the unknown queries that scored highest (the dangerous ones)


@dataclass(frozen=True)
class RobustnessRow:
    condition: str
    queries: int
    top1: float
    top5: float
    groups: list[GroupScore]


@dataclass(frozen=True)
class QueryOutcome:
    """One closed-set query: its 5 best SKUs with their scores and best-matching gallery photo."""

    path: str
    sku: str
    top_skus: list[str]
    top_scores: list[float]
    top_paths: list[str]

    @property
    def correct(self) -> bool:
        return bool(self.top_skus) and self.top_skus[0] == self.sku


@dataclass
class EvalResult:
    label: str
    model: dict[str, Any]  # path, version, backbone, input size, weights origin, trained
    closed: ClosedSet
    open: OpenSet | None
    robustness: list[RobustnessRow]
    queries: list[QueryOutcome]
    seconds: dict[str, float] = field(default_factory=dict)
