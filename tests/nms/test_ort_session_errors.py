"""A CPU reference that refuses its inputs must give one error, not end the process: an
exception inside an onnxruntime-extensions Python op is thrown through C++ and aborts
(exit 134) unless ort_session catches it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from onnx import TensorProto, helper

from trtdeploy.errors import InputError
from trtdeploy.nms.ort_session import make_session


def batched_nms_model(top_k: int, anchors: int = 10):
    boxes = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, anchors, 1, 4])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, anchors, 3])
    outs = [
        helper.make_tensor_value_info(n, t, None)
        for n, t in [
            ("num", TensorProto.INT32),
            ("b", TensorProto.FLOAT),
            ("s", TensorProto.FLOAT),
            ("c", TensorProto.FLOAT),
        ]
    ]
    node = helper.make_node(
        "BatchedNMSDynamic_TRT",
        ["boxes", "scores"],
        ["num", "b", "s", "c"],
        shareLocation=1,
        backgroundLabelId=-1,
        numClasses=3,
        topK=top_k,
        keepTopK=min(top_k, 5),
        scoreThreshold=0.1,
        iouThreshold=0.5,
    )
    graph = helper.make_graph([node], "g", [boxes, scores], outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def feeds(anchors: int = 10):
    rng = np.random.default_rng(0)
    xy = rng.random((1, anchors, 1, 2), dtype=np.float32) * 0.5
    return {"boxes": np.concatenate([xy, xy + 0.3], -1), "scores": rng.random((1, anchors, 3), dtype=np.float32)}


def test_a_reference_error_is_one_input_error_naming_the_plugin():
    session = make_session(batched_nms_model(top_k=50))  # topK > the 10 boxes: the reference refuses
    with pytest.raises(
        InputError, match=r"BatchedNMSDynamic_TRT node cannot run.*topK 50 exceeds the number of boxes 10"
    ):
        session.run(None, feeds())
    # the session stays usable, and a later good run is not blamed for the earlier failure
    good = make_session(batched_nms_model(top_k=8))
    num, boxes, _, _ = good.run(None, feeds())
    assert num.shape == (1, 1) and 0 < int(num[0, 0]) <= 5 and boxes.shape == (1, 5, 4)


def test_the_process_survives_it():
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parents[2])!r})
        from tests.nms.test_ort_session_errors import batched_nms_model, feeds
        from trtdeploy.nms.ort_session import make_session
        try:
            make_session(batched_nms_model(top_k=50)).run(None, feeds())
        except Exception as exc:
            print(type(exc).__name__)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "InputError", (result.returncode, result.stderr[-500:])
