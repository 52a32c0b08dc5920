"""Re-embed every stored reference image with a (new) model, then build its index.

Runs beside a serving process: the old model's vectors and index stay untouched
and keep serving; the new model's vectors are added under their own version and
its index is written to a temporary file and renamed, so a re-index that crashes
halfway leaves the old index serving and can simply be run again (it resumes:
only images still lacking a vector of the new model are embedded).

The steps a re-index on Ray (``gallery.reindex_ray``) shares with this local one live here:
what is left to embed (``pending_rounds``), one photo's pixels (``decode_reference``), storing a
batch of vectors (``store_vectors``) and the end (``finish``: model version, prune, sweep, index swap).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from embedder.preprocess import ImageError, load_image
from embedder.runtime import Embedder
from gallery.gallery import Gallery
from gallery.references import DEFAULT_VIEWS, reference_pixels
from gallery.stores.base import CatalogBase, PhotoStore
from gallery.stores.open import open_catalog

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[int, int], None]  # (images done, images in all)


@dataclass
class ReindexReport:
    model_version: str
    embedded: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # image id → why
    seconds: float = 0.0
    pruned: int = 0
    swept: int = 0  # image files no record referred to, removed
    total: int = 0  # images lacking a vector of the model when the run began
    workers: dict[str, tuple[int, float]] = field(default_factory=dict)  # on Ray: worker → (images, busy seconds)
    write_seconds: float = 0.0  # spent writing vectors to the catalogue

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


def decode_reference(
    photos: PhotoStore, image_id: int, digest: str, input_size: int, views: int
) -> tuple[int, np.ndarray | None, str]:
    """``(image_id, pixels, "")``: one stored photo's rows to embed (``gallery.references``), or
    ``(image_id, None, why)`` when its bytes cannot be read or decoded."""
    try:
        pixels = load_image(photos.get(digest), size=input_size)
        return image_id, reference_pixels(pixels, views), ""
    except (OSError, ImageError) as exc:
        return image_id, None, str(exc)


def pending_rounds(store: CatalogBase, model_version: str, failed: dict[int, str]) -> Iterator[list[tuple[int, str]]]:
    """``(image id, digest)`` of the images still lacking a vector of ``model_version``, round after round
    until none is left: images enrolled meanwhile are picked up by the next round, and one that failed
    in this run is not tried again."""
    while True:
        todo = [t for t in store.images_missing_vectors(model_version) if t[0] not in failed]
        if not todo:
            return
        yield todo


def store_vectors(
    store: CatalogBase,
    report: ReindexReport,
    ids: Sequence[int],
    rows: Sequence[np.ndarray],
    failures: dict[int, str],
    progress: Progress | None = None,
) -> None:
    """Write one batch's vectors (``rows[i]``: image ``ids[i]``'s photo, then its views) and record its failures."""
    for image_id, why in failures.items():
        report.failed[image_id] = why
        logger.error("cannot re-embed image %d: %s", image_id, why)
    if ids:
        started = time.perf_counter()
        report.embedded += store.add_vectors(list(ids), list(rows), report.model_version)
        report.write_seconds += time.perf_counter() - started
    if progress:
        done = report.embedded + len(report.failed)
        progress(done, max(report.total, done))


def finish(
    data_dir: str | os.PathLike[str],
    store: CatalogBase,
    report: ReindexReport,
    embedding_dim: int,
    started: float,
    index_kind: str = "flat",
    prune: bool = False,
    catalog: str | None = None,
) -> ReindexReport:
    """The end of every re-index, local or on Ray; closes ``store``. When any image failed, nothing
    more: the model version is not recorded and the index not switched. Else the catalogue records the
    model version, ``prune`` deletes every other model's vectors, photos no record refers to are swept,
    and the model's index is built and saved (a temporary file renamed: the atomic swap)."""
    try:
        if not report.failed:
            store.set_meta("model_version", report.model_version)
            if prune:
                report.pruned = store.prune_vectors(report.model_version)
    finally:
        store.close()
        report.seconds = time.perf_counter() - started
    if report.failed:
        return report
    gallery = Gallery(data_dir, report.model_version, embedding_dim, index_kind, catalog=catalog)
    report.swept = gallery.sweep_files()
    gallery.close(snapshot=True)  # the new model's index, written to a temporary file and renamed
    return report


def reindex(
    data_dir: str | os.PathLike[str],
    embedder: Embedder,
    batch_size: int = 64,
    index_kind: str = "flat",
    prune: bool = False,
    decode_workers: int = 2,
    progress: Progress | None = None,
    catalogue_views: int = DEFAULT_VIEWS,
    catalog: str | None = None,
) -> ReindexReport:
    """``catalogue_views``: as the enrolments were made (the setting), so that a studio photo gets
    the same views again (``gallery.references``, deterministic per photo). ``catalog``: the setting
    (``gallery.stores.open``; None: the SQLite catalogue in ``data_dir``)."""
    store = open_catalog(data_dir, catalog)
    report = ReindexReport(model_version=embedder.version)
    started = time.perf_counter()
    try:
        blobs = store.photos("images", Path(data_dir))
    except BaseException:
        store.close()
        raise

    def decode(item: tuple[int, str]) -> tuple[int, np.ndarray | None, str]:
        return decode_reference(blobs, *item, embedder.input_size, catalogue_views)

    try:
        report.total = len(store.images_missing_vectors(embedder.version))
        with ThreadPoolExecutor(max_workers=decode_workers) as pool:
            for todo in pending_rounds(store, embedder.version, report.failed):
                for decoded in decoded_batches(pool, decode, todo, batch_size):
                    good = [(i, p) for i, p, _ in decoded if p is not None]
                    rows: list[np.ndarray] = []
                    if good:
                        vectors = embedder.embed(np.concatenate([p for _, p in good]))
                        bounds = np.cumsum([0, *(len(p) for _, p in good)])
                        rows = [vectors[a:b] for a, b in itertools.pairwise(bounds)]
                    failures = {i: why for i, _, why in decoded if why}
                    store_vectors(store, report, [i for i, _ in good], rows, failures, progress)
    except BaseException:
        store.close()
        raise
    finally:
        blobs.close()
    return finish(data_dir, store, report, embedder.embedding_dim, started, index_kind, prune, catalog)
