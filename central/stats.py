"""The thermometer's statistics: summaries per aspect and group, changes, weights, drivers, series.

Use::

    s = summarise([8, 7, 9, 6, 8, ...], target=7.5)      # a Summary
    s.status                     # "met" / "within_margin" / "below" / "not_tested" / "suppressed"
    s.mean, s.ci.low, s.ci.high, s.low_share, s.low_ci, s.high_share
    c = compare(s, previous_summary)                  # or an imported Aggregate(mean, sd, n)
    c.change, c.mean_test.p, c.alpha, c.notes         # "up" / "down" / "no_significant_change" / ...
    ps = post_stratification_weights(sample_counts, visitor_counts)   # cells: (weekday, day part)
    summarise(values, weights=ps.weights_for(cells_of_values))
    key_drivers(responses, overall="totaal")          # {aspect: Driver or None}
    series_breaks({1: {"totaal": {"nl": "..."}}, 2: {...}})

Pure functions and small frozen dataclasses: no database, no I/O, no clock.
Quantiles of the t and normal distributions come from scipy; everything else is
the formula written in the docstring next to it.

Rules that protect people (defaults in :class:`SmallGroups`):

* a group with fewer than ``min_shown`` (10) answers is **suppressed**: its
  summary carries the count and nothing else, so no figure about a handful of
  visitors or one staff member's counter hours can be printed by mistake;
* a group with fewer than ``min_tested`` (30) answers (effective answers when
  weighted) is **indicative**: figures are shown, but neither the target nor a
  change is tested.

Bad input raises :class:`InvalidInput` (a ``ValueError``) or one of its
subclasses, naming the place and the value; none is worth retrying unchanged.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from central.errors import CentralError


def _student_t():
    """scipy's t distribution, imported on first use (scipy takes 1-2 s to import)."""
    from scipy.stats import t

    return t


def _norm():
    """scipy's normal distribution, imported on first use."""
    from scipy.stats import norm

    return norm

#: The municipality's target: a 7.5 on every aspect.
DEFAULT_TARGET = 7.5
DEFAULT_CONFIDENCE = 0.95
DEFAULT_ALPHA = 0.05
#: Key drivers need at least this many complete (aspect, overall) pairs.
DEFAULT_MIN_COMPLETE = 30
#: Grades 1-5 are insufficient ("onvoldoende"), 8-10 good or better.
LOW_GRADES = (1, 5)
HIGH_GRADES = (8, 10)
GRADE_MIN, GRADE_MAX = 1, 10
# Relative tolerance when an effective n is compared with a whole-number threshold:
# (sum w)^2 / sum w^2 of equal weights can come out a hair below n.
_N_EFF_SLACK = 1e-9


# ---------------------------------------------------------------------------- errors

class StatsError(CentralError):
    """Base class of the statistics module's errors. Not safe to retry: fix the input."""


class InvalidInput(StatsError, ValueError):
    """An argument is outside what the formula can take (the message says which and why)."""


class NoData(InvalidInput):
    """There is nothing to summarise: no values, no cells, no questionnaire versions."""


class InvalidGrade(InvalidInput):
    """A value is not a whole Dutch report grade from 1 to 10 (the message gives its position)."""


class InvalidWeights(InvalidInput):
    """Weights are negative, not finite, all zero, or not one per value."""


# ---------------------------------------------------------------------------- small types

@dataclass(frozen=True)
class SmallGroups:
    """Thresholds for small groups: below ``min_shown`` suppressed, below ``min_tested`` indicative.

    ``min_shown`` counts answers (people); ``min_tested`` is compared with the
    effective number of answers, which equals the count when unweighted.
    ``min_shown`` is at least 2 (a standard deviation needs two answers) and at
    most ``min_tested``.
    """

    min_shown: int = 10
    min_tested: int = 30

    def __post_init__(self) -> None:
        for name in ("min_shown", "min_tested"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"SmallGroups.{name} must be a whole number, got {value!r}")
        if self.min_shown < 2:
            raise InvalidInput(f"SmallGroups.min_shown must be at least 2, got {self.min_shown}")
        if self.min_tested < self.min_shown:
            raise InvalidInput(f"SmallGroups.min_tested ({self.min_tested}) must be at least "
                               f"min_shown ({self.min_shown})")


class Status(StrEnum):
    """A mean against the target, read from its confidence interval."""

    MET = "met"                        # the whole interval lies above the target
    WITHIN_MARGIN = "within_margin"    # the interval contains (or touches) the target
    BELOW = "below"                    # the whole interval lies below the target
    NOT_TESTED = "not_tested"          # indicative group: shown, not tested
    SUPPRESSED = "suppressed"          # too few answers: nothing shown


class Change(StrEnum):
    """What a comparison of two means says, at its significance level."""

    UP = "up"
    DOWN = "down"
    NO_SIGNIFICANT_CHANGE = "no_significant_change"
    NOT_TESTED = "not_tested"


@dataclass(frozen=True)
class Interval:
    """A closed interval ``[low, high]``; ``x in interval`` includes both ends."""

    low: float
    high: float

    def __contains__(self, x: float) -> bool:
        return self.low <= x <= self.high


@dataclass(frozen=True)
class Summary:
    """One group's figures. Everything but ``n`` is None when ``status`` is "suppressed".

    ``n``: answers (with a positive weight); ``n_eff``: Kish's effective number
    (``n`` when unweighted); ``df``: degrees of freedom of the t-interval
    (``n_eff - 1``); ``ci``: the ``confidence`` interval of the mean;
    ``low_share``/``low_ci``: share of grades 1-5 and its Wilson interval;
    ``high_share``: share of grades 8-10. Shares are fractions (0.12 is 12 %).
    """

    n: int
    status: Status
    target: float
    confidence: float
    weighted: bool = False
    n_eff: float | None = None
    mean: float | None = None
    sd: float | None = None
    df: float | None = None
    ci: Interval | None = None
    low_share: float | None = None
    low_ci: Interval | None = None
    high_share: float | None = None

    @property
    def shown(self) -> bool:
        """False for a suppressed group: print "fewer than N answers", no figure."""
        return self.status != Status.SUPPRESSED

    @property
    def indicative(self) -> bool:
        """Shown but too small to test: print it as indicative."""
        return self.status == Status.NOT_TESTED


@dataclass(frozen=True)
class Aggregate:
    """An earlier study or another channel, imported as published: mean, sd, n (shares if given).

    ``low_share``/``high_share``: fractions of grades 1-5 / 8-10, when the
    source gives them; without them :func:`compare` cannot test shares and says so.
    """

    mean: float
    sd: float
    n: int
    low_share: float | None = None
    high_share: float | None = None
    label: str = ""

    def __post_init__(self) -> None:
        where = f"aggregate {self.label!r}" if self.label else "aggregate"
        if isinstance(self.n, bool) or not isinstance(self.n, numbers.Integral) or self.n < 1:
            raise InvalidInput(f"{where}: n must be a whole number of at least 1, got {self.n!r}")
        if not _is_real(self.mean) or not GRADE_MIN <= self.mean <= GRADE_MAX:
            raise InvalidInput(f"{where}: mean must be a grade from 1 to 10, got {self.mean!r} "
                               "(a percentage or a 1-5 scale?)")
        if not _is_real(self.sd) or self.sd < 0:
            raise InvalidInput(f"{where}: sd must be a number of at least 0, got {self.sd!r}")
        for name in ("low_share", "high_share"):
            share = getattr(self, name)
            if share is not None and (not _is_real(share) or not 0 <= share <= 1):
                raise InvalidInput(f"{where}: {name} must be a fraction from 0 to 1, got {share!r}")


@dataclass(frozen=True)
class MeanTest:
    """Welch's t-test of current minus previous mean (see :func:`welch_test`)."""

    difference: float
    se: float
    t: float
    df: float
    p: float
    alpha: float
    interval: Interval          # (1 - alpha) interval of the difference

    @property
    def significant(self) -> bool:
        return self.p < self.alpha


@dataclass(frozen=True)
class ProportionTest:
    """Pooled two-proportion z-test of current minus previous share (see :func:`two_proportion_test`)."""

    difference: float
    pooled: float
    se: float
    z: float
    p: float
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p < self.alpha


@dataclass(frozen=True)
class Comparison:
    """Current against previous. ``alpha`` goes into every table that prints it.

    ``difference``: current minus previous mean (None when either side is
    suppressed). A test is None when it was not done; ``notes`` says why, in
    words a report can print.
    """

    alpha: float
    difference: float | None
    mean_test: MeanTest | None = None
    low_share_test: ProportionTest | None = None
    high_share_test: ProportionTest | None = None
    notes: tuple[str, ...] = ()

    @property
    def change(self) -> Change:
        if self.mean_test is None:
            return Change.NOT_TESTED
        if not self.mean_test.significant:
            return Change.NO_SIGNIFICANT_CHANGE
        return Change.UP if self.mean_test.difference > 0 else Change.DOWN


@dataclass(frozen=True)
class PostStratification:
    """Weights per cell (weekday x part of day), and what the visitor counts could not cover.

    ``weights``: cell -> weight of each answer in it (the sample's mean weight
    is 1); ``empty_cells``: cells with visitors but no answers, whose visitors
    are represented by nobody; ``coverage``: the share of visitors in cells
    with answers; ``n_eff``: Kish's effective sample size of the weighted sample.
    """

    weights: Mapping[Hashable, float]
    empty_cells: tuple[Hashable, ...]
    coverage: float
    n: int
    n_eff: float

    @property
    def design_effect(self) -> float:
        """``n / n_eff``: how much the weighting widens the intervals (squared)."""
        return self.n / self.n_eff

    def weights_for(self, cells: Iterable[Hashable]) -> list[float]:
        """One weight per answer, given each answer's cell (for ``summarise(weights=...)``)."""
        out = []
        for i, cell in enumerate(cells):
            try:
                out.append(self.weights[cell])
            except KeyError:
                raise InvalidInput(f"answer #{i}: cell {cell!r} has no weight "
                                   "(it was not in the sample counts)") from None
        return out


@dataclass(frozen=True)
class Driver:
    """An aspect's Pearson correlation with the overall grade over ``n`` complete pairs.

    ``r`` and ``ci`` are None when one of the two has no spread (``note`` says which).
    """

    aspect: str
    n: int
    r: float | None
    ci: Interval | None
    confidence: float
    note: str = ""


@dataclass(frozen=True)
class SeriesBreak:
    """Question ``question_id`` starts a new series at questionnaire ``version``.

    ``previous_version``: the last version that asked it; ``languages``: the
    languages whose wording changed (as a visitor saw it, Dutch standing in for
    a missing translation).
    """

    question_id: str
    version: int
    previous_version: int
    languages: tuple[str, ...] = ()


# ---------------------------------------------------------------------------- building blocks

def kish_n_eff(weights: Sequence[float]) -> float:
    """Kish's effective sample size ``n_eff = (sum w)^2 / sum w^2``.

    Equal weights give ``n`` exactly; one answer carrying all the weight gives 1.
    """
    w = _check_weights(weights, len(weights))
    return _n_eff(w)


def t_interval(mean: float, sd: float, n: float, confidence: float = DEFAULT_CONFIDENCE
               ) -> Interval:
    """The t-interval of a mean: ``mean +/- t(1 - (1 - confidence)/2; n - 1) * sd / sqrt(n)``.

    ``n`` may be an effective n (not a whole number); it must exceed 1.
    """
    _check_confidence(confidence)
    if not n > 1:
        raise InvalidInput(f"a t-interval needs n > 1, got {n!r}")
    half = float(_student_t().ppf(_upper(confidence), n - 1)) * sd / math.sqrt(n)
    return Interval(mean - half, mean + half)


def wilson_interval(successes: float, n: float, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Wilson's score interval (1927) of a proportion ``p = successes / n``.

    With ``z = Phi^-1(1 - (1 - confidence)/2)``::

        centre = (p + z^2 / (2n)) / (1 + z^2 / n)
        half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))
        interval = [centre - half, centre + half]

    It stays inside [0, 1] and is sensible for shares near 0 or 1 and small n
    (Newcombe 1998). ``successes`` and ``n`` may be weighted (effective) numbers.
    """
    _check_confidence(confidence)
    if not n > 0:
        raise InvalidInput(f"a proportion needs n > 0, got {n!r}")
    if not 0 <= successes <= n:
        raise InvalidInput(f"successes must be from 0 to n ({n}), got {successes!r}")
    p = successes / n
    z = float(_norm().ppf(_upper(confidence)))
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    # Mathematically low <= p <= high (0 for p = 0, 1 for p = 1); rounding must not say otherwise.
    return Interval(min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


def status_against(ci: Interval, target: float) -> Status:
    """``met`` when ``ci.low > target``, ``below`` when ``ci.high < target``, else ``within_margin``.

    An interval that touches the target (an end equal to it) contains it: within the margin.
    """
    if ci.low > target:
        return Status.MET
    if ci.high < target:
        return Status.BELOW
    return Status.WITHIN_MARGIN


def welch_test(mean1: float, sd1: float, n1: float, mean2: float, sd2: float, n2: float,
               alpha: float = DEFAULT_ALPHA) -> MeanTest | None:
    """Welch's t-test of ``mean1 - mean2`` (unequal variances), two-sided.

    ::

        v_i = sd_i^2 / n_i
        se  = sqrt(v_1 + v_2)
        t   = (mean1 - mean2) / se
        df  = (v_1 + v_2)^2 / (v_1^2 / (n_1 - 1) + v_2^2 / (n_2 - 1))   (Welch-Satterthwaite)
        p   = 2 * (1 - T_df(|t|))
        interval = (mean1 - mean2) +/- t(1 - alpha/2; df) * se

    ``n_i`` may be effective numbers; each must exceed 1. None when both sds are
    0 (no spread on either side: the test is undefined).
    """
    _check_alpha(alpha)
    for name, n in (("n1", n1), ("n2", n2)):
        if not n > 1:
            raise InvalidInput(f"Welch's test needs {name} > 1, got {n!r}")
    for name, sd in (("sd1", sd1), ("sd2", sd2)):
        if not sd >= 0:
            raise InvalidInput(f"{name} must be at least 0, got {sd!r}")
    v1, v2 = sd1 * sd1 / n1, sd2 * sd2 / n2
    if v1 + v2 == 0:
        return None
    se = math.sqrt(v1 + v2)
    diff = mean1 - mean2
    t = diff / se
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    p = float(2 * _student_t().sf(abs(t), df))
    half = float(_student_t().ppf(1 - alpha / 2, df)) * se
    return MeanTest(difference=diff, se=se, t=t, df=df, p=p, alpha=alpha,
                    interval=Interval(diff - half, diff + half))


def two_proportion_test(p1: float, n1: float, p2: float, n2: float,
                        alpha: float = DEFAULT_ALPHA) -> ProportionTest | None:
    """Two-sided z-test of ``p1 - p2`` with the pooled proportion under H0 (``p1 == p2``).

    ::

        pooled = (p1 n1 + p2 n2) / (n1 + n2)
        se     = sqrt(pooled (1 - pooled) (1/n1 + 1/n2))
        z      = (p1 - p2) / se
        p      = 2 * (1 - Phi(|z|))

    ``z^2`` is Pearson's chi-square of the 2x2 table without continuity
    correction. ``n_i`` may be effective numbers. None when the pooled share is
    0 or 1 (nobody, or everybody, in both: nothing to test).
    """
    _check_alpha(alpha)
    for name, share in (("p1", p1), ("p2", p2)):
        if not 0 <= share <= 1:
            raise InvalidInput(f"{name} must be a fraction from 0 to 1, got {share!r}")
    for name, n in (("n1", n1), ("n2", n2)):
        if not n > 0:
            raise InvalidInput(f"the z-test needs {name} > 0, got {n!r}")
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    if pooled <= 0 or pooled >= 1:
        return None
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (p1 - p2) / se
    p = float(2 * _norm().sf(abs(z)))
    return ProportionTest(difference=p1 - p2, pooled=pooled, se=se, z=z, p=p, alpha=alpha)


# ---------------------------------------------------------------------------- summarise

def summarise(values: Iterable[int], *, target: float = DEFAULT_TARGET,
              weights: Sequence[float] | None = None, confidence: float = DEFAULT_CONFIDENCE,
              thresholds: SmallGroups = SmallGroups()) -> Summary:
    """One group's grades (whole numbers 1-10) summarised against ``target``.

    Use::

        summarise([8, 7, 9, 6, 8, 7, 7, 8, 9, 5])             # 10 answers: indicative
        summarise(grades, weights=ps.weights_for(cells))      # post-stratified

    With weights ``w_i`` (1 each when ``weights`` is None), ``W = sum w_i``::

        n      = number of answers with w_i > 0
        n_eff  = W^2 / sum w_i^2                       (Kish; = n unweighted)
        mean   = sum w_i x_i / W
        sd^2   = sum w_i (x_i - mean)^2 / W * n_eff / (n_eff - 1)
                                                       (= the usual n - 1 formula unweighted)
        ci     = mean +/- t(1 - (1 - confidence)/2; n_eff - 1) * sd / sqrt(n_eff)
        low    = sum of w_i with x_i in 1..5 / W,  Wilson interval with n_eff
        high   = sum of w_i with x_i in 8..10 / W

    Status: ``suppressed`` when ``n < thresholds.min_shown`` (only ``n`` is
    kept); ``not_tested`` when ``n_eff < thresholds.min_tested``; else from the
    interval: ``met`` (wholly above the target), ``within_margin`` (contains or
    touches it), ``below`` (wholly below). Weighting by the Kish n_eff ignores
    the precision gained by stratifying, so the intervals are on the safe (wide) side.

    Raises :class:`NoData` (no values), :class:`InvalidGrade` (not a whole
    number from 1 to 10), :class:`InvalidWeights`, :class:`InvalidInput`
    (confidence, target).
    """
    _check_summary_args(target, confidence, thresholds)
    grades = _check_grades(values)
    if weights is None:
        groups = [(x, 1.0, c) for x, c in Counter(grades).items()]
    else:
        w = _check_weights(weights, len(grades))
        groups = [(x, wi, c) for (x, wi), c in Counter(zip(grades, w)).items()]
    return _summarise_groups(groups, target=target, confidence=confidence,
                             thresholds=thresholds, weighted=weights is not None)


def summarise_counts(counts: Mapping[int, int], *, target: float = DEFAULT_TARGET,
                     confidence: float = DEFAULT_CONFIDENCE,
                     thresholds: SmallGroups = SmallGroups()) -> Summary:
    """:func:`summarise` of a frequency table ``{grade: number of answers}`` (unweighted).

    Use::

        summarise_counts({8: 40, 7: 31, 5: 9})     # == summarise([8] * 40 + [7] * 31 + [5] * 9)

    The same figures, bit for bit, as :func:`summarise` of the values the table
    counts: both compute from (grade, weight, count) groups. This is how the
    report works on millions of answers: the database counts, Python summarises.
    """
    return summarise_weighted_counts({(x, 1.0): c for x, c in _check_counts(counts).items()},
                                     target=target, confidence=confidence,
                                     thresholds=thresholds, weighted=False)


def summarise_weighted_counts(counts: Mapping[tuple[int, float], int], *,
                              target: float = DEFAULT_TARGET,
                              confidence: float = DEFAULT_CONFIDENCE,
                              thresholds: SmallGroups = SmallGroups(),
                              weighted: bool = True) -> Summary:
    """:func:`summarise` of ``{(grade, weight): number of answers}`` (post-stratified counts).

    Use::

        summarise_weighted_counts({(8, ps.weights[cell]): 12, ...})

    ``count`` answers of grade ``x`` with weight ``w`` each count as ``count``
    values in the formulas of :func:`summarise`.
    """
    _check_summary_args(target, confidence, thresholds)
    if not isinstance(counts, Mapping):
        raise InvalidInput(f"counts must be a mapping of (grade, weight) to a count, "
                           f"got {type(counts).__name__}")
    groups = []
    for key, c in counts.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise InvalidInput(f"count key {key!r} must be a (grade, weight) pair")
        x, wi = key
        grade = _check_grades([x])[0]
        if not _is_real(wi) or wi < 0:
            raise InvalidWeights(f"weight {wi!r} of grade {x!r}: weights are finite numbers "
                                 "of at least 0")
        groups.append((grade, float(wi), _check_count(c, f"grade {x!r}")))
    if not any(c > 0 for _, _, c in groups):
        raise NoData("no grades to summarise (every count is 0)")
    if not any(wi > 0 and c > 0 for _, wi, c in groups):
        raise InvalidWeights("every weight is 0: nothing would count")
    return _summarise_groups(groups, target=target, confidence=confidence,
                             thresholds=thresholds, weighted=weighted)


def _summarise_groups(groups: list[tuple[int, float, int]], *, target: float, confidence: float,
                      thresholds: SmallGroups, weighted: bool) -> Summary:
    """The formulas of :func:`summarise` over (grade, weight, count) groups (checked input)."""
    groups = [(x, wi, c) for x, wi, c in sorted(groups) if c > 0]
    n = sum(c for _, wi, c in groups if wi > 0)
    base = dict(target=float(target), confidence=confidence, weighted=weighted)
    if n < thresholds.min_shown:
        return Summary(n=n, status=Status.SUPPRESSED, **base)

    total = math.fsum(c * wi for _, wi, c in groups)
    squares = math.fsum(c * wi * wi for _, wi, c in groups)
    n_eff = float(n) if len({wi for _, wi, _ in groups}) == 1 else total * total / squares
    mean = math.fsum(c * wi * x for x, wi, c in groups) / total
    low_share = math.fsum(c * wi for x, wi, c in groups if x <= LOW_GRADES[1]) / total
    high_share = math.fsum(c * wi for x, wi, c in groups if x >= HIGH_GRADES[0]) / total
    low_ci = wilson_interval(low_share * n_eff, n_eff, confidence)
    sd = df = ci = None
    if n_eff > 1:
        ss = math.fsum(c * wi * (x - mean) ** 2 for x, wi, c in groups)
        sd = math.sqrt(ss / total * n_eff / (n_eff - 1))
        df = n_eff - 1
        ci = t_interval(mean, sd, n_eff, confidence)
    if ci is None or not _reaches(n_eff, thresholds.min_tested):
        status = Status.NOT_TESTED
    else:
        status = status_against(ci, target)
    return Summary(n=n, status=status, n_eff=n_eff, mean=mean, sd=sd, df=df, ci=ci,
                   low_share=low_share, low_ci=low_ci, high_share=high_share, **base)


def _check_summary_args(target, confidence, thresholds) -> None:
    _check_confidence(confidence)
    if not _is_real(target) or not GRADE_MIN <= target <= GRADE_MAX:
        raise InvalidInput(f"target must be a grade from 1 to 10, got {target!r}")
    if not isinstance(thresholds, SmallGroups):
        raise InvalidInput(f"thresholds must be a SmallGroups, got {thresholds!r}")


def _check_counts(counts) -> dict[int, int]:
    if not isinstance(counts, Mapping):
        raise InvalidInput(f"counts must be a mapping of grade to a count, "
                           f"got {type(counts).__name__}")
    return {_check_grades([x])[0]: _check_count(c, f"grade {x!r}") for x, c in counts.items()}


def _check_count(c, where: str) -> int:
    if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 0:
        raise InvalidInput(f"count of {where} must be a whole number of at least 0, got {c!r}")
    return int(c)


# ---------------------------------------------------------------------------- compare

def compare(current: Summary | Aggregate, previous: Summary | Aggregate, *,
            alpha: float = DEFAULT_ALPHA, thresholds: SmallGroups = SmallGroups()) -> Comparison:
    """Has the mean (and the shares of grades 1-5 and 8-10) changed since ``previous``?

    Use::

        c = compare(summarise(this_year), summarise(two_years_ago))
        c = compare(summarise(counter), Aggregate(mean=7.2, sd=1.4, n=412, label="telefoon 2023"))
        c.change          # "up", "down", "no_significant_change", "not_tested"

    The mean: Welch's t-test (:func:`welch_test`) with each side's sd and
    effective n. The shares: the pooled two-proportion z-test
    (:func:`two_proportion_test`) with effective n; only when both sides have
    shares (an imported :class:`Aggregate` of mean, sd and n has none). Both
    are two-sided at ``alpha``.

    ``thresholds`` applies to both sides: a side with fewer than ``min_shown``
    answers (or a suppressed summary) gives no difference at all; one with an
    effective n below ``min_tested`` gives the difference, untested. Series
    breaks are the caller's: compare only what :func:`series_numbers` puts in
    one series.
    """
    _check_alpha(alpha)
    if not isinstance(thresholds, SmallGroups):
        raise InvalidInput(f"thresholds must be a SmallGroups, got {thresholds!r}")
    sides = [_side(current, "current"), _side(previous, "previous")]
    notes: list[str] = []
    for side in sides:
        if side.mean is None:
            notes.append(f"{side.name}: suppressed (too few answers to show)")
        elif side.n < thresholds.min_shown:
            notes.append(f"{side.name}: fewer than {thresholds.min_shown} answers, not shown")
    if notes:
        return Comparison(alpha=alpha, difference=None, notes=tuple(notes))
    cur, prev = sides
    difference = cur.mean - prev.mean
    for side in sides:
        if side.sd is None or not _reaches(side.n_eff, thresholds.min_tested):
            notes.append(f"{side.name}: fewer than {thresholds.min_tested} (effective) answers, "
                         "indicative, not tested")
    if notes:
        return Comparison(alpha=alpha, difference=difference, notes=tuple(notes))

    mean_test = welch_test(cur.mean, cur.sd, cur.n_eff, prev.mean, prev.sd, prev.n_eff, alpha)
    if mean_test is None:
        notes.append("no spread in either group (every answer the same): no t-test possible")
    share_tests = {}
    for share, words in (("low_share", "grades 1-5"), ("high_share", "grades 8-10")):
        missing = [side.name for side in sides if getattr(side, share) is None]
        if missing:
            notes.append(f"{' and '.join(missing)}: no share of {words} (an imported mean, sd "
                         f"and n), so that share is not tested")
            share_tests[share] = None
            continue
        test = two_proportion_test(getattr(cur, share), cur.n_eff,
                                   getattr(prev, share), prev.n_eff, alpha)
        if test is None:
            notes.append(f"share of {words} is 0 % or 100 % in both: nothing to test")
        share_tests[share] = test
    return Comparison(alpha=alpha, difference=difference, mean_test=mean_test,
                      low_share_test=share_tests["low_share"],
                      high_share_test=share_tests["high_share"], notes=tuple(notes))


@dataclass(frozen=True)
class _Side:
    name: str
    n: int
    n_eff: float | None
    mean: float | None
    sd: float | None
    low_share: float | None
    high_share: float | None


def _side(item: Summary | Aggregate, name: str) -> _Side:
    if isinstance(item, Summary):
        return _Side(name, item.n, item.n_eff, item.mean, item.sd, item.low_share, item.high_share)
    if isinstance(item, Aggregate):
        label = f"{name} ({item.label})" if item.label else name
        return _Side(label, item.n, float(item.n), float(item.mean), float(item.sd),
                     item.low_share, item.high_share)
    raise InvalidInput(f"{name} must be a Summary or an Aggregate, got {type(item).__name__}")


# ---------------------------------------------------------------------------- weights

def post_stratification_weights(cells_sample_counts: Mapping[Hashable, int],
                                cells_population_counts: Mapping[Hashable, float]
                                ) -> PostStratification:
    """Weights that make the answers' mix of cells match the visitors' (weekday x part of day).

    Use::

        ps = post_stratification_weights({(1, "morning"): 40, (1, "afternoon"): 10, ...},
                                         {(1, "morning"): 900, (1, "afternoon"): 700, ...})
        ps.empty_cells    # cells with visitors but no answer: print them
        summarise(grades, weights=ps.weights_for(cell_of_each_grade))

    For the cells ``c`` with answers (``n_c > 0``), with ``n = sum n_c`` and
    ``N_C`` the visitors in those cells::

        w_c      = (N_c / N_C) / (n_c / n)        (the sample's mean weight is 1)
        coverage = N_C / N                        (N: all visitors)
        n_eff    = n^2 / sum_c n_c w_c^2          (Kish)

    Cells with visitors but no answers cannot be weighted up from nothing: they
    are listed in ``empty_cells`` and left out of ``coverage``; the estimate
    then speaks for the covered cells only. A cell with answers but no
    visitor count (or a count of 0) is an error: the counts do not fit the sample.
    """
    if not cells_sample_counts:
        raise NoData("no sample counts: there are no answers to weight")
    if not cells_population_counts:
        raise NoData("no visitor counts: weighting needs the municipality's visitor counts")
    for cell, count in cells_sample_counts.items():
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
            raise InvalidInput(f"sample count of cell {cell!r} must be a whole number of at "
                               f"least 0, got {count!r}")
    for cell, count in cells_population_counts.items():
        if not _is_real(count) or count < 0:
            raise InvalidInput(f"visitor count of cell {cell!r} must be a number of at least 0, "
                               f"got {count!r}")
    sampled = {cell: int(count) for cell, count in cells_sample_counts.items() if count > 0}
    if not sampled:
        raise NoData("every sample count is 0: there are no answers to weight")
    uncounted = [cell for cell in sampled if not cells_population_counts.get(cell)]
    if uncounted:
        raise InvalidInput("answers in cells without visitors in the visitor counts: "
                           + ", ".join(repr(c) for c in uncounted)
                           + " (do the counts cover the same period and cells?)")
    n = sum(sampled.values())
    population = math.fsum(cells_population_counts.values())
    covered = math.fsum(cells_population_counts[cell] for cell in sampled)
    weights = {cell: (cells_population_counts[cell] / covered) / (count / n)
               for cell, count in sampled.items()}
    empty = tuple(cell for cell, count in cells_population_counts.items()
                  if count > 0 and cell not in sampled)
    n_eff = n * n / math.fsum(count * weights[cell] ** 2 for cell, count in sampled.items())
    return PostStratification(weights=weights, empty_cells=empty, coverage=covered / population,
                              n=n, n_eff=n_eff)


def weekday_part_of_day(moment: datetime, *, afternoon_from: int = 12,
                        evening_from: int = 17) -> tuple[int, str]:
    """The cell of a moment in local time: (ISO weekday 1-7, "morning"/"afternoon"/"evening").

    ``moment`` must already be in the municipality's local time (the cells are
    its opening hours); hours ``< afternoon_from`` are morning, ``< evening_from``
    afternoon, the rest evening.
    """
    return moment.isoweekday(), part_of_day(moment.hour, afternoon_from=afternoon_from,
                                            evening_from=evening_from)


def part_of_day(hour: int, *, afternoon_from: int = 12, evening_from: int = 17) -> str:
    """``morning`` / ``afternoon`` / ``evening`` of a local hour (0-23), as in weekday_part_of_day."""
    if not 0 < afternoon_from < evening_from <= 24:
        raise InvalidInput(f"need 0 < afternoon_from < evening_from <= 24, got "
                           f"{afternoon_from} and {evening_from}")
    if hour < afternoon_from:
        part = "morning"
    elif hour < evening_from:
        part = "afternoon"
    else:
        part = "evening"
    return part


# ---------------------------------------------------------------------------- key drivers

def key_drivers(responses: Iterable[Mapping[str, float | None]], overall: str = "totaal", *,
                min_complete: int = DEFAULT_MIN_COMPLETE,
                confidence: float = DEFAULT_CONFIDENCE) -> dict[str, Driver | None]:
    """Each aspect's Pearson correlation with the overall grade: what moves the overall grade most.

    Use::

        key_drivers([{"totaal": 8, "wachttijd": 4, "vriendelijkheid": 5}, ...])
        # {"wachttijd": Driver(r=0.41, n=212, ci=...), "vriendelijkheid": None, ...}

    For each aspect, over the ``n`` responses that have both it and ``overall``
    (missing or None: left out)::

        r  = sum (x - mx)(y - my) / sqrt(sum (x - mx)^2 * sum (y - my)^2)
        ci = tanh(atanh(r) +/- z / sqrt(n - 3))   (Fisher's z; z = Phi^-1(1 - (1 - confidence)/2))

    An aspect with fewer than ``min_complete`` complete pairs maps to None.
    Correlation does not depend on the scale, so 1-5 smileys and 1-10 grades
    mix freely. Aspects keep the order of first appearance.
    """
    _check_confidence(confidence)
    if isinstance(min_complete, bool) or not isinstance(min_complete, int) or min_complete < 4:
        raise InvalidInput(f"min_complete must be a whole number of at least 4 "
                           f"(Fisher's interval needs n > 3), got {min_complete!r}")
    pairs: dict[str, tuple[list[float], list[float]]] = {}
    seen_any = False
    for i, response in enumerate(responses):
        seen_any = True
        if not isinstance(response, Mapping):
            raise InvalidInput(f"response #{i} must be a mapping of aspect to value, "
                               f"got {type(response).__name__}")
        y = response.get(overall)
        if y is not None:
            _check_number(y, f"response #{i}, {overall!r}")
        for aspect, x in response.items():
            if aspect == overall:
                continue
            xs, ys = pairs.setdefault(aspect, ([], []))
            if x is None:
                continue
            _check_number(x, f"response #{i}, {aspect!r}")
            if y is not None:
                xs.append(float(x))
                ys.append(float(y))
    if not seen_any:
        raise NoData("no responses")
    z = float(_norm().ppf(_upper(confidence)))
    result: dict[str, Driver | None] = {}
    for aspect, (xs, ys) in pairs.items():
        n = len(xs)
        if n < min_complete:
            result[aspect] = None
            continue
        mx, my = math.fsum(xs) / n, math.fsum(ys) / n
        sxx = math.fsum((x - mx) ** 2 for x in xs)
        syy = math.fsum((y - my) ** 2 for y in ys)
        sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys))
        result[aspect] = _driver(aspect, n, sxx, syy, sxy, overall, z, confidence)
    return result


def key_drivers_from_sums(sums: Mapping[str, Sequence[int]], overall: str = "totaal", *,
                          min_complete: int = DEFAULT_MIN_COMPLETE,
                          confidence: float = DEFAULT_CONFIDENCE) -> dict[str, Driver | None]:
    """:func:`key_drivers` from sums of whole-number answers that a database computed.

    Use::

        key_drivers_from_sums({"wachttijd": (n, sum_x, sum_y, sum_xx, sum_yy, sum_xy)})

    per aspect over its ``n`` complete pairs (``x`` the aspect, ``y`` the
    overall grade). The centred sums follow exactly in whole numbers::

        Sxx = n sum_xx - sum_x^2,  Syy = n sum_yy - sum_y^2,  Sxy = n sum_xy - sum_x sum_y
        r   = Sxy / sqrt(Sxx Syy)          (the n's cancel), ci as in key_drivers

    ``(0, 0, 0, 0, 0, 0)`` (no complete pair) gives None, like too few pairs.
    """
    _check_confidence(confidence)
    if isinstance(min_complete, bool) or not isinstance(min_complete, int) or min_complete < 4:
        raise InvalidInput(f"min_complete must be a whole number of at least 4 "
                           f"(Fisher's interval needs n > 3), got {min_complete!r}")
    z = float(_norm().ppf(_upper(confidence)))
    result: dict[str, Driver | None] = {}
    for aspect, row in sums.items():
        if len(row) != 6 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                    for v in row):
            raise InvalidInput(f"sums of {aspect!r} must be six whole numbers (n, sum_x, sum_y, "
                               f"sum_xx, sum_yy, sum_xy), got {row!r}")
        n, sx, sy, sxx, syy, sxy = (int(v) for v in row)
        if n < 0:
            raise InvalidInput(f"sums of {aspect!r}: n must be at least 0, got {n}")
        if n < min_complete:
            result[aspect] = None
            continue
        result[aspect] = _driver(aspect, n, n * sxx - sx * sx, n * syy - sy * sy,
                                 n * sxy - sx * sy, overall, z, confidence)
    return result


def _driver(aspect: str, n: int, sxx: float, syy: float, sxy: float, overall: str, z: float,
            confidence: float) -> Driver:
    if sxx == 0 or syy == 0:
        which = aspect if sxx == 0 else overall
        return Driver(aspect, n, None, None, confidence,
                      note=f"every {which} answer is the same: no correlation")
    r = max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
    if abs(r) == 1.0:
        ci = Interval(r, r)
    else:
        fz, se = math.atanh(r), 1 / math.sqrt(n - 3)
        ci = Interval(math.tanh(fz - z * se), math.tanh(fz + z * se))
    return Driver(aspect, n, r, ci, confidence)


# ---------------------------------------------------------------------------- series

def series_breaks(question_versions: Mapping[int, Mapping[str, Mapping[str, str]]]
                  ) -> tuple[SeriesBreak, ...]:
    """Where a question's wording changed, so that its trend starts again.

    Use::

        series_breaks({1: {"totaal": {"nl": "Welk cijfer geeft u?", "en": "What mark?"}},
                       2: {"totaal": {"nl": "Welk rapportcijfer geeft u ons?", "en": "What mark?"}}})
        # (SeriesBreak("totaal", version=2, previous_version=1, languages=("nl",)),)

    ``question_versions``: questionnaire version -> question id -> language ->
    text, for one questionnaire id. Each version is compared with the last
    earlier version that asked the question. A language's wording is what a
    visitor in that language saw: its own text, else the Dutch one (the
    terminal's fallback), so adding or changing a translation breaks the series
    for that language. Runs of white space are one space; case and punctuation
    count. A question's first appearance starts its first series and is not a
    break.
    """
    return tuple(b for b, _ in _walk_series(question_versions) if b is not None)


def series_numbers(question_versions: Mapping[int, Mapping[str, Mapping[str, str]]]
                   ) -> dict[tuple[str, int], int]:
    """(question id, version) -> series number (1, 2, ...): join trends only within one number."""
    return {key: number for _, (key, number) in _walk_series(question_versions)}


def _walk_series(question_versions):
    if not isinstance(question_versions, Mapping):
        raise InvalidInput("question_versions must map questionnaire version -> "
                           "question id -> language -> text")
    if not question_versions:
        raise NoData("no questionnaire versions")
    for version in question_versions:
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidInput(f"questionnaire versions must be whole numbers, got {version!r}")
    last: dict[str, tuple[int, dict[str, str]]] = {}
    number: dict[str, int] = {}
    for version in sorted(question_versions):
        questions = question_versions[version]
        if not isinstance(questions, Mapping):
            raise InvalidInput(f"version {version}: expected question id -> texts, "
                               f"got {type(questions).__name__}")
        for qid, texts in questions.items():
            texts = _check_texts(texts, version, qid)
            brk = None
            if qid not in last:
                number[qid] = 1
            else:
                prev_version, prev_texts = last[qid]
                langs = sorted(set(prev_texts) | set(texts))
                changed = tuple(lang for lang in langs
                                if prev_texts.get(lang, prev_texts["nl"])
                                != texts.get(lang, texts["nl"]))
                if changed:
                    number[qid] += 1
                    brk = SeriesBreak(qid, version, prev_version, changed)
            last[qid] = (version, texts)
            yield brk, ((qid, version), number[qid])


def _check_texts(texts, version, qid) -> dict[str, str]:
    where = f"version {version}, question {qid!r}"
    if not isinstance(texts, Mapping):
        raise InvalidInput(f"{where}: expected language -> text, got {type(texts).__name__}")
    out = {}
    for lang, text in texts.items():
        if not isinstance(text, str):
            raise InvalidInput(f"{where}, language {lang!r}: text must be a string, got {text!r}")
        out[lang] = " ".join(text.split())
    if not out.get("nl"):
        raise InvalidInput(f"{where}: no Dutch ('nl') text; every question has one")
    return out


# ---------------------------------------------------------------------------- checks

def _is_real(x) -> bool:
    return (isinstance(x, numbers.Real) and not isinstance(x, bool)
            and math.isfinite(x))


def _check_number(x, where: str) -> None:
    if not _is_real(x):
        raise InvalidInput(f"{where}: expected a number, got {x!r}")


def _check_grades(values: Iterable[int]) -> list[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InvalidInput(f"values must be a sequence of grades, got {type(values).__name__}")
    grades = []
    for i, x in enumerate(values):
        if isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise InvalidGrade(f"value #{i} is {x!r}: grades are whole numbers from 1 to 10 "
                               "(leave out missing answers)")
        if not (math.isfinite(x) and float(x).is_integer() and GRADE_MIN <= x <= GRADE_MAX):
            raise InvalidGrade(f"value #{i} is {x!r}: grades are whole numbers from 1 to 10")
        grades.append(int(x))
    if not grades:
        raise NoData("no grades to summarise")
    return grades


def _check_weights(weights: Sequence[float], n: int) -> list[float]:
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Iterable):
        raise InvalidWeights(f"weights must be a sequence of numbers, got {type(weights).__name__}")
    w = list(weights)
    if len(w) != n:
        raise InvalidWeights(f"{len(w)} weights for {n} values: give one weight per value")
    if not w:
        raise NoData("no weights")
    for i, wi in enumerate(w):
        if not _is_real(wi):
            raise InvalidWeights(f"weight #{i} is {wi!r}: weights are finite numbers")
        if wi < 0:
            raise InvalidWeights(f"weight #{i} is {wi!r}: weights cannot be negative")
    if not any(wi > 0 for wi in w):
        raise InvalidWeights("every weight is 0: nothing would count")
    return [float(wi) for wi in w]


def _n_eff(w: list[float]) -> float:
    first = w[0]
    if all(wi == first for wi in w):
        return float(len(w))
    return math.fsum(w) ** 2 / math.fsum(wi * wi for wi in w)


def _reaches(n_eff: float | None, threshold: int) -> bool:
    return n_eff is not None and n_eff >= threshold * (1 - _N_EFF_SLACK)


def _check_confidence(confidence: float) -> None:
    if not _is_real(confidence) or not 0 < confidence < 1:
        raise InvalidInput(f"confidence must be between 0 and 1 (0.95 for 95 %), got {confidence!r}")


def _check_alpha(alpha: float) -> None:
    if not _is_real(alpha) or not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be between 0 and 1 (0.05 for 5 %), got {alpha!r}")


def _upper(confidence: float) -> float:
    return 1 - (1 - confidence) / 2
