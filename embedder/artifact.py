"""A saved skulens model: a folder holding ``model.tflite`` and ``model.json``.

The version id is a content hash of the TFLite file, so two different models
can never share an id and a gallery can tell exactly which model made its vectors.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

MODEL_FILE = "model.tflite"
CARD_FILE = "model.json"
FORMAT_VERSION = 1


class ModelNotFound(FileNotFoundError):
    pass


@dataclass(frozen=True)
class ModelArtifact:
    path: Path
    version: str
    backbone: str
    embedding_dim: int
    input_size: int
    weights_origin: str = "unknown"
    trained: bool = False
    threshold: float | None = None  # recommended open-set threshold, if calibrated
    precision: str = "float32"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tflite_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def lookalike_beta(self) -> float:
        """``beta`` of the lookalike-adjusted open-set score (``gallery.lookalike``), calibrated with the
        threshold and stored beside it; 0 (the plain best similarity) for a model calibrated without it."""
        calibration = self.extra.get("calibration") or {}
        return float((calibration.get("lookalike") or {}).get("beta") or 0.0)

    @property
    def runner_up_gamma(self) -> float:
        """``gamma`` of the open-set score's runner-up term (``gallery.open_set_score``), calibrated with the
        threshold and stored beside it; 0 for a model calibrated without it."""
        calibration = self.extra.get("calibration") or {}
        return float((calibration.get("runner_up") or {}).get("gamma") or 0.0)

    def card(self) -> dict[str, Any]:
        card = asdict(self)
        card.pop("path")
        card["format_version"] = FORMAT_VERSION
        return card


def fsync_dir(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """The one way skulens writes a file that must be whole and survive a crash: a hidden temporary
    file beside it, written and fsynced, renamed over ``path``, then the folder fsynced (the rename
    itself is durable). Readers see the old file or the new one, never a part."""
    write_atomically_with(path, lambda handle: handle.write(data))


def write_atomically_with(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """``write_atomically`` for a writer that streams into the file (``np.save`` of a large array), so that no
    copy of the whole content is held in memory first. Each writer (process and thread) has its own temporary
    file, so two runs filling the same cache at once do not clash."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def content_version(tflite_bytes: bytes) -> str:
    return hashlib.sha256(tflite_bytes).hexdigest()[:16]


def write_artifact(directory: str | os.PathLike[str], tflite_bytes: bytes, **card: Any) -> ModelArtifact:
    """Write ``model.tflite`` and ``model.json``; the version is computed here."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    artifact = ModelArtifact(path=directory, version=content_version(tflite_bytes), **card)
    write_atomically(directory / MODEL_FILE, tflite_bytes)
    write_atomically(directory / CARD_FILE, (json.dumps(artifact.card(), indent=2, sort_keys=True) + "\n").encode())
    return artifact


def load_artifact(directory: str | os.PathLike[str]) -> ModelArtifact:
    """Read a model folder; the version is recomputed from the file and checked."""
    directory = Path(directory)
    card_path, model_path = directory / CARD_FILE, directory / MODEL_FILE
    if not model_path.is_file() or not card_path.is_file():
        raise ModelNotFound(
            f"no skulens model at {str(directory)!r}: expected {MODEL_FILE} and {CARD_FILE} in that folder"
        )
    card = json.loads(card_path.read_text())
    version = content_version(model_path.read_bytes())
    if card.get("version") not in (None, version):
        raise ValueError(
            f"{card_path} says version {card.get('version')!r} but {MODEL_FILE} hashes to {version!r}; "
            "the folder was edited by hand"
        )
    known = {name for name in ModelArtifact.__dataclass_fields__ if name not in ("path", "version")}
    fields = {k: v for k, v in card.items() if k in known}
    extra = {k: v for k, v in card.items() if k not in known and k not in ("version", "format_version")}
    fields.setdefault("extra", {}).update(extra)
    return ModelArtifact(path=directory, version=version, **fields)


def default_model_dir() -> Path:
    """The model shipped inside the package (``embedder/default_model``)."""
    return Path(str(resources.files("embedder") / "default_model"))


#: the models shipped inside the package, by the name ``--model`` accepts (docs/model_card.md, Precision)
SHIPPED_MODELS = {"float32": "default_model", "int8_float_head": "default_model_int8_float_head"}


def shipped_model_dir(name: str) -> Path:
    """The folder of the shipped model called ``name`` (a key of ``SHIPPED_MODELS``)."""
    if name not in SHIPPED_MODELS:
        raise ModelNotFound(f"no shipped model called {name!r}: the shipped ones are {sorted(SHIPPED_MODELS)}")
    return Path(str(resources.files("embedder") / SHIPPED_MODELS[name]))
