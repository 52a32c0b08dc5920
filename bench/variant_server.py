"""The skulens app (``service.app.create_app``, unchanged) under uvicorn with one knob turned,
to measure a proposed fix before anyone edits the service. Used by ``bench.http_e2e --variant``.

Knobs (each off by default, so ``--embedder litert`` alone is the stock server):

* ``--embedder chunk1``: the stock ``LiteRTEmbedder`` with ``max_chunk=1``: every image of a
  micro-batch invoked on its own (what micro-batching buys at inference);
* ``--embedder chunk<N>``: ``max_chunk=N`` (a power of two);
* ``--faiss-threads N``: ``faiss.omp_set_num_threads(N)`` in the main thread before serving.
  NB: with GNU OpenMP this sets only the calling thread's value; the searches run on AnyIO
  worker threads, which keep the global default. It therefore changes nothing measurable;
  set ``OMP_NUM_THREADS=1`` in the server's environment instead (``bench.http_e2e --env``);
* ``--threadpool-tokens N``: the size of anyio's default thread pool (decode, search run there).

    .venv/bin/python -m bench.variant_server --data-dir D --model M --port P [--embedder chunk1] ...
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench.common  # noqa: F401  (sys.path, TF log level)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--embedder", default="litert", help="litert (stock) or chunkN (max_chunk=N)")
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
    if args.embedder.startswith("chunk"):
        embedder = LiteRTEmbedder(artifact, num_threads=settings.num_threads, max_chunk=int(args.embedder[5:]))
    else:
        embedder = LiteRTEmbedder(artifact, num_threads=settings.num_threads)
    if args.faiss_threads:
        import faiss

        faiss.omp_set_num_threads(args.faiss_threads)
    # the model's own open-set score, as `skulens serve` decides on it
    app = create_app(
        settings, embedder=embedder, lookalike_beta=artifact.lookalike_beta, runner_up_gamma=artifact.runner_up_gamma
    )
    if args.threadpool_tokens:
        from contextlib import asynccontextmanager

        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
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
