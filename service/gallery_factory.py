"""The gallery a process of the service opens on its settings: ``skulens serve`` and the commands that
work on the served gallery (``enrol``, ``recognize``, ...) open it the same way."""

from __future__ import annotations

from gallery.gallery import Gallery
from service.settings import Settings


def open_gallery(
    settings: Settings, model_version: str, embedding_dim: int, *, lookalike_beta: float, runner_up_gamma: float = 0.0
) -> Gallery:
    """The gallery of ``settings`` (data directory, index kind, search threads, currency, catalogue) for
    the model of ``model_version`` and ``embedding_dim``, deciding on its open-set score (``lookalike_beta``,
    ``runner_up_gamma``: ``gallery.open_set_score``)."""
    return Gallery(
        settings.data_dir,
        model_version,
        embedding_dim,
        settings.index_kind,
        search_threads=settings.search_threads,
        currency=settings.currency,
        catalog=settings.catalog,
        lookalike_beta=lookalike_beta,
        runner_up_gamma=runner_up_gamma,
    )
