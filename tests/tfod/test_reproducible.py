"""create-onnx is byte-reproducible: the same inputs and options give the same ONNX and deploy
card, from any output folder and in any process (tf2onnx's counters and branch order differ
from run to run; the stable_names pass removes both)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

from tests.data import BUNDLED_MODEL
from tests.shared_cache import converted_core, store_dir
from tfod_trt.passes.stable_names import stable_names
from trtdeploy.graph_passes import PassContext


def two_branch_graph(counters: tuple[int, int, int], swap: bool) -> bytes:
    """x -> (Relu, Sigmoid) -> Add, with tf2onnx-style generated names (``__<counter>``) and a
    constant whose name tf2onnx picks arbitrarily when merging duplicates; ``swap`` lists the
    independent branches in the other order."""
    x = gs.Variable("x", np.float32, [1, 4])
    y = gs.Variable("y", np.float32, [1, 4])
    a, b = gs.Variable(f"Relu__{counters[0]}:0", np.float32), gs.Variable(f"Sigmoid__{counters[1]}:0", np.float32)
    scale = gs.Constant(f"const_fold_opt__{counters[2]}", np.full((1, 4), 2.0, np.float32))
    relu = gs.Node("Relu", f"Relu__{counters[0]}", inputs=[x], outputs=[a])
    sigmoid = gs.Node("Sigmoid", f"Sigmoid__{counters[1]}", inputs=[x], outputs=[b])
    mul = gs.Node("Mul", f"Mul__{counters[2] + 1}", inputs=[a, scale], outputs=[gs.Variable("m", np.float32)])
    add = gs.Node("Add", "Add", inputs=[mul.outputs[0], b], outputs=[y])
    nodes = [sigmoid, relu, mul, add] if swap else [relu, sigmoid, mul, add]
    graph = gs.Graph(nodes=nodes, inputs=[x], outputs=[y], opset=17)
    stable_names(graph, PassContext(family="test"))
    graph.cleanup().toposort()
    return gs.export_onnx(graph).SerializeToString()


def test_stable_names_removes_counters_and_branch_order():
    first = two_branch_graph((492, 493, 500), swap=False)
    assert first == two_branch_graph((496, 12, 7), swap=True)
    model = onnx.load_from_string(first)
    names = [n.name for n in model.graph.node] + [i.name for i in model.graph.initializer]
    assert not any("__" in name for name in names), names
    assert [i.name for i in model.graph.input] == ["x"] and [o.name for o in model.graph.output] == ["y"]


def twin_graph(swap: bool) -> bytes:
    """Two identical Reshape nodes whose names tf2onnx hands out either way round: box head and
    class head each read "their" reshape, but which one is called which differs."""
    x = gs.Variable("x", np.float32, [1, 4])
    shape = gs.Constant("shape", np.array([2, 2], np.int64))
    outs = [gs.Variable("box", np.float32), gs.Variable("cls", np.float32)]
    first, second = ("Box/Reshape", "Class/Reshape") if not swap else ("Class/Reshape", "Box/Reshape")
    r = [gs.Variable(f"{name}:0", np.float32) for name in (first, second)]  # tf2onnx names outputs so
    nodes = [
        gs.Node("Reshape", first, inputs=[x, shape], outputs=[r[0]]),
        gs.Node("Reshape", second, inputs=[x, shape], outputs=[r[1]]),
        gs.Node("Relu", "Box/Relu", inputs=[r[0]], outputs=[outs[0]]),
        gs.Node("Sigmoid", "Class/Sigmoid", inputs=[r[1]], outputs=[outs[1]]),
    ]
    graph = gs.Graph(nodes=nodes, inputs=[x], outputs=outs, opset=17)
    stable_names(graph, PassContext(family="test"))
    graph.cleanup().toposort()
    return gs.export_onnx(graph).SerializeToString()


def test_stable_names_merges_twins_whose_names_vary():
    merged = twin_graph(swap=False)
    assert merged == twin_graph(swap=True)
    model = onnx.load_from_string(merged)
    assert [n.op_type for n in model.graph.node].count("Reshape") == 1
    assert [n.name for n in model.graph.node if n.op_type == "Reshape"] == ["Box/Reshape"]


def test_stable_names_keeps_nodes_whose_long_attributes_differ():
    """numpy's repr elides long arrays: two Constant nodes differing in one of 2000 values must stay two."""
    values = [np.zeros(2000, np.float32), np.zeros(2000, np.float32)]
    values[1][1000] = 1.0
    outs = [gs.Variable(f"out{i}", np.float32, [2000]) for i in range(2)]
    consts = [gs.Variable(f"c{i}", np.float32, [2000]) for i in range(2)]
    nodes = [gs.Node("Constant", f"Const{i}", attrs={"value": gs.Constant(f"v{i}", values[i])}, outputs=[consts[i]])
             for i in range(2)]
    nodes += [gs.Node("Relu", f"Relu{i}", inputs=[consts[i]], outputs=[outs[i]]) for i in range(2)]
    graph = gs.Graph(nodes=nodes, inputs=[], outputs=outs, opset=17)
    stable_names(graph, PassContext(family="test"))
    assert [n.op for n in graph.nodes].count("Constant") == 2


def test_a_node_named_after_one_of_its_consumers_gets_the_same_name_whichever_it_was():
    """tf2onnx merges the Reshapes in front of the last box and class head Convs and keeps either
    consumer's name (it varies with the process); both graphs must come out named alike."""

    def graph(kept: str) -> gs.Graph:
        x = gs.Variable("x", np.float32, [1, 4])
        shaped = gs.Variable(f"{kept}:0", np.float32, [4])
        outs = [gs.Variable(f"out{i}", np.float32, [4]) for i in range(2)]
        nodes = [gs.Node("Reshape", kept, inputs=[x, gs.Constant("s", np.array([4], np.int64))], outputs=[shaped])]
        nodes += [gs.Node("Relu", name, inputs=[shaped], outputs=[out]) for name, out in zip(("Box/BiasAdd", "Class/BiasAdd"), outs, strict=True)]
        g = gs.Graph(nodes=nodes, inputs=[x], outputs=outs, opset=17)
        stable_names(g, PassContext(family="test"))
        return g

    names = [[(n.name, [t.name for t in n.outputs]) for n in graph(kept).nodes] for kept in ("Box/BiasAdd", "Class/BiasAdd")]
    assert names[0] == names[1]
    assert names[0][0] == ("Box/BiasAdd", ["Box/BiasAdd:0"])


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.tf
def test_two_runs_in_two_folders_give_identical_bytes(tmp_path, tmp_path_factory):
    """One run through create-onnx's stages in this process, one in a fresh process (the CLI)
    with another hash seed and a deeper output folder: identical ONNX and deploy card. The card
    holds no path and no time, and its source hashes are the input files' (keyed by role, so
    verify can recompute them).

    The first run's converted core is the run's shared one (tests/shared_cache.py: converted by
    whichever test process asked first, pickled; other tests use it too), then the stages
    ``create_onnx`` runs after ``convert_core`` (prepare, attach_head, write): one conversion
    fewer per suite run, and the core crosses a process boundary as well."""
    from tfod_trt.create_onnx import CreateOnnxOptions, attach_head, prepare
    from trtdeploy.families import write_model

    saved_model, label_map = BUNDLED_MODEL / "saved_model", BUNDLED_MODEL / "label_map.pbtxt"
    first = tmp_path / "a" / "model.onnx"
    prepared = prepare(CreateOnnxOptions(saved_model=saved_model, label_map=label_map, output=first, nms="onnx",
                                         output_layout=None, ds_parser="tao-efficientdet"))
    write_model(*attach_head(converted_core(store_dir(tmp_path_factory), saved_model, False), prepared), first)
    second = tmp_path / "b" / "deeper" / "model.onnx"
    # without TF_CPP_MIN_LOG_LEVEL (make test sets it): the CLI itself must quiet TensorFlow's C++ start-up lines
    env = {**{k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-m", "trtdeploy.cli.main", "create-onnx", "--saved-model", str(saved_model),
         "--label-map", str(label_map), "-o", str(second), "--nms", "onnx", "--ds-parser", "tao-efficientdet", "-q"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tensorflow/core/" not in result.stdout + result.stderr, result.stderr[-600:]
    assert first.read_bytes() == second.read_bytes()
    card_a, card_b = (p.with_name("model.deploy.json").read_text() for p in (first, second))
    assert card_a == card_b
    assert str(tmp_path) not in card_a and str(BUNDLED_MODEL) not in card_a
    card = json.loads(card_a)
    assert card["onnx_sha256"] == sha256(first)
    files = card["provenance"]["source_files"]
    assert files["saved_model/saved_model.pb"] == sha256(saved_model / "saved_model.pb")
    weights = sorted((saved_model / "variables").iterdir())
    assert weights and all(files[f"saved_model/variables/{p.name}"] == sha256(p) for p in weights)
    assert files["pipeline.config"] == sha256(BUNDLED_MODEL / "pipeline.config")
    assert files["label_map"] == sha256(label_map)
    # the CLI's --ds-parser reached the graph and the card: int32 classes found by name (tao_apps)
    assert card["output"]["ds_parser"] == "tao-efficientdet" and card["output"]["class_dtype"] == "int32"
    outputs = {o.name: o.type.tensor_type.elem_type for o in onnx.load(str(second)).graph.output}
    assert outputs == {"num_detections": onnx.TensorProto.INT32, "detection_boxes": onnx.TensorProto.FLOAT,
                       "detection_scores": onnx.TensorProto.FLOAT, "detection_classes": onnx.TensorProto.INT32}
