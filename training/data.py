"""Folder-per-SKU datasets: listing, SKU selection, and a decode-once uint8 cache.

Photos are decoded with ``embedder.preprocess.load_image`` — the very function the
service uses — so training sees exactly the pixels serving sees (letterboxed,
EXIF-oriented RGB). Decoding happens once per dataset and size and is kept as a
``.npy`` array: on a 2-core machine re-decoding JPEGs every epoch would compete
with the network for the CPU, and the whole grocery train split at 224 px is
~300 MB of uint8.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedder.artifact import write_atomically_with
from embedder.preprocess import IMAGE_SUFFIXES, load_image_file

logger = logging.getLogger(__name__)

GROCERY_ENV = "SKULENS_GROCERY_DIR"
#: ``../shared/data/grocery`` seen from the project root.
DEFAULT_GROCERY_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "grocery"


def grocery_dir() -> Path:
    """The grocery photo set: ``$SKULENS_GROCERY_DIR`` or ``../shared/data/grocery``."""
    path = Path(os.environ.get(GROCERY_ENV, DEFAULT_GROCERY_DIR))
    if not (path / "train").is_dir():
        raise FileNotFoundError(f"no grocery photos at {str(path)!r} (expected a train/ folder); set {GROCERY_ENV}")
    return path


@dataclass(frozen=True)
class ImageFolder:
    """Image paths, integer labels (indices into ``class_names``) and the SKU names."""

    paths: tuple[str, ...]
    labels: np.ndarray  # (n,) int32
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def fingerprint(self) -> str:
        """Content key of the listing: paths, sizes and labels (for caches)."""
        digest = hashlib.sha256()
        for path, label in zip(self.paths, self.labels.tolist()):
            digest.update(f"{path}\0{os.path.getsize(path)}\0{self.class_names[label]}\n".encode())
        return digest.hexdigest()[:16]


def list_skus(root: str | os.PathLike[str]) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {str(root)!r} does not exist")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def select_skus(skus: Iterable[str], exclude: Iterable[str] = (), include: Iterable[str] | None = None) -> list[str]:
    """``skus`` minus ``exclude`` (and restricted to ``include`` when given), sorted."""
    skus = list(skus)
    exclude = set(exclude)
    chosen = [s for s in skus if s not in exclude]
    if include is not None:
        include = set(include)
        missing = include - set(skus)
        if missing:
            raise ValueError(f"SKUs {sorted(missing)} asked for are not in the dataset")
        chosen = [s for s in chosen if s in include]
    return sorted(chosen)


def list_image_folder(
    root: str | os.PathLike[str], class_names: Sequence[str] | None = None, exclude: Iterable[str] = ()
) -> ImageFolder:
    """List ``root/<SKU>/*`` images. With ``class_names``, only those SKUs, labelled by that order."""
    root = Path(root)
    present = list_skus(root)
    names = tuple(class_names) if class_names is not None else tuple(select_skus(present, exclude))
    index = {name: i for i, name in enumerate(names)}
    paths: list[str] = []
    labels: list[int] = []
    for sku in present:
        if sku not in index or sku in set(exclude):
            continue
        for file in sorted((root / sku).iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
                paths.append(str(file))
                labels.append(index[sku])
    if not paths:
        raise ValueError(f"no images found under {str(root)!r} for SKUs {list(names)[:5]}...")
    logger.info("listed %d images of %d SKUs under %s", len(paths), len(set(labels)), root)
    return ImageFolder(tuple(paths), np.asarray(labels, dtype=np.int32), names)


def decode_images(paths: Sequence[str], size: int, workers: int = 2) -> np.ndarray:
    """Decode files to ``(n, size, size, 3)`` uint8 with the serving preprocessing (threads: PIL releases the GIL)."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)

    def work(i: int) -> None:
        out[i] = load_image_file(paths[i], size=size)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(work, range(len(paths))))
    return out


def cached_pixels(folder: ImageFolder, size: int, cache_dir: str | os.PathLike[str] | None) -> np.ndarray:
    """``decode_images`` once, kept as ``<cache_dir>/pixels-<fingerprint>-<size>.npy`` (memory-mapped on reuse)."""
    if cache_dir is None:
        return decode_images(folder.paths, size)
    path = Path(cache_dir) / f"pixels-{folder.fingerprint()}-{size}.npy"
    if path.is_file():
        logger.info("decoded pixels from cache %s", path)
        cached: np.ndarray = np.load(path, mmap_mode="r")
        return cached
    pixels = decode_images(folder.paths, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically_with(path, lambda f: np.save(f, pixels))  # its own temporary file: runs may share a cache
    logger.info("decoded %d images at %d px into %s", len(pixels), size, path)
    return pixels
