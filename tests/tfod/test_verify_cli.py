"""verify's acceptance rules and report, without TensorFlow: what counts as verified, what the
table shows when nothing matched, and the float64 report's reading on tiny graphs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from trtdeploy.cli.verify import _match_table
from trtdeploy.detections import MatchStats
from trtdeploy.exact import ExactReport, OutputError, as_float64, cut_at, exact_errors
from trtdeploy.verify import Tolerance


def _render(table) -> str:  # type: ignore[no-untyped-def]
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(table)
    return buffer.getvalue()


def test_nothing_matched_shows_no_score_difference_or_iou():
    tol = Tolerance(score_threshold=0.3)
    text = _render(_match_table({1: MatchStats(reference=7, matched=0, candidate=5, count_diff=2)}, tol, "m.onnx", 8))
    row = next(line for line in text.splitlines() if line.strip().startswith("│") and " 7 " in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[:4] == ["1", "7", "5", "0/7"]
    assert cells[4:7] == ["-", "-", "-"], cells  # not "0.00e+00" and "1.0000"
    assert "FAIL" in cells[-1]


@pytest.mark.parametrize(
    ("stats", "ok"),
    [
        (MatchStats(reference=0, matched=0, candidate=0), False),  # nothing compared
        (MatchStats(reference=0, matched=0, candidate=3), False),  # only the ONNX found objects
        (MatchStats(reference=100, matched=100, candidate=140, max_score_diff=1e-5), False),  # 40 extra
        (MatchStats(reference=100, matched=100, candidate=100, max_score_diff=1e-5), True),
        (MatchStats(reference=100, matched=100, candidate=100, max_score_diff=2e-4), False),
        (MatchStats(reference=100, matched=98, candidate=100, max_score_diff=1e-5), False),
    ],
)
def test_tolerance_accepts(stats, ok):
    assert Tolerance(iou=0.99, min_matched=0.99, score=1e-4).accepts(stats) is ok


def test_derived_score_tolerance_and_conversion_reading():
    noise = ExactReport(2, (OutputError("scores", tf_exact=1.1e-4, onnx_exact=8e-5, tf_onnx=1.3e-4),))
    assert noise.score_tolerance() == pytest.approx(2.2e-4) and noise.suspects == []
    quiet = ExactReport(2, (OutputError("scores", tf_exact=2e-5, onnx_exact=2e-5, tf_onnx=3e-5),))
    assert quiet.score_tolerance() == 1e-4  # never stricter than verify's default
    changed = ExactReport(2, (OutputError("scores", tf_exact=3e-2, onnx_exact=8e-5, tf_onnx=3e-2),))
    assert changed.suspects == ["scores"]


def _tiny(path_weights: np.ndarray):  # type: ignore[no-untyped-def]
    """x [1,3,8,8] -> Conv -> Sigmoid -> 'scores'; plus a branch that is not needed."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c"], ["scores"]),
        helper.make_node("Relu", ["x"], ["unused"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("unused", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(path_weights.astype(np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_exact_errors_on_a_tiny_graph():
    """float64 by hand (NumPy) against exact_errors' reading of a tiny Conv -> Sigmoid graph."""
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.5, (2, 3, 3, 3))
    x = rng.uniform(0, 1, (3, 1, 3, 8, 8)).astype(np.float32)  # three "images"
    model = _tiny(w)
    cut = cut_at(model, ["scores"])
    assert [n.op_type for n in cut.graph.node] == ["Conv", "Sigmoid"]
    assert as_float64(cut).graph.initializer[0].data_type == 11  # DOUBLE

    def exact_one(image: np.ndarray) -> np.ndarray:
        padded = np.pad(image.astype(np.float64)[0], ((0, 0), (1, 1), (1, 1)))
        w32 = w.astype(np.float32).astype(np.float64)  # the graph stores float32 weights
        out = np.zeros((2, 8, 8))
        for o in range(2):
            for i in range(8):
                for j in range(8):
                    out[o, i, j] = np.sum(padded[:, i:i + 3, j:j + 3] * w32[o])
        return 1 / (1 + np.exp(-out))

    exact = np.stack([exact_one(image)[None] for image in x])  # [3,1,2,8,8]
    tf_like = (exact + 1e-3).astype(np.float32)[:, 0]  # a "reference" 1e-3 off
    report = exact_errors(model, x[:, 0], {"scores": tf_like})
    scores = report.output("scores")
    assert report.images == 3
    assert scores.tf_exact == pytest.approx(1e-3, rel=1e-3)
    assert scores.onnx_exact < 1e-6  # float32 noise of a 27-term sum
    assert scores.tf_onnx == pytest.approx(1e-3, rel=1e-2)
    assert report.suspects == ["scores"]
