"""Any Hugging Face text-classification model, by hub id or local folder, through `transformers.pipeline`.

The config maps the model's labels to civmon's dimensions (e.g. unitary/unbiased-toxic-roberta:
toxicity -> hostility, insult, threat, identity_attack) and says whether its outputs are
independent (sigmoid, multi-label) or exclusive (softmax). A hub id is loaded from the local
Hugging Face cache when it is there; otherwise it is downloaded once, which needs internet —
without it, loading fails at once with a message saying how to fetch the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from monitor.errors import CivmonError
from monitor.scoring.base import DIMENSIONS, files_digest
from monitor.scoring.text import CHUNK_WORDS, PREPARATION
from monitor.sources.http import reachable

HUB_HOST = "huggingface.co"
# what decides a local model's outputs: config, tokenizer and weights (sharded or not); not its README
MODEL_FILE_SUFFIXES = {".json", ".safetensors", ".bin", ".txt", ".model"}


def _hub_reachable() -> bool:
    from huggingface_hub import constants

    return not constants.HF_HUB_OFFLINE and reachable(HUB_HOST)  # HF_HUB_OFFLINE as the hub library parses it


def resolve(model: str) -> tuple[Path, str]:
    """(local folder, revision) for a folder or a hub id; a CivmonError if it cannot be had."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in MODEL_FILE_SUFFIXES)
        return folder, f"local-{files_digest(files)}"
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(model, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):
        if not _hub_reachable():
            raise CivmonError(
                f"the model {model!r} is not a local folder, not in the Hugging Face cache, "
                "and the hub cannot be reached",
                f"on a machine with internet run once: `hf download {model}` (or `huggingface-cli download {model}`), "
                "then copy ~/.cache/huggingface here; or set [model] name to a local folder",
            ) from None
        try:
            path = Path(snapshot_download(model))
        except (HfHubHTTPError, OSError) as exc:
            raise CivmonError(
                f"the model {model!r} could not be downloaded from the Hugging Face hub: {exc}",
                "check the model id on huggingface.co (and `hf auth login` for a gated model)",
            ) from None
    return path, path.name  # the snapshot folder is named after the commit


def _check_labels(labels: Mapping[str, str], known: Sequence[str], model: str) -> None:
    """Every configured label must be one the model outputs, or its dimension would be empty for every comment."""
    unknown = sorted(set(labels) - set(known))
    if unknown:
        raise CivmonError(
            f"{model!r} has no label {', '.join(map(repr, unknown))}",
            f"its labels are {', '.join(map(repr, known))}: use those as the keys of [model] labels",
        )


class HuggingFaceScorer:
    def __init__(
        self,
        model: str,
        labels: Mapping[str, str],
        activation: Literal["sigmoid", "softmax"],
        thresholds: Mapping[str, float],
        device: str = "auto",
        batch_size: int = 64,
    ) -> None:
        from transformers import pipeline

        from monitor.scoring.network import pick_device

        unknown = sorted(set(labels.values()) - set(DIMENSIONS))
        if unknown or "hostility" not in labels.values():
            raise CivmonError(
                f"[model] labels must map model labels to {', '.join(DIMENSIONS)}, hostility "
                f"included (unknown: {', '.join(unknown) or 'none'})",
                'e.g. labels = { toxicity = "hostility", insult = "insult" }',
            )
        folder, revision = resolve(model)
        try:
            self.pipe = pipeline(
                "text-classification",
                model=str(folder),
                top_k=None,
                function_to_apply=activation,
                device=pick_device(device),
            )
        except (ValueError, OSError) as exc:
            raise CivmonError(
                f"{model!r} does not load as a text-classification model: {exc}",
                "point [model] name at a folder saved with save_pretrained (config.json, weights, tokenizer)",
            ) from None
        _check_labels(labels, list(self.pipe.model.config.id2label.values()), model)  # the names it outputs
        self.labels = dict(labels)
        self.name = model
        self.version = f"hf:{model}@{revision}+{PREPARATION}"  # the scores depend on the prepared text too
        self.dimensions = tuple(dict.fromkeys(labels.values()))
        self.thresholds = {d: thresholds.get(d, 0.5) for d in self.dimensions}
        self.chunk_words = CHUNK_WORDS  # pipelines cut at the model's own limit; most are 512 tokens or more
        self.batch_size = batch_size

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        outputs = self.pipe(list(texts), batch_size=self.batch_size, truncation=True)
        results = []
        for output in outputs:
            scores: dict[str, float] = {}
            for entry in output:
                dimension = self.labels.get(entry["label"])
                if dimension is not None:  # several labels on one dimension: the strongest counts
                    scores[dimension] = max(scores.get(dimension, 0.0), float(entry["score"]))
            results.append(scores)
        return results
