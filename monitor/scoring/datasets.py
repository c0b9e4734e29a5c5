"""Labelled comment sets for training and evaluating the scoring model, with fixed splits.

The data is not part of the project: it lies in `../shared/data` from the project root
(or wherever $CIVMON_SHARED_DATA points), one folder per set, each with its PROVENANCE.md
and license. `load(task, split)` reads one split of one task as a list of `Example`s.
Every rule below is deterministic (no random numbers: hash buckets are SHA-256 of the
cleaned text), so every machine and every run sees exactly the same rows.

Tasks and splits
----------------
incivility (hostility, binary; reddit-incivility-davidson2020, BSD-3-Clause)
    label 1 = uncivil. test = the given `incivility_coded_0302.test.csv`; the given
    `.train.csv` is divided by hash bucket: val = bucket 0 (about 10%), train = buckets 1-9.
goemotions_hostile / goemotions_warmth (hostility / warmth, binary; goemotions, Apache-2.0)
    the given train.tsv / dev.tsv / test.tsv are train / val / test. hostile = any of
    anger, annoyance, disapproval, disgust; warmth = any of admiration, approval, caring,
    gratitude. Names stay masked as [NAME]. Both tasks share the same rows.
davidson (hostility, binary; davidson-hate-offensive, MIT)
    label 1 = majority class hate speech or offensive, 0 = neither. No split is given:
    bucket 0 = test, bucket 1 = val, buckets 2-9 = train (80/10/10).
politeness_wikipedia (respect, continuous; stanford-politeness, research data)
    label = the corpus' normalized politeness score (z-scored; > 0 polite). bucket 0 = test,
    bucket 1 = val, buckets 2-9 = train. The corpus is for evaluation and research use: a
    model trained on it must say so in its card (Danescu-Niculescu-Mizil et al., ACL 2013).
politeness_stackexchange (respect, continuous; stanford-politeness): test only, every row.
hatexplain (hostility, binary; evaluation only, never trained on)
    test only: the posts listed under "test" in the original post_id_divisions.json;
    hatespeech or offensive = 1, normal = 0, rows without a majority label dropped.
jigsaw (hostility, binary; jigsaw-toxic-sample, evaluation only): test only, every row, toxic = 1.
davidson_hate (identity_attack, binary; the davidson rows): label 1 = majority class hate speech.
hatexplain_hate (identity_attack, binary; evaluation only): the hatexplain test rows, 1 = hatespeech,
    0 = offensive or normal.
toxichat / toxichat_insult / toxichat_identity (hostility / insult / identity_attack, binary;
    toxichat-reddit, CC BY-SA 4.0): every human turn of every thread (the machine-generated
    `final_*_response` turns are never read), Reddit's legacy escapes undone. hostility 1 = Offensive;
    insult 1 = Offensive and aimed at an individual (a redditor, the comment's author, a celebrity);
    identity_attack 1 = Offensive and aimed at a group (any other listed target). test = the given
    dev.jsonl; the given train.jsonl by hash bucket: val = bucket 0, train = buckets 1-9.
cat (hostility, probability; wikipedia-talk-context-cat, Apache-2.0 / CC BY-SA): the posts of gc.csv
    and gn.csv, label = the mean of the crowd's verdict (toxic 0/1) and Perspective API's published
    TOXICITY score: the crowd decides what is toxic, Perspective's score ranks the rest (the toxic
    posts are few: 210 of 19,996). It trains hostility's readout (`monitor.scoring.hostility_blend`;
    fine-tuning on it was tried and not shipped, the model card says why); `civmon eval` reports it beside
    cat_perspective. Buckets
    0-3 = test (40%: the toxic posts are so few that a 10% test would hold six of gn's), 4 = val,
    5-9 = train.
cat_gn / cat_gc (hostility, binary; test only): the crowd's verdict on cat's test posts of gn.csv
    (rated alone) and of gc.csv (rated with the parent post in view).
cat_perspective (hostility, probability): Perspective's published score of cat's posts, in cat's buckets.
    Its test rows measure how closely civmon's TOXICITY and hostility rank as Perspective does; its train rows
    fit the perspective output of hostility's readout (`monitor.scoring.hostility_blend`: the continuity logit)
    and its monotone mapping onto Perspective's scale (`monitor.scoring.perspective`), never the network.

Hash bucket: int(sha256(cleaned text, UTF-8).hexdigest(), 16) % 10. Cross-validation folds
(`fold`, for choosing training settings) divide by the same hash past its last decimal digit,
so folds do not line up with buckets.

Cleaning (before hashing and de-duplication): leading and trailing white space is
stripped and empty texts dropped. Incivility: runs of Mac-Roman mojibake (UTF-8 bytes
read as Mac-Roman, e.g. "‚Äô" for "’") are decoded back where they form valid UTF-8,
other text is left as is. Davidson: HTML entities unescaped, "RT @user:" markers removed,
other @mentions replaced by "@user", links by "link" (as the scorer does), white space collapsed.

Disjointness: within a split, copies of the same text become one example (binary label
= 1 where at least half the copies are positive; continuous label = mean of the copies).
Across splits, a text in test is removed from val and train, and a text in val is
removed from train, so no text is ever in two splits of one task.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import html
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from monitor.errors import CivmonError
from monitor.sources.dumps import unescape_legacy

DATA_ENV = "CIVMON_SHARED_DATA"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Example:
    text: str
    label: float  # 0/1 for binary tasks, a continuous score for politeness, a probability for cat


@dataclass(frozen=True)
class TaskInfo:
    dimension: str
    kind: Literal["binary", "continuous", "probability"]  # probability: a soft label in [0, 1]
    dataset: str  # folder under the data directory
    splits: tuple[str, ...]  # a set without a train split is for evaluation only: nothing can train on it
    description: str


HOSTILE_EMOTIONS = ("anger", "annoyance", "disapproval", "disgust")
WARM_EMOTIONS = ("admiration", "approval", "caring", "gratitude")
ALL_SPLITS = ("train", "val", "test")
# ToxiChat's offense targets that name one person; "Not in the list" is neither a person nor a group.
INDIVIDUAL_TARGETS = frozenset({"individual/redditor", "comment author", "celebrity/personality"})
UNNAMED_TARGET = "Not in the list"
CAT_TEST_BUCKETS = (0, 1, 2, 3)
CAT_VAL_BUCKET = 4
TOXICHAT_TURNS = "toxichat-reddit: every human turn of the threads (never the machine-generated replies)"

TASKS: dict[str, TaskInfo] = {
    "incivility": TaskInfo(
        "hostility",
        "binary",
        "reddit-incivility-davidson2020",
        ALL_SPLITS,
        "Reddit comments coded uncivil (1) or civil (0), Davidson, Sun & Wojcieszak 2020; "
        "test = given test file; val = hash bucket 0 of the given train file, train = buckets 1-9",
    ),
    "goemotions_hostile": TaskInfo(
        "hostility",
        "binary",
        "goemotions",
        ALL_SPLITS,
        "GoEmotions Reddit comments, 1 = any of " + ", ".join(HOSTILE_EMOTIONS) + "; given train / dev (= val) / test",
    ),
    "goemotions_warmth": TaskInfo(
        "warmth",
        "binary",
        "goemotions",
        ALL_SPLITS,
        "GoEmotions Reddit comments, 1 = any of " + ", ".join(WARM_EMOTIONS) + "; given train / dev (= val) / test",
    ),
    "davidson": TaskInfo(
        "hostility",
        "binary",
        "davidson-hate-offensive",
        ALL_SPLITS,
        "tweets, 1 = hate speech or offensive, 0 = neither (Davidson et al. 2017); "
        "hash buckets: 0 test, 1 val, 2-9 train",
    ),
    "politeness_wikipedia": TaskInfo(
        "respect",
        "continuous",
        "stanford-politeness",
        ALL_SPLITS,
        "Wikipedia talk-page requests, normalized politeness score (Danescu-Niculescu-Mizil et al. 2013; "
        "research data); hash buckets: 0 test, 1 val, 2-9 train",
    ),
    "politeness_stackexchange": TaskInfo(
        "respect",
        "continuous",
        "stanford-politeness",
        ("test",),
        "Stack Exchange requests, normalized politeness score (Danescu-Niculescu-Mizil et al. 2013); "
        "all rows, test only",
    ),
    "hatexplain": TaskInfo(
        "hostility",
        "binary",
        "hatexplain",
        ("test",),
        "Twitter and Gab posts (HateXplain), 1 = hatespeech or offensive, 0 = normal, no-majority dropped; "
        "the original test division; evaluation only",
    ),
    "jigsaw": TaskInfo(
        "hostility",
        "binary",
        "jigsaw-toxic-sample",
        ("test",),
        "101 Wikipedia comments from the Jigsaw toxic comment test set, 1 = toxic; evaluation only",
    ),
    "davidson_hate": TaskInfo(
        "identity_attack",
        "binary",
        "davidson-hate-offensive",
        ALL_SPLITS,
        "tweets, 1 = hate speech, 0 = offensive or neither (Davidson et al. 2017); the davidson rows and buckets",
    ),
    "hatexplain_hate": TaskInfo(
        "identity_attack",
        "binary",
        "hatexplain",
        ("test",),
        "Twitter and Gab posts (HateXplain), 1 = hatespeech, 0 = offensive or normal; the original test "
        "division; evaluation only",
    ),
    "toxichat": TaskInfo(
        "hostility",
        "binary",
        "toxichat-reddit",
        ALL_SPLITS,
        f"{TOXICHAT_TURNS}, 1 = Offensive (Baheti et al. 2021); test = given dev; val = hash bucket 0 of the "
        "given train, train = buckets 1-9",
    ),
    "toxichat_insult": TaskInfo(
        "insult",
        "binary",
        "toxichat-reddit",
        ALL_SPLITS,
        f"{TOXICHAT_TURNS}, 1 = Offensive towards an individual (a redditor, the comment's author, a celebrity); "
        "the toxichat splits",
    ),
    "toxichat_identity": TaskInfo(
        "identity_attack",
        "binary",
        "toxichat-reddit",
        ALL_SPLITS,
        f"{TOXICHAT_TURNS}, 1 = Offensive towards a group (women, LGBTQ folks, a religion, a region, ...); "
        "the toxichat splits",
    ),
    "cat": TaskInfo(
        "hostility",
        "probability",
        "wikipedia-talk-context-cat",
        ALL_SPLITS,
        "Wikipedia talk posts (Pavlopoulos et al. 2020, gc.csv and gn.csv), label = mean of the crowd's toxic "
        "verdict and Perspective API's published TOXICITY score; hash buckets: 0-3 test, 4 val, 5-9 train",
    ),
    "cat_gn": TaskInfo(
        "hostility",
        "binary",
        "wikipedia-talk-context-cat",
        ("test",),
        "cat's test posts from gn.csv (rated alone), 1 = toxic by the crowd",
    ),
    "cat_gc": TaskInfo(
        "hostility",
        "binary",
        "wikipedia-talk-context-cat",
        ("test",),
        "cat's test posts from gc.csv (rated with the parent in view), 1 = toxic by the crowd",
    ),
    "cat_perspective": TaskInfo(
        "hostility",
        "probability",
        "wikipedia-talk-context-cat",
        ALL_SPLITS,
        "cat's posts from both files, label = Perspective API's published TOXICITY score; the cat buckets "
        "(train: what hostility's readout learns Perspective's ranking from, and the TOXICITY mapping is fitted on)",
    ),
}

# The files each dataset needs, relative to the data directory.
_FILES: dict[str, tuple[str, ...]] = {
    "reddit-incivility-davidson2020": ("incivility_coded_0302.train.csv", "incivility_coded_0302.test.csv"),
    "goemotions": ("train.tsv", "dev.tsv", "test.tsv", "emotions.txt"),
    "davidson-hate-offensive": ("labeled_data.csv",),
    "stanford-politeness": ("wikipedia.annotated.csv", "stack-exchange.annotated.csv"),
    "hatexplain": ("092-HateXplain.csv", "post_id_divisions.json"),
    "jigsaw-toxic-sample": ("test_examples.csv",),
    "toxichat-reddit": ("train.jsonl", "dev.jsonl"),
    "wikipedia-talk-context-cat": ("gc.csv", "gn.csv"),
}


def provenance(task: str) -> dict[str, str]:
    """What a model card records of a task it was trained or fitted on."""
    info = TASKS[task]
    return {"dataset": info.dataset, "dimension": info.dimension, "description": info.description}


def data_dir() -> Path:
    """$CIVMON_SHARED_DATA, or ../shared/data from the project root."""
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"


def missing_files(data: Path | None = None, tasks: Iterable[str] | None = None) -> list[Path]:
    """The files the given tasks (default: all) need that are not there."""
    data = data_dir() if data is None else Path(data)
    datasets = dict.fromkeys(TASKS[t].dataset for t in (TASKS if tasks is None else tasks))
    return [data / d / f for d in datasets for f in _FILES[d] if not (data / d / f).is_file()]


def available(data: Path | None = None) -> bool:
    """Whether every labelled set is there."""
    return not missing_files(data)


def load(task: str, split: str, data: Path | None = None) -> list[Example]:
    """One split of one task, in a fixed order (the order of the source files)."""
    info = TASKS.get(task)
    if info is None:
        raise CivmonError(f"unknown scoring task {task!r}", "one of: " + ", ".join(TASKS))
    if split not in info.splits:
        raise CivmonError(f"task {task!r} has no {split!r} split", "one of: " + ", ".join(info.splits))
    data = (data_dir() if data is None else Path(data)).resolve()
    lacking = missing_files(data, [task])
    if lacking:
        raise CivmonError(
            f"the labelled data for {task!r} is not there: {', '.join(map(str, lacking))}",
            f"point ${DATA_ENV} at the shared data folder (see its README.md)",
        )
    return list(_splits(task, str(data))[split])


# --------------------------------------------------------------------------- internals

Rows = list[tuple[str, float]]


def _digest(text: str) -> int:
    """SHA-256 of a (cleaned) text as a number: the same on every machine and run."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16)


def bucket(text: str) -> int:
    """Hash bucket 0-9 of a (cleaned) text."""
    return _digest(text) % 10


def fold(text: str, folds: int) -> int:
    """Cross-validation fold 0..folds-1 of a text: its digest past the digit that gives its bucket."""
    return _digest(text) // 10 % folds


@functools.lru_cache(maxsize=32)
def _splits(task: str, data: str) -> dict[str, tuple[Example, ...]]:
    info = TASKS[task]
    raw = _READERS[task](Path(data) / info.dataset)
    return _finalise(raw, info.kind)


def _finalise(raw: dict[str, Rows], kind: str) -> dict[str, tuple[Example, ...]]:
    """De-duplicate each split by text, then remove from val and train what an earlier split holds."""
    seen: set[str] = set()
    out: dict[str, tuple[Example, ...]] = {}
    for split in ("test", "val", "train"):
        if split not in raw:
            continue
        groups: dict[str, list[float]] = {}
        for text, label in raw[split]:
            text = text.strip()
            if text and text not in seen:
                groups.setdefault(text, []).append(label)
        examples = []
        for text, labels in groups.items():
            mean = sum(labels) / len(labels)
            examples.append(Example(text, (1.0 if mean >= 0.5 else 0.0) if kind == "binary" else mean))
        out[split] = tuple(examples)
        seen.update(groups)
    return out


def _by_bucket(rows: Rows, test: tuple[int, ...], val: int) -> dict[str, Rows]:
    out: dict[str, Rows] = {"train": [], "val": []}
    if test:
        out["test"] = []
    for text, label in rows:
        text = text.strip()
        b = bucket(text)
        out["test" if b in test else "val" if b == val else "train"].append((text, label))
    return out


def _csv(path: Path, header: bool = True) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return rows[1:] if header else rows


def _dicts(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


_MOJIBAKE_RUN = re.compile(r"[^\x00-\x7f]+")


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 read as Mac-Roman ("‚Äô" -> "’") run by run; text that is not such mojibake is kept."""

    def repair(match: re.Match[str]) -> str:
        run = match.group(0)
        try:
            return run.encode("mac_roman").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return run

    return _MOJIBAKE_RUN.sub(repair, text)


def _incivility(folder: Path) -> dict[str, Rows]:
    def read(name: str) -> Rows:
        return [(fix_mojibake(t), float(y)) for t, y in _csv(folder / name, header=False)]

    out = _by_bucket(read("incivility_coded_0302.train.csv"), test=(), val=0)
    out["test"] = read("incivility_coded_0302.test.csv")
    return out


def _goemotions(emotions: tuple[str, ...]) -> Callable[[Path], dict[str, Rows]]:
    def reader(folder: Path) -> dict[str, Rows]:
        names = (folder / "emotions.txt").read_text(encoding="utf-8").split()
        wanted = {names.index(e) for e in emotions}
        out: dict[str, Rows] = {}
        for split, name in (("train", "train.tsv"), ("val", "dev.tsv"), ("test", "test.tsv")):
            with (folder / name).open(encoding="utf-8", newline="") as f:
                records = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)  # text, emotion ids, comment id
                out[split] = [(text, float(any(int(i) in wanted for i in ids.split(",")))) for text, ids, _ in records]
        return out

    return reader


_RETWEET = re.compile(r"\bRT\s+@\w+:?")
_MENTION = re.compile(r"@\w+")
_LINK = re.compile(r"https?://\S+")


def clean_tweet(text: str) -> str:
    text = html.unescape(text)
    text = _RETWEET.sub(" ", text)
    text = _MENTION.sub("@user", text)
    text = _LINK.sub("link", text)
    return " ".join(text.split())


def _davidson(classes: tuple[str, ...]) -> Callable[[Path], dict[str, Rows]]:
    """Positive = the majority class is one of `classes` (0 hate speech, 1 offensive, 2 neither)."""

    def reader(folder: Path) -> dict[str, Rows]:
        rows = [(clean_tweet(r["tweet"]), float(r["class"] in classes)) for r in _dicts(folder / "labeled_data.csv")]
        return _by_bucket(rows, test=(0,), val=1)

    return reader


def _politeness(name: str, split: bool) -> Callable[[Path], dict[str, Rows]]:
    def reader(folder: Path) -> dict[str, Rows]:
        rows = [(r["Request"], float(r["Normalized Score"])) for r in _dicts(folder / name)]
        return _by_bucket(rows, test=(0,), val=1) if split else {"test": rows}

    return reader


def _hatexplain(positive: tuple[str, ...]) -> Callable[[Path], dict[str, Rows]]:
    """The test division's posts with a majority label (0 normal, 1 hatespeech, 2 offensive; 3: none)."""

    def reader(folder: Path) -> dict[str, Rows]:
        test_ids = set(json.loads((folder / "post_id_divisions.json").read_text(encoding="utf-8"))["test"])
        rows: Rows = []
        for post_id, text, _label, category, *_ in _csv(folder / "092-HateXplain.csv"):
            if post_id in test_ids and category in ("0", "1", "2"):
                rows.append((text, float(category in positive)))
        return {"test": rows}

    return reader


def _jigsaw(folder: Path) -> dict[str, Rows]:
    return {"test": [(r["comment_text"], float(r["toxic"])) for r in _dicts(folder / "test_examples.csv")]}


Turn = dict[str, object]


def _offensive(turn: Turn) -> float:
    return float(turn["offense_label"] == "Offensive")


def _insult(turn: Turn) -> float:
    return float(_offensive(turn) == 1 and bool(INDIVIDUAL_TARGETS & set(turn["offense_targets"])))  # type: ignore[arg-type]


def _identity_attack(turn: Turn) -> float:
    groups = set(turn["offense_targets"]) - INDIVIDUAL_TARGETS - {UNNAMED_TARGET}  # type: ignore[arg-type]
    return float(_offensive(turn) == 1 and bool(groups))


def _toxichat(label: Callable[[Turn], float]) -> Callable[[Path], dict[str, Rows]]:
    """Every human turn of every thread: `reddit_thread` only, never the `final_*_response` machine replies."""

    def turns(path: Path) -> Rows:
        with path.open(encoding="utf-8") as f:
            threads = [json.loads(line) for line in f if line.strip()]
        return [(unescape_legacy(t["text"]), label(t)) for thread in threads for t in thread["reddit_thread"]]

    def reader(folder: Path) -> dict[str, Rows]:
        out = _by_bucket(turns(folder / "train.jsonl"), test=(), val=0)
        out["test"] = turns(folder / "dev.jsonl")
        return out

    return reader


def _cat(label: Callable[[dict[str, str]], float], files: tuple[str, ...]) -> Callable[[Path], dict[str, Rows]]:
    def reader(folder: Path) -> dict[str, Rows]:
        rows = [(r["text"], label(r)) for name in files for r in _dicts(folder / name)]
        return _by_bucket(rows, test=CAT_TEST_BUCKETS, val=CAT_VAL_BUCKET)

    return reader


def _crowd_and_perspective(row: dict[str, str]) -> float:
    return (float(row["label"]) + float(row["api"])) / 2


_CAT_FILES = ("gc.csv", "gn.csv")

_READERS: dict[str, Callable[[Path], dict[str, Rows]]] = {
    "incivility": _incivility,
    "goemotions_hostile": _goemotions(HOSTILE_EMOTIONS),
    "goemotions_warmth": _goemotions(WARM_EMOTIONS),
    "davidson": _davidson(("0", "1")),
    "politeness_wikipedia": _politeness("wikipedia.annotated.csv", split=True),
    "politeness_stackexchange": _politeness("stack-exchange.annotated.csv", split=False),
    "hatexplain": _hatexplain(("1", "2")),
    "jigsaw": _jigsaw,
    "davidson_hate": _davidson(("0",)),
    "hatexplain_hate": _hatexplain(("1",)),
    "toxichat": _toxichat(_offensive),
    "toxichat_insult": _toxichat(_insult),
    "toxichat_identity": _toxichat(_identity_attack),
    "cat": _cat(_crowd_and_perspective, _CAT_FILES),
    "cat_gn": _cat(lambda r: float(r["label"]), ("gn.csv",)),
    "cat_gc": _cat(lambda r: float(r["label"]), ("gc.csv",)),
    "cat_perspective": _cat(lambda r: float(r["api"]), _CAT_FILES),
}
