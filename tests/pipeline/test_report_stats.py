"""rtmdet.pipeline.report_stats on hand-computed cases: the t interval, the paired Δ (pairs only
over common seeds), the bootstrap, every verdict branch and the equivalence margin, Spearman
with ties, and the bit-identical-seed check."""
from __future__ import annotations

import math

import pytest

from rtmdet.pipeline.report_stats import (Interval, SeedCollisionError, bootstrap_interval,
                                 check_distinct_seeds, count_verdicts, paired_delta,
                                 paired_differences, spearman, t_interval, t_quantile, verdict)


def test_t_quantiles_are_students():
    # printed tables: t(0.975; 1) = 12.706, t(0.975; 2) = 4.303, t(0.975; 4) = 2.776
    assert t_quantile(1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile(2) == pytest.approx(4.3027, abs=1e-4)
    assert t_quantile(4) == pytest.approx(2.7764, abs=1e-4)


def test_t_interval_by_hand():
    ci = t_interval([1.0, 2.0, 3.0])            # mean 2, s = 1, half = 4.3027 / √3 = 2.4841
    assert (ci.mean, ci.n) == (2.0, 3)
    assert (ci.low, ci.high) == pytest.approx((2 - 2.48414, 2 + 2.48414), abs=1e-4)
    one = t_interval([5.0])                     # one seed: a mean, no interval
    assert (one.mean, one.low, one.high, one.n, one.known) == (5.0, None, None, 1, False)
    assert t_interval([]) == Interval(None, None, None, 0)


def test_paired_delta_pairs_only_common_seeds():
    ours, ref = {0: 10.0, 1: 12.0, 2: 11.0}, {0: 9.0, 1: 10.0, 3: 50.0}
    assert paired_differences(ours, ref) == {0: 1.0, 1: 2.0}      # seeds 2 and 3 unpaired
    d = paired_delta(ours, ref)                 # mean 1.5, s = √0.5, half = 12.706·√0.5/√2
    assert (d.mean, d.n) == (1.5, 2)
    assert (d.low, d.high) == pytest.approx((1.5 - 6.3531, 1.5 + 6.3531), abs=1e-3)
    # pairing removes the shared seed effect: the unpaired means differ by the same 1.5 but
    # a constant per-seed difference has a zero-width interval
    same = paired_delta({0: 30.0, 1: 40.0, 2: 50.0}, {0: 29.0, 1: 39.0, 2: 49.0})
    assert (same.mean, same.low, same.high) == pytest.approx((1.0, 1.0, 1.0))


def test_bootstrap_is_fixed_seed_and_inside_the_data():
    diffs = [0.5, 1.0, 2.5, -0.5]
    a, b = bootstrap_interval(diffs), bootstrap_interval(diffs)
    assert a == b                                # same runs -> same table
    assert min(diffs) <= a[0] < a[1] <= max(diffs)
    assert bootstrap_interval([2.0, 2.0, 2.0]) == pytest.approx((2.0, 2.0))
    assert bootstrap_interval([1.0]) is None


@pytest.mark.parametrize("paper, low, high, margin, expected", [
    (1.0, 0.5, 1.5, 0.5, "agrees"),              # excludes 0 on the paper's (upper) side
    (-0.9, -1.7, -0.4, 0.5, "agrees"),           # ... on the lower side
    (1.0, -1.5, -0.5, 0.5, "contradicts"),       # excludes 0 on the other side
    (-0.5, 0.3, 2.0, 0.5, "contradicts"),
    (1.0, -0.5, 1.5, 0.5, "unresolved"),         # covers 0
    (0.1, -0.4, 0.4, 0.5, "agrees (no effect)"), # no-effect claim, interval inside ±0.5
    (0.1, -0.6, 0.4, 0.5, "unresolved"),         # ... leaves the margin, covers 0
    (0.1, -0.6, 0.4, 1.0, "agrees (no effect)"), # the margin is the file's choice
    (0.0, 0.1, 0.4, 0.5, "agrees (no effect)"),  # excludes 0 but inside the margin
    (0.0, 0.6, 1.5, 0.5, "contradicts"),         # paper says nothing changes, we see a change
    (0.2, -0.3, 0.3, 0.5, "agrees (no effect)"), # |Δ| = 0.2 is still a no-effect claim
    (0.3, -0.3, 0.3, 0.5, "unresolved"),         # 0.3 is a claim of an effect
    (0.1, 0.6, 1.0, 0.5, "agrees"),              # small claim, our effect on its side
    (-0.2, -1.2, -0.7, 0.5, "agrees"),
])
def test_verdict_branches(paper, low, high, margin, expected):
    assert verdict(paper, Interval((low + high) / 2, low, high, 3), margin) == expected


def test_verdict_without_interval_or_paper():
    assert verdict(1.0, Interval(2.0, None, None, 1), 0.5) == "unresolved (n=1)"
    assert verdict(None, Interval(2.0, 1.0, 3.0, 3), 0.5) == "n/a"
    # a paper Δ computed from decimal cells (51.1 - 50.9 = 0.20000000000000284) after rounding
    assert verdict(round(51.1 - 50.9, 6), Interval(0.0, -0.3, 0.3, 3), 0.5) == "agrees (no effect)"


def test_count_verdicts():
    c = count_verdicts(["reference", "agrees", "agrees (no effect)", "contradicts", "unresolved",
                        "unresolved (n=1)", "n/a", "not run"])
    assert c == {"agrees": 2, "agrees_no_effect": 1, "contradicts": 1, "unresolved": 2, "n/a": 2}


def test_spearman_with_ties_by_hand():
    # ranks x = 1, 2.5, 2.5, 4; y = 1, 3, 2, 4 -> Σdxdy = 4.5, Σdx² = 4.5, Σdy² = 5
    r = spearman([1.0, 2.0, 2.0, 3.0], [10.0, 30.0, 20.0, 40.0])
    assert r["n"] == 4 and r["rho"] == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert spearman([1, 2, 3], [3, 2, 1])["rho"] == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) == {"rho": None, "n": 2}          # too few to rank
    assert spearman([1, 1, 1], [1, 2, 3]) == {"rho": None, "n": 3}    # constant: no ranking
    scipy_stats = pytest.importorskip("scipy.stats")
    x, y = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0], [2.0, 7.0, 1.0, 8.0, 2.0, 8.0]
    assert spearman(x, y)["rho"] == pytest.approx(scipy_stats.spearmanr(x, y).statistic)


def test_identical_seeds_fail_loudly():
    m = {"AP": 0.3125, "AP50": 0.5}
    with pytest.raises(SeedCollisionError) as e:
        check_distinct_seeds("runs/kernel_size/k5",
                             {0: m, 1: {"AP": 0.30, "AP50": 0.5}, 2: dict(m)})
    assert "seeds 0 and 2" in str(e.value) and "\n" not in str(e.value)
    check_distinct_seeds("ok", {0: m, 1: {**m, "AP50": 0.5000001}})   # one bit apart is fine


def test_identical_zero_metrics_need_identical_losses_too():
    zero = {"AP": 0.0, "AP50": 0.0, "APs": -1.0}
    # an untrained model scores 0 for any seed; different losses prove the seed was used
    check_distinct_seeds("smoke", {0: zero, 1: dict(zero)}, {0: [2.0, 1.5], 1: [2.0, 1.4]})
    with pytest.raises(SeedCollisionError):
        check_distinct_seeds("smoke", {0: zero, 1: dict(zero)}, {0: [2.0, 1.5], 1: [2.0, 1.5]})
    with pytest.raises(SeedCollisionError):
        check_distinct_seeds("smoke", {0: zero, 1: dict(zero)})         # no losses logged
