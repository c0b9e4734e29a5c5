"""Scoring speed of the default model on real Reddit text (GoEmotions and incivility test
comments, their natural length mix), plain PyTorch fp32 against the fast path, with the
hostility ROC-AUC of each on the incivility test split (the fast path must not cost accuracy). Each path is
timed over several interleaved rounds and the median reported with the range: on a shared machine one timing
of the same model swung by a third."""

from __future__ import annotations

from collections.abc import Callable
from statistics import median

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from monitor.bench import timed
from monitor.scoring import datasets
from monitor.scoring.alliance import AllianceScorer

PLAIN = "plain PyTorch fp32"  # the baseline the others' speed-ups are relative to


def plain_fp32(scorer: AllianceScorer) -> Callable[[list[str]], np.ndarray]:
    """The straightforward path: batches in input order, padded to their longest text, fp32 PyTorch."""
    network, tokenizer, batch_size = scorer.network.cpu().eval(), scorer.tokenizer, scorer.batch_size
    column = scorer.dimensions.index("hostility")

    def run(texts: list[str]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = tokenizer(
                    texts[start : start + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=scorer.card.max_length,
                    return_tensors="pt",
                )
                out.append(network(batch["input_ids"], batch["attention_mask"])[:, column].numpy())
        return np.concatenate(out)

    return run


def fast(scorer: AllianceScorer) -> Callable[[list[str]], np.ndarray]:
    return lambda texts: np.array([s["hostility"] for s in scorer.score(texts)])


def report(limit: int, rounds: int) -> str:
    incivility = datasets.load("incivility", "test")
    incivility_texts, labels = [e.text for e in incivility], np.array([e.label for e in incivility])
    reddit = [e.text for e in datasets.load("goemotions_hostile", "test")] + incivility_texts
    texts = reddit[:limit] if limit else reddit
    words = np.array([len(t.split()) for t in texts])
    lines = [
        f"{len(texts):,} real Reddit comments (median {np.median(words):.0f} words, 90th percentile "
        f"{np.percentile(words, 90):.0f}); {torch.get_num_threads()} CPU threads"
    ]
    paths = {
        PLAIN: plain_fp32(AllianceScorer(device="cpu", runtime="torch")),
        "fp32, length-bucketed + deduplicated": fast(AllianceScorer(device="cpu", runtime="torch")),
        "ONNX Runtime int8, bucketed + deduplicated": fast(AllianceScorer(device="cpu", runtime="onnx-int8")),
    }
    # scoring the incivility split first also warms each path up (allocators, ONNX Runtime's kernels)
    aucs = {name: roc_auc_score(labels, run(incivility_texts)) for name, run in paths.items()}
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):  # interleaved, so a machine whose speed drifts slows every path alike
        for name, run in paths.items():
            seconds, _ = timed(lambda run=run: run(texts))
            rates[name].append(len(texts) / seconds)
    baseline = median(rates[PLAIN])
    for name, timings in rates.items():
        lines.append(
            f"  {name:<44} {median(timings):>7,.0f} comments/s  ({median(timings) / baseline:.1f}x; median of "
            f"{rounds}, {min(timings):,.0f}-{max(timings):,.0f})  hostility ROC-AUC on incivility test {aucs[name]:.4f}"
        )
    return "\n".join(lines)
