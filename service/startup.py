"""Checks made before serving (or running a command): each failure is one clear line, no traceback.

``StartupError`` is a ``SystemExit``: raised from uvicorn's app factory it stops the process with its
message; ``skulens`` prints it as ``skulens: <message>`` and exits with status 2.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from embedder.artifact import ModelArtifact, ModelNotFound
from service.auth import KeyFileError, KeyRing, check_bind_policy, load_key_file
from service.settings import Settings

EXIT_STATUS = 2


class StartupError(SystemExit):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "start-up failed"


def load_keys(settings: Settings) -> KeyRing:
    """The key ring of ``settings.api_keys_file`` (empty without one); a bad file is a ``StartupError``."""
    if settings.api_keys_file is None:
        return KeyRing([])
    try:
        return KeyRing(load_key_file(settings.api_keys_file))
    except KeyFileError as exc:
        raise StartupError(f"bad API keys file: {exc}") from None
    except OSError as exc:
        raise StartupError(f"cannot read the API keys file {str(settings.api_keys_file)!r}: {exc.strerror}") from None


def check_bind(settings: Settings, keys: KeyRing) -> None:
    """A key file with no keys (only comments or blank lines) counts as no keys."""
    try:
        check_bind_policy(settings.host, keys.enabled, settings.insecure)
    except SystemExit as exc:
        detail = " (the API keys file holds no keys)" if settings.api_keys_file is not None else ""
        raise StartupError(f"{exc}{detail}") from None


def check_data_dir(data_dir: Path) -> None:
    """The data directory exists (or can be made) and can be written."""
    try:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise StartupError(f"data directory {str(data_dir)!r} is not writable: {exc.strerror or exc}") from None


def check_model(settings: Settings) -> ModelArtifact:
    from service.model_source import resolve_model

    try:
        return resolve_model(settings.model, settings.data_dir)
    except (ModelNotFound, ValueError) as exc:
        raise StartupError(str(exc)) from None


def check_catalogue(settings: Settings) -> None:
    """Open the catalogue once: create it, or migrate an older one (``gallery.stores.sqlite.schema``); a catalogue
    of another currency or of a newer skulens, or a shared one that cannot be reached, is one clear line."""
    from gallery.stores.base import CatalogUnreachable
    from gallery.stores.open import CatalogUnavailable, open_catalog
    from gallery.types import CurrencyMismatch, SchemaTooNew

    check_data_dir(settings.data_dir)
    try:
        open_catalog(settings.data_dir, settings.catalog, settings.currency).close()
    except (CurrencyMismatch, SchemaTooNew, CatalogUnavailable, CatalogUnreachable) as exc:
        raise StartupError(str(exc)) from None


def check_serving_limits(settings: Settings) -> None:
    if settings.max_images_per_request > settings.max_queue:
        raise StartupError(
            f"max_images_per_request ({settings.max_images_per_request}) is larger than max_queue "
            f"({settings.max_queue}): such a request could never be queued; lower SKULENS_MAX_IMAGES_PER_REQUEST "
            "or raise SKULENS_MAX_QUEUE"
        )


def preflight(settings: Settings) -> ModelArtifact:
    """Everything ``skulens serve`` checks in the parent process, before any worker starts."""
    check_serving_limits(settings)
    check_bind(settings, load_keys(settings))
    check_catalogue(settings)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return check_model(settings)
