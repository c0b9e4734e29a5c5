"""`civmon eval`: measured accuracy on held-out test splits, side by side with offline peers,
and an identity-term bias audit.

Metrics per dataset and dimension, on the test split only (never trained on, see
`monitor.scoring.datasets`): ROC-AUC, PR-AUC (average precision), F1 at the model's
shipped threshold, expected calibration error (10 equal-width bins) for binary labels;
Spearman's rank correlation for continuous ones (politeness). The headline figure (ROC-AUC,
or Spearman) comes with a 95% percentile-bootstrap interval over the test rows (seeded, so
a rerun prints the same): a test split of a few hundred rows measures a model only so
exactly. Texts go through the same preparation as the store's comments; rows a scorer
declines (e.g. flagged non-English) are reported as coverage and left out of that scorer's metrics.

Peers (optional extra `civmon[eval]`): VADER (hostility = (1 - compound) / 2, warmth =
(1 + compound) / 2) and alt-profanity-check (hostility = probability of profanity). Neither has
an insult or identity-attack score: their hostility stands in for both, the best each can offer.
On the CAT posts, Perspective API's own published TOXICITY is a third reference.

Continuity with Perspective (`continuity`): on CAT's test posts, how closely civmon's TOXICITY (its score on
Perspective's scale, `monitor.scoring.perspective`) and hostility rank as Perspective's TOXICITY does (Spearman), and
at Perspective's thresholds 0.5 / 0.7 / 0.8 / 0.9 how often civmon's TOXICITY falls on the same side.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.stats import bootstrap, spearmanr
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from monitor.scoring import datasets
from monitor.scoring.base import Scorer, perspective_toxicity
from monitor.scoring.perspective import agreement
from monitor.scoring.results import score_texts

CALIBRATION_BINS = 10
BOOTSTRAP_RESAMPLES = 1000
ScoreFn = Callable[[list[str]], list[dict[str, float] | None]]
HARMS = ("hostility", "insult", "identity_attack")  # what a peer's one hostility score stands in for
PERSPECTIVE = "Perspective API (published scores)"
PERSPECTIVE_TASKS = ("cat_gn", "cat_gc")  # the crowd-labelled sets its scores were published for


@dataclass
class Row:
    model: str
    task: str
    dimension: str
    n: int
    coverage: float  # share of the split the model scored
    roc_auc: float | None = None
    pr_auc: float | None = None
    f1: float | None = None
    ece: float | None = None
    spearman: float | None = None
    ci95: tuple[float, float] | None = None  # of roc_auc, or of spearman for continuous labels


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray) -> float:
    bins = np.minimum((scores * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    error = 0.0
    for b in range(CALIBRATION_BINS):
        inside = bins == b
        if inside.any():
            error += inside.mean() * abs(labels[inside].mean() - scores[inside].mean())
    return float(error)


def scorer_function(scorer: Scorer) -> ScoreFn:
    """Scores of texts; a list of texts scored before is answered from memory (eval and continuity share sets)."""
    cached = functools.cache(lambda texts: [r.scores for r in score_texts(scorer, texts)])
    return lambda texts: cached(tuple(texts))


def perspective_reference() -> ScoreFn:
    """Perspective's published TOXICITY of the CAT test posts as hostility, for `PERSPECTIVE_TASKS`."""
    published = {e.text: e.label for e in datasets.load("cat_perspective", "test")}
    return lambda texts: [{"hostility": published[t]} for t in texts]


def published_pairs(
    score: ScoreFn, split: str, data: Path | None = None, limit: int | None = None
) -> tuple[list[dict[str, float]], np.ndarray]:
    """The scores and Perspective's published TOXICITY of one split's CAT posts (the first `limit`), where scored."""
    examples = datasets.load("cat_perspective", split, data)[:limit]
    outputs = score([e.text for e in examples])
    pairs = [(o, e.label) for o, e in zip(outputs, examples, strict=True) if o and "hostility" in o]
    return [o for o, _ in pairs], np.array([t for _, t in pairs])


def continuity(score: ScoreFn) -> dict[str, object] | None:
    """On CAT's test posts: Spearman with Perspective's TOXICITY of civmon's TOXICITY (`base.perspective_toxicity`)
    and of hostility, and the agreement table of civmon's TOXICITY; None where the model scored none of them."""
    scores, published = published_pairs(score, "test")
    if not scores:
        return None
    toxicity = np.array([perspective_toxicity(s) for s in scores], dtype=float)
    hostility = np.array([s["hostility"] for s in scores])
    return {
        "n": len(scores),
        "spearman": spearman(published, toxicity),
        "ci95": confidence_interval(spearman, published, toxicity),
        "hostility_spearman": spearman(published, hostility),
        "hostility_ci95": confidence_interval(spearman, published, hostility),
        "agreement": agreement(toxicity, published),
    }


def peer_functions() -> dict[str, ScoreFn]:
    """The offline peers that are installed (pip install 'civmon[eval]')."""
    peers: dict[str, ScoreFn] = {}
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        vader = SentimentIntensityAnalyzer()

        def vader_scores(texts: list[str]) -> list[dict[str, float] | None]:
            compound = [vader.polarity_scores(t)["compound"] for t in texts]
            return [{**dict.fromkeys(HARMS, (1 - c) / 2), "warmth": (1 + c) / 2} for c in compound]

        peers["VADER"] = vader_scores
    except ImportError:
        pass
    try:
        from profanity_check import predict_prob

        peers["alt-profanity-check"] = lambda texts: [dict.fromkeys(HARMS, float(p)) for p in predict_prob(texts)]
    except ImportError:
        pass
    return peers


def evaluate(
    models: dict[str, tuple[ScoreFn, dict[str, float]]],
    tasks: Sequence[str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Row]:
    """Rows for every (model, test task) where the model provides the task's dimension.
    `models`: name -> (scoring function, thresholds per dimension)."""
    rows = []
    scored: dict[tuple[str, int], list[dict[str, float] | None]] = {}  # tasks that share texts are scored once
    for task in tasks or [t for t, info in datasets.TASKS.items() if "test" in info.splits]:
        info = datasets.TASKS[task]
        examples = datasets.load(task, "test")
        texts = [e.text for e in examples]
        labels = np.array([e.label for e in examples], dtype=float)
        for name, (score, thresholds) in models.items():
            progress(f"{name} on {task} ({len(texts):,} texts)")
            key = (name, hash(tuple(texts)))
            if key not in scored:
                scored[key] = score(texts)
            outputs = scored[key]
            if not any(o and info.dimension in o for o in outputs):
                continue
            rows.append(_metrics(name, task, info, labels, outputs, thresholds.get(info.dimension, 0.5)))
    return rows


def _metrics(
    name: str,
    task: str,
    info: datasets.TaskInfo,
    labels: np.ndarray,
    outputs: list[dict[str, float] | None],
    threshold: float,
) -> Row:
    kept = [i for i, o in enumerate(outputs) if o and info.dimension in o]
    y = labels[kept]
    s = np.array([outputs[i][info.dimension] for i in kept])  # type: ignore[index]
    row = Row(name, task, info.dimension, len(kept), len(kept) / len(labels))
    if info.kind != "binary":  # a continuous score or a soft probability: ranked against the label
        rho = spearman(y, s)
        row.spearman = None if np.isnan(rho) else rho  # constant scores rank nothing
        row.ci95 = confidence_interval(spearman, y, s)
    elif 0 < y.sum() < len(y):
        row.roc_auc = roc_auc(y, s)
        row.ci95 = confidence_interval(roc_auc, y, s)
        row.pr_auc = float(average_precision_score(y, s))
        row.f1 = float(f1_score(y, s >= threshold))
        row.ece = expected_calibration_error(y, s)
    return row


def confidence_interval(
    statistic: Callable[[np.ndarray, np.ndarray], float], y: np.ndarray, s: np.ndarray
) -> tuple[float, float] | None:
    """95% percentile-bootstrap interval of statistic(labels, scores), resampling test rows in pairs.
    Resamples where it is undefined (one class only, constant scores) are left out; where most are,
    there is no interval to give."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns of the undefined resamples handled here
        result = bootstrap(
            (y, s),
            statistic,
            paired=True,
            vectorized=False,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="percentile",
            random_state=np.random.default_rng(0),
        )
    defined = result.bootstrap_distribution[np.isfinite(result.bootstrap_distribution)]
    if defined.size < BOOTSTRAP_RESAMPLES / 2:
        return None
    low, high = np.percentile(defined, [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC-AUC of scores s against binary labels y; nan where y lacks a class (a small resample may)."""
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def spearman(y: np.ndarray, s: np.ndarray) -> float:
    """Spearman's rank correlation of scores s with continuous labels y."""
    return float(spearmanr(s, y).statistic)


def write_report(
    rows: list[Row],
    bias: list[dict[str, object]],
    folder: Path,
    audited: str | None = None,
    perspective: dict[str, object] | None = None,
) -> tuple[Path, Path]:
    """eval.json and eval.md; `audited`: the model the bias audit and the continuity figures scored."""
    folder.mkdir(parents=True, exist_ok=True)
    as_json = folder / "eval.json"
    report = {
        "metrics": [asdict(r) for r in rows],
        "bias_audit": bias,
        "bias_audit_model": audited,
        "perspective_continuity": perspective,
    }
    # NaN is not JSON: an undefined kappa (no post above a threshold on either side) is written as null
    as_json.write_text(json.dumps(_nulls(report), indent=2, allow_nan=False) + "\n")
    as_markdown = folder / "eval.md"
    as_markdown.write_text(markdown(rows, bias, audited, perspective))
    return as_json, as_markdown


def _nulls(value: object) -> object:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nulls(v) for v in value]
    return value


def figure_cell(value: float | None) -> str:
    """A figure as printed; an undefined one (None, or NaN such as a kappa with nothing above) as a dash."""
    return "—" if value is None or not np.isfinite(value) else f"{value:.3f}"


def interval_cell(interval: tuple[float, float] | None) -> str:
    return "—" if interval is None else f"{interval[0]:.3f}–{interval[1]:.3f}"


def cells(row: Row) -> list[str]:
    """A row's figures as printed: ROC-AUC, its interval, PR-AUC, F1, ECE, Spearman."""
    figures = (row.pr_auc, row.f1, row.ece, row.spearman)
    return [figure_cell(row.roc_auc), interval_cell(row.ci95), *map(figure_cell, figures)]


def markdown(
    rows: list[Row],
    bias: list[dict[str, object]],
    audited: str | None = None,
    perspective: dict[str, object] | None = None,
) -> str:
    lines = [
        "# civmon eval",
        "",
        "Held-out test splits only. ROC-AUC, PR-AUC, F1 at the model's threshold, "
        "calibration error (ECE); Spearman for continuous labels. 95% CI: percentile bootstrap "
        f"({BOOTSTRAP_RESAMPLES:,} resamples of the test rows) of ROC-AUC, or of Spearman.",
        "",
        "| task | dimension | model | n | coverage | ROC-AUC | 95% CI | PR-AUC | F1 | ECE | Spearman |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r.task, r.dimension, r.model)):
        lines.append(f"| {r.task} | {r.dimension} | {r.model} | {r.n:,} | {r.coverage:.0%} | {' | '.join(cells(r))} |")
    lines += [
        "",
        "## Identity-term bias audit" + (f" of {audited}" if audited else ""),
        "",
        "Mean score of the same template sentences across identity groups; spread = highest minus "
        "lowest group mean within a category (0 is unbiased).",
        "",
        "| dimension | category | neutral spread | hostile spread | most flagged group (neutral) | its neutral mean |",
        "|---|---|---:|---:|---|---:|",
    ]
    for b in bias:
        lines.append(
            f"| {b['dimension']} | {b['category']} | {b['neutral_spread']:.3f} | {b['hostile_spread']:.3f} | "
            f"{b['worst_group']} | {b['worst_neutral']:.3f} |"
        )
    if perspective:
        lines += continuity_lines(perspective)
    return "\n".join(lines) + "\n"


def continuity_lines(perspective: dict[str, object]) -> list[str]:
    """The continuity section: Spearman with Perspective's TOXICITY and the agreement table."""
    lines = [
        "",
        "## Continuity with Perspective's TOXICITY (CAT test posts)",
        "",
        f"Spearman with Perspective's published TOXICITY, n = {perspective['n']:,}: civmon's TOXICITY "  # type: ignore[arg-type]
        f"{figure_cell(perspective['spearman'])} (95% CI {interval_cell(perspective['ci95'])}), hostility "  # type: ignore[arg-type]
        f"{figure_cell(perspective['hostility_spearman'])} (95% CI {interval_cell(perspective['hostility_ci95'])}). "  # type: ignore[arg-type]
        "At each Perspective threshold: posts Perspective puts at or above it, posts civmon's TOXICITY puts there, "
        "both, the share on the same side, and Cohen's kappa (agreement beyond chance).",
        "",
        "| threshold | Perspective above | civmon above | both | agreement | kappa |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for a in perspective["agreement"]:  # type: ignore[attr-defined]
        lines.append(f"| {' | '.join(agreement_cells(a))} |")
    return lines


def agreement_cells(a: dict[str, float | int]) -> list[str]:
    """One threshold's agreement figures as printed: threshold, the three counts, agreement, kappa."""
    counts = (f"{a[k]:,}" for k in ("perspective_above", "civmon_above", "both_above"))
    return [f"{a['threshold']:g}", *counts, f"{a['agreement']:.1%}", figure_cell(a["kappa"])]
