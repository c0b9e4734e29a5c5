"""A score on Perspective's TOXICITY scale: the monotone mapping and the agreement table."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.scoring.perspective import PERSPECTIVE_THRESHOLDS, ToxicityMap, agreement, fit


def test_the_mapping_is_monotone_clipped_and_follows_the_data() -> None:
    rng = np.random.default_rng(0)
    hostility = rng.uniform(0, 1, 5000)
    toxicity = np.clip(hostility**2 + rng.normal(0, 0.05, hostility.size), 0, 1)  # a curved, noisy relation
    mapping = fit(hostility, toxicity)
    grid = np.linspace(-0.5, 1.5, 401)
    mapped = np.array([mapping(h) for h in grid])
    assert np.all(np.diff(mapped) >= 0) and mapped.min() >= 0 and mapped.max() <= 1
    assert mapping(-0.5) == mapping.toxicity[0] and mapping(1.5) == mapping.toxicity[-1]  # clipped
    inside = (grid >= 0.05) & (grid <= 0.95)
    assert np.abs(mapped[inside] - grid[inside] ** 2).max() < 0.05  # it found the curve, not the noise
    assert ToxicityMap.from_card(mapping.as_card(), continuity=True) == mapping
    legacy = {"hostility": list(mapping.score), "toxicity": list(mapping.toxicity)}  # cards that mapped hostility
    assert ToxicityMap.from_card(legacy, continuity=False) == mapping
    with pytest.raises(ValueError, match="knots map hostility"):  # not onto a network's continuity output
        ToxicityMap.from_card(legacy, continuity=True)


def test_knots_stay_strictly_ascending_after_rounding() -> None:
    hostility = [0.1, 0.1000001, 0.1000002, 0.5, 0.9]
    mapping = fit(hostility, [0.0, 0.2, 0.1, 0.6, 0.9])
    assert np.all(np.diff(mapping.score) > 0) and np.all(np.diff(mapping.toxicity) >= 0)


def test_agreement_by_hand() -> None:
    ours = [0.95, 0.85, 0.75, 0.55, 0.2, 0.1]
    theirs = [0.92, 0.6, 0.81, 0.45, 0.3, 0.75]
    rows = {r["threshold"]: r for r in agreement(ours, theirs)}
    assert list(rows) == list(PERSPECTIVE_THRESHOLDS)
    half = rows[0.5]  # ours above: 4 of 6; theirs: 4 of 6; both: 3; same side: 4 of 6
    assert (half["civmon_above"], half["perspective_above"], half["both_above"]) == (4, 4, 3)
    assert half["agreement"] == pytest.approx(4 / 6) and half["n"] == 6
    assert half["kappa"] == pytest.approx(
        (4 / 6 - (4 / 6 * 4 / 6 + 2 / 6 * 2 / 6)) / (1 - (4 / 6 * 4 / 6 + 2 / 6 * 2 / 6))
    )
    assert rows[0.9]["both_above"] == 1 and rows[0.9]["agreement"] == 1.0
    assert np.isnan(agreement([0.1], [0.2])[0]["kappa"])  # nothing above on either side: no kappa to give
