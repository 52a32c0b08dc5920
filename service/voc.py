"""``skulens enrol --voc DIR``: LabelImg (Pascal VOC XML) annotations → one reference image per box.

Each ``*.xml`` of ``DIR`` names its image (``<filename>``, looked up beside the XML; else an image of
the XML's stem) and its boxes (``<object><name>LABEL</name><bndbox>xmin ymin xmax ymax</bndbox>``,
in the stored image's pixels: LabelImg shows images without applying EXIF orientation, so neither
does this). A box's label is its SKU id, or what ``--label-map`` (CSV ``label,sku``) maps it to; with
a map, a label not in it is skipped (with the reason), never taken as a SKU id of its own.
Every box becomes a ``VocCrop``: its bytes (a JPEG of the box, deterministic, so that re-running the
import finds the same content and stores nothing twice) are made when the enrolment reads it.
Anything that cannot be used is skipped with the reason, never the end of the run.
"""

from __future__ import annotations

import csv
import io
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from embedder.preprocess import IMAGE_SUFFIXES, open_image
from gallery.types import InvalidSku, validate_sku

logger = logging.getLogger(__name__)

MIN_SIDE = 8  # px: a smaller box is a slip of the mouse, not a product
JPEG_QUALITY = 95


@dataclass(frozen=True)
class VocCrop:
    """One annotated box: read_bytes() crops it out of its image (like ``Path.read_bytes``)."""

    image: Path
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive), clipped to the image
    label: str
    max_pixels: int = 40_000_000

    def read_bytes(self) -> bytes:
        with open_image(self.image.read_bytes(), self.max_pixels) as image:
            crop = image.convert("RGB").crop(self.box)
        buffer = io.BytesIO()
        crop.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        return buffer.getvalue()

    def __str__(self) -> str:
        return f"{self.image} box {list(self.box)} ({self.label})"


def read_label_map(path: str | Path) -> dict[str, str]:
    """CSV with columns ``label,sku``."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"label", "sku"} <= set(reader.fieldnames):
            raise SystemExit(
                f"enrol: --label-map {str(path)!r} needs the columns label,sku; it has {reader.fieldnames}"
            )
        return {row["label"].strip(): row["sku"].strip() for row in reader if row.get("label") and row.get("sku")}


def _image_of(xml_path: Path, root: ET.Element) -> Path | None:
    name = (root.findtext("filename") or "").strip()
    if name and (xml_path.parent / Path(name).name).is_file():
        return xml_path.parent / Path(name).name
    for suffix in IMAGE_SUFFIXES:
        for candidate in (xml_path.with_suffix(suffix), xml_path.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def _box(obj: ET.Element, width: int, height: int) -> tuple[int, int, int, int] | str:
    """The box clipped to the image, or why it cannot be used."""
    node = obj.find("bndbox")
    try:
        x0, y0, x1, y1 = (round(float(node.findtext(k) or "")) for k in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        return "no <bndbox> with numeric xmin, ymin, xmax, ymax"
    box = (max(0, x0), max(0, y0), min(width, x1), min(height, y1))
    if box[2] - box[0] < MIN_SIDE or box[3] - box[1] < MIN_SIDE:
        return f"box {[x0, y0, x1, y1]} is smaller than {MIN_SIDE} px inside the {width}x{height} image"
    return box


def plan_voc(
    folder: str | Path, label_map: dict[str, str] | None = None, max_pixels: int = 40_000_000
) -> tuple[dict[str, list[VocCrop]], list[tuple[str, str]]]:
    """SKU → its boxes to enrol, and (what, why) for everything skipped."""
    root_dir = Path(folder)
    if not root_dir.is_dir():
        raise SystemExit(
            f"enrol: --voc {str(folder)!r} is not a folder (expected LabelImg .xml files and their images)"
        )
    crops: dict[str, list[VocCrop]] = {}
    skipped: list[tuple[str, str]] = []
    xml_files = sorted(root_dir.glob("*.xml"))
    if not xml_files:
        skipped.append((str(root_dir), "no .xml annotation files in it"))
    for xml_path in xml_files:
        try:
            root = ET.parse(xml_path).getroot()
        except (ET.ParseError, OSError) as exc:
            skipped.append((str(xml_path), f"not a readable XML file: {exc}"))
            continue
        image = _image_of(xml_path, root)
        if image is None:
            skipped.append((str(xml_path), f"its image {root.findtext('filename')!r} is not beside it"))
            continue
        try:
            with open_image(image.read_bytes(), max_pixels) as opened:
                width, height = opened.size
        except (OSError, ValueError) as exc:
            skipped.append((str(image), str(exc)))
            continue
        for number, obj in enumerate(root.findall("object"), start=1):
            label = (obj.findtext("name") or "").strip()
            what = f"{xml_path.name} object {number} ({label or 'no label'})"
            if label_map is not None and label not in label_map:  # the map lists what to import
                why = f"label {label!r} is not in the label map (--label-map): add a line '{label},SKU-ID' to import it"
                skipped.append((what, why))
                continue
            sku = label_map[label] if label_map is not None else label
            try:
                validate_sku(sku)
            except InvalidSku as exc:
                mapped = "" if sku == label else f" (label {label!r} mapped to {sku!r})"
                skipped.append((what, f"{exc}{mapped}; map labels to SKU ids with --label-map"))
                continue
            box = _box(obj, width, height)
            if isinstance(box, str):
                skipped.append((what, box))
                continue
            crops.setdefault(sku, []).append(VocCrop(image, box, label, max_pixels))
    return crops, skipped
