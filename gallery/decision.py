"""Pure logic: image hits → one match per SKU → open-set decision."""

from __future__ import annotations

from collections.abc import Iterable

from gallery.open_set_score import NO_RUNNER_UP, OpenSetScore
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


#: the plain best similarity
PLAIN = OpenSetScore()


def decide(matches: list[Match], threshold: float, lookalike: float = 0.0, score: OpenSetScore = PLAIN) -> Recognition:
    """``known`` when the decision score reaches ``threshold``; otherwise the answer is unknown.

    The decision score (``gallery.open_set_score``) is the best SKU's similarity less ``score.beta`` × its
    ``lookalike`` (``gallery.lookalike``) and ``score.gamma`` × the second SKU's similarity (``matches[1]``:
    the caller searches for at least two SKUs when gamma is set); both 0: the similarity itself.
    """
    if not matches:
        return Recognition(sku=None, score=0.0, known=False, matches=(), threshold=threshold, similarity=0.0)
    top = matches[0]
    runner_up = matches[1].score if len(matches) > 1 else NO_RUNNER_UP
    value = float(score.of(top.score, lookalike, runner_up)) if score.name else top.score
    known = value >= threshold
    return Recognition(
        sku=top.sku if known else None,
        score=value,
        known=known,
        matches=tuple(matches),
        threshold=threshold,
        similarity=top.score,
    )
