"""Re-index on Ray (``skulens reindex --ray [ADDRESS]``, the ``ray`` extra): the local re-index's
semantics (``gallery.reindex``: resumable, failures per image, the index not switched when any
failed, prune, sweep, atomic swap), with the embedding spread over a Ray cluster.

Ray Data takes the ``(image id, digest)`` of every image still lacking a vector of the model;
``EmbedReferences``, one actor per worker (``map_batches`` with a callable class, ``concurrency``
actors), reads each batch's photos, decodes them (with their catalogue views) and embeds them with
its own LiteRT embedder; the driver writes the vectors back to the catalogue, a block at a time.

Workers read the photos themselves, from the catalogue's photo store: the bytes travel once, from
the store to the worker that embeds them, and the reads are spread over the workers instead of all
passing through the driver (which handles only ids and vectors, 1 KB an image). With PostgreSQL every
worker reaches the photos; with the SQLite catalogue the data directory must be at the same path on
every node (a local Ray, or a shared file system). The model travels as bytes: nodes need no copy.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from embedder.artifact import ModelArtifact, load_artifact
from embedder.runtime import load_embedder
from gallery.references import DEFAULT_VIEWS
from gallery.reindex import Progress, ReindexReport, decode_reference, finish, pending_rounds, store_vectors
from gallery.stores.base import CatalogBase, PhotoStore
from gallery.stores.open import DB_FILE, is_shared, open_catalog

logger = logging.getLogger(__name__)


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the Ray job failed (an actor could not start, a node was lost)."""


def open_photos(data_dir: str, catalog: str | None) -> PhotoStore:
    """The reference photos as a worker reaches them; a clear error on a node without the SQLite data directory."""
    if not is_shared(catalog) and not (Path(data_dir) / DB_FILE).is_file():
        raise FileNotFoundError(
            f"no catalogue at {data_dir} on Ray node {socket.gethostname()}: with the SQLite catalogue every "
            "node needs the data directory at the same path (a shared file system); or use --catalog postgresql://..."
        )
    store = open_catalog(data_dir, catalog)
    try:
        return store.photos("images", Path(data_dir))
    finally:
        store.close()


class EmbedReferences:
    """A Ray Data actor: a batch of ``image_id``, ``digest`` → ``image_id``, ``vectors`` (float32 bytes
    of the photo's row and its views' rows), ``error`` ("" when embedded), ``worker``, ``busy_s``."""

    def __init__(self, model: list[Any], version: str, data_dir: str, catalog: str | None, views: int, threads: int):
        """``model``: ``[ObjectRef]`` of ``model_files`` (in a list, so that the actor fetches it itself)."""
        import ray

        folder = tempfile.mkdtemp(prefix="skulens-model-")
        try:
            for name, data in ray.get(model[0]).items():
                (Path(folder) / name).write_bytes(data)
            self.embedder = load_embedder(load_artifact(folder), num_threads=threads)  # reads the model into memory
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if self.embedder.version != version:
            raise ValueError(f"the model reached this worker as {self.embedder.version}, not {version}")
        self.photos = open_photos(data_dir, catalog)
        self.views = views
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        size = self.embedder.input_size
        decoded = [
            decode_reference(self.photos, int(i), str(d), size, self.views)
            for i, d in zip(batch["image_id"], batch["digest"])
        ]
        good = [p for _, p, _ in decoded if p is not None]
        vectors = self.embedder.embed(np.concatenate(good)) if good else np.zeros((0, 0), np.float32)
        column = np.empty(len(decoded), dtype=object)
        start = 0
        for n, (_, pixels, _) in enumerate(decoded):
            rows = 0 if pixels is None else len(pixels)
            column[n] = vectors[start : start + rows].tobytes()
            start += rows
        busy = time.perf_counter() - started
        return {
            "image_id": np.array([i for i, _, _ in decoded], dtype=np.int64),
            "vectors": column,
            "error": np.array([why for _, _, why in decoded], dtype=object),
            "worker": np.array([self.worker] * len(decoded), dtype=object),
            "busy_s": np.full(len(decoded), busy / max(1, len(decoded))),
        }


def model_files(artifact: ModelArtifact) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(artifact.path).iterdir()) if p.is_file()}


def connect(address: str | None, num_cpus: int | None) -> bool:
    """Join the Ray cluster at ``address``, else start a local Ray (``num_cpus``, default all); a Ray this
    process already joined is used as it is. True when this call started or joined it (and so ends it)."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(f"a re-index on Ray needs the ray extra (pip install 'skulens[ray]'): {exc}") from None
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False)
    return True


def reindex_on_ray(
    data_dir: str | os.PathLike[str],
    artifact: ModelArtifact,
    address: str | None = None,
    num_cpus: int | None = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    batch_size: int = 64,
    index_kind: str = "flat",
    prune: bool = False,
    progress: Progress | None = None,
    catalogue_views: int = DEFAULT_VIEWS,
    catalog: str | None = None,
) -> ReindexReport:
    """``workers``: actors (default: the cluster's CPUs / ``threads_per_worker``), each reserving
    ``threads_per_worker`` CPUs for its LiteRT threads. ``address``/``num_cpus``: ``connect``. Raises
    ``RayUnavailable`` when the job fails; what was written stays, and a run again resumes."""
    started_ray = connect(address, num_cpus)
    import ray

    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        if workers is None:
            cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
            workers = max(1, int(cpus) // threads_per_worker)
        root = Path(data_dir).resolve()  # the workers' working directory is not the driver's
        model = [ray.put(model_files(artifact))]  # once in the object store, for every actor
        store = open_catalog(root, catalog)
        report = ReindexReport(model_version=artifact.version)
        started = time.perf_counter()
        try:
            report.total = len(store.images_missing_vectors(artifact.version))
            for todo in pending_rounds(store, artifact.version, report.failed):
                blocks = math.ceil(len(todo) / batch_size)  # a block a batch: spread evenly, written as they come
                items = [{"image_id": i, "digest": d} for i, d in todo]
                args = (model, artifact.version, str(root), catalog, catalogue_views, threads_per_worker)
                dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
                    EmbedReferences,
                    fn_constructor_args=args,
                    batch_size=batch_size,
                    batch_format="numpy",
                    compute=ray.data.ActorPoolStrategy(size=min(workers, blocks)),
                    num_cpus=threads_per_worker,
                )
                for block in _batches(dataset):
                    _store_block(store, report, block, artifact.embedding_dim, progress)
        except BaseException:
            store.close()
            raise
        for worker, (images, busy) in sorted(report.workers.items()):
            logger.info("worker %s: %d images in %.1f s busy (%.1f img/s)", worker, images, busy, images / busy)
        return finish(root, store, report, artifact.embedding_dim, started, index_kind, prune, catalog)
    finally:
        if started_ray:
            ray.shutdown()


def _batches(dataset: Any) -> Iterator[dict[str, np.ndarray]]:
    """The dataset's output blocks as they come; a failed Ray job as ``RayUnavailable``."""
    from ray.exceptions import RayError

    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except RayError as exc:  # its text is the worker's traceback: the last line says what went wrong
        logger.debug("the Ray job failed", exc_info=True)
        last = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        raise RayUnavailable(f"the Ray job failed: {last[-1]}") from exc


def _store_block(
    store: CatalogBase, report: ReindexReport, block: dict[str, np.ndarray], dim: int, progress: Progress | None
) -> None:
    ids: list[int] = []
    rows: list[np.ndarray] = []
    failures: dict[int, str] = {}
    for image_id, data, why, worker, busy in zip(
        block["image_id"], block["vectors"], block["error"], block["worker"], block["busy_s"]
    ):
        images, seconds = report.workers.get(str(worker), (0, 0.0))
        report.workers[str(worker)] = (images + 1, seconds + float(busy))
        if why:
            failures[int(image_id)] = str(why)
        else:
            ids.append(int(image_id))
            rows.append(np.frombuffer(data, dtype=np.float32).reshape(-1, dim))
    store_vectors(store, report, ids, rows, failures, progress)
