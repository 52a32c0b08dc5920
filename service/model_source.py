"""Which model a process serves: the one given, the shipped one, or (loudly) an untrained one."""

from __future__ import annotations

import logging
from pathlib import Path

from embedder.artifact import (
    SHIPPED_MODELS,
    ModelArtifact,
    ModelNotFound,
    default_model_dir,
    load_artifact,
    shipped_model_dir,
)

logger = logging.getLogger(__name__)

UNTRAINED_WARNING = (
    "\n" + "!" * 78 + "\n"
    "!! skulens is serving an UNTRAINED model (random weights): recognition will be poor.\n"
    "!! Train one (`skulens train`, see README) and pass --model, or use the shipped model.\n" + "!" * 78
)


def resolve_model(model: Path | None, data_dir: Path) -> ModelArtifact:
    """``model``: a model folder, or the name of a shipped one (``SHIPPED_MODELS``: ``float32``, the
    default, or ``int8_float_head``) when no folder of that name exists; None: the default."""
    if model is not None:
        if str(model) in SHIPPED_MODELS and not Path(model).exists():
            return load_artifact(shipped_model_dir(str(model)))
        try:
            return load_artifact(model)
        except ModelNotFound as exc:
            raise ModelNotFound(f"{exc}; or name a shipped model: {', '.join(sorted(SHIPPED_MODELS))}") from None
    try:
        return load_artifact(default_model_dir())
    except ModelNotFound:
        logger.warning("no shipped model found in %s", default_model_dir())
    return untrained_model(Path(data_dir) / "models" / "untrained")


def untrained_model(directory: Path, backbone: str = "mobilenet_v3_large", input_size: int = 224) -> ModelArtifact:
    """Build (once, needs TensorFlow) and cache an untrained model; warn loudly every time."""
    try:
        artifact = load_artifact(directory)
    except ModelNotFound:
        try:
            from embedder.export import export_model
            from embedder.model import build_embedding_model
        except ImportError as exc:
            raise SystemExit(
                "no model given and none shipped; an untrained one needs TensorFlow "
                "(pip install 'skulens[train]'), or pass --model PATH"
            ) from exc
        model = build_embedding_model(backbone, weights=None, input_size=input_size, seed=0)
        artifact = export_model(
            model,
            directory,
            backbone=backbone,
            input_size=input_size,
            embedding_dim=256,
            weights_origin="random initialisation",
            trained=False,
        )
    logger.warning(UNTRAINED_WARNING)
    return artifact
