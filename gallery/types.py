"""Small value types shared by the gallery and the service."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: SKU ids: a letter or digit, then letters, digits, '.', '_' or '-'; at most 64 characters.
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_SKU_RE = re.compile(SKU_PATTERN)


class GalleryError(Exception):
    """Base of the gallery's errors (mapped to HTTP statuses only at the service edge)."""


class InvalidSku(GalleryError, ValueError):
    pass


class SkuNotFound(GalleryError, KeyError):
    def __str__(self) -> str:  # KeyError quotes its argument; keep the sentence readable
        return str(self.args[0]) if self.args else "SKU not found"


class ImageNotFound(SkuNotFound):
    pass


class CurrencyMismatch(GalleryError):
    """The catalogue's prices are in another currency than the ``currency`` setting."""


class CurrencyNotSet(CurrencyMismatch):
    """An old catalogue's prices say no currency, and the ``currency`` setting was not given to read them in."""


class SchemaTooNew(GalleryError):
    """The catalogue was written by a newer skulens (a schema version this code does not know)."""


class ModelMismatch(GalleryError):
    """The gallery's vectors do not (all) come from the model this process embeds with."""


def validate_sku(sku: str) -> str:
    if not isinstance(sku, str) or not _SKU_RE.fullmatch(sku):  # '$' alone lets "milk\n" through
        shown = repr(sku) if len(str(sku)) <= 80 else repr(str(sku)[:80]) + f"... ({len(sku)} characters)"
        raise InvalidSku(
            f"invalid SKU id {shown}: expected 1-64 characters, letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return sku


@dataclass(frozen=True)
class Sku:
    sku: str
    name: str
    price_minor: int | None = None  # minor units of the catalogue's currency (gallery.money)
    attributes: dict[str, Any] = field(default_factory=dict)
    image_ids: tuple[int, ...] = ()
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True)
class ReferenceImage:
    id: int
    sku: str
    sha256: str
    media_type: str
    width: int
    height: int


@dataclass(frozen=True)
class ImageHit:
    """One reference image found by the vector index."""

    image_id: int
    sku: str
    score: float


@dataclass(frozen=True)
class Match:
    sku: str
    score: float
    name: str = ""


@dataclass(frozen=True)
class Recognition:
    """The answer for one query: the decision and the top matches (one per SKU).

    ``score`` is what the decision compared with ``threshold`` (``gallery.decision.decide``);
    ``similarity`` the best match's cosine similarity (equal to ``score`` for the plain-similarity score)."""

    sku: str | None
    score: float
    known: bool
    matches: tuple[Match, ...]
    threshold: float
    similarity: float


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    offset: int
    limit: int
