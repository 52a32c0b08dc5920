"""Benchmark 3b: search as the service does it, ``Gallery.search`` (k=5 SKUs), at 100k reference images.

``Gallery.search`` asks the index for ``fetch = max(4k, 16)`` images, keeps the best per SKU,
and, when those cover fewer than k SKUs, searches again with 4x ``fetch`` (a full new search).
With many photos per SKU that repeats; this measures how often and what it costs:

* a gallery of 100k clustered synthetic vectors (``bench.serving.fill_gallery``) with 30 and
  with 100 reference images per SKU; queries are stored vectors plus noise (a real query
  resembles its SKU's photos), 500 per setting, one per call;
* index searches per ``Gallery.search`` call and the ``fetch`` sizes asked for;
* ``Gallery.search`` latency, flat and HNSW, FAISS on 1 and 2 OpenMP threads;
* the cost of one flat search as a function of k (FAISS ``IndexIDMap2(IndexFlatIP)``, 100k).

    .venv/bin/python -m bench.gallery_search
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Run, percentiles, table

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]

N = 100_000
DIM = 256


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, and no stray flags
    import faiss
    import numpy as np

    from bench.serving import SIGMA, fill_gallery
    from gallery.gallery import Gallery

    run = Run("gallery_search")
    rows, work = [], Path(tempfile.mkdtemp(prefix="skulens-bench-gsearch-"))
    try:
        for per_sku in (30, 100):
            data = work / f"per{per_sku}"
            fill_gallery(data, "bench", DIM, N, per_sku=per_sku)
            for kind in ("flat", "hnsw"):
                started = time.perf_counter()
                gallery = Gallery(data, "bench", DIM, kind)
                open_s = time.perf_counter() - started
                _, _, vectors = gallery.store.vectors_for("bench", list(range(1, N, N // 500)))
                rng = np.random.default_rng(1)
                queries = vectors + rng.standard_normal(vectors.shape).astype(np.float32) * (SIGMA / np.sqrt(DIM))
                queries /= np.linalg.norm(queries, axis=1, keepdims=True)
                calls: list[int] = []
                inner = gallery._index.search

                def counted(
                    queries: np.ndarray, k: int, inner: Search = inner, calls: list[int] = calls
                ) -> tuple[np.ndarray, np.ndarray]:
                    calls.append(k)
                    return inner(queries, k)

                gallery._index.search = counted  # type: ignore[method-assign]  # counts the fetches of one search
                for threads in (1, 2):
                    faiss.omp_set_num_threads(threads)
                    for q in queries[:20]:
                        gallery.search(q[None], 5)
                    calls.clear()
                    times = []
                    for q in queries:
                        t = time.perf_counter()
                        gallery.search(q[None], 5)
                        times.append(time.perf_counter() - t)
                    rows.append(
                        {
                            "images per SKU": per_sku,
                            "index": kind,
                            "faiss threads": threads,
                            "queries": len(times),
                            "index searches per query": len(calls) / len(times),
                            "fetch sizes": dict(sorted(Counter(calls).items())),
                            **percentiles(times),
                            "open s": open_s,
                        }
                    )
                    print(f"  {rows[-1]}", flush=True)
                gallery.close(snapshot=False)
        # one flat search, as a function of k
        faiss.omp_set_num_threads(1)
        rng = np.random.default_rng(0)
        base = rng.standard_normal((N, DIM), dtype=np.float32)
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
        index.add_with_ids(base, np.arange(N, dtype=np.int64))
        k_rows = []
        for k in (20, 80, 320, 1024):
            times = []
            for i in range(300):
                t = time.perf_counter()
                index.search(base[i : i + 1], k)
                times.append(time.perf_counter() - t)
            k_rows.append({"k": k, "vectors": N, "faiss threads": 1, **percentiles(times)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    run.data["rows"] = rows
    run.data["flat_cost_by_k"] = k_rows
    print()
    print(table(rows))
    print()
    print(table(k_rows))
    run.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
