"""How fast ``add_vectors`` writes to a PostgreSQL catalogue: the cap of a re-index's driver.

``python -m bench.pg_vector_writes [--images 2000] [--batch 64]`` starts a PostgreSQL server
(``tests/pg_server.py``: the machine's server binaries), stores ``--images`` reference images with
vectors of a model "old", then times ``add_vectors`` for a model "new" in calls of ``--batch``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

import numpy as np

from gallery.stores.base import NewImage
from gallery.stores.open import open_catalog
from tests.pg_server import start_server

logger = logging.getLogger(__name__)


def measure(url: str, images: int, batch: int, dim: int = 256) -> float:
    """img/s of ``add_vectors`` over ``images`` stored images, ``batch`` per call."""
    store = open_catalog(tempfile.mkdtemp(), url)
    try:
        vectors = np.random.default_rng(0).standard_normal((images, dim)).astype(np.float32)
        ids: list[int] = []
        for start in range(0, images, 200):
            rows = [NewImage(f"{i:064x}", "image/jpeg", 8, 8) for i in range(start, min(start + 200, images))]
            ids += store.add_images(f"sku{start}", rows, vectors[start : start + len(rows)], "old")
        started = time.perf_counter()
        for start in range(0, images, batch):
            store.add_vectors(ids[start : start + batch], vectors[start : start + batch], "new")
        return images / (time.perf_counter() - started)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = start_server()
    try:
        rate = measure(server.url(), args.images, args.batch)
        logger.info("add_vectors: %d images in calls of %d: %.0f img/s", args.images, args.batch, rate)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
