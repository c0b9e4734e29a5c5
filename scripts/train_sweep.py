"""Train several variants of the alliance model side by side and rank them by validation.

    python scripts/train_sweep.py VARIANTS.json OUT [--workers 4] [--device cuda] [--keep 3]

VARIANTS.json maps a variant's name to the keyword arguments of `monitor.scoring.train.train`
(seed, epochs and any hyperparameter). Each variant is trained into OUT/<name>; OUT/sweep.jsonl
gets one line per variant (its validation record and, for information, test figures through the
shipped scoring path); the table printed at the end is ranked by the validation selection score
alone, which is how `train.DEFAULTS` are chosen: test splits never choose. `--keep N` packs the
N best artefacts into OUT/best.tar.gz. Chunks for the test figures are sized to each variant's
window (90 words per 128 tokens), as the scorer does.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tarfile
import time
from pathlib import Path

from monitor.scoring import datasets

TEST_TASKS = tuple(datasets.TASKS)  # every task has a test split


def _test_figures(folder: Path, device: str) -> dict[str, float]:
    """Each test split's headline figure (ROC-AUC, or Spearman) through `civmon eval`'s own path."""
    from monitor.scoring.alliance import AllianceScorer
    from monitor.scoring.evaluate import evaluate, scorer_function

    scorer = AllianceScorer(folder, device=device)
    rows = evaluate({scorer.name: (scorer_function(scorer), dict(scorer.thresholds))}, tasks=TEST_TASKS)
    return {r.task: round(r.roc_auc if r.roc_auc is not None else r.spearman, 4) for r in rows}  # type: ignore[arg-type]


def _run(job: tuple[str, dict, Path, str]) -> dict:
    import torch

    from monitor.scoring.train import train

    name, kwargs, out, device = job
    torch.set_num_threads(2)
    started = time.monotonic()
    with (out / f"{name}.log").open("w") as log:
        try:
            card = train(out / name, device=device, progress=lambda m: print(m, file=log, flush=True), **kwargs)
            test = _test_figures(out / name, device)
        except Exception as error:  # one broken variant must not end the sweep
            print(f"failed: {error!r}", file=log)
            return {"name": name, "kwargs": kwargs, "error": repr(error)}
    return {
        "name": name,
        "kwargs": kwargs,
        "validation": card.training["validation"],
        "chosen_step": card.training["chosen_step"],
        "steps": card.training["steps"],
        "test": test,
        "wall_s": round(time.monotonic() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--keep", type=int, default=0)
    args = parser.parse_args()
    variants: dict[str, dict] = json.loads(args.variants.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(name, kwargs, args.out, args.device) for name, kwargs in variants.items()]
    results = []
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool, (args.out / "sweep.jsonl").open("a") as sink:
        for result in pool.imap_unordered(_run, jobs):
            results.append(result)
            sink.write(json.dumps(result) + "\n")
            sink.flush()
            print(
                f"[{len(results)}/{len(jobs)}] {result['name']}: "
                f"{result.get('validation', {}).get('selection', result.get('error'))}",
                flush=True,
            )
    ranked = sorted((r for r in results if "validation" in r), key=lambda r: -r["validation"]["selection"])
    _print_table(ranked)
    if args.keep:
        with tarfile.open(args.out / "best.tar.gz", "w:gz") as tar:
            for result in ranked[: args.keep]:
                tar.add(args.out / result["name"], arcname=result["name"])


SHORT = {
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
        print(r["name"].ljust(24), *(f"{r['test'][t]:10.4f}" for t in TEST_TASKS), f"{r['wall_s']:7.0f}s")


if __name__ == "__main__":
    main()
