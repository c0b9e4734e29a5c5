"""The default offline model: all-MiniLM-L6-v2 with the project's own trained adapters and heads.

Two runtimes, same network:
- "torch": plain PyTorch in fp32, on a GPU when one is present;
- "onnx-int8" (the CPU default): the network exported once to ONNX and quantised to int8
  weights (ONNX Runtime dynamic quantisation), cached under the user's cache folder by
  fingerprint. Several times faster on a CPU; `civmon bench score` measures both and the
  accuracy difference.
Either way texts are deduplicated; torch batches them by length, so short comments are not padded
to the length of long ones, and int8 scores each text on its own, so that its scores never depend
on the texts that share its batch.
"""

from __future__ import annotations

import logging
import os
import warnings
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from scipy.special import expit

from monitor.errors import CivmonError
from monitor.scoring.base import TOXICITY, files_digest
from monitor.scoring.network import ADAPTER_DIR, CARD_FILE, HEADS_DIR, HEADS_FILE, load_artefact, pick_device
from monitor.scoring.perspective import ToxicityMap
from monitor.scoring.text import CHUNK_TOKENS, CHUNK_WORDS, PREPARATION, Window

log = logging.getLogger(__name__)
DEFAULT_MODEL = "alliance-minilm"
Runtime = Literal["torch", "onnx-int8"]
# How each runtime's scores are named in model versions. int8 once scored texts in batches, where a text's scores
# moved with its neighbours; scores made so are not the per-text ones, and must not share their version.
RUNTIME_VERSIONS: dict[Runtime, str] = {"torch": "torch", "onnx-int8": "onnx-int8-per-text"}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "civmon"


def fingerprint(folder: Path) -> str:
    """Hash of everything that decides the scores: adapters, heads, card (the encoder is pinned by its package)."""
    return files_digest([folder / CARD_FILE, folder / HEADS_FILE, *sorted((folder / ADAPTER_DIR).glob("*"))])


class AllianceScorer:
    def __init__(
        self,
        folder: Path = HEADS_DIR / DEFAULT_MODEL,
        device: str = "auto",
        runtime: Runtime | None = None,
        batch_size: int = 64,
    ) -> None:
        self.tokenizer, self.network, self.card = load_artefact(folder)
        self.device = pick_device(device)
        self.runtime: Runtime = runtime or ("onnx-int8" if self.device == "cpu" else "torch")
        self.batch_size = batch_size
        self.name = self.card.name
        runtime_version = RUNTIME_VERSIONS[self.runtime]
        self.version = f"{self.card.name}@{fingerprint(folder)}+{PREPARATION}+{runtime_version}"  # prepared text, too
        self.dimensions = tuple(self.card.dimensions)
        self.thresholds = {d: c.threshold for d, c in self.card.dimensions.items()}
        self.chunk_words = CHUNK_WORDS * self.card.max_length // CHUNK_TOKENS
        self.window = Window(self.card.max_length - self.tokenizer.num_special_tokens_to_add(), self._spans)
        self._scale = np.array([c.scale for c in self.card.dimensions.values()], dtype=np.float32)
        self._shift = np.array([c.shift for c in self.card.dimensions.values()], dtype=np.float32)
        self._run = self._onnx_runner(folder) if self.runtime == "onnx-int8" else self._torch_runner()
        # None: TOXICITY is the score as the network gives it, which is what a mapping is fitted on
        self.toxicity_map = self._toxicity_map(folder)
        # what goes onto Perspective's scale: the continuity logit where the network gives one, else hostility
        self._continuity = self.network.continuity
        hostility = self.dimensions.index("hostility") if "hostility" in self.dimensions else None
        self._onto_scale = len(self.dimensions) if self._continuity else hostility

    def _toxicity_map(self, folder: Path) -> ToxicityMap | None:
        if not (knots := self.card.perspective_toxicity):
            return None
        try:
            return ToxicityMap.from_card(knots, self.network.continuity)
        except KeyError as exc:
            problem = f"it has no {exc} knots"
        except (TypeError, ValueError) as exc:
            problem = str(exc)
        raise CivmonError(
            f"{folder / CARD_FILE}: its mapping onto Perspective's TOXICITY scale cannot be used: {problem}",
            "train the model again with `civmon train --out FOLDER`, or restore the folder from a copy",
        )

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Calibrated scores per text, and TOXICITY: the continuity output's probability or hostility, through the
        card's mapping onto Perspective's scale where it has one; identical texts are computed once."""
        unique = list(dict.fromkeys(texts))
        probabilities = self._probabilities(unique)
        by_text = {t: self._scores(row) for t, row in zip(unique, probabilities, strict=True)}
        return [by_text[t] for t in texts]

    def _scores(self, row: np.ndarray) -> dict[str, float]:
        scores = dict(zip(self.dimensions, map(float, row[: len(self.dimensions)]), strict=True))
        if self._onto_scale is not None:
            score = float(row[self._onto_scale])
            scores[TOXICITY] = self.toxicity_map(score) if self.toxicity_map else score
        return scores

    def _spans(self, words: list[str]) -> list[list[tuple[int, int]]]:
        """Where each word's pieces lie in it: the words tokenized as one text (one call, not one a word), each
        piece given to the word it starts in (whitespace parts pieces: the same pieces as word by word)."""
        starts = list(accumulate((len(w) + 1 for w in words[:-1]), initial=0))
        text = " ".join(words)
        spans: list[list[tuple[int, int]]] = [[] for _ in words]
        # verbose=False: a text longer than the window is expected here
        for a, b in self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)[
            "offset_mapping"
        ]:
            word = bisect_right(starts, a) - 1
            spans[word].append((a - starts[word], b - starts[word]))
        return spans

    def _probabilities(self, texts: list[str]) -> np.ndarray:
        """Per text, each dimension's calibrated probability, then the continuity output's where there is one."""
        out = np.zeros((len(texts), len(self.dimensions) + self._continuity), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch
        # int8: one text per call. Dynamic quantisation scales activations per tensor, so in a batch a text's
        # scores depended on its neighbours and their padding (hostility moved by up to 0.14 on GoEmotions);
        # alone, a text's scores are a function of the text, whichever path or batch scored it, at ~30% of the speed.
        size = 1 if self.runtime == "onnx-int8" else self.batch_size
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            batch = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.card.max_length,
                return_tensors="np",
            )
            out[rows] = self._run(batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64))
        out[:, : len(self.dimensions)] = out[:, : len(self.dimensions)] * self._scale + self._shift
        return expit(out)  # the continuity logit as it is: its mapping was fitted on this probability

    def _torch_runner(self) -> Any:
        network = self.network.to(self.device)

        def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                logits = network(torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device))
            return logits.float().cpu().numpy()

        return run

    def _onnx_runner(self, folder: Path) -> Any:
        import onnxruntime

        path = self._quantised_onnx(folder)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            return session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

        return run

    def _quantised_onnx(self, folder: Path) -> Path:
        """Export and quantise once per model fingerprint; later loads reuse the cached file."""
        target = cache_dir() / "onnx" / f"{self.card.name}-{fingerprint(folder)}" / "model.int8.onnx"
        if target.exists():
            return target
        from onnxruntime.quantization import QuantType, quantize_dynamic

        log.info("preparing the fast CPU runtime (once per model version): %s", target.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        plain = target.with_name(f"model.{os.getpid()}.onnx")
        partial = target.with_name(f"model.int8.{os.getpid()}.onnx")
        try:
            self._export(plain)
            quantize_dynamic(str(plain), str(partial), weight_type=QuantType.QInt8, per_channel=True)
            partial.replace(target)  # atomic: a concurrent loader sees the whole file or none
        finally:  # a failed export or quantisation leaves no 90 MB file behind in the cache
            plain.unlink(missing_ok=True)
            partial.unlink(missing_ok=True)
        return target

    def _export(self, path: Path) -> None:
        """The fp32 network as ONNX, with batch and text length left free."""
        example = self.tokenizer(["an example", "another example text"], padding=True, return_tensors="pt")
        axes = {
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "logits": {0: "batch"},
        }
        with warnings.catch_warnings():  # the TorchScript exporter warns it is legacy; it handles this network
            warnings.simplefilter("ignore")
            torch.onnx.export(
                self.network.cpu(),
                (example["input_ids"], example["attention_mask"]),
                str(path),
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
