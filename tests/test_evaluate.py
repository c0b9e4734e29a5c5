"""`civmon eval`: metrics, peers and the bias audit; and the shipped model against its bars."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from monitor.scoring import datasets
from monitor.scoring.base import TOXICITY
from monitor.scoring.bias import GROUPS, NEUTRAL, audit, audit_scorer, sentences
from monitor.scoring.evaluate import (
    HARMS,
    PERSPECTIVE,
    PERSPECTIVE_TASKS,
    Row,
    confidence_interval,
    continuity,
    evaluate,
    expected_calibration_error,
    markdown,
    peer_functions,
    perspective_reference,
    roc_auc,
    spearman,
    write_report,
)

needs_data = pytest.mark.skipif(not datasets.available(), reason=f"labelled data not found at {datasets.data_dir()}")


def test_expected_calibration_error_by_hand():
    labels = np.array([0, 0, 1, 1])
    assert expected_calibration_error(labels, np.array([0.0, 0.0, 1.0, 1.0])) == pytest.approx(0.0)
    # Bin 0.2-0.3 holds all four at 0.25 while half are positive: |0.5 - 0.25| = 0.25.
    assert expected_calibration_error(labels, np.full(4, 0.25)) == pytest.approx(0.25)


def test_roc_auc_is_undefined_without_both_classes():
    assert np.isnan(roc_auc(np.array([1.0, 1.0, 1.0]), np.array([0.2, 0.5, 0.9])))  # a small resample may do that
    assert roc_auc(np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)


def test_intervals_leave_out_resamples_where_the_figure_is_undefined():
    rng = np.random.default_rng(0)
    y = np.zeros(60)
    y[:3] = 1  # most resamples hold a positive; some do not, and their ROC-AUC is undefined
    s = y * 0.5 + rng.random(60)
    low, high = confidence_interval(roc_auc, y, s)
    assert 0 <= low < roc_auc(y, s) < high <= 1
    assert np.isnan(spearman(np.arange(5.0), np.ones(5)))  # constant scores rank nothing, in any resample
    assert confidence_interval(spearman, np.arange(5.0), np.ones(5)) is None


@needs_data
def test_tasks_that_share_texts_are_scored_once():
    calls = []

    def constant(texts):
        calls.append(len(texts))
        return [{"hostility": 0.5, "warmth": 0.5} for _ in texts]

    rows = evaluate({"flat": (constant, {})}, tasks=["goemotions_hostile", "goemotions_warmth"])
    assert [r.dimension for r in rows] == ["hostility", "warmth"] and len(calls) == 1


@needs_data
def test_a_figure_that_is_undefined_is_written_as_null(tmp_path):
    def constant(texts):
        return [{"respect": 0.5} for _ in texts]

    (row,) = evaluate({"flat": (constant, {})}, tasks=["politeness_wikipedia"])
    assert row.spearman is None and row.ci95 is None
    written, _ = write_report([row], [], tmp_path)
    assert '"spearman": null' in written.read_text()


def test_bias_audit_measures_spread():
    def biased(texts):  # flags one group whatever the sentence says
        return [0.9 if "hate" in t or "Muslim" in t else 0.1 for t in texts]

    report = {r["category"]: r for r in audit(biased)}
    assert report["religion"]["worst_group"] == "Muslim"
    assert report["religion"]["neutral_spread"] == pytest.approx(0.8)
    assert report["gender"]["neutral_spread"] == pytest.approx(0.0)
    assert sentences(NEUTRAL[:1], "gay") == ["I am a gay person."]
    assert sum(len(g) for g in GROUPS.values()) == 26


def test_peers_score_in_range():
    peers = peer_functions()
    assert set(peers) == {"VADER", "alt-profanity-check"}  # installed with the dev extra
    texts = ["Thank you, you are wonderful.", "Shut up, you f***ing idiot."]
    vader, profanity = peers["VADER"](texts), peers["alt-profanity-check"](texts)
    assert vader[0]["warmth"] > vader[1]["warmth"] and vader[1]["hostility"] > vader[0]["hostility"]
    assert all(0 <= s["hostility"] <= 1 for s in profanity)
    # their one hostility score stands in for insult and identity_attack, so those rows have peers too
    assert all(s[h] == s["hostility"] for s in vader + profanity for h in HARMS)


@needs_data
def test_continuity_with_perspective_by_hand(tmp_path):
    """Perspective's own scores as civmon's TOXICITY agree with themselves at every threshold; halved, they agree
    only where both sides are below; as hostility alone (a model without TOXICITY), TOXICITY is hostility."""
    published = perspective_reference()
    same = continuity(published)
    assert same["spearman"] == pytest.approx(1.0) and same["n"] == len(datasets.load("cat_perspective", "test"))
    assert same["hostility_spearman"] == pytest.approx(1.0)
    assert all(a["agreement"] == 1.0 and a["kappa"] == pytest.approx(1.0) for a in same["agreement"])
    halved = continuity(
        lambda texts: [{TOXICITY: s["hostility"] / 2, "hostility": -s["hostility"]} for s in published(texts)]
    )
    assert halved["spearman"] == pytest.approx(1.0)  # a monotone mapping ranks the same
    assert halved["hostility_spearman"] == pytest.approx(-1.0)  # hostility told apart from TOXICITY
    assert all(a["civmon_above"] == 0 and a["perspective_above"] > 0 for a in halved["agreement"])
    assert all(a["agreement"] == pytest.approx(1 - a["perspective_above"] / a["n"]) for a in halved["agreement"])
    as_json, as_markdown = write_report([], [], tmp_path, perspective=halved)
    assert '"kappa": 0.0' in as_json.read_text()
    assert "## Continuity with Perspective's TOXICITY" in as_markdown.read_text()
    rows = evaluate({PERSPECTIVE: (published, {"hostility": 0.5})}, tasks=PERSPECTIVE_TASKS)
    assert [(r.task, r.coverage) for r in rows] == [("cat_gn", 1.0), ("cat_gc", 1.0)]
    assert 0.85 < rows[0].roc_auc < 0.99  # Perspective on the posts it was published for (0.939 on all of gn)


@needs_data
def test_evaluate_rows_match_an_independent_computation():
    peers = peer_functions()
    rows = evaluate({"VADER": (peers["VADER"], {"hostility": 0.5})}, tasks=["jigsaw", "politeness_stackexchange"])
    assert [(r.task, r.dimension) for r in rows] == [("jigsaw", "hostility")]  # VADER has no respect: absent
    examples = datasets.load("jigsaw", "test")
    scores = [s["hostility"] for s in peers["VADER"]([e.text for e in examples])]
    assert rows[0].roc_auc == pytest.approx(roc_auc_score([e.label for e in examples], scores))
    assert rows[0].n == len(examples) and rows[0].coverage == 1.0
    assert "| jigsaw | hostility | VADER |" in markdown(rows, [])
    # 101 rows, 13 positive: the bootstrap interval is wide, holds the estimate, and repeats exactly
    low, high = rows[0].ci95
    assert low < rows[0].roc_auc < high and high - low > 0.1
    assert evaluate({"VADER": (peers["VADER"], {"hostility": 0.5})}, tasks=["jigsaw"])[0].ci95 == (low, high)
    assert f"{low:.3f}–{high:.3f}" in markdown(rows, [])


@needs_data
@pytest.mark.parametrize(
    ("task", "dimension", "metric", "bar"),
    [
        ("goemotions_hostile", "hostility", "roc_auc", 0.86),
        ("goemotions_warmth", "warmth", "roc_auc", 0.88),
        ("politeness_wikipedia", "respect", "spearman", 0.5),
        # the widened hostility head (monitor.scoring.hostility_blend), measured through int8 on AVX-512:
        # ToxiChat 0.826 (0.790-0.860), HateXplain 0.662 (0.637-0.686); the fine-tuned head alone scored 0.793
        # and 0.646. The bars sit near the low end of the intervals, far beyond the ~0.003 int8 moves between CPUs;
        # ToxiChat's is above the fine-tuned head's, so a runtime that lost the readout fails it.
        ("toxichat", "hostility", "roc_auc", 0.80),
        ("hatexplain", "hostility", "roc_auc", 0.64),
    ],
)
def test_shipped_model_meets_its_bars(shipped_scorer, task, dimension, metric, bar):
    [row] = [r for r in evaluate({"shipped": shipped_scorer}, tasks=[task]) if r.dimension == dimension]
    assert isinstance(row, Row) and getattr(row, metric) >= bar, row


# Incivility's 104 uncivil test comments cannot resolve 0.002 (issue 16: the bar is judged with its
# interval), and int8 kernels moved the figure by up to 0.0034 between CPUs (the fine-tuned head alone: 0.9386
# through this path on AVX-512, 0.942 on AVX2). The widened head scores 0.951 (0.929-0.972) on AVX-512: the
# estimate must stay above the 0.94 bar less that CPU difference, and the bar inside or below the interval.
@needs_data
def test_shipped_model_meets_the_incivility_bar_within_its_interval(shipped_scorer):
    [row] = [r for r in evaluate({"shipped": shipped_scorer}, tasks=["incivility"]) if r.dimension == "hostility"]
    assert row.roc_auc >= 0.9366 and row.ci95[1] >= 0.94, row


# The probes' bars sit at the low end of their 95% intervals as measured by `civmon eval` through int8
# (insult 0.849, 0.802-0.893; identity_attack 0.816, 0.769-0.860, on ToxiChat dev), well beyond the
# ~0.002 int8 kernels move a figure between CPUs; alt-profanity-check scored 0.738 and 0.675 there.
@needs_data
@pytest.mark.parametrize(
    ("task", "dimension", "bar"), [("toxichat_insult", "insult", 0.80), ("toxichat_identity", "identity_attack", 0.77)]
)
def test_shipped_probes_meet_their_bars_ahead_of_alt_profanity_check(shipped_scorer, task, dimension, bar):
    peers = {"alt-profanity-check": (peer_functions()["alt-profanity-check"], {})}
    ours, theirs = evaluate({"shipped": shipped_scorer, **peers}, tasks=[task])
    assert ours.dimension == theirs.dimension == dimension
    assert ours.roc_auc >= bar and ours.roc_auc > theirs.ci95[1], (ours, theirs)


# Measured through int8 (AVX-512) on 7,889 CAT test posts: civmon's TOXICITY (the continuity output) Spearman 0.661
# (0.647-0.676), kappa 0.535 at 0.5 and 0.559 at 0.8; hostility 0.562 (0.545-0.578). Its int8 scores rank as fp32's
# at Spearman 0.994 on the incivility test comments, so an AVX2 CPU moves these by far less than the margins left:
# about twice the interval's half-width for the Spearmans, 0.13 of kappa.
@needs_data
def test_shipped_model_ranks_as_perspective_does_and_its_toxicity_keeps_thresholds(shipped):
    from monitor.scoring.evaluate import scorer_function

    result = continuity(scorer_function(shipped))
    assert result is not None and result["spearman"] >= 0.63 and result["hostility_spearman"] >= 0.53, result
    at = {a["threshold"]: a for a in result["agreement"]}
    assert at[0.5]["kappa"] > 0.4 and at[0.8]["kappa"] > 0.4, at
    assert all(a["agreement"] > 0.97 for a in at.values())


# Issue 16's limits on hostility's neutral spread: the model shipped then, +0.02 (hostility with its readout, int8 on
# AVX-512: 0.032 / 0.008 / 0.016 / 0.034 / 0.006). identity_attack's, measured through
# int8 on AVX-512 at 0.047 / 0.040 / 0.013 / 0.037 / 0.023 (fp32: within 0.004 of those; 0.162 / 0.113 / 0.032 /
# 0.110 / 0.086 before its neutral mentions), must stay below 0.07: a margin five times what the runtimes moved.
HOSTILITY_SPREAD_LIMITS = {
    "religion": 0.117,
    "ethnicity": 0.049,
    "gender": 0.069,
    "sexuality": 0.094,
    "nationality": 0.029,
}
IDENTITY_ATTACK_SPREAD_BAR = 0.07
# TOXICITY (the continuity output, on Perspective's scale), int8 on AVX-512: 0.057 / 0.029 / 0.033 / 0.060 / 0.029.
# It learnt from Perspective's scores, whose identity-term bias is documented: a bar 1.5x its worst, so that a model
# that learnt more of that bias fails here.
TOXICITY_SPREAD_BAR = 0.09


def test_shipped_model_keeps_its_identity_term_spreads_within_bounds(shipped):
    spreads = {(b["dimension"], b["category"]): b["neutral_spread"] for b in audit_scorer(shipped)}
    for category, limit in HOSTILITY_SPREAD_LIMITS.items():
        assert spreads["hostility", category] <= limit, (category, spreads)
        assert spreads["identity_attack", category] < IDENTITY_ATTACK_SPREAD_BAR, (category, spreads)
        assert spreads[TOXICITY, category] < TOXICITY_SPREAD_BAR, (category, spreads)


@pytest.fixture(scope="module")
def shipped():
    from monitor.scoring.alliance import AllianceScorer

    return AllianceScorer(device="cpu")  # the default runtime on a CPU: ONNX int8


@pytest.fixture(scope="module")
def shipped_scorer(shipped):
    from monitor.scoring.evaluate import scorer_function

    return scorer_function(shipped), dict(shipped.thresholds)
