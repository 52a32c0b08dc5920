"""``skulens enrol``: plan what to enrol from a folder per SKU and/or a CSV, then run the shared
enrolment pipeline (``service.enrolment``) SKU by SKU. A file that cannot be read or decoded is
skipped and reported, never the end of the run; metadata the input does not give is kept."""

from __future__ import annotations

import argparse
import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from embedder.preprocess import IMAGE_SUFFIXES
from gallery.money import Currency, InvalidAmount, currency, to_minor

if TYPE_CHECKING:
    from service.commands import Opened

logger = logging.getLogger("skulens")


@dataclass
class EnrolPlan:
    """What to enrol: SKU → image paths, names, and what was skipped and why."""

    images: dict[str, list[Path]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    prices: dict[str, int] = field(default_factory=dict)  # minor units of the catalogue's currency
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)


def plan_enrolment(
    folder: str | None, csv_path: str | None, names_csv: str | None, money: Currency | None = None
) -> EnrolPlan:
    """``money``: the catalogue's currency, in which the CSV's prices are read (default EUR)."""
    from gallery.types import InvalidSku, validate_sku

    money = money or currency("EUR")
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
                        plan.prices[sku] = to_minor(row["price"], money)
                    except InvalidAmount as exc:
                        plan.skipped.append((f"{csv_path}: price of {sku}", str(exc)))
                if row.get("image_path"):
                    path = Path(row["image_path"].strip())
                    add(sku, path if path.is_absolute() else base / path)
    if names_csv:
        with open(names_csv, newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("sku") and row.get("name"):
                    plan.names.setdefault(row["sku"].strip(), row["name"].strip())
    return plan


def run_bulk_enrolment(args: argparse.Namespace, opened: Opened) -> int:
    from tqdm import tqdm

    from embedder.preprocess import ImageError
    from service import enrolment

    settings, _, embedder, gallery = opened
    plan = plan_enrolment(args.folder, args.csv, args.names, gallery.currency)
    boxes = 0
    if getattr(args, "voc", None):
        from service.voc import plan_voc, read_label_map

        label_map = read_label_map(args.label_map) if args.label_map else None
        crops, skipped = plan_voc(args.voc, label_map, settings.max_pixels)
        for sku, items in crops.items():
            plan.images.setdefault(sku, []).extend(items)  # type: ignore[arg-type]
        plan.skipped.extend(skipped)
        boxes = sum(len(v) for v in crops.values())
    gallery.check_model()
    enrolled: Counter[str] = Counter()
    already = 0
    total = sum(len(v) for v in plan.images.values())
    with tqdm(total=total, unit="img", desc="enrolling") as bar:
        for sku, paths in plan.images.items():
            if sku in plan.names or sku in plan.prices:  # only what the input gives; the rest is kept
                gallery.merge_sku(sku, plan.names.get(sku), plan.prices.get(sku))
            for start in range(0, len(paths), args.batch_size):
                decoded = []
                for path in paths[start : start + args.batch_size]:  # a Path, or a VOC box (service.voc.VocCrop)
                    try:
                        decoded.append(
                            enrolment.decode_upload(path.read_bytes(), embedder.input_size, settings.max_pixels)
                        )
                    except (OSError, ImageError) as exc:
                        plan.skipped.append((str(path), getattr(exc, "strerror", None) or str(exc)))
                if decoded:
                    sorted_out = enrolment.dedup(gallery, sku, decoded)  # idempotent: a re-run stores nothing
                    already += len(decoded) - len(sorted_out.fresh)
                    if sorted_out.fresh:
                        prepared = enrolment.prepare(sorted_out.fresh, settings.catalogue_views)
                        added = enrolment.commit(
                            gallery, sku, prepared, embedder.embed(prepared.pixels), plan.names.get(sku)
                        )
                        if added.created:  # another writer may have stored some meanwhile
                            enrolled[sku] += len(added.created)
                        already += len(sorted_out.fresh) - len(added.created)
                bar.update(len(paths[start : start + args.batch_size]))
    gallery.close(snapshot=True)
    print(
        f"enrolled {sum(enrolled.values())} images of {len(enrolled)} SKUs into {settings.data_dir}"
        + (f"; {already} already there (not stored twice)" if already else "")
    )
    if getattr(args, "voc", None):
        voc_skipped = sum(1 for what, _ in plan.skipped if " object " in what or what.endswith(".xml"))
        print(f"VOC: {boxes} boxes to enrol, {voc_skipped} skipped")
    if plan.skipped:
        print(f"skipped {len(plan.skipped)}:")
        for what, why in plan.skipped:
            print(f"  {what}: {why}")
    return 0
