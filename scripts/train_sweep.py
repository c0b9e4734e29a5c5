"""Train several variants of the alliance model side by side and rank them by validation.

    python scripts/train_sweep.py VARIANTS.json OUT [--workers 4] [--device cuda] [--keep 3]
    python scripts/train_sweep.py VARIANTS.json OUT --folds 5 [--baseline NAME] [--workers 6]

VARIANTS.json maps a variant's name to the keyword arguments of `monitor.scoring.train.train`
(seed, epochs and any hyperparameter). Each variant is trained into OUT/<name>; OUT/sweep.jsonl
gets one line per variant (its validation record and, for information, test figures through the
shipped scoring path); the table printed at the end is ranked by the validation selection score
alone, which is how `train.DEFAULTS` are chosen: test splits never choose. Started again with
the same OUT, a sweep skips the runs OUT/sweep.jsonl already holds (after a crash, or to add
variants to a comparison). `--keep N` packs the N best artefacts into OUT/best.tar.gz. Chunks
for the test figures are sized to each variant's window (90 words per 128 tokens), as the
scorer does.

`--folds K` cross-validates instead: each variant is trained K times, validating incivility on
fold k of its train and val rows (`train(fold=(k, K))`), so settings are compared on all
3,961 non-test incivility rows rather than on a val split with 52 uncivil comments. The table
gives each variant's mean validation figures over the folds and, fold by fold, its difference
from the baseline variant with a 95% interval. Folds share most of their training rows, so a
plain t-interval over them is too narrow; the interval uses Nadeau & Bengio's corrected
variance (Machine Learning 52, 2003): the sample variance times 1/K + 1/(K - 1). No test
figures are computed: fold models are for choosing settings, never for shipping.

Every run is also put through `civmon eval`'s identity-term bias audit (the spread of hostility
across identity groups on neutral sentences, torch runtime): a setting that gains accuracy by
learning that naming a group is hostile shows here, before a model is trained to ship. With
`--folds` the table gives each category's mean and highest spread over the folds, of the fine-tuned
heads: fold runs stop before `train.finish` widens hostility and fits the probes.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import sys
import tarfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np
from scipy import stats

from monitor.scoring import datasets
from monitor.scoring.train import FOLDED_SOURCE

TEST_TASKS = tuple(datasets.TASKS)  # every task has a test split
COMPARED = ("selection", f"{FOLDED_SOURCE}_roc_auc")  # the figures compared with the baseline, fold by fold


def _test_figures(folder: Path, device: str) -> dict[str, float]:
    """Each test split's headline figure (ROC-AUC, or Spearman) through `civmon eval`'s own path."""
    from monitor.scoring.alliance import AllianceScorer
    from monitor.scoring.evaluate import evaluate, scorer_function

    scorer = AllianceScorer(folder, device=device)
    rows = evaluate({scorer.name: (scorer_function(scorer), dict(scorer.thresholds))}, tasks=TEST_TASKS)
    figures = {r.task: r.roc_auc if r.roc_auc is not None else r.spearman for r in rows}
    return {task: round(figure, 4) for task, figure in figures.items() if figure is not None}  # undefined: left out


def _neutral_spreads(folder: Path, device: str) -> dict[str, float]:
    """`civmon eval`'s identity-term audit: per category, the spread of hostility on neutral sentences.
    Recorded for every run, so a setting that raises bias shows before a model is trained to ship."""
    from monitor.scoring.alliance import AllianceScorer
    from monitor.scoring.bias import audit_scorer

    report = audit_scorer(AllianceScorer(folder, device=device, runtime="torch"))
    hostility = (r for r in report if r["dimension"] == "hostility")  # the figure the sweep compares
    return {str(r["category"]): round(float(r["neutral_spread"]), 4) for r in hostility}  # type: ignore[arg-type]


Job = tuple[str, dict, tuple[int, int] | None, Path, str]  # variant, train() arguments, fold, out, device


def _run(job: Job) -> dict:
    import torch

    from monitor.scoring.train import train

    name, kwargs, fold, out, device = job
    run = name if fold is None else f"{name}.fold{fold[0]}"
    torch.set_num_threads(2)
    started = time.monotonic()
    with (out / f"{run}.log").open("w") as log:
        try:
            say = functools.partial(print, file=log, flush=True)
            card = train(out / run, device=device, fold=fold, progress=say, **kwargs)
        except Exception as error:  # one broken variant must not end the sweep
            print(f"failed: {error!r}", file=log)
            return {**_identity(job), "error": repr(error)}
        test = _measure(lambda: _test_figures(out / run, device), "test figures", log) if fold is None else None
        bias = _measure(lambda: _neutral_spreads(out / run, device), "bias audit", log)
    return {
        **_identity(job),
        "validation": card.training["validation"],
        "chosen_step": card.training["chosen_step"],
        "steps": card.training["steps"],
        "test": test,
        "bias": bias,
        "wall_s": round(time.monotonic() - started, 1),
    }


def _measure(measurement: Callable[[], dict[str, float]], what: str, log: TextIO) -> dict[str, float] | None:
    """A figure of a trained run; should it fail, the run and its validation record are kept all the same."""
    try:
        return measurement()
    except Exception as error:
        print(f"{what} failed: {error!r}", file=log)
        return None


def _identity(job: Job) -> dict:
    name, kwargs, fold, _, _ = job
    return {"name": name, "kwargs": kwargs, "fold": fold and fold[0], "folds": fold and fold[1]}


def _key(result: dict) -> str:
    return json.dumps([result[k] for k in ("name", "kwargs", "fold", "folds")], sort_keys=True)


def _finished(sink: Path) -> dict[str, dict]:
    """Results already in OUT/sweep.jsonl, by job: a sweep started again in its folder resumes.
    A line cut short by the crash that ended the last sweep is skipped (that job runs again), and
    ended, so that the results appended next start on a line of their own."""
    text = sink.read_text() if sink.exists() else ""
    if text and not text.endswith("\n"):
        with sink.open("a") as out:
            out.write("\n")
    done = {}
    for number, line in enumerate(text.splitlines(), 1):
        try:
            result = json.loads(line)
        except json.JSONDecodeError:
            print(f"{sink}:{number}: not a whole result, run again", file=sys.stderr)
            continue
        if "validation" in result:
            done[_key(result)] = result
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--keep", type=int, default=0)
    parser.add_argument("--folds", type=int, default=0, help="cross-validate over this many incivility folds")
    parser.add_argument("--baseline", help="the variant others are compared with (default: the first)")
    args = parser.parse_args()
    if args.folds < 0 or args.folds == 1:
        parser.error("--folds needs at least 2 folds (or 0: no cross-validation)")
    if args.keep and args.folds:
        parser.error("--keep keeps the best models of a plain sweep; cross-validation folds are not models to keep")
    variants: dict[str, dict] = json.loads(args.variants.read_text())
    if args.baseline is not None and args.baseline not in variants:
        parser.error(f"--baseline {args.baseline!r} is not a variant in {args.variants}: one of: {', '.join(variants)}")
    args.out.mkdir(parents=True, exist_ok=True)
    folds = [(k, args.folds) for k in range(args.folds)] if args.folds else [None]
    # fold by fold, so that a sweep cut short still compares every variant on the folds it finished
    jobs = [(name, kwargs, fold, args.out, args.device) for fold in folds for name, kwargs in variants.items()]
    results = _execute(jobs, args.out / "sweep.jsonl", args.workers)
    if args.folds:
        _print_cross_validation(cross_validated(results, args.baseline or next(iter(variants)), args.folds))
        return
    ranked = sorted((r for r in results if "validation" in r), key=lambda r: -r["validation"]["selection"])
    _print_table(ranked)
    if args.keep:
        with tarfile.open(args.out / "best.tar.gz", "w:gz") as tar:
            for result in ranked[: args.keep]:
                tar.add(args.out / result["name"], arcname=result["name"])


def _execute(jobs: list[Job], sink: Path, workers: int) -> list[dict]:
    """Every job's result: those already in `sink` as they are, the others trained (and appended)."""
    finished = _finished(sink)
    keys = [_key(_identity(j)) for j in jobs]
    results = [finished[k] for k in keys if k in finished]
    pending = [j for j, k in zip(jobs, keys, strict=True) if k not in finished]
    if results:
        print(f"resuming: {len(results)} of {len(jobs)} runs already in {sink}", flush=True)
    with multiprocessing.get_context("spawn").Pool(workers) as pool, sink.open("a") as out:
        for result in pool.imap_unordered(_run, pending):
            results.append(result)
            out.write(json.dumps(result) + "\n")
            out.flush()
            fold = "" if result["fold"] is None else f" fold {result['fold']}"
            outcome = result.get("validation", {}).get("selection", result.get("error"))
            print(f"[{len(results)}/{len(jobs)}] {result['name']}{fold}: {outcome}", flush=True)
    return results


def cross_validated(results: list[dict], baseline: str, folds: int) -> list[dict]:
    """Per variant: mean validation figures over its folds, and its difference from the baseline
    on the folds both completed (mean and Nadeau-Bengio corrected 95% interval), best first."""
    by_variant: dict[str, dict[int, dict]] = defaultdict(dict)
    spreads: dict[str, list[dict[str, float]]] = defaultdict(list)
    for result in results:
        if "validation" in result:
            by_variant[result["name"]][result["fold"]] = result["validation"]
            spreads[result["name"]] += [result["bias"]] if result.get("bias") else []
    base = by_variant.get(baseline, {})
    summary = []
    for name, validation in by_variant.items():
        keys = next(iter(validation.values())).keys()
        mean = {k: float(np.mean([v[k] for v in validation.values() if v[k] is not None] or [np.nan])) for k in keys}
        shared = sorted(set(validation) & set(base))
        difference = {k: _paired(validation, base, shared, k, folds) for k in COMPARED if name != baseline}
        bias = _spread_summary(spreads[name])
        summary.append({"name": name, "folds": len(validation), "mean": mean, "difference": difference, "bias": bias})
    return sorted(summary, key=lambda s: -s["mean"]["selection"])


def _spread_summary(spreads: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Per category: the mean and highest neutral spread over the runs that were audited."""
    categories = dict.fromkeys(c for b in spreads for c in b)
    return {c: (float(np.mean(v := [b[c] for b in spreads if c in b])), max(v)) for c in categories}


def _paired(runs: dict, base: dict, shared: list[int], key: str, folds: int) -> tuple[float, float, float] | None:
    differences = [runs[f][key] - base[f][key] for f in shared if runs[f][key] is not None and base[f][key] is not None]
    if len(differences) < 2:
        return None
    mean = float(np.mean(differences))
    corrected = np.std(differences, ddof=1) * np.sqrt(1 / len(differences) + 1 / (folds - 1))
    if corrected == 0:  # the same difference on every fold (figures are rounded): no spread to widen
        return mean, mean, mean
    low, high = stats.t.interval(0.95, len(differences) - 1, loc=mean, scale=corrected)
    return mean, float(low), float(high)


def _print_cross_validation(summary: list[dict]) -> None:
    keys = [k for k in summary[0]["mean"] if k != "selection"] if summary else []
    print("\ncross-validated: mean validation figures over folds, best first")
    print("name".ljust(24), "folds", "select", *(_short(k).rjust(10) for k in keys))
    for s in summary:
        m = s["mean"]
        print(s["name"].ljust(24), f"{s['folds']:5d}", f"{m['selection']:.4f}", *(f"{m[k]:10.4f}" for k in keys))
    print("\ndifference from the baseline, fold by fold (95% interval, Nadeau-Bengio corrected)")
    for s in summary:
        cells = [f"{_short(k)} {_difference(d)}" for k, d in s["difference"].items()]
        print(s["name"].ljust(24), "   ".join(cells) or "(baseline)")
    title = "identity-term bias: neutral spread, mean (highest) over folds"
    _print_bias({s["name"]: s["bias"] for s in summary}, title)


def _print_bias(by_name: dict[str, dict], title: str) -> None:
    """Per variant and identity category, the neutral-sentence spread: a figure, or a (mean, highest) pair."""
    categories = list(dict.fromkeys(c for bias in by_name.values() for c in bias))
    if not categories:
        return
    print(f"\n{title}")
    print("name".ljust(24), *(c[:13].rjust(13) for c in categories))
    for name, bias in by_name.items():
        print(name.ljust(24), *(_spread(bias.get(c)).rjust(13) for c in categories))


def _spread(value: float | tuple[float, float] | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else "{:.3f} ({:.3f})".format(*value)


def _difference(d: tuple[float, float, float] | None) -> str:
    return "n/a" if d is None else f"{d[0]:+.4f} [{d[1]:+.4f}, {d[2]:+.4f}]"


SHORT = {
    "selection": "select",
    "goemotions_hostile": "ge-hostile",
    "goemotions_warmth": "ge-warmth",
    "politeness_wikipedia": "polite-wp",
    "politeness_stackexchange": "polite-se",
}


def _short(key: str) -> str:
    task = key.removesuffix("_roc_auc").removesuffix("_spearman")
    return SHORT.get(task, task)[:10]


def _print_table(ranked: list[dict]) -> None:
    val_keys = [k for k in ranked[0]["validation"] if k != "selection"] if ranked else []
    print("\nranked by validation selection (test figures for information only)")
    print("name".ljust(24), "select", *(_short(k).rjust(10) for k in val_keys))
    for r in ranked:
        v = r["validation"]
        print(r["name"].ljust(24), f"{v['selection']:.4f}", *(f"{v[k] or float('nan'):10.4f}" for k in val_keys))
    print("\n" + "test (score path)".ljust(24), *(_short(t).rjust(10) for t in TEST_TASKS))
    for r in ranked:
        test = r["test"] or {}
        print(r["name"].ljust(24), *(f"{test.get(t, float('nan')):10.4f}" for t in TEST_TASKS), f"{r['wall_s']:7.0f}s")
    _print_bias({r["name"]: r.get("bias") or {} for r in ranked}, "identity-term bias: neutral spread")


if __name__ == "__main__":
    main()
