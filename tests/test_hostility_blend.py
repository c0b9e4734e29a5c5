"""Hostility's widened head: the identity-term projection and the blend's choice, on features whose truth is known.

The features here are made up so that the right answer is known: one direction carries the label, another
is what identity terms move and, in the training rows, also follows the label (as group names follow
offence in ToxiChat or Davidson). The real network's run is in test_train.py's tiny run.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import expit

from monitor.scoring import hostility_blend, identity
from monitor.scoring.network import DimensionCard, Readout

IDENTITY, SIGNAL, MISSED, DIM = 0, 1, 2, 6  # MISSED: signal the tuned head does not read
CALIBRATE_ON = ["incivility", "goemotions_hostile"]


class MadeUpFeatures:
    """texts() and split() as `probes.Features` gives them, from a seeded generator."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)
        self.terms = {t: self.rng.normal(0, 3) for t in identity.TERMS}

    def texts(self, texts: list[str]) -> np.ndarray:
        out = self.rng.normal(0, 0.05, (len(texts), DIM))
        for row, text in zip(out, texts, strict=True):
            row[IDENTITY] += next(v for t, v in self.terms.items() if t in text.rstrip(".").split())  # the term
        return out

    def mentions(self) -> np.ndarray:
        return self.texts(identity.mentions())

    def split(self, task: str, split: str) -> tuple[np.ndarray, np.ndarray]:
        assert split in ("train", "val"), f"the blend read the {split} split of {task}"  # test splits never
        n = 600
        y = (self.rng.random(n) < 0.3).astype(float)
        x = self.rng.normal(0, 1, (n, DIM))
        x[:, SIGNAL] += 1.5 * y
        x[:, MISSED] += 1.5 * y
        if split == "train":
            x[:, IDENTITY] += 3 * y  # spurious in training only: naming a group is not hostile
        if task == "cat_perspective":  # Perspective's own scores follow group names too, in training
            return x, expit(x[:, SIGNAL] + x[:, MISSED] + (x[:, IDENTITY] if split == "train" else 0) - 3)
        return x, y


def test_the_identity_complement_removes_what_the_terms_move_and_nothing_else() -> None:
    project = identity.complement(MadeUpFeatures().texts, directions=1)
    assert np.allclose(project, project.T) and np.allclose(project @ project, project)
    assert abs(project[IDENTITY, IDENTITY]) < 0.01  # the term direction is gone
    assert project[SIGNAL, SIGNAL] > 0.99  # the label's direction is kept


def test_the_blend_keeps_the_tuned_sets_and_leaves_out_the_identity_direction() -> None:
    features = MadeUpFeatures()
    project = identity.complement(features.texts, directions=1)
    tuned = np.zeros(DIM)
    tuned[SIGNAL] = 1.0
    card = DimensionCard(trained_on=["incivility", "goemotions_hostile", "davidson"])
    weight, bias, readout, fitted, record = hostility_blend.fit(features, project, tuned, 0.0, card, CALIBRATE_ON)
    assert readout.out.out_features == 2  # hostility's part (the outputs folded into one), the continuity logit
    assert -1 <= record["val_continuity"] <= 1  # type: ignore[operator]

    def hostility(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return x @ weight + bias + readout(torch.tensor(x, dtype=torch.float32))[:, 0].double().numpy()

    # the readout learnt the label's direction the tuned head missed, not the identity direction that followed
    # the label in training
    x = np.random.default_rng(1).normal(0, 1, (500, DIM))
    rise = {d: float(np.mean(hostility(x + np.eye(DIM)[d]) - hostility(x))) for d in (IDENTITY, SIGNAL, MISSED)}
    assert rise[MISSED] > 0.3 * rise[SIGNAL] > 0 and abs(rise[IDENTITY]) < 0.05 * rise[SIGNAL], rise
    assert fitted.trained_on == ["incivility", "goemotions_hostile", "davidson", "toxichat", "cat"]
    for task in hostility_blend.KEPT:
        assert record["val_chosen"][task] >= record["val_tuned"][task] - hostility_blend.TOLERANCE  # type: ignore[index]
    assert fitted.scale > 0 and 0 < fitted.threshold < 1
    assert set(record["weights"]) == {"tuned", "perspective", "all_sets"}  # type: ignore[arg-type]
    point = record["grid_point"]  # (a, c) on the grid, not the folded weights
    assert point["perspective"] in hostility_blend.GRID[0] and point["all_sets"] in hostility_blend.GRID[1]  # type: ignore[index]


def test_a_blend_that_loses_a_kept_set_beyond_the_tolerance_is_not_chosen() -> None:
    tuned = {"incivility": 0.95, "goemotions_hostile": 0.88, "toxichat": 0.80}
    losing = {**tuned, "incivility": 0.95 - 2 * hostility_blend.TOLERANCE, "toxichat": 0.99}  # best mean of all
    within = {**tuned, "goemotions_hostile": 0.88 - hostility_blend.TOLERANCE / 2, "toxichat": 0.85}
    assert np.mean(list(losing.values())) > np.mean(list(within.values())) > np.mean(list(tuned.values()))
    assert hostility_blend.choose([tuned, losing, within]) == 2
    assert hostility_blend.choose([tuned, losing]) == 0  # the tuned head alone, where no blend keeps the sets


def test_folding_the_outputs_gives_their_weighted_sum() -> None:
    torch.manual_seed(0)
    readout = Readout(DIM, 8, outputs=2).eval()
    x = torch.randn(50, DIM)
    folded = hostility_blend._fold(readout, [0.7, -1.3])
    with torch.no_grad():
        want = readout(x) @ torch.tensor([0.7, -1.3])
        assert torch.allclose(folded(x)[:, 0], want, atol=1e-5)
        perspective = hostility_blend.OUTPUTS.index("perspective")
        assert torch.allclose(folded(x)[:, 1], readout(x)[:, perspective], atol=1e-6)  # the continuity logit
