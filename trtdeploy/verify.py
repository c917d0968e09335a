"""Compare two runners' detections on the same images: the check behind `trtdeploy verify`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from trtdeploy.detections import Detections, MatchStats, match

DetectFn = Callable[[np.ndarray], list[Detections]]


@dataclass
class Tolerance:
    iou: float = 0.99  # a match needs the same class and at least this IoU
    min_matched: float = 0.99  # fraction of reference detections that must match
    score: float = 1e-4  # largest allowed |score difference| of a match
    score_threshold: float = 0.0  # only detections at or above this count

    def accepts(self, stats: MatchStats) -> bool:
        return stats.matched_fraction >= self.min_matched and stats.max_score_diff <= self.score


def compare(reference: Sequence[Detections], candidate: Sequence[Detections], tol: Tolerance) -> MatchStats:
    total = MatchStats()
    for ref, cand in zip(reference, candidate, strict=True):
        total = total.merge(match(ref.above(tol.score_threshold), cand.above(tol.score_threshold), tol.iou))
    return total


def run_batched(detect: DetectFn, images: np.ndarray, batch: int) -> list[Detections]:
    """Run ``detect`` over images in batches of ``batch`` (the last batch padded by repeating)."""
    result: list[Detections] = []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        real = len(chunk)
        if real < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - real, axis=0)])
        result.extend(detect(chunk)[:real])
    return result
