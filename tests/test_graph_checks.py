"""graph_passes.check_graph checks a weightless skeleton of the model (weights as graph inputs of
their type and shape) and puts the inferred shapes on the model itself."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtdeploy.errors import GraphError
from trtdeploy.graph_passes import WEIGHT_ELEMENTS, check_graph


def _model(in_channels: int) -> onnx.ModelProto:
    weight = np.arange(32 * 16 * 3 * 3, dtype=np.float32).reshape(32, 16, 3, 3)  # a weight: > WEIGHT_ELEMENTS
    assert weight.size > WEIGHT_ELEMENTS
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], pads=[1, 1, 1, 1]),
             helper.make_node("Reshape", ["y", "shape"], ["z"])]  # shape: a small initializer inference reads
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, in_channels, 8, 8])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, "n"])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(np.array([1, -1], np.int64), "shape")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_shapes_are_inferred_onto_the_model_with_its_weights():
    model = _model(16)
    checked = check_graph(model, after="conv", family="test")
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in checked.graph.value_info}
    assert shapes == {"y": [1, 32, 8, 8]}
    assert [d.dim_value for d in checked.graph.output[0].type.tensor_type.shape.dim] == [1, 32 * 8 * 8]  # from the shape values
    weight = numpy_helper.to_array(next(t for t in checked.graph.initializer if t.name == "W"))
    np.testing.assert_array_equal(weight, np.arange(weight.size, dtype=np.float32).reshape(32, 16, 3, 3))
    assert [i.name for i in checked.graph.input] == ["x"]  # the skeleton's weight inputs stay in the skeleton


def test_a_weight_of_the_wrong_shape_is_still_found():
    weight = numpy_helper.from_array(np.ones((16, 300), np.float32), "B")  # a weight: > WEIGHT_ELEMENTS
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "B"], ["c"])], "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 8])],  # 8 columns against 16 rows
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 300])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(GraphError, match="after pass 'matmul'"):
        check_graph(model, after="matmul", family="test")
