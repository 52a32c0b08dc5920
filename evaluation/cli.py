"""``skulens evaluate`` and ``skulens calibrate`` (registered by ``service/cli.py``)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evaluation.data import EmbeddingCache
    from service.settings import Settings

logger = logging.getLogger(__name__)


def _sku_list(value: str | None) -> set[str]:
    """``A,B,C``, ``@file`` (one per line) or ``default`` (the grocery SKUs held out of training)."""
    if not value:
        return set()
    if value == "default":
        from evaluation.data import HELD_OUT_SKUS

        return set(HELD_OUT_SKUS)
    if value.startswith("@"):
        lines = Path(value[1:]).read_text().splitlines()
        return {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    return {part.strip() for part in value.split(",") if part.strip()}


def _model_spec(value: str) -> tuple[str, Path]:
    label, sep, path = value.partition("=")
    return (label, Path(path)) if sep else (Path(value).name or value, Path(value))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=Path, help="embedding cache (default ~/.cache/skulens/embeddings)")
    p.add_argument("--no-cache", action="store_true", help="embed everything again, keep nothing")
    p.add_argument("--batch-size", type=int, default=32, help="images per inference call (default 32)")
    p.add_argument("--threads", type=int, default=2, help="LiteRT inference threads (default 2)")
    p.add_argument("--workers", type=int, default=2, help="image-decoding threads (default 2)")
    p.add_argument(
        "--target-precision",
        type=float,
        default=0.95,
        help="calibration target: precision of accepted answers, unknown products counted as wrong "
        "answers (default 0.95, the till's target)",
    )
    p.add_argument("--json-out", type=Path, help="write the results as JSON to this file")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="measure a model on a gallery folder and a query folder (one sub-folder per SKU)",
        description="Closed-set retrieval metrics with every gallery SKU enrolled; open-set metrics with the "
        "--unknown-skus removed from the gallery (and any query SKU without gallery photos); "
        "optional robustness table and HTML report. Several --model give a side-by-side table.",
    )
    p.add_argument("gallery", type=Path, help="reference photos: GALLERY/<SKU>/*.jpg")
    p.add_argument("queries", type=Path, help="query photos: QUERIES/<SKU>/*.jpg")
    p.add_argument(
        "--model", action="append", metavar="[LABEL=]PATH", help="model folder, repeatable (default: the shipped model)"
    )
    p.add_argument(
        "--unknown-skus",
        metavar="LIST",
        help="open set: SKUs removed from the gallery whose queries must be rejected "
        "(A,B,C, @file, or 'default' = the grocery SKUs held out of training)",
    )
    p.add_argument(
        "--held-out-skus",
        metavar="LIST",
        help="report top-1/top-5 separately for these SKUs and the rest (same forms as --unknown-skus)",
    )
    p.add_argument("--gallery-per-sku", type=int, metavar="N", help="few-shot: enrol only N random photos per SKU")
    p.add_argument("--seed", type=int, default=0, help="seed for --gallery-per-sku and the calibration folds")
    p.add_argument("--threshold", type=float, help="open-set threshold (default: calibrated on the queries)")
    p.add_argument(
        "--robustness",
        nargs="?",
        const="all",
        metavar="CONDITIONS",
        help="also measure degraded queries: 'all' or some of dark,blurry,low_res,partial",
    )
    p.add_argument("--top-confused", type=int, default=10, help="confused SKU pairs to list (default 10)")
    p.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="write a self-contained HTML report (with several models: PATH-<label>.html each)",
    )
    _common(p)
    p.set_defaults(func=evaluate_command)

    p = subparsers.add_parser(
        "calibrate",
        help="pick the open-set threshold for a precision target; store it with the gallery",
        description="Queries of enrolled SKUs should be accepted with the right SKU; queries of SKUs not "
        "enrolled must be rejected. Picks the lowest threshold whose accepted answers reach "
        "--target-precision and stores it for this model in the --data-dir gallery.",
    )
    p.add_argument("queries", type=Path, help="labelled query photos: QUERIES/<SKU>/*.jpg")
    p.add_argument(
        "--gallery-folder",
        type=Path,
        help="reference photos to search instead of the enrolled gallery (GALLERY/<SKU>/*.jpg)",
    )
    p.add_argument("--unknown-skus", metavar="LIST", help="with --gallery-folder: SKUs to remove from it")
    p.add_argument("--data-dir", type=Path, help="the gallery to store the threshold in (SKULENS_DATA_DIR)")
    p.add_argument("--model", type=Path, help="model folder (SKULENS_MODEL; default: the shipped model)")
    p.add_argument("--index-kind", choices=["flat", "hnsw"], help="SKULENS_INDEX_KIND (default flat)")
    p.add_argument("--dry-run", action="store_true", help="print the threshold, store nothing")
    _common(p)
    p.set_defaults(func=calibrate_command)


def _calibrate_settings(args: argparse.Namespace) -> Settings:
    """The gallery settings ``calibrate`` shares with the service (environment, then the flags it declares),
    read from ``service.settings`` directly: ``service.cli`` loads this module, so it must not import it."""
    from service.settings import Settings

    given = {"data_dir": args.data_dir, "model": args.model, "index_kind": args.index_kind}
    return Settings(**{name: value for name, value in given.items() if value is not None})


def _cache(args: argparse.Namespace, version: str) -> EmbeddingCache | None:
    from evaluation.data import EmbeddingCache, default_cache_dir

    return None if args.no_cache else EmbeddingCache(args.cache_dir or default_cache_dir(), version)


def _conditions(value: str | None) -> tuple[str, ...]:
    from evaluation.robustness import CONDITIONS

    if not value:
        return ()
    names = tuple(CONDITIONS) if value == "all" else tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise SystemExit(f"--robustness: unknown condition(s) {unknown}; choose from {list(CONDITIONS)} or 'all'")
    return names


def evaluate_command(args: argparse.Namespace) -> int:
    from embedder.artifact import ModelNotFound, default_model_dir, load_artifact
    from embedder.runtime import LiteRTEmbedder
    from evaluation.data import scan_folder
    from evaluation.evaluate import evaluate_model, to_jsonable
    from evaluation.report import comparison_tables

    specs = [_model_spec(m) for m in args.model] if args.model else [("shipped", default_model_dir())]
    conditions = _conditions(args.robustness)
    gallery, queries = scan_folder(args.gallery), scan_folder(args.queries)
    if args.gallery_per_sku:
        gallery = gallery.per_sku(args.gallery_per_sku, seed=args.seed)
    unknown, held_out = _sku_list(args.unknown_skus), _sku_list(args.held_out_skus)
    missing = sorted((unknown | held_out) - set(gallery.skus) - set(queries.skus))
    if missing:
        logger.warning("SKUs named but in neither folder: %s", missing)
    groups = {"seen": set(queries.skus) - held_out, "held-out": held_out} if held_out else {}
    logger.info(
        "gallery %s: %d photos of %d SKUs; queries %s: %d photos of %d SKUs",
        args.gallery,
        len(gallery),
        len(set(gallery.skus)),
        args.queries,
        len(queries),
        len(set(queries.skus)),
    )
    results = []
    for label, path in specs:
        try:
            artifact = load_artifact(path)
        except ModelNotFound as exc:
            raise SystemExit(f"--model {label}={path}: {exc}") from exc
        embedder = LiteRTEmbedder(artifact, num_threads=args.threads)
        info = {
            "path": str(path),
            "version": artifact.version,
            "backbone": artifact.backbone,
            "input_size": artifact.input_size,
            "weights_origin": artifact.weights_origin,
            "trained": artifact.trained,
            "precision": artifact.precision,
            "lookalike_beta": artifact.lookalike_beta,
            "runner_up_gamma": artifact.runner_up_gamma,
        }
        logger.info("evaluating %s (%s, version %s)", label, path, artifact.version)
        results.append(
            evaluate_model(
                embedder,
                label,
                gallery,
                queries,
                unknown_skus=unknown,
                groups=groups,
                threshold=args.threshold,
                target_precision=args.target_precision,
                conditions=conditions,
                cache=_cache(args, artifact.version),
                batch_size=args.batch_size,
                workers=args.workers,
                seed=args.seed,
                model_info=info,
                top_confused=args.top_confused,
                lookalike_beta=artifact.lookalike_beta,
                runner_up_gamma=artifact.runner_up_gamma,
            )
        )
    settings = {
        "gallery": str(args.gallery),
        "queries": str(args.queries),
        "gallery_per_sku": args.gallery_per_sku,
        "seed": args.seed,
        "unknown_skus": sorted(unknown),
        "held_out_skus": sorted(held_out),
        "target_precision": args.target_precision,
        "threshold": args.threshold,
        "robustness": list(conditions),
    }
    print(comparison_tables(results, settings))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"settings": settings, "models": {r.label: to_jsonable(r) for r in results}}
        args.json_out.write_text(json.dumps(payload, indent=1) + "\n")
        logger.info("wrote %s", args.json_out)
    if args.report:
        from evaluation.report import write_report

        for result in results:
            target = (
                args.report
                if len(results) == 1
                else args.report.with_name(f"{args.report.stem}-{result.label}{args.report.suffix or '.html'}")
            )
            write_report(result, target, settings=settings)
            logger.info("wrote report %s", target)
    return 0


def calibrate_command(args: argparse.Namespace) -> int:
    import numpy as np

    from embedder.runtime import LiteRTEmbedder
    from evaluation import metrics
    from evaluation.calibrate import CalibrationRefused, calibrate_for_till, calibration_record
    from evaluation.data import embed_files, scan_folder
    from gallery.gallery import Gallery
    from gallery.lookalike import label_lookalikes
    from gallery.open_set_score import OpenSetScore, TableDecisions
    from service.model_source import resolve_model

    settings = _calibrate_settings(args)
    artifact = resolve_model(settings.model, settings.data_dir)

    def open_gallery() -> Gallery:
        """The enrolled gallery, deciding on the model's score (its beta and gamma) as the service does."""
        return Gallery(
            settings.data_dir,
            artifact.version,
            artifact.embedding_dim,
            settings.index_kind,
            lookalike_beta=artifact.lookalike_beta,
            runner_up_gamma=artifact.runner_up_gamma,
        )

    embedder = LiteRTEmbedder(artifact, num_threads=args.threads)
    queries = scan_folder(args.queries)
    cache = _cache(args, artifact.version)
    q_vectors = embed_files(embedder, queries.paths, cache=cache, batch_size=args.batch_size, workers=args.workers)
    catalog = Path(settings.data_dir) / "catalog.sqlite3"
    if args.gallery_folder:
        gallery = scan_folder(args.gallery_folder)
        g_vectors = embed_files(embedder, gallery.paths, cache=cache, batch_size=args.batch_size, workers=args.workers)
        unknown = _sku_list(args.unknown_skus)
        enrolled_mask = np.array([s not in unknown for s in gallery.skus], dtype=bool)
        if not enrolled_mask.any():
            raise SystemExit(f"--unknown-skus removes every SKU of {str(args.gallery_folder)!r}: nothing left enrolled")
        vocab = sorted({s for s, e in zip(gallery.skus, enrolled_mask) if e})
        index = {sku: i for i, sku in enumerate(vocab)}
        g_labels = np.array([index[s] for s, e in zip(gallery.skus, enrolled_mask) if e], dtype=np.int64)
        per_sku = metrics.best_score_per_sku(q_vectors @ g_vectors[enrolled_mask].T, g_labels, len(vocab))
        q_labels = np.array([index.get(s, -1) for s in queries.skus], dtype=np.int64)
        lookalikes = label_lookalikes(g_vectors[enrolled_mask], g_labels, len(vocab))
        score = OpenSetScore(artifact.lookalike_beta, artifact.runner_up_gamma)
        scores = TableDecisions.of(per_sku).scores(score, lookalikes)
        is_known = q_labels >= 0
        correct = metrics.true_sku_rank(per_sku, q_labels) < 1
        source = {"gallery_folder": str(args.gallery_folder), "unknown_skus": sorted(unknown)}
    else:
        if args.unknown_skus:
            raise SystemExit(
                "--unknown-skus needs --gallery-folder; with an enrolled gallery, "
                "queries of SKUs that are not enrolled are the unknown ones"
            )
        if not catalog.exists():
            raise SystemExit(
                f"no gallery at {str(settings.data_dir)!r} (no {catalog.name}); enrol first or give --gallery-folder"
            )
        store = open_gallery()
        try:
            enrolled = set(store.store.image_skus().values())
            answers = store.recognize(q_vectors, threshold=0.0, k=1)  # the served score; the threshold is unused
        finally:
            store.close(snapshot=False)
        scores = np.array([r.score if r.matches else -1.0 for r in answers])
        correct = np.array([bool(r.matches) and r.matches[0].sku == s for r, s in zip(answers, queries.skus)])
        is_known = np.array([s in enrolled for s in queries.skus])
        source = {"gallery": "enrolled gallery"}
    try:
        calibration = calibrate_for_till(scores, correct, is_known, args.target_precision)
    except CalibrationRefused as exc:
        raise SystemExit(f"calibrate: refused, nothing stored: {exc}") from None
    record = calibration_record(
        calibration, scores, correct, is_known, artifact.version, {"queries": str(args.queries), **source}
    )
    record["lookalike"] = {"beta": artifact.lookalike_beta, "from": "the model's calibration (model.json)"}
    record["runner_up"] = {"gamma": artifact.runner_up_gamma, "from": "the model's calibration (model.json)"}
    result = calibration.result
    from evaluation.report import fmt

    print(
        f"threshold {calibration.threshold:.6f} for model {artifact.version}: {calibration.note}\n"
        f"  on these queries: known accuracy {fmt(result.known_accuracy)}, known acceptance "
        f"{fmt(result.known_acceptance)}, unknown rejection {fmt(result.unknown_rejection)}, "
        f"precision {fmt(result.precision)} ({result.known} known, {result.unknown} unknown queries)"
    )
    if args.json_out:
        args.json_out.write_text(json.dumps(record, indent=1))
    if args.dry_run:
        logger.info("--dry-run: threshold not stored")
    elif catalog.exists():
        store = open_gallery()
        try:
            store.set_threshold(calibration.threshold)
            store.store.set_meta(f"calibration:{artifact.version}", json.dumps(record))
        finally:
            store.close(snapshot=False)
        logger.info(
            "stored threshold %.6f for model %s in %s", calibration.threshold, artifact.version, settings.data_dir
        )
    else:
        logger.warning("not stored: no gallery at %s (enrol first, or pass --data-dir)", settings.data_dir)
    return 0
