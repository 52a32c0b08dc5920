"""Re-embed every stored reference image with a (new) model, then build its index.

Runs beside a serving process: the old model's vectors and index stay untouched
and keep serving; the new model's vectors are added under their own version and
its index is written to a temporary file and renamed, so a re-index that crashes
halfway leaves the old index serving and can simply be run again (it resumes:
only images still lacking a vector of the new model are embedded).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from embedder.preprocess import ImageError, load_image
from embedder.runtime import Embedder
from gallery.gallery import Gallery
from gallery.references import DEFAULT_VIEWS, reference_pixels
from gallery.stores.open import open_catalog

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ReindexReport:
    model_version: str
    embedded: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # image id → why
    seconds: float = 0.0
    pruned: int = 0
    swept: int = 0  # image files no record referred to, removed

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0


def decoded_batches(pool: Executor, decode: Callable[[T], R], items: list[T], batch_size: int) -> Iterator[list[R]]:
    """Decoded batches in order, the next batch decoding on ``pool`` while the caller embeds this one."""
    batches = [items[start : start + batch_size] for start in range(0, len(items), batch_size)]
    if not batches:
        return
    ahead = [pool.submit(decode, item) for item in batches[0]]
    for following in [*batches[1:], []]:
        current, ahead = ahead, [pool.submit(decode, item) for item in following]
        yield [future.result() for future in current]


def reindex(
    data_dir: str | os.PathLike[str],
    embedder: Embedder,
    batch_size: int = 64,
    index_kind: str = "flat",
    prune: bool = False,
    decode_workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    catalogue_views: int = DEFAULT_VIEWS,
    catalog: str | None = None,
) -> ReindexReport:
    """``catalogue_views``: as the enrolments were made (the setting), so that a studio photo gets
    the same views again (``gallery.references``, deterministic per photo). ``catalog``: the setting
    (``gallery.stores.open``; None: the SQLite catalogue in ``data_dir``)."""
    store = open_catalog(data_dir, catalog)
    blobs = store.photos("images", Path(data_dir))
    report = ReindexReport(model_version=embedder.version)
    started = time.perf_counter()

    def decode(item: tuple[int, str]) -> tuple[int, np.ndarray | None, str]:
        image_id, digest = item
        try:
            pixels = load_image(blobs.get(digest), size=embedder.input_size)
            return image_id, reference_pixels(pixels, catalogue_views), ""
        except (OSError, ImageError) as exc:
            return image_id, None, str(exc)

    try:
        total = len(store.images_missing_vectors(embedder.version))
        with ThreadPoolExecutor(max_workers=decode_workers) as pool:
            while True:  # images enrolled meanwhile are picked up by the next round
                todo = [t for t in store.images_missing_vectors(embedder.version) if t[0] not in report.failed]
                if not todo:
                    break
                for decoded in decoded_batches(pool, decode, todo, batch_size):
                    for image_id, _, why in decoded:
                        if why:
                            report.failed[image_id] = why
                            logger.error("cannot re-embed image %d: %s", image_id, why)
                    good = [(i, p) for i, p, _ in decoded if p is not None]
                    if good:
                        vectors = embedder.embed(np.concatenate([p for _, p in good]))
                        bounds = np.cumsum([0, *(len(p) for _, p in good)])
                        rows = [vectors[a:b] for a, b in itertools.pairwise(bounds)]
                        report.embedded += store.add_vectors([i for i, _ in good], rows, embedder.version)
                    if progress:
                        progress(report.embedded + len(report.failed), max(total, report.embedded + len(report.failed)))
        if report.failed:
            return report
        store.set_meta("model_version", embedder.version)
        if prune:
            report.pruned = store.prune_vectors(embedder.version)
    finally:
        blobs.close()
        store.close()
        report.seconds = time.perf_counter() - started
    gallery = Gallery(data_dir, embedder.version, embedder.embedding_dim, index_kind, catalog=catalog)
    report.swept = gallery.sweep_files()
    gallery.close(snapshot=True)  # the new model's index, written to a temporary file and renamed
    return report
