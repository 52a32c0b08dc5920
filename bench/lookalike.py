"""What keeping every SKU's lookalike current costs the index follower (``gallery.lookalike``).

``python -m bench.lookalike [--vectors 100000] [--skus 1000,10000]``: for each index kind and SKU
count, a gallery of ``--vectors`` unit vectors clustered around the SKUs, then
* **full**: the follower's start-up / rebuild step (every row read back from the index, summed per
  SKU, the book loaded with one blocked ``C @ C.T``);
* **one enrolment**: after one image is added to the index, its SKU's centroid recomputed from the
  index (what every catch-up that adds an image pays beside the index's own add, under the write
  lock), median of ``--rounds``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench.common import Run, table
from gallery.lookalike import CentroidBook, sku_sums
from gallery.search import make_index

DIM = 256


def clustered(vectors: int, skus: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((skus, DIM))
    labels = rng.integers(0, skus, vectors)
    x = centres[labels] + 0.8 * rng.standard_normal((vectors, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def measure(kind: str, vectors: int, skus: int, rounds: int) -> dict[str, object]:
    x, labels = clustered(vectors, skus)
    index = make_index(kind, DIM)
    index.add(np.arange(vectors, dtype=np.int64), x)
    sku_of = {i: f"sku{lab}" for i, lab in enumerate(labels.tolist())}
    ids_of: dict[str, list[int]] = {}
    for i, sku in sku_of.items():
        ids_of.setdefault(sku, []).append(i)
    started = time.perf_counter()
    book = CentroidBook(DIM)
    row_ids, rows = index.vectors()
    book.load(*sku_sums(row_ids, rows, sku_of, set(ids_of)))
    full_s = time.perf_counter() - started
    one: list[float] = []
    for r in range(rounds):
        image_id, sku = vectors + r, f"sku{r % skus}"
        vector = x[r : r + 1]
        index.add(np.array([image_id]), vector)  # the enrolment's own cost, not counted here
        t0 = time.perf_counter()
        sku_of[image_id] = sku
        ids_of[sku].append(image_id)
        found, got = index.vectors(np.asarray(ids_of[sku], np.int64))
        names, sums, counts = sku_sums(found, got, sku_of, {sku})
        book.set_sum(names[0], sums[0], int(counts[0]))
        one.append(time.perf_counter() - t0)
    return {
        "index": kind,
        "vectors": vectors,
        "skus": skus,
        "full_s": round(full_s, 3),
        "one_enrolment_ms": round(1000 * statistics.median(one), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--skus", default="1000,10000")
    parser.add_argument("--kinds", default="flat,hnsw")
    parser.add_argument("--rounds", type=int, default=20)
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
