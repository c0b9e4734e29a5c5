"""Linear probes: dimensions read off the trained network's pooled features, the encoder left as it is.

`insult` and `identity_attack` have few real labels (ToxiChat's offense targets, Davidson's hate
speech). Fine-tuning the shared encoder on them, with ToxiChat and CAT for hostility as well, raised
hostility's identity-term bias in every category, up to sevenfold (ethnicity 0.029 -> 0.194; the model
card has the figures), so they are not fine-tuned: after training, one logistic regression per
dimension is fitted on the mean-pooled features of the finished network, and its weights become one
more row of the linear heads. The artefact keeps its format, scoring costs nothing more, and
hostility, warmth and respect are exactly what they were.

Per dimension: the train splits of its sets (each set weighing the same in total), the regularisation
chosen from `C_GRID` by ROC-AUC on ToxiChat's val split, then Platt calibration and the F1-best threshold
fitted there too, as `monitor.scoring.train` calibrates the fine-tuned dimensions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from monitor.scoring import datasets
from monitor.scoring.evaluate import roc_auc
from monitor.scoring.network import DimensionCard, ModelCard, load_artefact, save_heads
from monitor.scoring.text import normalise

PROBES: dict[str, tuple[str, ...]] = {
    "insult": ("toxichat_insult",),
    "identity_attack": ("toxichat_identity", "davidson_hate"),
}
VALIDATION = {"insult": "toxichat_insult", "identity_attack": "toxichat_identity"}  # Reddit, as forums are
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def extend(folder: Path, data: Path, max_rows: int | None = None, say: Callable[[str], None] = print) -> ModelCard:
    """Fit every probe on the artefact in `folder` and write it back with their heads and card entries."""
    from monitor.scoring.train import f1_threshold, logits_for, platt

    tokenizer, network, card = load_artefact(folder)

    def features(task: str, split: str) -> tuple[np.ndarray, np.ndarray]:
        examples = _capped(datasets.load(task, split, data), max_rows)
        texts = [normalise(e.text) for e in examples]
        x = logits_for(network, tokenizer, texts, card.max_length, pooled=True)
        return x, np.array([e.label for e in examples])

    tuned = [i for i, d in enumerate(card.dimensions) if d not in PROBES]  # refitting replaces earlier probes
    weights, biases, record = [network.heads.weight.detach()[tuned]], [network.heads.bias.detach()[tuned]], {}
    card.dimensions = {d: c for d, c in card.dimensions.items() if d not in PROBES}
    for dimension, tasks in PROBES.items():
        say(f"fitting the {dimension} probe on {', '.join(tasks)} ...")
        train = [features(t, "train") for t in tasks]
        x_val, y_val = features(VALIDATION[dimension], "val")
        model, c, auc = _best_probe(train, x_val, y_val)
        z = model.decision_function(x_val)
        scale, shift = platt(z, y_val)
        threshold = f1_threshold(expit(scale * z + shift), y_val)
        card.dimensions[dimension] = DimensionCard(round(scale, 6), round(shift, 6), round(threshold, 6), list(tasks))
        weights.append(torch.tensor(model.coef_, dtype=torch.float32))
        biases.append(torch.tensor(model.intercept_, dtype=torch.float32))
        card.training["datasets"] |= {t: datasets.provenance(t) for t in tasks}  # type: ignore[operator]
        record[dimension] = {
            "C": c,
            "train_rows": {t: len(y) for t, (_, y) in zip(tasks, train, strict=True)},
            "val": VALIDATION[dimension],
            "val_roc_auc": round(auc, 4),
        }
    heads = torch.nn.Linear(network.heads.in_features, len(card.dimensions))
    with torch.no_grad():
        heads.weight.copy_(torch.cat(weights))
        heads.bias.copy_(torch.cat(biases))
    save_heads(heads, folder)
    card.training["probes"] = record
    card.save(folder)
    return card


def _capped(examples: list[datasets.Example], max_rows: int | None) -> list[datasets.Example]:
    """At most max_rows (a quick trial), half of them positive where there are enough: a regression needs both."""
    if max_rows is None:
        return examples
    positives = [e for e in examples if e.label > 0.5][: max_rows // 2]
    return positives + [e for e in examples if e.label <= 0.5][: max_rows - len(positives)]


def _best_probe(
    train: list[tuple[np.ndarray, np.ndarray]], x_val: np.ndarray, y_val: np.ndarray
) -> tuple[LogisticRegression, float, float]:
    """The logistic regression of `C_GRID` with the best validation ROC-AUC (the first of equals)."""
    x = np.concatenate([f for f, _ in train])
    y = np.concatenate([labels for _, labels in train])
    w = np.concatenate([np.full(len(labels), len(y) / (len(train) * len(labels))) for _, labels in train])
    best: tuple[LogisticRegression, float, float] | None = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=5000).fit(x, y, sample_weight=w)
        auc = roc_auc(y_val, model.decision_function(x_val))
        if best is None or auc > best[2]:
            best = (model, c, auc)
    assert best is not None
    return best
