"""What keeping every SKU's lookalike current costs the index follower (``gallery.lookalike.refreshed``).

``python -m bench.lookalike [--vectors 100000] [--skus 1000,10000]``: for each index kind and SKU
count, an index of ``--vectors`` unit vectors clustered around the SKUs, then the time of
``refreshed`` (what the follower runs under the index's write lock after a catch-up that changed up
to ``LOOKALIKE_INLINE_SKUS`` = 64 SKUs; a larger catch-up runs it on a copy outside the lock and only
swaps the book under it; at start-up and after a rebuild the full build runs before anything
searches or before the lock is taken):
* **full**: every row read back from the index, summed per SKU, the book loaded at once;
* **one image**: one image added to an existing SKU (median of ``--rounds``);
* **new SKU**: a SKU enrolled with one image (median of ``--rounds``);
* **SKU deleted** (median of ``--rounds``);
* **1,000 SKUs at once**: a catch-up that brings one new image to each of 1,000 SKUs (a replica
  behind a bulk enrolment; outside the write lock).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from bench.common import Run, table
from gallery.lookalike import CentroidBook, refreshed
from gallery.search import make_index

DIM = 256


def clustered(rng: np.random.Generator, n: int, centres: np.ndarray, labels: np.ndarray) -> np.ndarray:
    x = centres[labels] + 0.8 * rng.standard_normal((n, DIM))
    out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def timed(step: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    step(*args)
    return time.perf_counter() - started


def ms(seconds: list[float]) -> float:
    return round(1000 * statistics.median(seconds), 2)


def measure(kind: str, vectors: int, skus: int, rounds: int) -> dict[str, object]:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((skus + 2 * rounds, DIM))
    labels = rng.integers(0, skus, vectors)
    index = make_index(kind, DIM)
    index.add(np.arange(vectors, dtype=np.int64), clustered(rng, vectors, centres, labels))
    sku_of = {i: f"sku{lab}" for i, lab in enumerate(labels.tolist())}
    ids_of: dict[str, set[int]] = {}
    for i, sku in sku_of.items():
        ids_of.setdefault(sku, set()).add(i)
    book = CentroidBook(DIM)
    next_id = vectors

    def add(sku: str, label: int) -> None:
        nonlocal next_id
        index.add(np.array([next_id]), clustered(rng, 1, centres, np.array([label])))
        sku_of[next_id] = sku
        ids_of.setdefault(sku, set()).add(next_id)
        next_id += 1

    def full() -> None:
        nonlocal book
        book = refreshed(book, index, sku_of, ids_of, None)

    full_s = timed(full)
    one, new, deleted = [], [], []
    for r in range(rounds):
        add(f"sku{r % skus}", r % skus)  # the index's own add is the enrolment's cost, not counted
        one.append(timed(refreshed, book, index, sku_of, ids_of, {f"sku{r % skus}"}))
        add(f"new{r}", skus + r)
        new.append(timed(refreshed, book, index, sku_of, ids_of, {f"new{r}"}))
        gone = ids_of.pop(f"new{r}")
        index.remove(np.array(sorted(gone)))
        for i in gone:
            del sku_of[i]
        deleted.append(timed(refreshed, book, index, sku_of, ids_of, {f"new{r}"}))
    batch = [f"sku{s}" for s in range(min(1000, skus))]
    for s in range(len(batch)):
        add(batch[s], s)
    batch_s = timed(refreshed, book, index, sku_of, ids_of, set(batch))
    return {
        "index": kind,
        "vectors": vectors,
        "skus": skus,
        "full_s": round(full_s, 3),
        "one_image_ms": ms(one),
        "new_sku_ms": ms(new),
        "sku_deleted_ms": ms(deleted),
        "1000_skus_at_once_ms": round(1000 * batch_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--skus", default="1000,10000")
    parser.add_argument("--kinds", default="flat,hnsw")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--name", default="lookalike")
    args = parser.parse_args()
    run = Run(args.name)
    rows = [
        measure(kind, args.vectors, int(skus), args.rounds)
        for kind in args.kinds.split(",")
        for skus in args.skus.split(",")
    ]
    run.data["results"] = rows
    print(table(rows))
    run.save()


if __name__ == "__main__":
    main()
