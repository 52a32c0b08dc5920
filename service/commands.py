"""What the ``skulens`` subcommands do (argument parsing is in ``service/cli.py``)."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.cli import settings_from

logger = logging.getLogger("skulens")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.auth import check_bind_policy

    settings = settings_from(args)
    check_bind_policy(settings.host, settings.api_keys_file is not None, settings.insecure)
    # Workers re-read the settings from the environment (uvicorn factory): pass the flags on.
    for name, value in settings.model_dump(exclude_unset=True).items():
        os.environ[f"SKULENS_{name.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
    uvicorn.run("service.app:app_from_env", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_level=settings.log_level, access_log=False)
    return 0


def _open(args: argparse.Namespace):
    from embedder.runtime import load_embedder
    from gallery.gallery import Gallery
    from service.model_source import resolve_model

    settings = settings_from(args)
    artifact = resolve_model(settings.model, settings.data_dir)
    embedder = load_embedder(artifact, num_threads=settings.num_threads)
    gallery = Gallery(settings.data_dir, embedder.version, embedder.embedding_dim, settings.index_kind,
                      search_threads=settings.search_threads)
    return settings, artifact, embedder, gallery


@dataclass
class EnrolPlan:
    """What to enrol: SKU → image paths, names, and what was skipped and why."""

    images: dict[str, list[Path]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)


def plan_enrolment(folder: str | None, csv_path: str | None, names_csv: str | None) -> EnrolPlan:
    from gallery.types import InvalidSku, validate_sku

    plan = EnrolPlan()

    def add(sku: str, path: Path) -> None:
        try:
            validate_sku(sku)
        except InvalidSku as exc:
            plan.skipped.append((str(path), str(exc)))
            return
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            plan.skipped.append((str(path), f"not an image file name (suffix {path.suffix!r})"))
        elif not path.is_file():
            plan.skipped.append((str(path), "file does not exist"))
        else:
            plan.images.setdefault(sku, []).append(path)

    if folder:
        root = Path(folder)
        if not root.is_dir():
            raise SystemExit(f"enrol: {folder!r} is not a folder (expected one sub-folder of images per SKU)")
        for sku_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for path in sorted(sku_dir.iterdir()):
                add(sku_dir.name, path)
    if csv_path:
        base = Path(csv_path).parent
        with open(csv_path, newline="") as handle:
            for row in csv.DictReader(handle):
                sku = (row.get("sku") or "").strip()
                if row.get("name"):
                    plan.names[sku] = row["name"].strip()
                if row.get("price"):
                    try:
                        plan.prices[sku] = float(row["price"])
                    except ValueError:
                        plan.skipped.append((f"{csv_path}: price of {sku}", f"not a number: {row['price']!r}"))
                if row.get("image_path"):
                    path = Path(row["image_path"].strip())
                    add(sku, path if path.is_absolute() else base / path)
    if names_csv:
        with open(names_csv, newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("sku") and row.get("name"):
                    plan.names.setdefault(row["sku"].strip(), row["name"].strip())
    return plan


def enrol(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from embedder.preprocess import ImageError, decode_image
    from gallery.gallery import ImageUpload
    from service.uploads import FORMAT_MEDIA_TYPES

    if not args.folder and not args.csv:
        raise SystemExit("enrol: give a folder (one sub-folder per SKU) and/or --csv FILE")
    plan = plan_enrolment(args.folder, args.csv, args.names)
    settings, _, embedder, gallery = _open(args)
    gallery.check_model()
    enrolled = Counter()
    total = sum(len(v) for v in plan.images.values())
    with tqdm(total=total, unit="img", desc="enrolling") as bar:
        for sku, paths in plan.images.items():
            if sku in plan.names or sku in plan.prices:
                gallery.put_sku(sku, plan.names.get(sku, sku), plan.prices.get(sku))
            for start in range(0, len(paths), args.batch_size):
                uploads, pixels = [], []
                for path in paths[start:start + args.batch_size]:
                    data = path.read_bytes()
                    try:
                        decoded = decode_image(data, embedder.input_size, settings.max_pixels)
                    except ImageError as exc:
                        plan.skipped.append((str(path), str(exc)))
                        continue
                    pixels.append(decoded.pixels)
                    uploads.append(ImageUpload(data, FORMAT_MEDIA_TYPES.get(decoded.format, "application/octet-stream"),
                                               decoded.width, decoded.height))
                if uploads:
                    gallery.enrol(sku, uploads, embedder.embed(np.stack(pixels)), name=plan.names.get(sku))
                    enrolled[sku] += len(uploads)
                bar.update(len(paths[start:start + args.batch_size]))
    gallery.close(snapshot=True)
    print(f"enrolled {sum(enrolled.values())} images of {len(enrolled)} SKUs into {settings.data_dir}")
    if plan.skipped:
        print(f"skipped {len(plan.skipped)}:")
        for what, why in plan.skipped:
            print(f"  {what}: {why}")
    return 0


def recognize(args: argparse.Namespace) -> int:
    from embedder.preprocess import ImageError, load_image
    from embedder.tta import flip_average, with_mirrored

    settings, artifact, embedder, gallery = _open(args)
    threshold = args.threshold if args.threshold is not None else gallery.threshold(
        artifact.threshold if artifact.threshold is not None else 0.5)
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
        result = gallery.recognize(vectors, threshold, args.top_k)[0]
        rows.append({"image": name, "sku": result.sku, "decision": "known" if result.known else "unknown",
                     "score": round(result.score, 4),
                     "matches": [{"sku": m.sku, "name": m.name, "score": round(m.score, 4)} for m in result.matches]})
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
                print(f"{row['image'][-40:]:40} {row['decision']:8} {str(row['sku'] or '-'):30} {row['score']:.4f}")
    return 1 if failures else 0


def reindex(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from embedder.runtime import load_embedder
    from gallery.reindex import reindex as run_reindex
    from service.model_source import resolve_model

    settings = settings_from(args)
    embedder = load_embedder(resolve_model(settings.model, settings.data_dir), num_threads=settings.num_threads)
    with tqdm(unit="img", desc=f"re-embedding with {embedder.version}") as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        report = run_reindex(settings.data_dir, embedder, batch_size=args.batch_size,
                             index_kind=settings.index_kind, prune=args.prune, progress=progress)
    print(f"re-embedded {report.embedded} images with model {report.model_version} in {report.seconds:.1f} s "
          f"({report.images_per_second:.1f} img/s)" + (f"; pruned {report.pruned} old vectors" if args.prune else "")
          + (f"; removed {report.swept} unreferenced image files" if report.swept else ""))
    if report.failed:
        print(f"{len(report.failed)} images could not be re-embedded; the index was NOT switched:")
        for image_id, why in report.failed.items():
            print(f"  image {image_id}: {why}")
        return 1
    return 0


def info(args: argparse.Namespace) -> int:
    settings, artifact, embedder, gallery = _open(args)
    skus, images = gallery.counts()
    data = {"data_dir": str(settings.data_dir), "model": str(artifact.path), "model_version": artifact.version,
            "backbone": artifact.backbone, "trained": artifact.trained, "precision": artifact.precision,
            "input_size": artifact.input_size, "embedding_dim": artifact.embedding_dim, "skus": skus,
            "reference_images": images, "index_kind": settings.index_kind, "index_vectors": gallery.size,
            "vectors_by_model": gallery.store.model_versions(),
            "threshold": gallery.threshold(artifact.threshold if artifact.threshold is not None else 0.5)}
    gallery.close(snapshot=False)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            print(f"{key:18} {value}")
    return 0
