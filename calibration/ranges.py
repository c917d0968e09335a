"""Per-tensor ranges (amax) from activation statistics: entropy, min-max and percentile.

Entropy follows TensorRT's EntropyCalibration2 as published (Migacz, GTC 2017; DOMAIN.md §2):

* a histogram of |x| in 2048 equal bins over [0, range), accumulated over all batches;
* the zero bin is set to the count of bin 1 before the search (as NVIDIA's pytorch-quantization
  does in ``_compute_amax_entropy``): ReLU/ReLU6 outputs put about half their values at exactly 0,
  and that spike otherwise drives the search to the smallest candidates (on SSD MobileNet v2 it
  clipped ReLU6 outputs at 0.75 instead of ~6 and destroyed the detections);
* for each candidate i = 128 .. 2048 (bins kept):
  P = counts[0:i] with the mass of counts[i:] added to P[i-1];
  Q = counts[0:i] merged into 128 groups of i // 128 bins (the last group takes the remainder),
  each group's sum spread evenly over the bins where P is non-zero (zero where P is zero);
  both normalised; KL(P || Q) = sum P log(P / Q) (infinite if P > 0 where Q = 0);
* the candidate with the smallest KL wins; candidates within ``KL_TIE_TOLERANCE`` (relative) of
  the minimum are ties, and the LARGEST tied i wins (as NVIDIA's pytorch-quantization does with
  its last argmin): ties come from sparse tail bins that the grouping leaves unchanged, and
  rounding alone must not decide between them;
  amax = (i + 0.5) * bin width, scale = amax / 127.

Saturated tensors: when many values sit at exactly the largest |x| seen (at least
``SATURATION_MIN_COUNT`` of them and ``SATURATION_MIN_SHARE`` of all values), an upstream Clip /
ReLU6 has clamped them there: the tensor's range is known, and entropy keeps it (amax = max |x|).
The KL search compares only the shapes of P and Q, so it does not weigh how far clipping moves
the values above amax. On the trained shapes SSD (MobileNet v2, ReLU6) it put the first block's
depthwise ReLU6 output at 1.12 (its histogram has tall spikes from flat image regions below 0.6),
clipping the 3.6% of values between 1.12 and 6, 0.08% of them saturated at exactly 6: mAP@[.5:.95]
0.651 against 0.723 in FP32. With the clamp bound kept on saturated tensors: 0.723 (docs/int8.md).
A continuous distribution has one value at its maximum, so tensors without a clamp keep the KL
choice.

ONNX Runtime's "entropy" calibrator is a different algorithm (signed values, 128 bins).

The histogram range is [0, max |x|] from a first pass over the data (``fixed_range``), as the
2048 bins then cover exactly the values seen. In one-pass mode the range is set by the first
batch's max |x| and doubled whenever a later batch exceeds it, merging bins pairwise (exact up to
float rounding at bin edges, but the range ends between the true max and twice it, so fewer bins
cover the data). amax is never
above the largest |x| seen.
"""

from __future__ import annotations

import enum

import numpy as np

from calibration.errors import CalibrationError

NUM_BINS = 2048
NUM_LEVELS = 128  # int8: 127 positive levels + zero
MIN_AMAX = 1e-8
KL_TIE_TOLERANCE = 1e-9  # an all-zero tensor still needs a positive scale
SATURATION_MIN_COUNT = 2  # values at exactly max |x| that make a tensor "saturated"...
SATURATION_MIN_SHARE = 1e-5  # ...when they are also at least this share of all its values


class CalibrationMethod(enum.StrEnum):
    ENTROPY = "entropy"
    MINMAX = "minmax"
    PERCENTILE = "percentile"

    @classmethod
    def parse(cls, value: str | CalibrationMethod) -> CalibrationMethod:
        try:
            return cls(value)
        except ValueError:
            raise CalibrationError(
                f"calibration method {value!r} must be one of {', '.join(m.value for m in cls)}"
            ) from None


class AbsHistogram:
    """Running histogram of |x| with ``bins`` bins over [0, range), plus the running max and
    how many values were exactly that max (``at_max``)."""

    def __init__(self, bins: int = NUM_BINS, fixed_range: float | None = None):
        """``fixed_range`` (the max |x| from a first pass): use [0, fixed_range) and put larger
        values in the last bin instead of growing the range."""
        if bins % 2:
            raise ValueError("bins must be even")
        self.counts = np.zeros(bins, np.int64)
        self.range = float(fixed_range or 0.0)
        self.fixed = bool(fixed_range)
        self.max = 0.0
        self.at_max = 0

    @property
    def bin_width(self) -> float:
        return self.range / len(self.counts) if self.range else 0.0

    def add(self, values: np.ndarray) -> None:
        flat = np.abs(np.asarray(values, dtype=np.float32).ravel())  # a new array: scaled in place below
        if flat.size == 0:
            return
        peak = float(flat.max())
        if not np.isfinite(peak):
            raise CalibrationError("activation contains NaN or infinity")
        if peak > self.max:
            self.max, self.at_max = peak, 0
        if peak == self.max and peak > 0.0:
            self.at_max += int(np.count_nonzero(flat == np.float32(peak)))
        if self.range == 0.0:
            if peak == 0.0:
                self.counts[0] += flat.size
                return
            self.range = peak
        bins = len(self.counts)
        while peak > self.range and not self.fixed:  # double the range: merge neighbouring bins
            merged = self.counts.reshape(-1, 2).sum(axis=1)
            self.counts = np.concatenate([merged, np.zeros(bins // 2, np.int64)])
            self.range *= 2.0
        np.multiply(flat, np.float32(bins / self.range), out=flat)
        # bincount works on intp: convert once; values at (or, fixed, above) the range fold into the last bin
        counts = np.bincount(flat.astype(np.intp))
        if len(counts) > bins:
            counts[bins - 1] += counts[bins:].sum()
            counts = counts[:bins]
        self.counts[: len(counts)] += counts


def entropy_kl(counts: np.ndarray, levels: int = NUM_LEVELS, start: int | None = None) -> np.ndarray:
    """KL(P||Q) for every candidate i in start..len(counts) (index 0 is i = start), vectorised.

    Uses that Q is constant over the non-zero bins of a group, so each candidate needs only
    per-group sums, taken from prefix sums.
    """
    c = np.asarray(counts, dtype=np.float64)
    n = len(c)
    start = levels if start is None else start
    cand = np.arange(start, n + 1)  # i, shape [K]
    total = c.sum()
    if total <= 0:
        return np.full(len(cand), np.inf)
    csum = np.concatenate([[0.0], np.cumsum(c)])
    nz = np.concatenate([[0], np.cumsum(c > 0)])
    clogc = np.concatenate([[0.0], np.cumsum(np.where(c > 0, c * np.log(np.where(c > 0, c, 1.0)), 0.0))])

    m = cand // levels  # bins per group
    j = np.arange(levels + 1)
    bounds = np.minimum(j[None, :] * m[:, None], cand[:, None])
    bounds[:, -1] = cand  # last group takes the remainder
    group_sum = csum[bounds[:, 1:]] - csum[bounds[:, :-1]]  # [K, levels], original counts
    group_nnz = (nz[bounds[:, 1:]] - nz[bounds[:, :-1]]).astype(np.float64)
    tail = total - csum[cand]
    last = c[cand - 1]
    # the last kept bin is non-zero in P when the tail lands on it, even if its own count is zero
    group_nnz[:, -1] += (last == 0) & (tail > 0)
    p_mass = group_sum.copy()
    p_mass[:, -1] += tail
    q_sum = csum[cand]  # sum of Q before normalising (all groups with mass have nnz > 0)

    with np.errstate(divide="ignore", invalid="ignore"):
        q_bin = np.where(group_nnz > 0, group_sum / group_nnz, 0.0) / q_sum[:, None]
        # sum_k P_k log P_k, P_k = c_k / total for k < i-1, P_{i-1} = (c_{i-1} + tail) / total
        head = clogc[cand - 1] - csum[cand - 1] * np.log(total)
        p_last = (last + tail) / total
        plogp = head / total + np.where(p_last > 0, p_last * np.log(np.where(p_last > 0, p_last, 1.0)), 0.0)
        cross = np.where(p_mass > 0, (p_mass / total) * np.log(q_bin), 0.0)
        kl = plogp - cross.sum(axis=1)
    invalid = ((p_mass > 0) & (q_bin <= 0)).any(axis=1) | (q_sum <= 0)
    return np.where(invalid, np.inf, kl)


def entropy_bin(counts: np.ndarray, levels: int = NUM_LEVELS) -> int:
    """The number of bins i (levels..len(counts)) with minimal KL divergence (largest on ties)."""
    counts = np.array(counts, dtype=np.float64)
    if len(counts) > 1:
        counts[0] = counts[1]  # neutralise the exact-zero spike (see the module docstring)
    kl = entropy_kl(counts, levels)
    if not np.isfinite(kl).any():
        return len(counts)
    best = float(kl.min())
    tied = np.flatnonzero(kl <= best + KL_TIE_TOLERANCE * max(abs(best), 1e-12))
    return int(tied[-1]) + levels


def saturated(hist: AbsHistogram) -> bool:
    """Do the largest values pile up at one bound (an upstream Clip / ReLU6)?"""
    return hist.at_max >= max(SATURATION_MIN_COUNT, SATURATION_MIN_SHARE * int(hist.counts.sum()))


def entropy_amax(hist: AbsHistogram) -> float:
    if hist.range == 0.0:
        return MIN_AMAX
    if saturated(hist):
        return hist.max  # keep the clamp bound (see the module docstring)
    amax = (entropy_bin(hist.counts) + 0.5) * hist.bin_width
    return max(min(amax, hist.max), MIN_AMAX)  # a range beyond the largest value seen is never useful


def percentile_amax(hist: AbsHistogram, percentile: float) -> float:
    """Upper edge of the bin where the cumulative share of |x| reaches ``percentile`` %."""
    if not 0 < percentile <= 100:
        raise CalibrationError(f"percentile {percentile} must be in (0, 100]")
    if hist.range == 0.0:
        return MIN_AMAX
    cumulative = np.cumsum(hist.counts)
    index = int(np.searchsorted(cumulative, cumulative[-1] * percentile / 100.0))
    return max(min((index + 1) * hist.bin_width, hist.max), MIN_AMAX)


def amax_from(hist: AbsHistogram, method: CalibrationMethod, percentile: float = 99.99) -> float:
    if method is CalibrationMethod.MINMAX:
        return max(hist.max, MIN_AMAX)
    if method is CalibrationMethod.PERCENTILE:
        return percentile_amax(hist, percentile)
    return entropy_amax(hist)
