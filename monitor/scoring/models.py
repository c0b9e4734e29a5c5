"""Which scorer the configuration asks for, with the fallback it allows."""

from __future__ import annotations

import logging
from pathlib import Path

from monitor.config import ModelSettings
from monitor.errors import CivmonError
from monitor.scoring.alliance import DEFAULT_MODEL, AllianceScorer, Runtime
from monitor.scoring.base import Scorer
from monitor.scoring.hf import HuggingFaceScorer
from monitor.scoring.network import CARD_FILE

log = logging.getLogger(__name__)


def load_scorer(settings: ModelSettings) -> Scorer:
    """The configured scorer; the built-in model instead where it fails to load and the config allows that."""
    runtime = None if settings.runtime == "auto" else settings.runtime
    if settings.name == DEFAULT_MODEL:
        return AllianceScorer(device=settings.device, runtime=runtime, batch_size=settings.batch_size)
    try:
        return _configured(settings, runtime)
    except CivmonError as exc:
        if not settings.fallback_to_default:
            raise
        log.warning(
            "%s; scoring with the built-in %s instead ([model] fallback_to_default)", exc.message, DEFAULT_MODEL
        )
        return AllianceScorer(device=settings.device, runtime=runtime, batch_size=settings.batch_size)


def _configured(settings: ModelSettings, runtime: Runtime | None) -> Scorer:
    folder = Path(settings.name).expanduser()
    if (folder / CARD_FILE).exists():  # a model trained with `civmon train --out FOLDER`
        return AllianceScorer(folder, settings.device, runtime, settings.batch_size)
    return HuggingFaceScorer(
        settings.name, settings.labels, settings.activation, settings.thresholds, settings.device, settings.batch_size
    )
