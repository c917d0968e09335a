"""Entropy (KL) search against a straightforward reference; histograms; min-max; percentile."""

from __future__ import annotations

import numpy as np
import pytest

from calibration import CalibrationError, CalibrationMethod
from calibration.ranges import (
    KL_TIE_TOLERANCE,
    AbsHistogram,
    amax_from,
    entropy_bin,
    entropy_kl,
    percentile_amax,
)


def reference_kl(counts: np.ndarray, levels: int = 128) -> list[float]:
    """DOMAIN.md §2 written out directly for each candidate: build P (tail folded into its last
    bin) and Q (original bins merged into 128 groups, each group's mass spread over P's non-zero
    bins) as full arrays, normalise, sum P log(P/Q)."""
    counts = np.asarray(counts, dtype=np.float64)
    result = []
    for i in range(levels, len(counts) + 1):
        p = counts[:i].copy()
        p[i - 1] += counts[i:].sum()
        group = np.minimum(np.arange(i) // (i // levels), levels - 1)  # last group takes the rest
        mass = np.bincount(group, weights=counts[:i], minlength=levels)
        nonzero = np.bincount(group, weights=(p > 0).astype(float), minlength=levels)
        q = np.zeros(i)
        keep = p > 0
        q[keep] = mass[group[keep]] / nonzero[group[keep]]
        if q.sum() == 0 or np.any(keep & (q == 0)):
            result.append(float("inf"))
            continue
        pn, qn = p[keep] / p.sum(), q[keep] / q.sum()
        result.append(float(np.sum(pn * np.log(pn / qn))))
    return result


def reference_bin(counts: np.ndarray) -> int:
    counts = np.array(counts, dtype=np.float64)
    counts[0] = counts[1]  # the zero-bin rule of calibration.ranges
    kl = reference_kl(counts)
    best = min(kl)
    tied = [i for i, v in enumerate(kl) if v <= best + KL_TIE_TOLERANCE * max(abs(best), 1e-12)]
    return tied[-1] + 128


def _histogram(values: np.ndarray, batches: int = 4) -> AbsHistogram:
    first = AbsHistogram()
    for part in np.array_split(values, batches):
        first.add(part)
    exact = AbsHistogram(fixed_range=first.max)  # the two-pass histogram calibrate_onnx uses
    for part in np.array_split(values, batches):
        exact.add(part)
    return exact


RNG = np.random.default_rng(1234)
DISTRIBUTIONS = {
    "uniform": RNG.uniform(-3.0, 3.0, 200_000),
    "gaussian": RNG.normal(0.0, 1.0, 200_000),
    "relu_with_outliers": np.concatenate([np.maximum(RNG.normal(0.0, 1.0, 200_000), 0.0), RNG.uniform(15, 40, 40)]),
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_entropy_bin_matches_reference(name: str) -> None:
    hist = _histogram(DISTRIBUTIONS[name])
    fast = entropy_kl(hist.counts)
    slow = np.array(reference_kl(hist.counts))
    finite = np.isfinite(slow)
    assert np.array_equal(finite, np.isfinite(fast))
    assert np.allclose(fast[finite], slow[finite], rtol=1e-9, atol=1e-12)
    assert entropy_bin(hist.counts) == reference_bin(hist.counts)


def test_entropy_amax_is_sensible_for_known_shapes() -> None:
    uniform = _histogram(DISTRIBUTIONS["uniform"])
    # a uniform distribution needs its whole range
    assert amax_from(uniform, CalibrationMethod.ENTROPY) == pytest.approx(3.0, rel=0.01)
    relu = _histogram(DISTRIBUTIONS["relu_with_outliers"])
    amax = amax_from(relu, CalibrationMethod.ENTROPY)
    assert 2.0 < amax < 20.0  # clips most of the outliers at 15..40
    assert amax == (entropy_bin(relu.counts) + 0.5) * relu.bin_width
    assert amax_from(relu, CalibrationMethod.MINMAX) == pytest.approx(DISTRIBUTIONS["relu_with_outliers"].max())


def test_histogram_doubling_equals_direct_histogram() -> None:
    values = np.concatenate([RNG.uniform(0, 1, 1000), RNG.uniform(0, 7.5, 1000)])
    hist = AbsHistogram(bins=16)
    hist.add(values[:1000])  # range ~1
    hist.add(values[1000:])  # grows by doubling three times
    assert hist.max <= hist.range < 2 * hist.max
    direct, _ = np.histogram(np.abs(values), bins=16, range=(0, hist.range))
    # equal up to values lying within float rounding of a bin edge
    assert np.abs(hist.counts - direct).sum() <= 4
    assert hist.counts.sum() == 2000


def test_all_zero_tensor_gets_a_tiny_positive_range() -> None:
    hist = AbsHistogram()
    hist.add(np.zeros(100))
    for method in CalibrationMethod:
        assert 0 < amax_from(hist, method) < 1e-6


def test_non_finite_activations_are_refused() -> None:
    with pytest.raises(CalibrationError, match="NaN or infinity"):
        AbsHistogram().add(np.array([1.0, np.inf]))


def test_percentile() -> None:
    hist = _histogram(RNG.uniform(0, 10, 100_000))
    assert percentile_amax(hist, 50.0) == pytest.approx(5.0, abs=0.05)
    assert percentile_amax(hist, 100.0) == pytest.approx(10.0, abs=0.01)
    with pytest.raises(CalibrationError, match="percentile"):
        percentile_amax(hist, 0.0)
    with pytest.raises(CalibrationError, match="must be one of"):
        CalibrationMethod.parse("kl")



def test_saturated_tensor_keeps_its_clamp_bound_where_kl_alone_clips_it() -> None:
    # a ReLU bulk and 0.02% of the values clamped at exactly 40 (an upstream Clip's bound)
    values = np.concatenate([np.maximum(RNG.normal(0.0, 1.0, 200_000), 0.0), np.full(40, 40.0)])
    hist = AbsHistogram()
    hist.add(values[::2])
    hist.add(values[1::2])  # counted over batches
    assert hist.at_max == 40
    assert (entropy_bin(hist.counts) + 0.5) * hist.bin_width < 10.0  # the KL search alone clips the clamp
    assert amax_from(hist, CalibrationMethod.ENTROPY) == 40.0


def test_unsaturated_tensor_keeps_the_kl_choice() -> None:
    # the same bulk with 40 distinct outliers: one value at the maximum, the KL choice stands
    relu = _histogram(DISTRIBUTIONS["relu_with_outliers"])
    assert relu.at_max == 1
    assert amax_from(relu, CalibrationMethod.ENTROPY) == (entropy_bin(relu.counts) + 0.5) * relu.bin_width


def test_at_max_restarts_when_a_larger_value_arrives() -> None:
    hist = AbsHistogram()
    hist.add(np.array([1.0, 1.0, -1.0, 0.5]))
    assert (hist.max, hist.at_max) == (1.0, 3)
    hist.add(np.array([2.0, 0.1]))
    assert (hist.max, hist.at_max) == (2.0, 1)
    hist.add(np.array([-2.0, 2.0]))
    assert hist.at_max == 3
