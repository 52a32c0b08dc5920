"""Benchmark 5: re-index throughput (img/s) over real photos with ``gallery.reindex.reindex``.

A gallery is filled with ``--photos`` grocery train photos embedded by model A (the
random-weights MobileNetV3Large fp32 export); ``reindex`` then re-embeds every stored
photo with model B (the shipped model when present, else the fp16 export of the same
network: another version) at its defaults (batch 64, 2 decode threads) and builds B's
index. To show where the time goes, the same photos are also decoded alone (2 threads)
and embedded alone (B, batch 64), and the rate a decode/inference overlap could reach at
best (the slower of the two) is printed beside the measured one. Model B's interpreters
are created before the clock starts (a one-off cost per process, printed on its own row).

    .venv/bin/python -m bench.reindex [--photos 500]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embedder.runtime import Embedder

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Run, photos, shipped_model_dir, skip_without_grocery, table, v3large_export


def fill_gallery(data_dir: Path, items: list[tuple[str, Path]], model: Embedder, catalog: str | None = None) -> float:
    """Enrol ``items`` (SKU, photo) into a new gallery of ``model`` at ``data_dir`` (``catalog``: the setting);
    the seconds it took."""
    import numpy as np

    from embedder.preprocess import load_image
    from gallery.gallery import Gallery, ImageUpload

    gallery = Gallery(data_dir, model.version, model.embedding_dim, catalog=catalog)
    started = time.perf_counter()
    for i in range(0, len(items), 16):
        chunk = items[i : i + 16]
        datas = [p.read_bytes() for _, p in chunk]
        vectors = model.embed(np.stack([load_image(d, size=model.input_size) for d in datas]))
        for (sku, _), data, vector in zip(chunk, datas, vectors):
            gallery.enrol(sku, [ImageUpload(data, "image/jpeg", 348, 348)], vector[None])
    gallery.close()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=64, help="reindex batch size (its default: 64)")
    args = parser.parse_args(argv)

    import numpy as np

    from embedder.artifact import load_artifact
    from embedder.preprocess import load_image
    from embedder.runtime import LiteRTEmbedder
    from gallery.reindex import reindex

    run = Run("reindex")
    grocery = skip_without_grocery(run)
    if grocery is None:
        run.save()
        return 0
    items = photos(grocery / "train")
    step = max(1, len(items) // args.photos)
    items = items[::step][: args.photos]  # spread over the SKUs
    model_a = LiteRTEmbedder(load_artifact(v3large_export("float32")), num_threads=2)
    shipped = shipped_model_dir()
    b_dir = shipped if shipped is not None else v3large_export("float16")
    b_label = "shipped model" if shipped is not None else "MobileNetV3Large random weights, fp16 LiteRT"
    model_b = LiteRTEmbedder(load_artifact(b_dir), num_threads=2)
    run.data["settings"] = {
        "photos": len(items),
        "model_a": "MobileNetV3Large random weights, fp32 LiteRT",
        "model_b": b_label,
        "batch_size": args.batch_size,
        "decode_workers": 2,
        "photo_size": "348x348 JPEG",
    }

    work = Path(tempfile.mkdtemp(prefix="skulens-bench-reindex-"))
    try:
        fill_s = fill_gallery(work / "data", items, model_a)
        print(f"  gallery filled with {len(items)} photos (model A) in {fill_s:.1f} s", flush=True)

        # a re-index job pays once per process for one LiteRT interpreter per chunk size
        # (XNNPACK packs the weights for each); measured apart, so that the img/s below
        # is the rate a long job runs at and not diluted by a fixed cost over 500 photos
        started = time.perf_counter()
        sizes = sorted(
            {s for n in (args.batch_size, len(items) % args.batch_size) if n for s in model_b.chunk_sizes(n)}
        )
        for size in sizes:
            model_b.embed(np.zeros((size, model_b.input_size, model_b.input_size, 3), np.float32))
        warm_s = time.perf_counter() - started
        print(f"  model B warm-up (interpreters for chunk sizes {sizes}): {warm_s:.2f} s", flush=True)

        started = time.perf_counter()
        report = reindex(work / "data", model_b, batch_size=args.batch_size)
        wall = time.perf_counter() - started
        if report.failed:
            run.note(f"{len(report.failed)} images failed to re-embed: {list(report.failed.items())[:3]}")
        print(
            f"  reindex: {report.embedded} images in {report.seconds:.2f} s "
            f"({report.images_per_second:.1f} img/s); with the index build {wall:.2f} s",
            flush=True,
        )

        # where the time goes: decode alone, embed alone (same photos, same batch size)
        datas = [p.read_bytes() for _, p in items]
        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            decoded = list(pool.map(load_image, datas))
        decode_rate = len(datas) / (time.perf_counter() - started)
        pixels = np.stack(decoded)
        model_b.embed(pixels[: args.batch_size])  # warm-up of this batch size
        started = time.perf_counter()
        for i in range(0, len(pixels), args.batch_size):
            model_b.embed(pixels[i : i + args.batch_size])
        embed_rate = len(pixels) / (time.perf_counter() - started)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    serial = 1.0 / (1.0 / decode_rate + 1.0 / embed_rate)
    rows = [
        {
            "what": "reindex (measured: next batch decoded while this one is embedded, then stored)",
            "img/s": report.images_per_second,
            "seconds": report.seconds,
            "images": report.embedded,
        },
        {
            "what": f"reindex incl. the one-off model warm-up ({warm_s:.2f} s)",
            "img/s": report.embedded / (report.seconds + warm_s),
            "seconds": report.seconds + warm_s,
            "images": report.embedded,
        },
        {
            "what": "reindex incl. building and saving the new index",
            "img/s": report.embedded / wall,
            "seconds": wall,
            "images": report.embedded,
        },
        {
            "what": "decode alone (load_image, 2 threads)",
            "img/s": decode_rate,
            "seconds": len(items) / decode_rate,
            "images": len(items),
        },
        {
            "what": f"embed alone (model B, batch {args.batch_size})",
            "img/s": embed_rate,
            "seconds": len(items) / embed_rate,
            "images": len(items),
        },
        {
            "what": "decode then embed, serial (1 / (1/decode + 1/embed))",
            "img/s": serial,
            "seconds": len(items) / serial,
            "images": len(items),
        },
        {
            "what": "ideal overlap (min of decode and embed; both compete for 2 cores)",
            "img/s": min(decode_rate, embed_rate),
            "seconds": len(items) / min(decode_rate, embed_rate),
            "images": len(items),
        },
    ]
    run.data["rows"] = rows
    run.data["fill_seconds"] = fill_s
    run.data["warm_up_seconds"] = warm_s
    print()
    print(table(rows))
    run.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
