"""What the ``skulens`` subcommands do (argument parsing is in ``service/cli.py``)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from service.bulk_enrolment import EnrolPlan, plan_enrolment  # noqa: F401 (re-exported)
from service.cli import settings_from

if TYPE_CHECKING:
    from embedder.artifact import ModelArtifact
    from embedder.runtime import Embedder
    from gallery.gallery import Gallery
    from service.settings import Settings

# what ``_open`` answers: the settings, the model's artifact, its loaded embedder, the gallery
Opened: TypeAlias = "tuple[Settings, ModelArtifact, Embedder, Gallery]"

logger = logging.getLogger("skulens")


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.startup import preflight

    settings = settings_from(args)
    preflight(settings)  # key file, bind policy, data directory, model: one clear line each, before workers start
    if settings.workers > 1:  # every worker writes its metrics there; a scrape of any one adds them up
        from service.metrics import prepare_multiprocess_dir

        prepare_multiprocess_dir(settings.data_dir, settings.port)
    # Workers re-read the settings from the environment (uvicorn factory): pass the flags on.
    for name, value in settings.model_dump(exclude_unset=True).items():
        os.environ[f"SKULENS_{name.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
    uvicorn.run(
        "service.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,
    )
    return 0


def _open(args: argparse.Namespace) -> Opened:
    from embedder.runtime import load_embedder
    from service.gallery_factory import open_gallery
    from service.startup import check_catalogue, check_model

    settings = settings_from(args)
    check_catalogue(settings)
    artifact = check_model(settings)
    embedder = load_embedder(artifact, num_threads=settings.num_threads)
    gallery = open_gallery(
        settings,
        embedder.version,
        embedder.embedding_dim,
        lookalike_beta=artifact.lookalike_beta,
        runner_up_gamma=artifact.runner_up_gamma,
    )
    return settings, artifact, embedder, gallery


def enrol(args: argparse.Namespace) -> int:
    from service.bulk_enrolment import run_bulk_enrolment

    if not args.folder and not args.csv and not args.voc:
        raise SystemExit("enrol: give a folder (one sub-folder per SKU), --csv FILE and/or --voc DIR")
    if args.label_map and not args.voc:
        raise SystemExit("enrol: --label-map goes with --voc DIR")
    return run_bulk_enrolment(args, _open(args))


def recognize(args: argparse.Namespace) -> int:
    from embedder.preprocess import ImageError, load_image
    from embedder.tta import flip_average, with_mirrored
    from gallery.decision import resolve_threshold

    settings, artifact, embedder, gallery = _open(args)
    threshold = resolve_threshold(settings.threshold, gallery.stored_threshold, artifact.threshold)
    rows, failures = [], 0
    for name in args.images:
        try:
            pixels = load_image(Path(name).read_bytes(), embedder.input_size, settings.max_pixels)
        except (OSError, ImageError) as exc:
            failures += 1
            rows.append({"image": name, "error": str(exc)})
            continue
        batch = pixels[None]
        vectors = flip_average(embedder.embed(with_mirrored(batch))) if settings.tta_flip else embedder.embed(batch)
        result = gallery.recognize(vectors, threshold, settings.top_k)[0]
        rows.append(
            {
                "image": name,
                "sku": result.sku,
                "decision": "known" if result.known else "unknown",
                "score": round(result.score, 4),
                "similarity": round(result.similarity, 4),
                "matches": [{"sku": m.sku, "name": m.name, "score": round(m.score, 4)} for m in result.matches],
            }
        )
    gallery.close(snapshot=False)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(f"{'image':40} {'decision':8} {'sku':30} score   (threshold {threshold:.3f})")
        for row in rows:
            if "error" in row:
                print(f"{row['image'][-40:]:40} ERROR    {row['error']}")
            else:
                print(f"{row['image'][-40:]:40} {row['decision']:8} {row['sku'] or '-'!s:30} {row['score']:.4f}")
    return 1 if failures else 0


def reindex(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from service.startup import check_data_dir, check_model

    settings = settings_from(args)
    check_data_dir(settings.data_dir)
    artifact = check_model(settings)
    with tqdm(unit="img", desc=f"re-embedding with {artifact.version}") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        if getattr(args, "ray", None) is None:
            from embedder.runtime import load_embedder
            from gallery.reindex import reindex as run_reindex

            embedder = load_embedder(artifact, num_threads=settings.num_threads)
            report = run_reindex(
                settings.data_dir,
                embedder,
                batch_size=args.batch_size,
                index_kind=settings.index_kind,
                prune=args.prune,
                progress=progress,
                catalogue_views=settings.catalogue_views,
                catalog=settings.catalog,
            )
        else:
            from gallery.reindex_ray import RayUnavailable, reindex_on_ray

            try:
                report = reindex_on_ray(
                    settings.data_dir,
                    artifact,
                    address=args.ray or None,
                    num_cpus=args.ray_cpus,
                    workers=args.ray_workers,
                    threads_per_worker=args.num_threads or 1,
                    batch_size=args.batch_size,
                    index_kind=settings.index_kind,
                    prune=args.prune,
                    progress=progress,
                    catalogue_views=settings.catalogue_views,
                    catalog=settings.catalog,
                )
            except RayUnavailable as exc:
                print(f"skulens: {exc}", file=sys.stderr)
                return 1
    print(
        f"re-embedded {report.embedded} images with model {report.model_version} in {report.seconds:.1f} s "
        f"({report.images_per_second:.1f} img/s)"
        + (f" on {len(report.workers)} Ray workers" if report.workers else "")
        + (f"; pruned {report.pruned} old vectors" if args.prune else "")
        + (f"; removed {report.swept} unreferenced image files" if report.swept else "")
    )
    if report.failed:
        print(f"{len(report.failed)} images could not be re-embedded; the index was NOT switched:")
        for image_id, why in report.failed.items():
            print(f"  image {image_id}: {why}")
        return 1
    return 0


def info(args: argparse.Namespace) -> int:
    from gallery.decision import resolve_threshold

    settings, artifact, _embedder, gallery = _open(args)
    skus, images = gallery.counts()
    rows, indexed = gallery.index_size()
    data = {
        "data_dir": str(settings.data_dir),
        "catalog": gallery.catalog,
        "model": str(artifact.path),
        "model_version": artifact.version,
        "backbone": artifact.backbone,
        "trained": artifact.trained,
        "precision": artifact.precision,
        "input_size": artifact.input_size,
        "embedding_dim": artifact.embedding_dim,
        "skus": skus,
        "reference_images": images,
        "index_kind": settings.index_kind,
        "index_vectors": rows,
        "index_images": indexed,
        "vectors_by_model": gallery.store.model_versions(),
        "threshold": resolve_threshold(settings.threshold, gallery.stored_threshold, artifact.threshold),
        "decision_score": gallery.open_set_score.label,
    }
    gallery.close(snapshot=False)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            print(f"{key:18} {value}")
    return 0


def skus(args: argparse.Namespace) -> int:
    """List or search the catalogue, a page at a time, prices as decimal strings."""
    from gallery.money import format_minor
    from gallery.stores.base import CatalogUnreachable
    from gallery.stores.open import DB_FILE, CatalogUnavailable, open_catalog
    from gallery.types import CurrencyMismatch, SchemaTooNew
    from service.startup import StartupError

    settings = settings_from(args)
    if not (args.offset >= 0 and 1 <= args.limit <= 500):
        raise StartupError(f"--offset must be >= 0 and --limit 1-500, received {args.offset} and {args.limit}")
    if args.search is not None and not 1 <= len(args.search) <= 100:
        raise StartupError(f"--search takes 1-100 characters, received {len(args.search)}")
    path = Path(settings.data_dir) / DB_FILE
    if not settings.catalog and not path.exists():
        raise StartupError(f"no catalogue at {str(path)!r}: give --data-dir (or SKULENS_DATA_DIR)")
    try:
        store = open_catalog(settings.data_dir, settings.catalog, settings.currency)
    except (CurrencyMismatch, SchemaTooNew, CatalogUnavailable, CatalogUnreachable) as exc:
        raise StartupError(str(exc)) from None
    try:
        page = (
            store.search_skus(args.search, args.offset, args.limit)
            if args.search
            else store.list_skus(args.offset, args.limit)
        )
        money = store.currency
    finally:
        store.close()
    rows = [
        {
            "sku": s.sku,
            "name": s.name,
            "price": None if s.price_minor is None else format_minor(s.price_minor, money),
            "currency": money.code,
            "image_count": count,
        }
        for s, count in page.items
    ]
    if args.json:
        print(json.dumps({"items": rows, "total": page.total, "offset": page.offset, "limit": page.limit}))
        return 0
    print(f"{'sku':32} {'price':>12} images name")
    for row in rows:
        price = f"{row['price']} {row['currency']}" if row["price"] is not None else "-"
        print(f"{row['sku']:32} {price:>12} {row['image_count']:>6} {row['name']}")
    shown = f"{page.offset + 1}-{page.offset + len(rows)}" if rows else "none"
    print(f"({shown} of {page.total}{' matching ' + repr(args.search) if args.search else ''})")
    return 0
