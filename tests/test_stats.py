"""central.stats against published values and independent implementations (scipy, statsmodels).

Published values are cited where they are used; every other figure is checked
against scipy or statsmodels on fixed data, so the module is never only
compared with itself.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint, proportions_ztest
from statsmodels.stats.weightstats import DescrStatsW
from statsmodels.stats.weightstats import ttest_ind as sm_ttest_ind

from central.errors import CentralError
from central.stats import (
    Aggregate,
    Change,
    Interval,
    InvalidGrade,
    InvalidInput,
    InvalidWeights,
    NoData,
    SeriesBreak,
    SmallGroups,
    Status,
    Summary,
    compare,
    key_drivers,
    kish_n_eff,
    post_stratification_weights,
    series_breaks,
    series_numbers,
    status_against,
    summarise,
    t_interval,
    two_proportion_test,
    weekday_part_of_day,
    welch_test,
    wilson_interval,
)

TINY = SmallGroups(min_shown=2, min_tested=2)   # for textbook examples with small n


def grades(seed: int, n: int, centre: float = 7.5, spread: float = 1.5) -> list[int]:
    """A fixed, reproducible list of n grades around ``centre``."""
    rng = random.Random(seed)
    return [min(10, max(1, round(rng.gauss(centre, spread)))) for _ in range(n)]


def with_low(low: int, n: int) -> list[int]:
    """n grades of which ``low`` are in 1-5 (and none in 8-10 unless needed)."""
    return [4] * low + [7] * (n - low)


# ---------------------------------------------------------------------------- published values

# Newcombe RG (1998). Two-sided confidence intervals for the single proportion:
# comparison of seven methods. Statistics in Medicine 17:857-872, Table I,
# method 3 (Wilson score interval without continuity correction), 95 %.
NEWCOMBE_TABLE_I = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (29, 29, 0.8830, 1.0000),
]


@pytest.mark.parametrize("successes,n,low,high", NEWCOMBE_TABLE_I)
def test_wilson_interval_matches_newcombe_1998_table_i(successes, n, low, high):
    ci = wilson_interval(successes, n, 0.95)
    assert ci.low == pytest.approx(low, abs=5e-5)
    assert ci.high == pytest.approx(high, abs=5e-5)


def test_share_of_grades_1_to_5_carries_newcombes_wilson_interval():
    summary = summarise(with_low(81, 263))
    assert summary.low_share == pytest.approx(81 / 263)
    assert summary.low_ci.low == pytest.approx(0.2553, abs=5e-5)
    assert summary.low_ci.high == pytest.approx(0.3662, abs=5e-5)


# Wikipedia, "Student's t-test", section "Worked examples", unequal variances:
# A1 and A2 below give s_delta ~ 0.04849, d.f. ~ 7.031, t ~ 1.959, p = 0.09077.
WIKI_A1 = [30.02, 29.99, 30.11, 29.97, 30.01, 29.99]
WIKI_A2 = [29.89, 29.93, 29.72, 29.98, 30.02, 29.98]


def test_welch_test_matches_the_published_worked_example():
    test = welch_test(statistics.mean(WIKI_A1), statistics.stdev(WIKI_A1), 6,
                      statistics.mean(WIKI_A2), statistics.stdev(WIKI_A2), 6)
    assert test.difference == pytest.approx(0.095, abs=1e-9)
    assert test.se == pytest.approx(0.04849, abs=5e-6)
    assert test.df == pytest.approx(7.031, abs=5e-4)
    assert test.t == pytest.approx(1.959, abs=5e-4)
    assert test.p == pytest.approx(0.09077, abs=5e-6)
    assert not test.significant


def test_compare_of_imported_aggregates_gives_the_published_welch_figures():
    # The same example moved onto the grade scale (minus 22): t, df and p do not change.
    shift = [x - 22 for x in WIKI_A1], [x - 22 for x in WIKI_A2]
    cur = Aggregate(statistics.mean(shift[0]), statistics.stdev(shift[0]), 6, label="A1")
    prev = Aggregate(statistics.mean(shift[1]), statistics.stdev(shift[1]), 6, label="A2")
    result = compare(cur, prev, thresholds=TINY)
    assert result.mean_test.p == pytest.approx(0.09077, abs=5e-6)
    assert result.mean_test.df == pytest.approx(7.031, abs=5e-4)
    assert result.change == Change.NO_SIGNIFICANT_CHANGE


# R's Welch t.test(ts1, ts2) on the data below, as published in a Cross Validated
# answer on the Welch confidence interval: t = -1.8325, df = 17.9,
# p-value = 0.08356, 95 percent confidence interval -2.1469104 0.1469104.
# Shifted by -3 onto grades 6-10 (t, df, p and the interval of the difference do not change).
R_TS1 = [11, 9, 10, 11, 10, 12, 9, 11, 12, 9]
R_TS2 = [11, 13, 10, 13, 12, 9, 11, 12, 12, 11]


def test_compare_of_two_summaries_matches_published_r_welch_output():
    cur = summarise([x - 3 for x in R_TS1], thresholds=TINY)
    prev = summarise([x - 3 for x in R_TS2], thresholds=TINY)
    result = compare(cur, prev, thresholds=TINY)
    test = result.mean_test
    assert test.t == pytest.approx(-1.8325, abs=5e-5)
    assert test.df == pytest.approx(17.9, abs=5e-2)
    assert test.p == pytest.approx(0.08356, abs=5e-6)
    assert test.interval.low == pytest.approx(-2.1469104, abs=5e-8)
    assert test.interval.high == pytest.approx(0.1469104, abs=5e-8)
    assert result.alpha == 0.05


# Two-sided 95 % critical values as printed in any t table (e.g. the NIST/SEMATECH
# e-Handbook of Statistical Methods, 1.3.6.7.2): t(0.975; 9) = 2.262,
# t(0.975; 29) = 2.045, and z(0.975) = 1.960 (infinite df).
@pytest.mark.parametrize("n,critical", [(10, 2.262), (30, 2.045), (10**9, 1.960)])
def test_t_interval_uses_the_tabled_critical_value(n, critical):
    ci = t_interval(7.0, 1.0, n, 0.95)
    assert (ci.high - 7.0) * math.sqrt(n) == pytest.approx(critical, abs=5e-4)


# ---------------------------------------------------------------------------- scipy / statsmodels

DATA_SETS = [grades(seed, n, centre, spread)
             for seed, n, centre, spread in [(1, 30, 7.5, 1.5), (2, 57, 6.8, 2.2),
                                             (3, 212, 7.9, 1.1), (4, 1000, 7.2, 1.8)]]


@pytest.mark.parametrize("values", DATA_SETS)
def test_mean_sd_and_t_interval_match_scipy_and_statsmodels(values):
    summary = summarise(values)
    x = np.array(values, dtype=float)
    assert summary.mean == pytest.approx(x.mean(), rel=1e-12)
    assert summary.sd == pytest.approx(x.std(ddof=1), rel=1e-12)
    low, high = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert (summary.ci.low, summary.ci.high) == pytest.approx((low, high), rel=1e-12)
    sm_low, sm_high = DescrStatsW(x).tconfint_mean(alpha=0.05)
    assert (summary.ci.low, summary.ci.high) == pytest.approx((sm_low, sm_high), rel=1e-12)
    assert summary.high_share == pytest.approx(np.mean(x >= 8))


@pytest.mark.parametrize("values", DATA_SETS)
def test_low_share_interval_matches_statsmodels_wilson(values):
    summary = summarise(values, confidence=0.9)
    count = sum(1 for v in values if v <= 5)
    low, high = proportion_confint(count, len(values), alpha=0.1, method="wilson")
    assert (summary.low_ci.low, summary.low_ci.high) == pytest.approx((low, high), abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 5000), data=st.data(),
       confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_interval_agrees_with_statsmodels_everywhere(n, data, confidence):
    count = data.draw(st.integers(0, n))
    ci = wilson_interval(count, n, confidence)
    low, high = proportion_confint(count, n, alpha=1 - confidence, method="wilson")
    assert ci.low == pytest.approx(low, abs=1e-12)
    assert ci.high == pytest.approx(high, abs=1e-12)
    assert 0 <= ci.low <= count / n <= ci.high <= 1


@pytest.mark.parametrize("a,b", [(DATA_SETS[0], DATA_SETS[1]), (DATA_SETS[2], DATA_SETS[3]),
                                 (DATA_SETS[1], DATA_SETS[3])])
def test_welch_matches_scipy_ttest_ind_and_statsmodels(a, b):
    result = compare(summarise(a), summarise(b))
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert result.mean_test.t == pytest.approx(ref.statistic, rel=1e-10)
    assert result.mean_test.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert result.mean_test.df == pytest.approx(ref.df, rel=1e-10)
    ci = ref.confidence_interval(0.95)
    assert result.mean_test.interval.low == pytest.approx(ci.low, rel=1e-10)
    assert result.mean_test.interval.high == pytest.approx(ci.high, rel=1e-10)
    sm_t, sm_p, sm_df = sm_ttest_ind(a, b, usevar="unequal")
    assert (result.mean_test.t, result.mean_test.p, result.mean_test.df) == pytest.approx(
        (sm_t, sm_p, sm_df), rel=1e-9)


def test_welch_from_imported_aggregates_matches_scipy_ttest_ind_from_stats():
    cur = Aggregate(mean=7.42, sd=1.31, n=612, label="balie 2025")
    prev = Aggregate(mean=7.21, sd=1.57, n=388, label="balie 2023")
    result = compare(cur, prev)
    ref = sps.ttest_ind_from_stats(7.42, 1.31, 612, 7.21, 1.57, 388, equal_var=False)
    assert result.mean_test.t == pytest.approx(ref.statistic, rel=1e-10)
    assert result.mean_test.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert result.change == (Change.UP if ref.pvalue < 0.05 else Change.NO_SIGNIFICANT_CHANGE)


# scipy warns about its own precision when one side is constant; our figures are checked anyway.
@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
@settings(max_examples=40, deadline=None)
@given(a=st.lists(st.integers(1, 10), min_size=30, max_size=120),
       b=st.lists(st.integers(1, 10), min_size=30, max_size=120))
def test_welch_agrees_with_scipy_on_any_grades(a, b):
    result = compare(summarise(a), summarise(b))
    if len(set(a)) == 1 and len(set(b)) == 1:
        assert result.mean_test is None and result.change == Change.NOT_TESTED
        return
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert result.mean_test.t == pytest.approx(ref.statistic, rel=1e-8, abs=1e-12)
    assert result.mean_test.p == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("x1,n1,x2,n2", [(40, 120, 25, 130), (81, 263, 15, 148),
                                         (3, 30, 9, 31), (189, 11034, 104, 11037)])
def test_two_proportion_z_test_matches_statsmodels_and_pearson_chi_square(x1, n1, x2, n2):
    test = two_proportion_test(x1 / n1, n1, x2 / n2, n2)
    z, p = proportions_ztest([x1, x2], [n1, n2])   # pooled variance by default
    assert test.z == pytest.approx(z, rel=1e-10)
    assert test.p == pytest.approx(p, rel=1e-9)
    chi2, chi2_p, _, _ = sps.chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False)
    assert test.z ** 2 == pytest.approx(chi2, rel=1e-10)
    assert test.p == pytest.approx(chi2_p, rel=1e-9)


def test_compare_tests_the_share_of_grades_1_to_5_like_statsmodels():
    cur, prev = with_low(40, 120), with_low(25, 130)
    result = compare(summarise(cur), summarise(prev))
    z, p = proportions_ztest([40, 25], [120, 130])
    assert result.low_share_test.z == pytest.approx(z, rel=1e-10)
    assert result.low_share_test.p == pytest.approx(p, rel=1e-9)
    assert result.low_share_test.significant == (p < 0.05)
    # no grade 8-10 on either side: nothing to test, and the notes say so
    assert result.high_share_test is None
    assert any("grades 8-10" in note for note in result.notes)


def test_weighted_mean_sd_and_interval_match_statsmodels_descrstatsw():
    values = grades(7, 80, 7.3, 1.7)
    rng = random.Random(8)
    weights = [rng.choice([0.4, 0.9, 1.0, 1.7, 2.5]) for _ in values]
    summary = summarise(values, weights=weights)
    w = np.array(weights)
    n_eff = w.sum() ** 2 / (w ** 2).sum()
    assert summary.n_eff == pytest.approx(n_eff, rel=1e-12)
    assert summary.df == pytest.approx(n_eff - 1, rel=1e-12)
    # DescrStatsW treats weights as frequencies: scaled to sum to n_eff they give
    # the Kish-effective-n variance, t-interval and df.
    ref = DescrStatsW(np.array(values, float), weights=w * n_eff / w.sum(), ddof=1)
    assert summary.mean == pytest.approx(ref.mean, rel=1e-12)
    assert summary.sd == pytest.approx(ref.std, rel=1e-12)
    low, high = ref.tconfint_mean(alpha=0.05)
    assert (summary.ci.low, summary.ci.high) == pytest.approx((low, high), rel=1e-12)
    share = w[np.array(values) <= 5].sum() / w.sum()
    assert summary.low_share == pytest.approx(share, rel=1e-12)
    wl, wh = proportion_confint(share * n_eff, n_eff, method="wilson")
    assert (summary.low_ci.low, summary.low_ci.high) == pytest.approx((wl, wh), rel=1e-12)


def test_key_driver_correlation_and_fisher_interval_match_scipy_pearsonr():
    rng = random.Random(11)
    responses = []
    for _ in range(150):
        wait = rng.randint(1, 5)
        friendly = rng.randint(1, 5)
        total = min(10, max(1, round(3 + wait + rng.gauss(0, 1.5))))
        responses.append({"totaal": total, "wachttijd": wait, "vriendelijkheid": friendly})
    drivers = key_drivers(responses)
    for aspect in ("wachttijd", "vriendelijkheid"):
        x = [r[aspect] for r in responses]
        y = [r["totaal"] for r in responses]
        ref = sps.pearsonr(x, y)
        ci = ref.confidence_interval(0.95)     # scipy: Fisher's z transformation
        driver = drivers[aspect]
        assert driver.n == 150
        assert driver.r == pytest.approx(ref.statistic, rel=1e-12)
        assert driver.ci.low == pytest.approx(ci.low, rel=1e-10)
        assert driver.ci.high == pytest.approx(ci.high, rel=1e-10)
    assert drivers["wachttijd"].r > 0.5 > abs(drivers["vriendelijkheid"].r)


# ---------------------------------------------------------------------------- small groups

def test_a_group_of_9_is_suppressed_and_carries_no_figure():
    summary = summarise([8] * 5 + [3] * 4)
    assert summary.status == Status.SUPPRESSED and not summary.shown
    assert summary.n == 9
    for name in ("mean", "sd", "ci", "df", "n_eff", "low_share", "low_ci", "high_share"):
        assert getattr(summary, name) is None, name


@pytest.mark.parametrize("n", [10, 29])
def test_groups_of_10_to_29_are_shown_as_indicative_and_not_tested(n):
    summary = summarise([9] * n)
    assert summary.shown and summary.indicative
    assert summary.status == Status.NOT_TESTED
    assert summary.mean == 9 and summary.ci is not None


def test_a_group_of_30_is_tested_against_the_target():
    assert summarise([9] * 30).status == Status.MET
    assert summarise([6] * 30).status == Status.BELOW
    assert summarise(grades(1, 30, 7.5, 1.5)).status == Status.WITHIN_MARGIN


def test_thresholds_are_configurable():
    groups = SmallGroups(min_shown=5, min_tested=8)
    assert summarise([9] * 4, thresholds=groups).status == Status.SUPPRESSED
    assert summarise([9] * 5, thresholds=groups).status == Status.NOT_TESTED
    assert summarise([9] * 8, thresholds=groups).status == Status.MET


def test_the_tested_threshold_counts_effective_answers_when_weighted():
    values = [9] * 20 + [8] * 20
    weights = [4.0] * 20 + [1.0] * 20        # n_eff = 100^2 / 340 = 29.4
    summary = summarise(values, weights=weights)
    assert summary.n == 40 and summary.n_eff == pytest.approx(10000 / 340)
    assert summary.status == Status.NOT_TESTED


def test_compare_never_shows_a_difference_with_a_suppressed_side():
    result = compare(summarise([9] * 9), summarise(grades(3, 100)))
    assert result.difference is None and result.mean_test is None
    assert result.change == Change.NOT_TESTED
    assert any("current" in note and "suppressed" in note for note in result.notes)
    small = Aggregate(mean=7.0, sd=1.0, n=9, label="telefoon")
    result = compare(summarise(grades(3, 100)), small)
    assert result.difference is None
    assert any("telefoon" in note and "fewer than 10" in note for note in result.notes)


def test_compare_shows_an_indicative_difference_untested():
    result = compare(summarise([9] * 20), summarise([7] * 50))
    assert result.difference == pytest.approx(2.0)
    assert result.mean_test is None and result.low_share_test is None
    assert result.change == Change.NOT_TESTED
    assert any("indicative" in note for note in result.notes)


def test_compare_with_an_imported_mean_sd_n_says_the_shares_cannot_be_tested():
    result = compare(summarise(grades(5, 200)), Aggregate(7.1, 1.6, 350, label="website 2023"))
    assert result.mean_test is not None
    assert result.low_share_test is None and result.high_share_test is None
    assert any("website 2023" in note and "grades 1-5" in note for note in result.notes)
    with_shares = Aggregate(7.1, 1.6, 350, low_share=0.12, high_share=0.41)
    result = compare(summarise(grades(5, 200)), with_shares)
    assert result.low_share_test is not None and result.high_share_test is not None


def test_compare_reports_a_significant_change_with_its_direction():
    up = compare(summarise([8, 9] * 50), summarise([6, 7] * 50))
    assert up.change == Change.UP and up.mean_test.p < 0.05
    down = compare(summarise([6, 7] * 50), summarise([8, 9] * 50))
    assert down.change == Change.DOWN
    assert compare(summarise([7, 8] * 50), summarise([8, 7] * 50)).change == \
        Change.NO_SIGNIFICANT_CHANGE


def test_alpha_is_carried_into_the_comparison_and_its_tests():
    result = compare(summarise(grades(1, 100)), summarise(grades(2, 100)), alpha=0.01)
    assert result.alpha == 0.01
    assert result.mean_test.alpha == 0.01
    z99 = sps.t.ppf(0.995, result.mean_test.df)
    assert result.mean_test.interval.high - result.mean_test.difference == pytest.approx(
        z99 * result.mean_test.se)


# ---------------------------------------------------------------------------- status boundaries

def test_an_interval_touching_the_target_is_within_the_margin():
    assert status_against(Interval(7.5, 8.1), 7.5) == Status.WITHIN_MARGIN
    assert status_against(Interval(6.9, 7.5), 7.5) == Status.WITHIN_MARGIN
    assert status_against(Interval(math.nextafter(7.5, 10), 8.1), 7.5) == Status.MET
    assert status_against(Interval(6.9, math.nextafter(7.5, 0)), 7.5) == Status.BELOW


def test_summary_status_flips_exactly_at_the_interval_ends():
    values = grades(21, 120, 7.6, 1.3)
    ci = summarise(values).ci
    assert summarise(values, target=ci.low).status == Status.WITHIN_MARGIN
    assert summarise(values, target=math.nextafter(ci.low, 0)).status == Status.MET
    assert summarise(values, target=ci.high).status == Status.WITHIN_MARGIN
    assert summarise(values, target=math.nextafter(ci.high, 10)).status == Status.BELOW


# ---------------------------------------------------------------------------- weights

def test_kish_effective_n():
    assert kish_n_eff([1, 1, 1, 1]) == 4
    assert kish_n_eff([0.1] * 30) == 30
    assert kish_n_eff([5, 0, 0]) == 1
    assert kish_n_eff([1, 2, 3]) == pytest.approx(36 / 14)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(1, 10), min_size=30, max_size=200),
       weight=st.floats(0.01, 100))
def test_equal_weights_give_the_unweighted_summary(values, weight):
    plain = summarise(values)
    weighted = summarise(values, weights=[weight] * len(values))
    assert weighted.weighted and not plain.weighted
    assert weighted.n == plain.n and weighted.n_eff == plain.n_eff == len(values)
    assert weighted.status == plain.status
    for name in ("mean", "sd", "low_share", "high_share"):
        assert getattr(weighted, name) == pytest.approx(getattr(plain, name), rel=1e-9, abs=1e-12)
    assert weighted.ci.low == pytest.approx(plain.ci.low, rel=1e-9)
    assert weighted.ci.high == pytest.approx(plain.ci.high, rel=1e-9)


def test_post_stratification_weights_make_the_sample_mix_match_the_visitors():
    sample = {(1, "morning"): 30, (1, "afternoon"): 10}
    visitors = {(1, "morning"): 500, (1, "afternoon"): 500}
    ps = post_stratification_weights(sample, visitors)
    assert ps.weights == pytest.approx({(1, "morning"): 2 / 3, (1, "afternoon"): 2.0})
    assert ps.n == 40
    assert ps.n_eff == pytest.approx(40 ** 2 / (30 * (2 / 3) ** 2 + 10 * 2 ** 2))   # = 30
    assert ps.design_effect == pytest.approx(40 / 30)
    assert ps.coverage == 1 and ps.empty_cells == ()
    # The weighted mean is the visitor-share-weighted mean of the cell means.
    morning, afternoon = [9] * 30, [5] * 10
    cells = [(1, "morning")] * 30 + [(1, "afternoon")] * 10
    summary = summarise(morning + afternoon, weights=ps.weights_for(cells))
    assert summary.mean == pytest.approx(0.5 * 9 + 0.5 * 5)
    assert summary.n_eff == pytest.approx(ps.n_eff)
    assert summary.status == Status.WITHIN_MARGIN


def test_a_sample_in_the_visitors_proportions_gets_weight_one():
    sample = {(d, p): 12 for d in range(1, 6) for p in ("morning", "afternoon")}
    visitors = {cell: 340 for cell in sample}
    ps = post_stratification_weights(sample, visitors)
    assert all(w == pytest.approx(1.0) for w in ps.weights.values())
    assert ps.n_eff == pytest.approx(120)


def test_cells_with_visitors_but_no_answers_are_reported_not_dropped_silently():
    sample = {(1, "morning"): 20, (1, "afternoon"): 20, (6, "morning"): 0}
    visitors = {(1, "morning"): 300, (1, "afternoon"): 500, (6, "morning"): 200,
                (1, "evening"): 0}
    ps = post_stratification_weights(sample, visitors)
    assert ps.empty_cells == ((6, "morning"),)
    assert ps.coverage == pytest.approx(0.8)
    assert set(ps.weights) == {(1, "morning"), (1, "afternoon")}
    assert ps.weights[(1, "morning")] == pytest.approx((300 / 800) / 0.5)


def test_answers_in_a_cell_without_visitor_counts_are_an_error():
    with pytest.raises(InvalidInput, match="evening"):
        post_stratification_weights({(1, "evening"): 3, (1, "morning"): 10},
                                    {(1, "morning"): 100})
    with pytest.raises(InvalidInput, match="evening"):
        post_stratification_weights({(1, "evening"): 3}, {(1, "evening"): 0, (1, "morning"): 9})


@pytest.mark.parametrize("sample,visitors,error", [
    ({}, {"a": 1}, NoData),
    ({"a": 1}, {}, NoData),
    ({"a": 0}, {"a": 5}, NoData),
    ({"a": -1}, {"a": 5}, InvalidInput),
    ({"a": 1.5}, {"a": 5}, InvalidInput),
    ({"a": 1}, {"a": -5}, InvalidInput),
    ({"a": 1}, {"a": float("nan")}, InvalidInput),
])
def test_bad_counts_are_refused(sample, visitors, error):
    with pytest.raises(error):
        post_stratification_weights(sample, visitors)


def test_weights_for_an_unknown_cell_is_an_error():
    ps = post_stratification_weights({"a": 2}, {"a": 5})
    with pytest.raises(InvalidInput, match="answer #1"):
        ps.weights_for(["a", "b"])


def test_weekday_and_part_of_day_cells():
    assert weekday_part_of_day(datetime(2025, 3, 3, 9, 15)) == (1, "morning")
    assert weekday_part_of_day(datetime(2025, 3, 4, 12, 0)) == (2, "afternoon")
    assert weekday_part_of_day(datetime(2025, 3, 6, 17, 0)) == (4, "evening")
    assert weekday_part_of_day(datetime(2025, 3, 6, 16, 59), evening_from=16) == (4, "evening")
    with pytest.raises(InvalidInput):
        weekday_part_of_day(datetime(2025, 3, 6, 9), afternoon_from=18, evening_from=17)


# ---------------------------------------------------------------------------- key drivers

def driver_responses(n: int) -> list[dict]:
    return [{"totaal": 5 + i % 5, "wachttijd": 1 + i % 5, "deskundigheid": 1 + (i * 3) % 5}
            for i in range(n)]


def test_key_drivers_need_the_minimum_of_complete_pairs():
    assert key_drivers(driver_responses(29)) == {"wachttijd": None, "deskundigheid": None}
    drivers = key_drivers(driver_responses(30))
    assert drivers["wachttijd"].n == 30 and drivers["wachttijd"].r == pytest.approx(1.0)
    assert drivers["wachttijd"].ci == Interval(1.0, 1.0)
    assert key_drivers(driver_responses(12), min_complete=10)["deskundigheid"].n == 12


def test_key_drivers_use_only_complete_pairs():
    responses = driver_responses(40)
    responses += [{"totaal": None, "wachttijd": 5}, {"wachttijd": 1},
                  {"totaal": 3, "wachttijd": None}, {"totaal": 9}]
    drivers = key_drivers(responses)
    assert drivers["wachttijd"].n == 40 and drivers["deskundigheid"].n == 40
    assert key_drivers(responses, min_complete=41)["wachttijd"] is None


def test_an_aspect_without_spread_has_no_correlation_and_says_why():
    responses = [{"totaal": 5 + i % 5, "duidelijkheid": 4} for i in range(40)]
    driver = key_drivers(responses)["duidelijkheid"]
    assert driver.r is None and driver.ci is None and "duidelijkheid" in driver.note


def test_key_drivers_refuse_bad_input():
    with pytest.raises(NoData):
        key_drivers([])
    with pytest.raises(InvalidInput, match="min_complete"):
        key_drivers(driver_responses(40), min_complete=3)
    with pytest.raises(InvalidInput, match="response #1"):
        key_drivers([{"totaal": 8, "wachttijd": 3}, {"totaal": 8, "wachttijd": "slecht"}])


# ---------------------------------------------------------------------------- series breaks

V1 = {"totaal": {"nl": "Welk rapportcijfer geeft u ons vandaag?", "en": "What mark do you give?"},
      "wachttijd": {"nl": "Wat vond u van de wachttijd?"}}


def test_a_changed_dutch_wording_starts_a_new_series():
    v2 = {**V1, "totaal": {"nl": "Welk cijfer geeft u ons?", "en": "What mark do you give?"}}
    assert series_breaks({1: V1, 2: v2}) == (SeriesBreak("totaal", 2, 1, ("nl",)),)
    assert series_numbers({1: V1, 2: v2}) == {("totaal", 1): 1, ("wachttijd", 1): 1,
                                              ("totaal", 2): 2, ("wachttijd", 2): 1}


def test_a_changed_or_added_translation_breaks_the_series_for_that_language():
    changed_en = {**V1, "totaal": {**V1["totaal"], "en": "Which mark out of 10?"}}
    added_en = {**V1, "wachttijd": {"nl": "Wat vond u van de wachttijd?", "en": "The wait?"}}
    assert series_breaks({1: V1, 2: changed_en}) == (SeriesBreak("totaal", 2, 1, ("en",)),)
    assert series_breaks({1: V1, 2: added_en}) == (SeriesBreak("wachttijd", 2, 1, ("en",)),)


def test_same_wording_and_white_space_keep_one_series():
    spaced = {"totaal": {"nl": " Welk  rapportcijfer geeft u ons\nvandaag? ",
                         "en": "What mark do you give?"},
              "wachttijd": V1["wachttijd"]}
    assert series_breaks({1: V1, 2: V1, 3: spaced}) == ()


def test_a_question_that_returns_is_compared_with_its_last_wording():
    only_total = {"totaal": V1["totaal"]}
    back_changed = {**V1, "wachttijd": {"nl": "Hoe lang moest u wachten?"}}
    versions = {3: back_changed, 1: V1, 2: only_total, 4: V1}     # any order
    assert series_breaks(versions) == (SeriesBreak("wachttijd", 3, 1, ("nl",)),
                                       SeriesBreak("wachttijd", 4, 3, ("nl",)))
    numbers = series_numbers(versions)
    assert numbers[("wachttijd", 1)] == 1 and numbers[("wachttijd", 3)] == 2
    assert numbers[("wachttijd", 4)] == 3     # the old wording again: never joined silently


@pytest.mark.parametrize("versions,match", [
    ({}, "no questionnaire versions"),
    ({1: {"totaal": {"en": "What mark?"}}}, "Dutch"),
    ({"1": V1}, "whole numbers"),
    ({1: {"totaal": {"nl": 8}}}, "string"),
])
def test_series_breaks_refuse_bad_input(versions, match):
    with pytest.raises(InvalidInput, match=match):
        series_breaks(versions)


# ---------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("values,error,match", [
    ([], NoData, "no grades"),
    ([8, 0, 7], InvalidGrade, "#1"),
    ([8, 11], InvalidGrade, "#1"),
    ([7.5], InvalidGrade, "whole"),
    ([True], InvalidGrade, "#0"),
    ([8, None], InvalidGrade, "missing"),
    (["8"], InvalidGrade, "#0"),
    ([float("nan")], InvalidGrade, "#0"),
    ("8", InvalidInput, "sequence"),
])
def test_bad_grades_are_refused_with_their_position(values, error, match):
    with pytest.raises(error, match=match):
        summarise(values)


@pytest.mark.parametrize("weights,match", [
    ([1, -0.5, 1], "negative"),
    ([1, 1], "2 weights for 3 values"),
    ([0, 0, 0], "every weight is 0"),
    ([1, float("inf"), 1], "finite"),
    ([1, None, 1], "finite"),
])
def test_bad_weights_are_refused(weights, match):
    with pytest.raises(InvalidWeights, match=match):
        summarise([7, 8, 9], weights=weights)


def test_zero_weights_do_not_count_as_answers():
    summary = summarise([8] * 10 + [2] * 5, weights=[1] * 10 + [0] * 5)
    assert summary.n == 10 and summary.mean == 8


@pytest.mark.parametrize("call", [
    lambda: summarise([8] * 40, confidence=95),
    lambda: summarise([8] * 40, confidence=1.0),
    lambda: summarise([8] * 40, target=75),
    lambda: compare(summarise([8] * 40), summarise([7] * 40), alpha=5),
    lambda: SmallGroups(min_shown=1, min_tested=30),
    lambda: SmallGroups(min_shown=20, min_tested=10),
    lambda: SmallGroups(min_shown=10.0, min_tested=30),
    lambda: Aggregate(mean=75, sd=1.2, n=300),
    lambda: Aggregate(mean=7.5, sd=-1, n=300),
    lambda: Aggregate(mean=7.5, sd=1.0, n=0),
    lambda: Aggregate(mean=7.5, sd=1.0, n=100, low_share=12),
    lambda: compare(summarise([8] * 40), (7.5, 1.0, 40)),
    lambda: wilson_interval(5, 4),
    lambda: welch_test(7, 1, 1, 7, 1, 30),
])
def test_bad_arguments_raise_invalid_input(call):
    with pytest.raises(InvalidInput):
        call()


def test_statistics_errors_are_value_errors_and_central_errors():
    for cls in (InvalidInput, NoData, InvalidGrade, InvalidWeights):
        assert issubclass(cls, ValueError) and issubclass(cls, CentralError)


# ---------------------------------------------------------------------------- properties

@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(1, 10), min_size=10, max_size=300),
       confidence=st.sampled_from([0.9, 0.95, 0.99]))
def test_intervals_hold_their_estimates(values, confidence):
    summary = summarise(values, confidence=confidence)
    assert isinstance(summary, Summary)
    assert summary.ci.low <= summary.mean <= summary.ci.high
    assert summary.low_ci.low <= summary.low_share <= summary.low_ci.high
    assert 1 <= summary.mean <= 10
    assert 0 <= summary.low_share + summary.high_share <= 1
    wider = summarise(values, confidence=0.999)
    assert wider.ci.low <= summary.ci.low and summary.ci.high <= wider.ci.high


# ---------------------------------------------------------------------------- from counts

def test_summarise_counts_is_summarise_of_the_values_bit_for_bit():
    from central.stats import summarise_counts, summarise_weighted_counts

    rng = random.Random(4)
    values = [rng.choice([3, 5, 6, 7, 7, 8, 8, 8, 9, 10]) for _ in range(997)]
    counts = dict(Counter(values))
    assert summarise_counts(counts) == summarise(values)
    assert summarise_counts({8: 4, 7: 5}) == summarise([8] * 4 + [7] * 5)      # suppressed
    weights = [rng.choice([0.5, 1.25, 2.0]) for _ in values]
    grouped = Counter(zip(values, weights))
    assert summarise_weighted_counts(grouped) == summarise(values, weights=weights)
    # scipy's own mean and sd of the expanded values, as an outside reference
    s = summarise_counts(counts)
    assert s.mean == pytest.approx(float(np.mean(values)), abs=1e-12)
    assert s.sd == pytest.approx(float(np.std(values, ddof=1)), abs=1e-12)


@pytest.mark.parametrize("counts, error, message", [
    ({}, NoData, "every count is 0"),
    ({8: 0}, NoData, "every count is 0"),
    ({11: 3}, InvalidGrade, "whole numbers from 1 to 10"),
    ({8: -1}, InvalidInput, "whole number of at least 0"),
    ({8: 2.5}, InvalidInput, "whole number of at least 0"),
    ([8, 9], InvalidInput, "must be a mapping"),
])
def test_summarise_counts_refuses_bad_tables(counts, error, message):
    from central.stats import summarise_counts

    with pytest.raises(error, match=message):
        summarise_counts(counts)


def test_summarise_weighted_counts_refuses_bad_keys_and_weights():
    from central.stats import summarise_weighted_counts

    with pytest.raises(InvalidInput, match=r"\(grade, weight\) pair"):
        summarise_weighted_counts({8: 3})
    with pytest.raises(InvalidWeights, match="finite numbers of at least 0"):
        summarise_weighted_counts({(8, -1.0): 3})
    with pytest.raises(InvalidWeights, match="every weight is 0"):
        summarise_weighted_counts({(8, 0.0): 3})


def test_key_drivers_from_sums_equals_key_drivers_and_numpy():
    from central.stats import key_drivers_from_sums

    rng = random.Random(9)
    rows = []
    for _ in range(400):
        y = rng.randint(3, 10)
        rows.append({"totaal": y, "wachttijd": max(1, min(10, y + rng.randint(-3, 2))),
                     "wachtruimte": rng.randint(1, 5)})
    expected = key_drivers(rows, overall="totaal")
    sums = {}
    for aspect in ("wachttijd", "wachtruimte"):
        xs = [r[aspect] for r in rows]
        ys = [r["totaal"] for r in rows]
        sums[aspect] = (len(xs), sum(xs), sum(ys), sum(x * x for x in xs),
                        sum(y * y for y in ys), sum(x * y for x, y in zip(xs, ys)))
        assert expected[aspect].r == pytest.approx(float(np.corrcoef(xs, ys)[0, 1]), abs=1e-12)
    got = key_drivers_from_sums(sums, overall="totaal")
    for aspect, driver in expected.items():
        assert got[aspect].n == driver.n
        assert got[aspect].r == pytest.approx(driver.r, abs=1e-12)
        assert got[aspect].ci.low == pytest.approx(driver.ci.low, abs=1e-12)
    assert key_drivers_from_sums({"x": (0, 0, 0, 0, 0, 0)}) == {"x": None}
    flat = key_drivers_from_sums({"x": (50, 400, 350, 3200, 2600, 2800)})["x"]
    assert flat.r is None and "every x answer is the same" in flat.note
    with pytest.raises(InvalidInput, match="six whole numbers"):
        key_drivers_from_sums({"x": (5, 1.5, 2, 3, 4, 5)})


def test_part_of_day_matches_weekday_part_of_day():
    from central.stats import part_of_day

    for hour in range(24):
        moment = datetime(2025, 3, 3, hour)
        assert weekday_part_of_day(moment) == (1, part_of_day(hour))
    with pytest.raises(InvalidInput):
        part_of_day(9, afternoon_from=18, evening_from=17)
