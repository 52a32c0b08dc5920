"""``skulens train`` and ``skulens export``: registered into the ``skulens`` parser by service/cli.py."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedder.export import CALIBRATED, PRECISIONS

if TYPE_CHECKING:
    import keras

    from embedder.artifact import ModelArtifact
    from training.config import TrainConfig

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the embedder (stage 1: head on cached features; stage 2: top blocks)",
        description="Train with batch-hard triplet loss. Settings: --config FILE (JSON), then flags override it.",
    )
    p.add_argument("--config", help="JSON config file (see training/configs/shipped.json)")
    p.add_argument("--out", default="runs/train", help="output folder (default runs/train)")
    p.add_argument("--stage", choices=["1", "2", "all"], default="all", help="what to run (default all)")
    p.add_argument("--resume", action="store_true", help="continue from the last epoch checkpoint in --out")
    p.add_argument("--backbone", help="mobilenet_v3_large (default) | mobilenet_v3_small | mobilenet_v2")
    p.add_argument(
        "--weights",
        help="imagenet | none | PATH to a no-top .weights.h5 (default: $SKULENS_BACKBONE_WEIGHTS, else imagenet)",
    )
    p.add_argument(
        "--data-dir",
        dest="data_dir",
        help="folder with train/ and val/ (default $SKULENS_GROCERY_DIR or ../shared/data/grocery)",
    )
    p.add_argument("--input-size", dest="input_size", type=int)
    p.add_argument("--embedding-dim", dest="embedding_dim", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--cache-dir", dest="cache_dir", help="decoded-pixel and feature caches (default runs/cache)")
    p.add_argument("--stage1-epochs", type=int)
    p.add_argument("--stage2-epochs", type=int)
    p.add_argument("--stage2-steps", type=int, help="steps per stage-2 epoch (default: one pass over the photos)")
    p.add_argument("--unfreeze-blocks", dest="unfreeze_blocks", type=int)
    p.set_defaults(func=train_command)

    p = subparsers.add_parser(
        "folds",
        help="the fold protocol: train without each fold's SKUs, measure on them",
        description="SKU-disjoint folds (training/folds.py): for each fold, train the "
        "config's recipe without the fold's SKUs (resuming), then measure closed "
        "set, other-day shift, open set and catalogue-photo enrolment. Writes "
        "OUT/fold*/result.json, OUT/summary.json and OUT/summary.md.",
    )
    p.add_argument("--config", required=True, help="JSON training config (its held_out is replaced by each fold)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--folds",
        help="comma-separated fold numbers to run (default: all); the summary also covers the folds an earlier "
        "run of the same recipe measured in --out",
    )
    p.add_argument("--n-folds", dest="n_folds", type=int, default=4)
    p.add_argument("--fold-seed", dest="fold_seed", type=int, default=0)
    p.add_argument("--target-precision", dest="target_precision", type=float, default=0.95)
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="measure each fold's trained model exported to LiteRT at this precision (no training; "
        "writes result-<precision>.json and summary-<precision>.md)",
    )
    p.add_argument(
        "--serve-size",
        dest="serve_size",
        type=serve_size_arg,
        help="measure each fold's trained model served at this input size in px instead of its training "
        "size (no training; with or without --precision; writes result-<precision or keras>-<size>px.json)",
    )
    p.add_argument(
        "--remeasure",
        action="store_true",
        help="measure folds already measured again, from the vectors they saved (fold*/vectors-*.npz; "
        "nothing trained or embedded): their result files gain the figures the protocol added since",
    )
    p.set_defaults(func=folds_command)

    p = subparsers.add_parser("export", help="convert a trained Keras model into a skulens model folder (LiteRT)")
    p.add_argument("model", help="a model.keras written by `skulens train` (or its folder)")
    p.add_argument("--out", required=True, help="model folder to write (model.tflite + model.json)")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="int8: full-integer, activations calibrated on 300 seeded train photos of the model's "
        "training SKUs (--data-dir); int8_float_head: the same for the backbone's convolutions, with "
        "the pooling, projection, neck and L2 norm kept float32",
    )
    p.add_argument(
        "--serve-size",
        dest="serve_size",
        type=serve_size_arg,
        help="input size in px of the exported file, when it should differ from the training size (the "
        "weights are the same; measure it first with `skulens folds --serve-size`, whose results at this "
        "precision, else the Keras models' at this size, --calibration-from-folds then reads)",
    )
    p.add_argument("--threshold", type=float, help="open-set threshold to record in model.json")
    p.add_argument(
        "--calibration-from-folds",
        dest="calibration_from_folds",
        metavar="DIR",
        help="record the threshold for --target-precision calibrated on the pooled open-set scores "
        "of a `skulens folds` run of the same recipe (its never-trained SKUs are the unknown "
        "products), with the whole curve and its provenance, in model.json",
    )
    p.add_argument(
        "--target-precision",
        dest="target_precision",
        type=float,
        default=0.95,
        help="with --calibration-from-folds (default 0.95)",
    )
    p.add_argument(
        "--open-set-score",
        dest="open_set_score",
        choices=("runner_up", "lookalike", "similarity"),
        default="runner_up",
        help="with --calibration-from-folds: the decision score whose weight is fitted with the threshold "
        "(gallery.open_set_score): the best similarity less gamma x the second SKU's similarity (default; the "
        "shipped models' score), less beta x the SKU's lookalike, or the similarity alone",
    )
    p.add_argument(
        "--parity",
        action="store_true",
        help="then compare LiteRT with Keras on the grocery photos (train SKUs: train as gallery, val as "
        "queries); the numbers are recorded in model.json under export_parity",
    )
    p.add_argument("--data-dir", dest="data_dir", help="for --parity: folder with train/ and val/")
    p.set_defaults(func=export_command)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    from training.config import TrainConfig

    config = TrainConfig.load(args.config) if args.config else TrainConfig()
    overrides = {
        k: getattr(args, k)
        for k in (
            "backbone",
            "weights",
            "data_dir",
            "input_size",
            "embedding_dim",
            "seed",
            "cache_dir",
            "unfreeze_blocks",
        )
        if getattr(args, k) is not None
    }
    config = replace(config, **overrides)
    if args.stage1_epochs is not None:
        config = replace(config, stage1=replace(config.stage1, epochs=args.stage1_epochs))
    if args.stage2_epochs is not None:
        config = replace(config, stage2=replace(config.stage2, epochs=args.stage2_epochs))
    if args.stage2_steps is not None:
        config = replace(config, stage2=replace(config.stage2, steps_per_epoch=args.stage2_steps))
    return config


def train_command(args: argparse.Namespace) -> int:
    from training.train import run

    config = config_from_args(args)
    logger.info("training config: %s", json.dumps(config.to_dict()))
    saved = run(config, args.out, stage=args.stage, resume=args.resume)
    for stage, path in saved.items():
        logger.info("%s model: %s", stage, path)
    return 0


def serve_size_arg(text: str) -> int:
    """``--serve-size``: an input size in px of at least 32 (the backbone's stride)."""
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an input size in px, got {text!r}") from None
    if size < 32:
        raise argparse.ArgumentTypeError(f"an input size must be at least 32 px, got {size}")
    return size


def folds_command(args: argparse.Namespace) -> int:
    from training.config import TrainConfig
    from training.fold_summary import summary_markdown
    from training.folds import run_folds

    folds = None
    if args.folds:
        try:
            folds = sorted({int(f) for f in args.folds.split(",")})
        except ValueError:
            raise SystemExit(f"--folds must be comma-separated integers, got {args.folds!r}") from None
        bad = [f for f in folds if not 0 <= f < args.n_folds]
        if bad:
            raise SystemExit(f"--folds {bad} outside 0..{args.n_folds - 1}")
    try:
        summary = run_folds(
            TrainConfig.load(args.config),
            args.out,
            folds,
            args.n_folds,
            args.fold_seed,
            args.target_precision,
            args.precision,
            args.serve_size,
            args.remeasure,
        )
    except FileNotFoundError as exc:
        raise SystemExit(f"folds: {exc}") from None
    print(summary_markdown(summary))
    return 0


def export_command(args: argparse.Namespace) -> int:

    from embedder.export import export_model
    from training.train import META_FILE, load_trained_model

    path = Path(args.model)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise SystemExit(f"no Keras model at {str(args.model)!r} (expected model.keras or its folder)")
    meta_path = path.parent / META_FILE
    if not meta_path.is_file():
        raise SystemExit(f"{META_FILE} missing next to {path}: it records the backbone and weights origin")
    meta = json.loads(meta_path.read_text())
    serve_size = None if args.serve_size == meta["input_size"] else args.serve_size
    size = meta["input_size"] if serve_size is None else serve_size
    extra: dict[str, Any] = {}
    if serve_size is not None:
        extra["trained_input_size"] = meta["input_size"]
    if meta.get("members"):  # a joined ensemble (training.ensemble_model): what it is made of, on its card
        if serve_size is not None:
            raise SystemExit(
                f"export: an ensemble cannot be re-sized (--serve-size {serve_size}, trained at {meta['input_size']}): "
                "join members exported at that size instead"
            )
        extra["members"] = meta["members"]
    threshold = args.threshold
    if args.calibration_from_folds:
        from evaluation.calibrate import CalibrationRefused
        from training.fold_calibration import pooled_calibration
        from training.folds import result_file, variant_tag

        try:
            folds_dir = Path(args.calibration_from_folds)
            # the fold models measured as this file will be served (precision and size) when that was run,
            # else the Keras models' results at the same size stand in; never another size's
            name = result_file(variant_tag(args.precision, serve_size))
            if not any(folds_dir.glob(f"fold*/{name}")):
                name = result_file(variant_tag(None, serve_size))
            extra["calibration"] = pooled_calibration(
                folds_dir, args.target_precision, result_name=name, score=args.open_set_score
            )
        except (CalibrationRefused, FileNotFoundError, ValueError) as exc:
            raise SystemExit(f"export: no threshold from {args.calibration_from_folds!r}: {exc}") from None
        threshold = extra["calibration"]["threshold"]
    model = load_trained_model(path, size)
    representative = None
    if args.precision in CALIBRATED:
        from training.config import TrainConfig
        from training.data import grocery_dir
        from training.fold_export import representative_pixels

        root = Path(args.data_dir) if args.data_dir else grocery_dir()
        # an ensemble's card names "a+b": TrainConfig needs one backbone it knows, and the photos do not depend on it
        backbone = (meta.get("members") or [meta])[0]["backbone"]
        representative = representative_pixels(
            TrainConfig(
                backbone=backbone,
                input_size=size,
                held_out=tuple(meta.get("held_out_skus") or ()),
            ),
            root,
        )
    artifact = export_model(
        model,
        args.out,
        backbone=meta["backbone"],
        input_size=size,
        embedding_dim=meta["embedding_dim"],
        weights_origin=meta["weights_origin"],
        trained=meta["trained"],
        precision=args.precision,
        threshold=threshold,
        stage=meta.get("stage"),
        val_recall_at_1=meta.get("val_recall_at_1"),
        held_out_skus=meta.get("held_out_skus"),
        representative=representative,
        **extra,
    )
    logger.info("wrote %s (%s, version %s)", args.out, args.precision, artifact.version)
    if args.parity:
        result = parity_command(model, artifact, meta, args.data_dir)
        print(json.dumps(result, indent=2))
    return 0


def parity_command(
    model: keras.Model, artifact: ModelArtifact, meta: dict[str, Any], data_dir: str | None
) -> dict[str, Any]:
    """Run ``training.parity.export_parity`` on the grocery photos and record it in the model folder's card."""
    from dataclasses import asdict

    from embedder.artifact import write_artifact
    from embedder.runtime import KerasEmbedder, LiteRTEmbedder
    from training.data import cached_pixels, grocery_dir, list_image_folder
    from training.parity import export_parity

    root = Path(data_dir) if data_dir else grocery_dir()
    held_out = meta.get("held_out_skus") or []
    train = list_image_folder(root / "train", exclude=held_out)
    val = list_image_folder(root / "val", class_names=train.class_names)
    size = artifact.input_size
    result = export_parity(
        KerasEmbedder(model),
        LiteRTEmbedder(artifact),
        cached_pixels(train, size, "runs/cache"),
        train.labels,
        cached_pixels(val, size, "runs/cache"),
        val.labels,
    )
    card = asdict(artifact)
    path, extra = card.pop("path"), card.pop("extra")
    card.pop("version")
    write_artifact(path, artifact.tflite_path.read_bytes(), **card, extra={**extra, "export_parity": result})
    return result
