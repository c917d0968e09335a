"""Compare two runners' detections on the same images: the check behind `trtdeploy verify`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trtdeploy.deploy_card import DeployCard
from trtdeploy.detections import Detections, MatchStats, match
from trtdeploy.errors import InputError, UsageError, VerificationError
from trtdeploy.files import sha256_file

DetectFn = Callable[[np.ndarray], list[Detections]]


@dataclass
class Tolerance:
    iou: float = 0.99  # a match needs the same class and at least this IoU
    min_matched: float = 0.99  # fraction of reference detections that must match
    score: float = 1e-4  # largest allowed |score difference| of a match
    score_threshold: float = 0.0  # only detections at or above this count
    mask_iou: float = 0.99  # instance masks: mean mask IoU of the matches (binarised at 0.5) at least this

    def accepts(self, stats: MatchStats) -> bool:
        """Enough of the reference's AND of the candidate's detections matched, scores close.
        Nothing compared (no detections on either side) is not accepted: see nothing_compared."""
        if stats.reference == 0 and stats.candidate == 0:
            return False
        return (
            stats.matched_fraction >= self.min_matched
            and stats.matched >= self.min_matched * stats.candidate
            and stats.max_score_diff <= self.score
            and stats.mean_mask_iou >= self.mask_iou  # 1.0 when no masks were compared
        )

    def validate(self) -> None:
        """Every option in range (UsageError otherwise), checked before any model runs."""
        for name, value in (("--iou", self.iou), ("--min-matched", self.min_matched),
                            ("--score-threshold", self.score_threshold), ("--mask-iou", self.mask_iou)):
            if not 0.0 <= value <= 1.0:  # also refuses NaN
                raise UsageError(f"{name} must be in [0, 1], got {value:g}")
        if not 0.0 <= self.score < 1.0:
            raise UsageError(f"--score-tol must be in [0, 1), got {self.score:g}")


def noise_tolerance(noise: float) -> float:
    """The score bound when the ONNX's float32 noise was measured (two float32 evaluations of the
    same graph): trtdeploy.exact's rule, max(SCORE_FLOOR, K_SCORE x noise)."""
    from trtdeploy.exact import K_SCORE, SCORE_FLOOR

    return max(SCORE_FLOOR, K_SCORE * noise)


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


def nothing_compared(stats: MatchStats) -> bool:
    return stats.reference == 0 and stats.candidate == 0


def refuse_empty_comparison(stats: MatchStats, threshold: float, images: int) -> None:
    if nothing_compared(stats):
        raise VerificationError(
            f"nothing was compared: neither TensorFlow nor the ONNX found a detection with score >= {threshold:g} "
            f"on {images} image(s); lower --score-threshold or pass --images with objects in them"
        )


def check_saved_model_provenance(card: DeployCard, saved_model: Path) -> int:
    """The deploy card's recorded hashes of the saved model's files (keys ``saved_model/<file>``,
    written by create-onnx) against the files in ``saved_model``; InputError naming the first
    file that differs. Returns how many files were checked (0: the card records none)."""
    recorded = {k[len("saved_model/"):]: v for k, v in card.provenance.source_files.items()
                if k.startswith("saved_model/")}
    if not recorded:
        # cards written before hashes were keyed by role: the graph file under its path
        old = [v for k, v in card.provenance.source_files.items() if Path(k).name == "saved_model.pb"]
        recorded = {"saved_model.pb": old[0]} if old else {}
    folder = Path(saved_model)
    for rel, digest in sorted(recorded.items()):
        path = folder / rel
        actual = sha256_file(path) if path.is_file() else None
        if actual != digest:
            found = "is missing" if actual is None else f"has sha256 {actual[:12]}"
            if actual is None and (folder / "saved_model" / rel).is_file():
                found += f" (did you mean {folder / 'saved_model'}?)"
            raise InputError(
                f"the ONNX was not made from {folder}: its deploy card records {rel} with sha256 {digest[:12]}, "
                f"but {path} {found}; pass the saved model the ONNX was converted from"
            )
    return len(recorded)


def check_batches(batches: Sequence[int], static: int) -> list[int]:
    """The batch sizes to run an ONNX at (UsageError for < 1 or a static batch's mismatch)."""
    bad = [b for b in batches if b < 1]
    if bad:
        raise UsageError(f"--batch must be >= 1, got {bad[0]}")
    chosen = list(batches) if batches else ([static] if static != -1 else [1, 4])
    if static != -1 and any(b != static for b in chosen):
        raise UsageError(f"the ONNX has a static batch of {static}; cannot run it at {chosen}")
    return chosen
