"""verify derives its score bound from the ONNX's measured float32 noise when every detection
matched and only a score difference is above the default bound (a two-stage model's noise is
above 1e-4; a float64 evaluation of it is too slow to be the default)."""

from __future__ import annotations

from trtdeploy.cli.verify import _only_scores_fail
from trtdeploy.detections import MatchStats
from trtdeploy.verify import Tolerance, noise_tolerance


def _stats(matched: int, score_diff: float) -> MatchStats:
    return MatchStats(reference=100, matched=matched, candidate=100, max_score_diff=score_diff)


def test_noise_is_measured_only_when_scores_alone_fail():
    tol = Tolerance()
    assert _only_scores_fail({1: _stats(100, 1.5e-4)}, tol)
    assert not _only_scores_fail({1: _stats(100, 5e-5)}, tol)  # already within: nothing to measure
    assert not _only_scores_fail({1: _stats(90, 1.5e-4)}, tol)  # detections missing: not noise
    assert not _only_scores_fail({1: _stats(100, 5e-5), 4: _stats(95, 1.5e-4)}, tol)


def test_noise_bound_is_the_exact_modules_rule():
    assert noise_tolerance(7.6e-5) == 2 * 7.6e-5
    assert noise_tolerance(1e-6) == 1e-4  # never stricter than the default
