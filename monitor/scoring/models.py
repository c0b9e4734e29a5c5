"""Which scorer the configuration asks for, with the fallback it allows."""

from __future__ import annotations

import logging
from pathlib import Path

from transformers.utils import CONFIG_NAME

from monitor.config import ModelSettings
from monitor.errors import CivmonError
from monitor.scoring.alliance import DEFAULT_MODEL, AllianceScorer, Runtime
from monitor.scoring.base import Scorer
from monitor.scoring.hf import HuggingFaceScorer
from monitor.scoring.network import CARD_FILE

log = logging.getLogger(__name__)


def load_scorer(settings: ModelSettings) -> Scorer:
    """The configured scorer; the built-in model instead where it fails to load and the config allows that."""
    if settings.name == DEFAULT_MODEL:
        return default_scorer(settings)
    if problem := local_model_problem(settings.name):  # a typo: never hidden behind the fallback
        raise CivmonError(problem, "check the path, or train a model there with `civmon train --out FOLDER`")
    try:
        return _configured(settings)
    except CivmonError as exc:
        if not settings.fallback_to_default:
            raise
        log.warning(
            "%s; scoring with the built-in %s instead ([model] fallback_to_default)", exc.message, DEFAULT_MODEL
        )
        return default_scorer(settings)


def local_model_problem(name: str) -> str | None:
    """What is wrong with a [model] name that means a folder on this machine (a path, or a folder that exists) but
    holds no model, civmon's or a Hugging Face one: read as a hub id, it failed to load and the built-in model scored
    instead, with a warning about labels, and the scores cited a model nobody chose."""
    folder = Path(name).expanduser()
    if not (name.startswith(("/", "./", "../", "~")) or folder.is_dir()):
        return None
    if any((folder / card).exists() for card in (CARD_FILE, CONFIG_NAME)):
        return None
    where = "no such folder" if not folder.exists() else f"neither {CARD_FILE} nor {CONFIG_NAME} in it"
    return f"[model] name {name!r} names a folder on this machine with no model ({where})"


def default_scorer(settings: ModelSettings) -> AllianceScorer:
    """The built-in model, on the configured device, runtime and batch size."""
    return AllianceScorer(device=settings.device, runtime=_runtime(settings), batch_size=settings.batch_size)


def _runtime(settings: ModelSettings) -> Runtime | None:
    return None if settings.runtime == "auto" else settings.runtime  # None: the scorer picks for its device


def _configured(settings: ModelSettings) -> Scorer:
    folder = Path(settings.name).expanduser()
    if (folder / CARD_FILE).exists():  # a model trained with `civmon train --out FOLDER`
        return AllianceScorer(folder, settings.device, _runtime(settings), settings.batch_size)
    return HuggingFaceScorer(
        settings.name, settings.labels, settings.activation, settings.thresholds, settings.device, settings.batch_size
    )
