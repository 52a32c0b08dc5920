"""The ``skulens`` command line: serve, enrol, recognize, reindex, info (+ training commands)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.settings import Settings

logger = logging.getLogger("skulens")

# Modules that add subcommands: each has ``register(subparsers)``; skipped if its imports fail.
PLUGINS = ("training.cli_train", "evaluation.cli")


def _settings_args(parser: argparse.ArgumentParser, serve: bool = False) -> None:
    parser.add_argument("--data-dir", help="data directory (SKULENS_DATA_DIR; default ./skulens-data)")
    parser.add_argument(
        "--catalog",
        help="postgresql://... for a catalogue shared by replicas (SKULENS_CATALOG; "
        "default: SQLite in the data directory)",
    )
    parser.add_argument(
        "--model",
        help="model folder, or a shipped model: float32 (default) or int8_float_head (SKULENS_MODEL)",
    )
    parser.add_argument("--index-kind", choices=["flat", "hnsw"], help="SKULENS_INDEX_KIND (default flat)")
    parser.add_argument("--threads", type=int, dest="num_threads", help="inference threads (SKULENS_NUM_THREADS)")
    if serve:
        parser.add_argument("--host", help="address to bind (SKULENS_HOST; default 127.0.0.1)")
        parser.add_argument("--port", type=int, help="port (SKULENS_PORT; default 8000)")
        parser.add_argument("--workers", type=int, help="worker processes (SKULENS_WORKERS; default 1)")
        parser.add_argument("--api-keys", dest="api_keys_file", help="file of 'role key' lines (SKULENS_API_KEYS_FILE)")
        parser.add_argument(
            "--insecure",
            action="store_true",
            default=None,
            help="allow a non-loopback address without API keys (SKULENS_INSECURE)",
        )
        parser.add_argument("--threshold", type=float, help="open-set threshold (SKULENS_THRESHOLD)")
        parser.add_argument(
            "--tta-flip",
            dest="tta_flip",
            action="store_true",
            default=None,
            help="recognise each crop and its mirror image, averaged (SKULENS_TTA_FLIP)",
        )


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    from service.settings import Settings

    fields = set(Settings.model_fields)
    overrides = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    return Settings(**overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skulens", description="Product (SKU) recognition for retail checkout.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the HTTP API (uvicorn)")
    _settings_args(p, serve=True)
    p.set_defaults(func="service.commands:serve")

    for name in ("enrol", "enroll"):
        p = sub.add_parser(name, help="bulk-enrol reference images from a folder per SKU and/or a CSV")
        _settings_args(p)
        p.add_argument("folder", nargs="?", help="folder with one sub-folder of images per SKU")
        p.add_argument("--csv", help="CSV with columns sku,name,price,image_path (paths relative to the CSV)")
        p.add_argument("--names", help="CSV sku,name[,...] giving names for the folder's SKUs")
        p.add_argument(
            "--voc",
            metavar="DIR",
            help="LabelImg (Pascal VOC) .xml files and their images: every box "
            "is enrolled under the SKU its label names",
        )
        p.add_argument("--label-map", metavar="CSV", help="with --voc: CSV label,sku mapping box labels to SKU ids")
        p.add_argument("--batch-size", type=int, default=32)
        p.set_defaults(func="service.commands:enrol")

    for name in ("recognize", "recognise"):
        p = sub.add_parser(name, help="recognise image files against the gallery")
        _settings_args(p)
        p.add_argument("images", nargs="+", help="image files")
        p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
        p.add_argument("--top-k", type=int, dest="top_k", help="matches shown per image (SKULENS_TOP_K; default 5)")
        p.add_argument(
            "--threshold",
            type=float,
            help="open-set threshold (SKULENS_THRESHOLD; default: stored, else the model's calibrated value)",
        )
        p.add_argument(
            "--tta-flip",
            dest="tta_flip",
            action="store_true",
            default=None,
            help="also embed each image mirrored and average (SKULENS_TTA_FLIP)",
        )
        p.set_defaults(func="service.commands:recognize")

    p = sub.add_parser("reindex", help="re-embed every stored reference image with the model; build its index")
    _settings_args(p)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--prune", action="store_true", help="then delete vectors of every other model")
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="embed on Ray (the ray extra; docs/deployment.md): the cluster at ADDRESS (HOST:6379, "
        "ray://HOST:10001 or auto), without ADDRESS a local Ray; --threads: LiteRT threads per actor (default 1)",
    )
    p.add_argument("--ray-cpus", type=int, help="with --ray and no ADDRESS: CPUs of the local Ray (default: all)")
    p.add_argument(
        "--ray-workers", type=int, help="with --ray: embedding actors (default: the cluster's CPUs / threads)"
    )
    p.set_defaults(func="service.commands:reindex")

    p = sub.add_parser("skus", help="list or search the catalogue (reads the catalogue only; no model needed)")
    p.add_argument("--data-dir", help="data directory (SKULENS_DATA_DIR; default ./skulens-data)")
    p.add_argument("--catalog", help="postgresql://... (SKULENS_CATALOG; default: SQLite in the data directory)")
    p.add_argument("--search", metavar="TEXT", help="only SKUs whose id or name contains TEXT (any case)")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="print one JSON page instead of a table")
    p.set_defaults(func="service.commands:skus")

    p = sub.add_parser("info", help="model, gallery size and data directory")
    _settings_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="service.commands:info")

    for module in PLUGINS:
        try:
            importlib.import_module(module).register(sub)
        except ImportError as exc:
            logger.debug("commands of %s unavailable: %s", module, exc)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    func = args.func
    if isinstance(func, str):  # "module:function", imported only when that command runs
        module_name, func_name = func.split(":")
        func = getattr(importlib.import_module(module_name), func_name)
    from pydantic import ValidationError

    from gallery.types import GalleryError
    from service.startup import EXIT_STATUS, StartupError

    try:
        return int(func(args) or 0)
    except (StartupError, GalleryError) as exc:  # one clear line, no traceback (a gallery error says what to do)
        print(f"skulens: {exc}", file=sys.stderr)
        return EXIT_STATUS
    except ValidationError as exc:  # a setting from a flag or a SKULENS_* variable
        wrong = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (received {e.get('input')!r})" for e in exc.errors()
        )
        print(f"skulens: invalid setting: {wrong}", file=sys.stderr)
        return EXIT_STATUS


if __name__ == "__main__":
    sys.exit(main())
