"""Pure logic: image hits → one match per SKU → open-set decision."""

from __future__ import annotations

from collections.abc import Iterable

from gallery.lookalike import adjusted_score
from gallery.types import ImageHit, Match, Recognition

DEFAULT_THRESHOLD = 0.5  # when nothing is set, stored or calibrated


def resolve_threshold(setting: float | None, stored: float | None, model: float | None) -> float:
    """The one rule for the open-set threshold: the setting (``SKULENS_THRESHOLD``, ``--threshold``) if
    given, else the value stored in the gallery for the model (``PUT /v1/admin/threshold``), else the
    model's calibrated value, else ``DEFAULT_THRESHOLD``."""
    for value in (setting, stored, model):
        if value is not None:
            return float(value)
    return DEFAULT_THRESHOLD


def aggregate_by_sku(hits: Iterable[ImageHit], k: int) -> list[Match]:
    """Best score per SKU, best first, no SKU twice, at most ``k``.

    ``hits`` must be sorted by descending score (as an index returns them).
    """
    best: dict[str, float] = {}
    for hit in hits:
        if hit.sku not in best:
            best[hit.sku] = hit.score
            if len(best) == k:
                break
    return [Match(sku=sku, score=score) for sku, score in sorted(best.items(), key=lambda item: -item[1])]


def decide(matches: list[Match], threshold: float, lookalike: float = 0.0, beta: float = 0.0) -> Recognition:
    """``known`` when the decision score reaches ``threshold``; otherwise the answer is unknown.

    The decision score is the best SKU's similarity less ``beta`` × its ``lookalike`` (how close the
    nearest other SKU's references sit: ``gallery.lookalike``); ``beta = 0`` is the similarity itself.
    """
    if not matches:
        return Recognition(sku=None, score=0.0, known=False, matches=(), threshold=threshold, similarity=0.0)
    top = matches[0]
    score = float(adjusted_score(top.score, lookalike, beta)) if beta else top.score
    known = score >= threshold
    return Recognition(
        sku=top.sku if known else None,
        score=score,
        known=known,
        matches=tuple(matches),
        threshold=threshold,
        similarity=top.score,
    )
