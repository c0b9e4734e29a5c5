"""The labelled sets' loaders: fixed, disjoint splits and labels as documented in monitor.scoring.datasets.

Tests that read the real data skip (with the reason) where ../shared/data is absent.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from monitor.errors import CivmonError
from monitor.scoring import datasets
from monitor.scoring.datasets import TASKS, Example, bucket, clean_tweet, fix_mojibake, fold, load
from monitor.sources.dumps import unescape_legacy


@pytest.fixture(scope="module")
def data() -> Path:
    folder = datasets.data_dir()
    missing = datasets.missing_files(folder)
    if missing:
        pytest.skip(f"labelled data absent ({len(missing)} files missing under {folder}, e.g. {missing[0]})")
    return folder


# --------------------------------------------------------------------------- without data


def test_task_table() -> None:
    assert set(TASKS) == {
        "incivility",
        "goemotions_hostile",
        "goemotions_warmth",
        "davidson",
        "davidson_hate",
        "politeness_wikipedia",
        "politeness_stackexchange",
        "hatexplain",
        "hatexplain_hate",
        "jigsaw",
        "toxichat",
        "toxichat_insult",
        "toxichat_identity",
        "cat",
        "cat_gn",
        "cat_gc",
        "cat_perspective",
    }
    probabilities = {"cat", "cat_perspective"}  # soft labels in [0, 1]
    for name, info in TASKS.items():
        assert info.dimension in {"hostility", "warmth", "respect", "insult", "identity_attack"}, name
        kind = "continuous" if info.dimension == "respect" else "probability" if name in probabilities else "binary"
        assert info.kind == kind, name
        assert set(info.splits) <= {"train", "val", "test"} and "test" in info.splits, name
    # evaluation-only sets are never offered for training
    for name in ("hatexplain", "hatexplain_hate", "jigsaw", "politeness_stackexchange", "cat_gn", "cat_gc"):
        assert TASKS[name].splits == ("test",)


def test_data_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
    assert datasets.data_dir() == tmp_path
    monkeypatch.delenv(datasets.DATA_ENV)
    assert datasets.data_dir() == Path(__file__).resolve().parents[1].parent / "shared" / "data"


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    assert not datasets.available(tmp_path)
    with pytest.raises(CivmonError, match="not there"):
        load("incivility", "test", tmp_path)


def test_unknown_task_or_split() -> None:
    with pytest.raises(CivmonError, match="unknown scoring task"):
        load("sarcasm", "test")
    with pytest.raises(CivmonError, match="no 'train' split"):
        load("hatexplain", "train")


def test_mojibake_repair() -> None:
    assert fix_mojibake("it‚Äôs ‚Äúfine‚Äù") == "it’s “fine”"
    assert fix_mojibake("Caf√© na√Øve") == "Café naïve"
    # genuine non-ASCII text is left alone
    for text in ("it’s fine", "Café naïve", "déjà vu\xa0—", "😂"):
        assert fix_mojibake(text) == text


def test_tweet_cleaning() -> None:
    tweet = "RT @some_one: &#8220;@other: you are a clown&#8221; &amp; more http://t.co/abc  "
    assert clean_tweet(tweet) == "“@user: you are a clown” & more link"


def test_bucket_is_stable() -> None:
    # SHA-256, not Python's salted hash(): the same on every machine and run
    assert bucket("hello") == int("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", 16) % 10


# --------------------------------------------------------------------------- with the real data


def test_splits_are_disjoint_deduplicated_and_deterministic(data: Path) -> None:
    for task, info in TASKS.items():
        texts: dict[str, set[str]] = {}
        for split in info.splits:
            examples = load(task, split, data)
            assert examples, (task, split)
            assert all(isinstance(e, Example) and e.text == e.text.strip() and e.text for e in examples)
            split_texts = [e.text for e in examples]
            assert len(split_texts) == len(set(split_texts)), (task, split, "duplicate texts")
            assert load(task, split, data) == examples  # same rows, same order
            texts[split] = set(split_texts)
        splits = list(texts)
        for i, a in enumerate(splits):
            for b in splits[i + 1 :]:
                assert not texts[a] & texts[b], (task, a, b)


def test_hash_bucket_rules(data: Path) -> None:
    for task in ("cat", "cat_gn", "cat_gc", "cat_perspective"):  # 40% held out: CAT's toxic posts are few
        assert {bucket(e.text) for e in load(task, "test", data)} == {0, 1, 2, 3}
    assert {bucket(e.text) for e in load("cat", "val", data)} == {4}
    assert {bucket(e.text) for e in load("cat", "train", data)} == set(range(5, 10))
    for task in ("davidson", "politeness_wikipedia"):
        assert {bucket(e.text) for e in load(task, "test", data)} == {0}
        assert {bucket(e.text) for e in load(task, "val", data)} == {1}
        assert {bucket(e.text) for e in load(task, "train", data)} == set(range(2, 10))
    assert {bucket(e.text) for e in load("incivility", "val", data)} == {0}
    assert 0 not in {bucket(e.text) for e in load("incivility", "train", data)}


def test_folds_cut_across_buckets(data: Path) -> None:
    texts = [e.text for split in ("train", "val") for e in load("incivility", split, data)]
    sizes = Counter(fold(t, 5) for t in texts)
    assert set(sizes) == set(range(5)) and max(sizes.values()) < 1.2 * len(texts) / 5  # about even
    val_folds = Counter(fold(e.text, 5) for e in load("incivility", "val", data))
    assert len(val_folds) == 5  # the val bucket spreads over every fold, so each fold holds train rows too
    assert fold("hello", 7) == int("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", 16) // 10 % 7


def test_split_sizes(data: Path) -> None:
    sizes = {(t, s): len(load(t, s, data)) for t, info in TASKS.items() for s in info.splits}
    assert sizes[("incivility", "test")] == 994  # the given test file, one duplicate merged
    assert 3500 < sizes[("incivility", "train")] < 3700 and 350 < sizes[("incivility", "val")] < 450
    assert sizes[("goemotions_hostile", "test")] == sizes[("goemotions_warmth", "test")] == 5421
    assert sizes[("goemotions_hostile", "val")] == 5413
    total = sum(sizes[("davidson", s)] for s in ("train", "val", "test"))
    assert 24_000 < total <= 24_783
    for split, share in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        assert abs(sizes[("davidson", split)] / total - share) < 0.015
    assert sizes[("politeness_stackexchange", "test")] == 6594
    assert sizes[("hatexplain", "test")] == 1922  # 1,924 test posts, no-majority and duplicates dropped
    assert sizes[("jigsaw", "test")] == 101


def test_binary_labels(data: Path) -> None:
    for task, info in TASKS.items():
        if info.kind == "binary":
            for split in info.splits:
                labels = {e.label for e in load(task, split, data)}
                assert labels == {0.0, 1.0}, (task, split, labels)
    rate = {t: sum(e.label for e in load(t, "test", data)) / len(load(t, "test", data)) for t in TASKS}
    assert 0.08 < rate["incivility"] < 0.13
    assert 0.12 < rate["goemotions_hostile"] < 0.18 and 0.2 < rate["goemotions_warmth"] < 0.27
    assert 0.78 < rate["davidson"] < 0.88  # hate speech and offensive together are most of the tweets
    assert 0.55 < rate["hatexplain"] < 0.63
    assert sum(e.label for e in load("jigsaw", "test", data)) == 13


def test_known_rows(data: Path) -> None:
    hostile = {e.text: e.label for e in load("goemotions_hostile", "train", data)}
    warmth = {e.text: e.label for e in load("goemotions_warmth", "train", data)}
    assert hostile["WHY THE FUCK IS BAYLESS ISOING"] == 1.0  # emotion 2: anger
    assert warmth["WHY THE FUCK IS BAYLESS ISOING"] == 0.0
    assert hostile["My favourite food is anything I didn't have to cook myself."] == 0.0  # 27: neutral
    # both GoEmotions tasks share their rows, in the same order
    for split in ("train", "val", "test"):
        a, b = load("goemotions_hostile", split, data), load("goemotions_warmth", split, data)
        assert [e.text for e in a] == [e.text for e in b]
    davidson = {e.text: e.label for t in ("train", "val", "test") for e in load("davidson", t, data)}
    assert davidson["Can't stand that faggot."] == 1.0
    assert not any(t.startswith("RT @") or "&amp;" in t for t in davidson)
    wikipedia = {e.text: e.label for s in ("train", "val", "test") for e in load("politeness_wikipedia", s, data)}
    where = "Where did you learn English? How come you're taking on a third language?"
    assert wikipedia[where] == pytest.approx(-1.1200492637766977)


def test_incivility_has_no_mojibake_left(data: Path) -> None:
    texts = [e.text for s in ("train", "val", "test") for e in load("incivility", s, data)]
    assert not any("‚Äô" in t or "‚Äù" in t for t in texts)
    assert sum("’" in t for t in texts) > 150


def test_politeness_scores_are_continuous(data: Path) -> None:
    for task in ("politeness_wikipedia", "politeness_stackexchange"):
        scores = [e.label for e in load(task, "test", data)]
        assert min(scores) < -1.5 and max(scores) > 1.5
        assert len(set(scores)) > len(scores) / 2


def _toxichat_threads(data: Path, name: str) -> list[dict]:
    with (data / "toxichat-reddit" / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_toxichat_is_human_turns_only_with_dev_as_test(data: Path) -> None:
    threads = _toxichat_threads(data, "train.jsonl")
    human = {t["text"].strip() for thread in threads for t in thread["reddit_thread"]}
    machine = {thread[k]["text"].strip() for thread in threads for k in ("final_dgpt_response", "final_gpt3_response")}
    texts = {e.text for split in ("train", "val") for e in load("toxichat", split, data)}
    machine_only = {t for t in machine - human if "&" not in t}  # the loader undoes Reddit's escapes
    assert machine_only and not texts & machine_only  # machine-generated replies never train anything
    dev = {
        unescape_legacy(t["text"]).strip() for th in _toxichat_threads(data, "dev.jsonl") for t in th["reddit_thread"]
    }
    assert {e.text for e in load("toxichat", "test", data)} <= dev
    assert not any("&amp;" in t or "&gt;" in t for t in texts)
    assert {bucket(e.text) for e in load("toxichat", "val", data)} == {0}


def test_toxichat_targets_decide_insult_and_identity_attack(data: Path) -> None:
    for split in ("train", "val", "test"):
        offensive, insult, identity = (
            load(t, split, data) for t in ("toxichat", "toxichat_insult", "toxichat_identity")
        )
        assert [e.text for e in offensive] == [e.text for e in insult] == [e.text for e in identity]  # shared rows
        for o, i, g in zip(offensive, insult, identity, strict=True):
            assert i.label <= o.label and g.label <= o.label, o.text  # only an offensive turn insults or attacks
    turns = {
        unescape_legacy(t["text"]).strip(): t
        for th in _toxichat_threads(data, "dev.jsonl")
        for t in th["reddit_thread"]
    }
    insults = {e.text: e.label for e in load("toxichat_insult", "test", data)}
    attacks = {e.text: e.label for e in load("toxichat_identity", "test", data)}
    at_women = next(t for t, turn in turns.items() if turn["offense_targets"] == ["women"] and t in attacks)
    assert attacks[at_women] == 1.0 and insults[at_women] == 0.0
    at_redditor = next(
        t for t, turn in turns.items() if turn["offense_targets"] == ["individual/redditor"] and t in insults
    )
    assert insults[at_redditor] == 1.0 and attacks[at_redditor] == 0.0
    rate = {t: sum(e.label for e in load(t, "test", data)) / len(load(t, "test", data)) for t in insults and TASKS}
    assert 0.25 < rate["toxichat"] < 0.33 and 0.06 < rate["toxichat_insult"] < 0.11
    assert 0.1 < rate["toxichat_identity"] < 0.18 and 0.05 < rate["davidson_hate"] < 0.07


def test_cat_labels_blend_the_crowd_and_perspective(data: Path) -> None:
    with (data / "wikipedia-talk-context-cat" / "gn.csv").open(encoding="utf-8", newline="") as f:
        rows = {r["text"].strip(): r for r in csv.DictReader(f)}
    blended = {e.text: e.label for s in ("train", "val", "test") for e in load("cat", s, data)}
    crowd = {e.text: e.label for e in load("cat_gn", "test", data)}
    published = {e.text: e.label for e in load("cat_perspective", "test", data)}
    toxic = next(t for t, r in rows.items() if r["label"] == "1" and t in crowd)
    assert crowd[toxic] == 1.0 and published[toxic] == pytest.approx(float(rows[toxic]["api"]))
    assert blended[toxic] == pytest.approx((1 + float(rows[toxic]["api"])) / 2)
    assert set(crowd) | {e.text for e in load("cat_gc", "test", data)} == set(published)  # 7 posts are in both
    assert sum(crowd.values()) >= 20  # the toxic posts gn's held-out part needs to measure anything
