"""Linear probes: dimensions read off the trained network's pooled features, the encoder left as it is.

`insult` and `identity_attack` have few real labels (ToxiChat's offense targets, Davidson's hate
speech). Fine-tuning the shared encoder on them, with ToxiChat and CAT for hostility as well, raised
hostility's identity-term bias in every category, up to sevenfold (ethnicity 0.029 -> 0.194; the model
card has the figures), so they are not fine-tuned: after training, one logistic regression per
dimension is fitted on the mean-pooled features of the finished network, and its weights become one
more row of the linear heads. Hostility's own head is widened after training too (`hostility_blend`). The
probes add no layer and cost nothing at scoring, and warmth and respect are exactly what they were.

Per dimension: the train splits of its sets (each set weighing the same in total), in the complement of
the identity-term directions (`monitor.scoring.identity`: it cut identity_attack's neutral spread for
religion and ethnicity by about 40% at about the same ROC-AUC); for identity_attack, sentences that merely
mention a group as negatives too (MENTIONS_WEIGHT: they cut its neutral spread about threefold more); the
regularisation chosen from `C_GRID` by ROC-AUC on ToxiChat's val split, then Platt calibration and the
F1-best threshold fitted there too, as `monitor.scoring.train` calibrates the fine-tuned dimensions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from monitor.scoring import datasets, hostility_blend, identity
from monitor.scoring.evaluate import roc_auc
from monitor.scoring.network import DimensionCard, ModelCard, Readout, load_artefact, save_heads
from monitor.scoring.text import normalise

PROBES: dict[str, tuple[str, ...]] = {
    "insult": ("toxichat_insult",),
    "identity_attack": ("toxichat_identity", "davidson_hate"),
}
VALIDATION = {"insult": "toxichat_insult", "identity_attack": "toxichat_identity"}  # Reddit, as forums are
# The weight of `identity.mentions()` as negatives, against 1 for each labelled set. Measured on the shipped
# network, on neutral sentences of other templates over every identity term (not the audit's): 0.25, 0.5 and 1
# cut the mean spread across categories from 0.125 to 0.048, 0.049 and 0.040, for 0.005, 0.007 and 0.010 of
# ToxiChat validation ROC-AUC: the cheapest.
MENTIONS_WEIGHT = {"identity_attack": 0.25}
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


class Features:
    """The finished network's mean-pooled features of texts and task splits, each text computed once."""

    def __init__(self, folder: Path, data: Path, max_rows: int | None) -> None:
        from monitor.scoring.train import logits_for

        self.tokenizer, self.network, self.card = load_artefact(folder)
        self._logits_for, self._data, self._max_rows = logits_for, data, max_rows
        self._cache: dict[str, np.ndarray] = {}

    def texts(self, texts: list[str]) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if new:
            rows = self._logits_for(self.network, self.tokenizer, new, self.card.max_length, pooled=True)
            self._cache.update(zip(new, rows, strict=True))
        return np.stack([self._cache[t] for t in texts])

    def split(self, task: str, split: str) -> tuple[np.ndarray, np.ndarray]:
        examples = _capped(datasets.load(task, split, self._data), self._max_rows)
        return self.texts([normalise(e.text) for e in examples]), np.array([e.label for e in examples])

    def mentions(self) -> np.ndarray:
        """Sentences that merely mention a group (`identity.mentions()`): negatives for the heads that learn harm."""
        return self.texts([normalise(t) for t in identity.mentions()])


def extend(folder: Path, data: Path, max_rows: int | None = None, say: Callable[[str], None] = print) -> ModelCard:
    """Widen hostility's head and fit every probe on the artefact in `folder`; write it back with their heads and
    card entries."""
    from monitor.scoring.train import f1_threshold, platt

    features = Features(folder, data, max_rows)
    network, card = features.network, features.card
    project = identity.complement(features.texts, identity.DIRECTIONS)
    heads = network.heads.weight.detach().double().numpy(), network.heads.bias.detach().double().numpy()
    readout = network.readout
    if "hostility_blend" not in card.training:  # widened once, from the fine-tuned head; a rerun keeps it
        say("widening hostility's head to ToxiChat and the CAT posts ...")
        readout = _widen_hostility(features, project, heads, card)
    tuned = [i for i, d in enumerate(card.dimensions) if d not in PROBES]  # refitting replaces earlier probes
    weights, biases, record = [heads[0][tuned]], [heads[1][tuned]], {}
    card.dimensions = {d: c for d, c in card.dimensions.items() if d not in PROBES}
    for dimension, tasks in PROBES.items():
        say(f"fitting the {dimension} probe on {', '.join(tasks)} ...")
        train = _training_sets(features, dimension, tasks)
        x_val, y_val = features.split(VALIDATION[dimension], "val")
        model, c, auc = _best_probe([(x @ project, y, w) for x, y, w in train], x_val @ project, y_val)
        z = model.decision_function(x_val @ project)
        scale, shift = platt(z, y_val)
        threshold = f1_threshold(expit(scale * z + shift), y_val)
        card.dimensions[dimension] = DimensionCard(round(scale, 6), round(shift, 6), round(threshold, 6), list(tasks))
        weights.append(model.coef_ @ project)  # the projector is symmetric
        biases.append(model.intercept_)
        card.training["datasets"] |= {t: datasets.provenance(t) for t in tasks}  # type: ignore[operator]
        record[dimension] = {
            "C": c,
            "train_rows": {t: len(y) for t, (_, y, _) in zip([*tasks, "neutral_mentions"], train, strict=False)},
            "neutral_mentions_weight": MENTIONS_WEIGHT.get(dimension, 0.0),
            "val": VALIDATION[dimension],
            "val_roc_auc": round(auc, 4),
        }
    out = torch.nn.Linear(network.heads.in_features, len(card.dimensions))
    with torch.no_grad():
        out.weight.copy_(torch.from_numpy(np.concatenate(weights)))
        out.bias.copy_(torch.from_numpy(np.concatenate(biases)))
    save_heads(out, folder, readout)
    card.training["probes"] = record
    card.save(folder)
    return card


def _training_sets(
    features: Features, dimension: str, tasks: tuple[str, ...]
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """(features, labels, weight) of each of the dimension's train splits, and of the neutral mentions of groups
    where it has a MENTIONS_WEIGHT."""
    sets = [(*features.split(t, "train"), 1.0) for t in tasks]
    if dimension in MENTIONS_WEIGHT:
        neutral = features.mentions()
        sets.append((neutral, np.zeros(len(neutral)), MENTIONS_WEIGHT[dimension]))
    return sets


def _widen_hostility(
    features: Features, project: np.ndarray, heads: tuple[np.ndarray, np.ndarray], card: ModelCard
) -> Readout:
    """Replace hostility's row of `heads` and its card entry by the widened head (`hostility_blend`), in place;
    the readout that goes with that row."""
    row = list(card.dimensions).index("hostility")
    calibrate_on = card.training["hyperparameters"]["calibrate_on"]["hostility"]  # type: ignore[index]
    seed = int(card.training["seed"])  # type: ignore[call-overload]
    weight, bias, readout, card.dimensions["hostility"], card.training["hostility_blend"] = hostility_blend.fit(
        features, project, heads[0][row], heads[1][row], card.dimensions["hostility"], calibrate_on, seed
    )
    heads[0][row], heads[1][row] = weight, bias
    card.training["datasets"] |= {t: datasets.provenance(t) for t in hostility_blend.SETS}  # type: ignore[operator]
    return readout


def _capped(examples: list[datasets.Example], max_rows: int | None) -> list[datasets.Example]:
    """At most max_rows (a quick trial), half of them positive where there are enough: a regression needs both."""
    if max_rows is None:
        return examples
    positives = [e for e in examples if e.label > 0.5][: max_rows // 2]
    return positives + [e for e in examples if e.label <= 0.5][: max_rows - len(positives)]


def _best_probe(
    train: list[tuple[np.ndarray, np.ndarray, float]], x_val: np.ndarray, y_val: np.ndarray
) -> tuple[LogisticRegression, float, float]:
    """The logistic regression of `C_GRID` with the best validation ROC-AUC (the first of equals); each training
    set (features, labels, weight) weighs its weight in total."""
    x = np.concatenate([f for f, _, _ in train])
    y = np.concatenate([labels for _, labels, _ in train])
    w = np.concatenate([np.full(len(labels), weight / len(labels)) for _, labels, weight in train])
    w *= len(y) / w.sum()
    best: tuple[LogisticRegression, float, float] | None = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=5000).fit(x, y, sample_weight=w)
        auc = roc_auc(y_val, model.decision_function(x_val))
        if best is None or auc > best[2]:
            best = (model, c, auc)
    assert best is not None
    return best
