"""Would training respect on Stack Exchange lift it there? A probe on the shipped model's features.

Ridge regressions on the pooled encoder features of the shipped model, fitted on Wikipedia
requests, on Stack Exchange requests, or on both (train buckets 2-9 of each, as
`monitor.scoring.datasets` splits), each scored by Spearman on the held-out buckets. Prints
one line per fit. About two minutes on 2 CPU cores.

    python scripts/respect_domain_probe.py
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.linear_model import RidgeCV

from monitor.scoring import datasets
from monitor.scoring.alliance import DEFAULT_MODEL
from monitor.scoring.network import HEADS_DIR, load_artefact, mean_pool
from monitor.scoring.text import normalise


def features(texts: list[str]) -> np.ndarray:
    tokenizer, network, card = _shipped()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            batch = tokenizer(
                [normalise(t) for t in texts[start : start + 64]],
                padding=True,
                truncation=True,
                max_length=card.max_length,
                return_tensors="pt",
            )
            hidden = network.encoder(**batch).last_hidden_state
            out.append(mean_pool(hidden, batch["attention_mask"]).numpy())
    return np.concatenate(out)


@functools.cache
def _shipped():  # type: ignore[no-untyped-def]
    return load_artefact(HEADS_DIR / DEFAULT_MODEL)


def main() -> None:
    wikipedia = {s: datasets.load("politeness_wikipedia", s) for s in ("train", "test")}
    stack = datasets.load("politeness_stackexchange", "test")  # every row; split here by the same buckets
    buckets = np.array([datasets.bucket(e.text.strip()) for e in stack])
    x = {"wikipedia " + s: features([e.text for e in rows]) for s, rows in wikipedia.items()}
    y = {"wikipedia " + s: np.array([e.label for e in rows]) for s, rows in wikipedia.items()}
    x_stack, y_stack = features([e.text for e in stack]), np.array([e.label for e in stack])
    x["stack exchange train"], y["stack exchange train"] = x_stack[buckets >= 2], y_stack[buckets >= 2]
    x["stack exchange test"], y["stack exchange test"] = x_stack[buckets == 0], y_stack[buckets == 0]
    fits = {"wikipedia": ["wikipedia train"], "stack exchange": ["stack exchange train"]}
    fits["both"] = fits["wikipedia"] + fits["stack exchange"]
    for name, parts in fits.items():
        ridge = RidgeCV(alphas=np.logspace(-2, 3, 12)).fit(
            np.concatenate([x[p] for p in parts]), np.concatenate([y[p] for p in parts])
        )
        scores = {t: spearmanr(ridge.predict(x[t]), y[t]).statistic for t in ("wikipedia test", "stack exchange test")}
        print(f"fitted on {name:<15} " + "  ".join(f"{t} {v:.3f}" for t, v in scores.items()))


if __name__ == "__main__":
    main()
