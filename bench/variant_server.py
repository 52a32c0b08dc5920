"""The skulens app (``service.app.create_app``, unchanged) under uvicorn with one knob turned,
to measure a proposed fix before anyone edits the service. Used by ``bench.http_e2e --variant``.

Knobs (each off by default, so ``--embedder litert`` alone is the stock server):

* ``--embedder pow2``: a ``LiteRTEmbedder`` that runs a batch as chunks of power-of-two
  sizes (11 = 8 + 2 + 1), each on an interpreter created once at start-up, instead of
  creating an interpreter for each new batch size (the stock one keeps the 4 most recent);
* ``--embedder cacheall``: the stock embedder keeping an interpreter for every size up to
  ``max_batch`` (``max_cached_sizes=max_batch``);
* ``--faiss-threads N``: ``faiss.omp_set_num_threads(N)`` before serving;
* ``--threadpool-tokens N``: the size of anyio's default thread pool (decode, search run there).

    .venv/bin/python -m bench.variant_server --data-dir D --model M --port P [--embedder pow2] ...
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench.common  # noqa: F401  (sys.path, TF log level)


class Pow2Embedder:
    """Chunks of 1, 2, 4, 8, 16 ... images, each size with its own interpreter made at start-up."""

    def __init__(self, artifact, num_threads: int, max_batch: int):
        from embedder.runtime import LiteRTEmbedder

        self.sizes = [1 << i for i in range(max_batch.bit_length()) if (1 << i) <= max_batch]
        self.inner = LiteRTEmbedder(artifact, num_threads=num_threads, max_cached_sizes=len(self.sizes))
        for size in self.sizes:
            self.inner._interpreter(size)
        self.version, self.embedding_dim, self.input_size = self.inner.version, self.inner.embedding_dim, self.inner.input_size

    def embed(self, pixels):
        import numpy as np

        out, start = [], 0
        while start < len(pixels):
            size = max(s for s in self.sizes if s <= len(pixels) - start)
            out.append(self.inner.embed(pixels[start:start + size]))
            start += size
        return np.concatenate(out) if out else self.inner.embed(pixels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--embedder", choices=["litert", "pow2", "cacheall"], default="litert")
    parser.add_argument("--faiss-threads", type=int)
    parser.add_argument("--threadpool-tokens", type=int)
    args = parser.parse_args(argv)

    import uvicorn

    from embedder.artifact import load_artifact
    from embedder.runtime import LiteRTEmbedder
    from service.app import create_app
    from service.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings(data_dir=Path(args.data_dir), model=Path(args.model), port=args.port)
    artifact = load_artifact(args.model)
    if args.embedder == "pow2":
        embedder = Pow2Embedder(artifact, settings.num_threads, settings.max_batch)
    elif args.embedder == "cacheall":
        embedder = LiteRTEmbedder(artifact, num_threads=settings.num_threads, max_cached_sizes=settings.max_batch)
    else:
        embedder = LiteRTEmbedder(artifact, num_threads=settings.num_threads)
    if args.faiss_threads:
        import faiss

        faiss.omp_set_num_threads(args.faiss_threads)
    app = create_app(settings, embedder=embedder)
    if args.threadpool_tokens:
        from contextlib import asynccontextmanager

        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(a):
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = args.threadpool_tokens
            async with inner(a) as state:
                yield state

        app.router.lifespan_context = lifespan
    default_threshold = artifact.threshold
    if default_threshold is not None and settings.threshold is None:
        settings.threshold = default_threshold  # as `skulens serve` would default to the model's threshold
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
