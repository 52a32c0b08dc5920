"""Evaluation inputs: folder-per-SKU image sets, and their embeddings with an on-disk cache.

Vectors are cached per model version, file content and query condition, so a
second run, or a second model on the same photos, embeds only what is new.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedder.preprocess import IMAGE_SUFFIXES, ImageError, load_image
from embedder.runtime import Embedder
from evaluation.robustness import CLEAN, apply_condition

logger = logging.getLogger(__name__)

#: Bump when decoding/letterboxing changes: cached vectors made the old way are then ignored.
PREPROCESS_TAG = "letterbox1"


@dataclass(frozen=True)
class ImageSet:
    """Image files and their SKUs, in a fixed order (SKU, then file name)."""

    paths: tuple[Path, ...]
    skus: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, keep: Sequence[bool]) -> ImageSet:
        return ImageSet(tuple(p for p, k in zip(self.paths, keep) if k), tuple(s for s, k in zip(self.skus, keep) if k))

    def without(self, skus: set[str]) -> ImageSet:
        return self.subset([s not in skus for s in self.skus])

    def per_sku(self, n: int, seed: int = 0) -> ImageSet:
        """At most ``n`` photos of each SKU, drawn at random (seeded): the few-shot gallery."""
        if n < 1:
            raise ValueError(f"photos per SKU must be at least 1, got {n}")
        rng = np.random.default_rng(seed)
        keep = np.zeros(len(self), dtype=bool)
        for sku in sorted(set(self.skus)):
            rows = np.flatnonzero(np.array(self.skus) == sku)
            keep[rng.choice(rows, size=min(n, len(rows)), replace=False)] = True
        return self.subset(keep.tolist())


def scan_folder(root: str | os.PathLike[str]) -> ImageSet:
    """Images in ``root/<SKU>/``; raises if the folder has none."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist (expected one sub-folder per SKU)")
    paths, skus = [], []
    for sku_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(sku_dir.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(path)
                skus.append(sku_dir.name)
    if not paths:
        raise ValueError(f"no images in {str(root)!r}: expected {root}/<SKU>/*.jpg (suffixes {IMAGE_SUFFIXES})")
    return ImageSet(tuple(paths), tuple(skus))


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "skulens" / "embeddings"


class EmbeddingCache:
    """Vectors keyed by (model version, condition, file content): one ``.npz`` per model version and condition.

    Keys are content hashes, so a renamed file is still found and an edited one is
    not. Files are replaced atomically; two runs writing at once can lose entries
    (recomputed next time), never corrupt them.
    """

    def __init__(self, directory: str | os.PathLike[str], version: str):
        self.directory = Path(directory) / version
        self._tables: dict[str, dict[str, np.ndarray]] = {}

    def _file(self, condition: str) -> Path:
        return self.directory / f"{PREPROCESS_TAG}-{condition}.npz"

    def table(self, condition: str) -> dict[str, np.ndarray]:
        if condition not in self._tables:
            table: dict[str, np.ndarray] = {}
            path = self._file(condition)
            if path.exists():
                try:
                    with np.load(path) as data:
                        table = dict(zip(data["keys"].tolist(), data["vectors"]))
                except Exception as exc:  # noqa: BLE001 - a torn or foreign file (many error types): recompute
                    logger.warning("ignoring unreadable embedding cache %s: %s", path, exc)
            self._tables[condition] = table
        return self._tables[condition]

    def save(self, condition: str) -> None:
        table = self.table(condition)
        if not table:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self._file(condition).with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, keys=np.array(list(table)), vectors=np.stack(list(table.values())))
        os.replace(tmp, self._file(condition))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:32]


def _decode(path: Path, size: int) -> np.ndarray:
    try:
        return load_image(path.read_bytes(), size=size)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from exc


def embed_files(
    embedder: Embedder,
    paths: Sequence[Path],
    *,
    cache: EmbeddingCache | None = None,
    condition: str = CLEAN,
    batch_size: int = 32,
    workers: int = 2,
) -> np.ndarray:
    """Unit vectors ``(len(paths), dim)``; decoding runs on a thread pool one batch ahead of inference."""
    paths = [Path(p) for p in paths]
    digests = [_digest(p) for p in paths]
    table = cache.table(condition) if cache is not None else {}
    vectors = np.zeros((len(paths), embedder.embedding_dim), dtype=np.float32)
    todo = [i for i, d in enumerate(digests) if d not in table]
    for i, d in enumerate(digests):
        if d in table:
            vectors[i] = table[d]
    if not todo:
        return vectors
    start = time.perf_counter()
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    with ThreadPoolExecutor(max(1, workers)) as pool:

        def submit(batch: list[int]) -> list[Future[np.ndarray]]:
            return [pool.submit(_decode, paths[i], embedder.input_size) for i in batch]

        ahead = submit(batches[0])
        for number, batch in enumerate(batches):
            current, ahead = ahead, (submit(batches[number + 1]) if number + 1 < len(batches) else [])
            pixels = np.stack([f.result() for f in current])
            variants = [int(digests[i][:8], 16) for i in batch]  # e.g. which side ``partial`` keeps
            pixels = apply_condition(condition, pixels, variants)
            vectors[batch] = embedder.embed(pixels)
    for i in todo:
        table[digests[i]] = vectors[i]
    if cache is not None:
        cache.save(condition)
    logger.info(
        "embedded %d images (%s, %d cached) in %.1f s",
        len(todo),
        condition,
        len(paths) - len(todo),
        time.perf_counter() - start,
    )
    return vectors


#: SKUs of the grocery set kept out of training entirely: enrolled afterwards to measure open-set
#: recognition. One list: training (``training.data``) imports it from here.
HELD_OUT_SKUS: tuple[str, ...] = (
    "Pink-Lady",
    "Arla-Standard-Milk",
    "God-Morgon-Apple-Juice",
    "Yoggi-Vanilla-Yoghurt",
    "Conference",
    "Honeydew-Melon",
    "Yellow-Bell-Pepper",
    "Lime",
    "Zucchini",
    "Oatly-Oat-Milk",
)
