"""create-onnx on a TFOD Mask R-CNN (issue 14, part 3), against TensorFlow.

There is no Mask R-CNN fixture: the test makes one from the shared Faster R-CNN fixture. Its
frozen serving graph gets the third stage TFOD's Mask R-CNN appends after the second stage's NMS
(tensorflow/models research/object_detection/meta_architectures/faster_rcnn_meta_arch.py
``_predict_third_stage``): the feature map cropped again at the final detection boxes by a copy
of the export's own crop nodes, the same maxpool, a copy of the second-stage feature extractor's
nodes (ResNet block 5) under a second scope, the mask head of predictors/heads/keras_mask_head.py
``MaskRCNNMaskHead._predict`` (bilinear resize with align_corners, a 3x3 convolution with bias + the
identity batch-norm slot + ReLU, the last 3x3 convolution with one channel per class, transposed and
expanded under the name ``MaskPredictor``), with the node names a real export has (measured on a
TFOD 2.8.0 export: the second call's op names suffixed ``_1``, the second stage's post-processing
outside the ``SecondStagePostprocessor`` scope), then the class gather, ``tf.sigmoid`` and the ``detection_masks``
output. That graph is saved as a saved model with the fixture's serving signature plus
``detection_masks``, beside a mask_rcnn pipeline.config (predict_instance_masks).

One conversion (one ONNX core); the heads (onnx, efficient) and the layouts (tfod-masks,
ds/mrcnn) are attached to it. TensorFlow gets each photo unpadded as TFOD resizes it, the ONNX
the letterboxed input (as tests/tfod/test_faster_rcnn.py does); detections are compared in
original-image coordinates and masks by mean mask IoU (verify's comparison, >= 0.99).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.data import fixture_dir
from tests.shared_cache import CachedTfRunner, store_dir
from trtdeploy.contracts import MRCNN_NAMES, TFOD_NAMES
from trtdeploy.detections import Detections
from trtdeploy.verify import Tolerance, compare

pytestmark = [pytest.mark.slow, pytest.mark.tf]

FIXTURE = "faster_rcnn_resnet50_v1_640x640_coco17_tpu-8"
MASK_H, MASK_W = 15, 15  # protos/box_predictor.proto defaults
MASK_DEPTH = 8  # the mask head's convolution depth (the zoo's 256 would cost minutes on 300 boxes)
# The zoo's Mask R-CNN keeps 100 detections (max_total_detections); the fixture's graph keeps 300,
# sorted by score: the ONNX (100) is compared with TensorFlow's first 100 (a third of the mask
# crop and mask network to run).
K = 100
PREFIX = "StatefulPartitionedCall/StatefulPartitionedCall/"
# Names of the second call of the crop, the maxpool and the box classifier's feature extractor, as
# a TFOD 2 export has them (measured on one made with TFOD 2.8.0's exporter_main_v2.py): the crop's
# scope suffixed (MultiLevelMatMulCropAndResize_1/...), every other node's op name suffixed
# (MaxPool2D/MaxPool_1, model_1/conv5_block1_1_conv/Conv2D_1, ...).
SECOND_CROP = {"MultiLevelMatMulCropAndResize/": "MultiLevelMatMulCropAndResize_1/"}
MASK_HEAD = "mask_rcnn_keras_box_predictor/mask_rcnn_mask_head/"
# A Mask R-CNN post-processes its second stage in _predict_third_stage, outside postprocess()'s
# SecondStagePostprocessor scope: the export has Decode_1/..., BatchMultiClassNonMaxSuppression_1/...,
# convert_scores, scale_logits at the top level.
POSTPROCESSOR = "SecondStagePostprocessor/"
UNSCOPED = {"Decode/": "Decode_1/", "BatchMultiClassNonMaxSuppression/": "BatchMultiClassNonMaxSuppression_1/"}
TOLERANCE = Tolerance(iou=0.99, min_matched=0.99, score=1e-4, mask_iou=0.99)


def _descendants(graph_def, name: str) -> set[str]:
    consumers: dict[str, list[str]] = {}
    for node in graph_def.node:
        for i in node.input:
            consumers.setdefault(i.lstrip("^").split(":")[0], []).append(node.name)
    seen, stack = set(), [name]
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(consumers.get(node, ()))
    return seen


def _second_name(name: str) -> str:
    """The name of a node's copy in the second call (SECOND_CROP)."""
    for scope, second in SECOND_CROP.items():
        if name.startswith(PREFIX + scope):
            return name.replace(PREFIX + scope, PREFIX + second, 1)
    return name + "_1"


def _rename(graph_def, names: dict[str, str]) -> None:
    """Rename nodes in place: their names, the inputs and colocation attributes that name them."""
    def mapped(ref: str) -> str:
        control, base = ref.startswith("^"), ref.lstrip("^")
        node, _, port = base.partition(":")
        return ("^" if control else "") + names.get(node, node) + (":" + port if port else "")

    for node in graph_def.node:
        node.name = names.get(node.name, node.name)
        node.input[:] = [mapped(i) for i in node.input]
        if "_class" in node.attr:
            node.attr["_class"].list.s[:] = [b"loc:@" + mapped(v.decode()[5:]).encode()
                                             for v in node.attr["_class"].list.s]


def _unscope_postprocessor(graph_def) -> None:
    """The Faster R-CNN's SecondStagePostprocessor/... nodes renamed as a Mask R-CNN export names
    them (POSTPROCESSOR, UNSCOPED); a name already taken at the top level gets a suffix."""
    taken = {n.name for n in graph_def.node}
    names = {}
    for node in graph_def.node:
        if node.name.startswith(PREFIX + POSTPROCESSOR):
            rest = node.name[len(PREFIX + POSTPROCESSOR):]
            for scope, new in UNSCOPED.items():
                if rest.startswith(scope):
                    rest = new + rest[len(scope):]
            new_name = PREFIX + rest
            names[node.name] = new_name if new_name not in taken else new_name + "_pp"
    assert PREFIX + "convert_scores" in names.values() and PREFIX + "Decode_1/truediv" in names.values()
    _rename(graph_def, names)


def _clone(graph, graph_def, names: set[str], replace: dict[str, str]) -> None:
    """Import a copy of the nodes ``names`` (renamed by _second_name); their inputs from outside
    the set read the same tensors (weights, shapes), except those in ``replace``."""
    import tensorflow as tf

    copy = tf.compat.v1.GraphDef()
    input_map = {}
    for node in (n for n in graph_def.node if n.name in names):
        new = copy.node.add()
        new.CopyFrom(node)
        new.name = _second_name(node.name)
        del new.input[:]
        for name in node.input:
            control, base = name.startswith("^"), name.lstrip("^")
            if base.split(":")[0] in names:
                new.input.append(("^" if control else "") + _second_name(base.split(":")[0])
                                 + (":" + base.split(":")[1] if ":" in base else ""))
            elif control:
                continue  # the original's control edges (function-inlining NoOps) are not needed
            else:
                tensor = base if ":" in base else base + ":0"
                new.input.append("ext/" + tensor.replace(":", "__"))
                input_map["ext/" + tensor.replace(":", "__") + ":0"] = graph.get_tensor_by_name(
                    replace.get(tensor, tensor))
    for key in list(input_map):  # placeholders the input map feeds
        placeholder = copy.node.add()
        placeholder.name, placeholder.op = key[:-2], "Placeholder"
        placeholder.attr["dtype"].type = input_map[key].dtype.as_datatype_enum
    with graph.as_default():
        tf.compat.v1.import_graph_def(copy, input_map=input_map, name="")


def build_mask_rcnn(folder: Path) -> Path:
    """The test's Mask R-CNN saved model (and pipeline.config) in ``folder``; returns the saved model."""
    import tensorflow as tf

    from tfod_trt.tf_graph import freeze_signature
    from tfod_trt.two_stage.tf_cut import RPN_CONV, ancestors

    base = fixture_dir(FIXTURE)
    graph_def, signature = freeze_signature(base / "saved_model")
    _unscope_postprocessor(graph_def)
    outputs = {key: info.name for key, info in signature.outputs.items()}
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    by_name = {n.name: n for n in graph_def.node}
    features = next(n for n in graph_def.node if n.name.endswith("/" + RPN_CONV)).input[0]
    crop_nodes = [n for n in graph_def.node if n.name.startswith(PREFIX + "MultiLevelMatMulCropAndResize/")]
    inside = {n.name for n in crop_nodes}
    proposals = {i for n in crop_nodes for i in n.input if not i.startswith("^") and i.split(":")[0] not in inside
                 and i != features and by_name[i.split(":")[0]].op != "Const"}
    assert len(proposals) == 1, proposals  # the crop reads the feature map and the normalised proposals
    (proposal_tensor,) = proposals
    # the final boxes (what the serving signature returns as detection_boxes) replace the proposals
    detection_boxes = outputs["detection_boxes"]
    while by_name[detection_boxes.split(":")[0]].op == "Identity":  # through the signature's Identity nodes
        detection_boxes = by_name[detection_boxes.split(":")[0]].input[0]
    detection_boxes = detection_boxes if ":" in detection_boxes else detection_boxes + ":0"
    proposal_tensor = proposal_tensor if ":" in proposal_tensor else proposal_tensor + ":0"
    # the path from the proposals to the box classifier's features (crop, flatten, maxpool,
    # ResNet block 5), copied with the final boxes in place of the proposals
    box_pool = PREFIX + "MaxPool2D/MaxPool"
    extractor = PREFIX + "model_1/"
    last = next(n.name for n in graph_def.node if n.name.startswith(extractor) and n.op == "Relu"
                and not any(c.startswith(extractor) for c in (_descendants(graph_def, n.name) - {n.name})))
    path = _descendants(graph_def, proposal_tensor.split(":")[0]) & ancestors(graph_def, last)
    path -= {proposal_tensor.split(":")[0]}
    assert box_pool in path
    _clone(graph, graph_def, path, {proposal_tensor: detection_boxes})
    box_features = graph.get_tensor_by_name(_second_name(last) + ":0")
    num_classes = 90
    rng = np.random.default_rng(1403)
    depth = int(box_features.shape[-1])
    with graph.as_default(), tf.compat.v1.name_scope(PREFIX + MASK_HEAD):
        x = tf.compat.v1.image.resize_bilinear(box_features, [MASK_H, MASK_W], align_corners=True)
        channels = [depth, MASK_DEPTH, num_classes]
        for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
            last_conv = i == len(channels) - 2
            kernel = (rng.standard_normal((3, 3, cin, cout)) * (2.0 / (9 * cin)) ** 0.5).astype(np.float32)
            bias = rng.normal(0, 0.3, cout).astype(np.float32)
            with tf.compat.v1.name_scope("MaskPredictor_last_conv2d" if last_conv else f"MaskPredictor_conv2d_{i}"):
                x = tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME", name="Conv2D"), bias, name="BiasAdd")
            if not last_conv:  # the batch_norm slot (identity without batch_norm) and the activation
                x = tf.identity(x, name=f"lambda_{i + 1}/Identity")
                with tf.compat.v1.name_scope(f"MaskPredictor_activation_{i}"):
                    x = tf.nn.relu(x, name="Relu")
        per_class = tf.expand_dims(tf.transpose(x, [0, 3, 1, 2]), axis=1, name="MaskPredictor")
    with graph.as_default():
        # faster_rcnn_meta_arch.py _predict_third_stage: squeeze, gather the detected class's mask, sigmoid
        masks = tf.squeeze(per_class, axis=1)
        classes = graph.get_tensor_by_name(outputs["detection_classes"])
        classes = tf.reshape(tf.cast(classes, tf.int32) - 1, [-1])  # the export adds the label id offset 1
        flat = tf.reshape(masks, [-1, MASK_H, MASK_W])
        picked = tf.gather(flat, tf.range(tf.shape(masks)[0]) * num_classes + classes)
        boxes = graph.get_tensor_by_name(outputs["detection_boxes"])
        detection_masks = tf.reshape(tf.sigmoid(picked), [tf.shape(boxes)[0], tf.shape(boxes)[1], MASK_H, MASK_W],
                                     name="detection_masks")
    export = folder / "saved_model"
    builder = tf.compat.v1.saved_model.Builder(str(export))
    with tf.compat.v1.Session(graph=graph) as session:
        tensors = {key: graph.get_tensor_by_name(name) for key, name in outputs.items()}
        tensors["detection_masks"] = detection_masks
        image = graph.get_tensor_by_name(next(iter(signature.inputs.values())).name)
        sig = tf.compat.v1.saved_model.predict_signature_def({"input_tensor": image}, tensors)
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"serving_default": sig})
    builder.save()
    text = (base / "pipeline.config").read_text()
    text = text.replace("share_box_across_classes: true",
                        f"share_box_across_classes: true\n        predict_instance_masks: true\n"
                        f"        mask_height: {MASK_H}\n        mask_width: {MASK_W}\n"
                        f"        mask_prediction_num_conv_layers: 2\n        mask_prediction_conv_depth: {MASK_DEPTH}", 1)
    text = text.replace("max_total_detections: 300", f"max_total_detections: {K}", 1)
    assert "predict_instance_masks" in text and f"max_total_detections: {K}" in text
    (folder / "pipeline.config").write_text(text)
    return export


class _Run:
    """The built model, its one converted core, the photo and TensorFlow's outputs, made once."""

    def __init__(self, tmp: Path, store: Path) -> None:
        from tfod_trt.create_onnx import CreateOnnxOptions, convert_core, prepare
        from trtdeploy.sample_images import sample_photos

        self.tmp, self.seconds = tmp, {}
        start = time.perf_counter()
        self.saved_model = build_mask_rcnn(tmp)
        self.seconds["build"] = time.perf_counter() - start
        start = time.perf_counter()
        self.prepared = prepare(CreateOnnxOptions(saved_model=self.saved_model, output=tmp / "unused.onnx"))
        self.core = convert_core(self.prepared)
        self.seconds["convert"] = time.perf_counter() - start
        pool = [img for _, img in sample_photos(15)]  # a non-square photo: the letterbox and its clip window
        self.photos = sorted(pool, key=lambda img: img.size[0] == img.size[1])[:1]
        self.tf = CachedTfRunner(self.saved_model, store)
        self._reference: list[Detections] | None = None
        self.plain_graph: tuple | None = None  # (path, runner, outputs) of the onnx head, for the noise

    def model(self, nms: str, layout: str) -> tuple[Path, object]:
        from tfod_trt.create_onnx import attach_head
        from trtdeploy.deploy_card import card_path_for

        start = time.perf_counter()
        model, card = attach_head(self.core, self.prepared, nms, layout)
        path = self.tmp / f"mrcnn_{nms}_{layout}" / "model.onnx"
        path.parent.mkdir()
        onnx.save(model, str(path))
        card.save(card_path_for(path))
        self.seconds[f"attach {nms} {layout}"] = time.perf_counter() - start
        return path, card

    def reference(self, batch: np.ndarray, frames: list) -> list[Detections]:
        """TensorFlow on the unpadded inner image (as TFOD resizes it), with its detection_masks;
        boxes normalised on the original photo."""
        if self._reference is None:
            start = time.perf_counter()
            self._reference = []
            for pixels, frame in zip(batch, frames, strict=True):
                inner = pixels[frame.top:frame.top + frame.resized_height, frame.left:frame.left + frame.resized_width]
                out = self.tf.infer(np.ascontiguousarray(inner)[None], [*TFOD_NAMES, "detection_masks"])
                n = min(int(out["num_detections"][0]), K)  # the score-sorted first K
                self._reference.append(Detections(
                    out["detection_boxes"][0, :n].astype(np.float32), out["detection_scores"][0, :n].astype(np.float32),
                    np.rint(out["detection_classes"][0, :n]).astype(np.int64) - 1, out["detection_masks"][0, :n]))
            self.seconds["tensorflow"] = time.perf_counter() - start
        return self._reference


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    built = _Run(tmp_path_factory.mktemp("mrcnn"), store_dir(tmp_path_factory))
    yield built
    print("\nMask R-CNN test seconds:", {k: round(v, 1) for k, v in built.seconds.items()})


def in_original(detections: list[Detections], frames: list) -> list[Detections]:
    """Network-input boxes -> normalised on the original photo, through the letterbox frame."""
    out = []
    for det, frame in zip(detections, frames, strict=True):
        size = np.array([frame.height, frame.width, frame.height, frame.width], np.float64)
        boxes = frame.to_pixels(det.boxes)[:, [1, 0, 3, 2]] / size
        out.append(Detections(boxes.astype(np.float32), det.scores, det.classes, det.masks))
    return out


def _check(run: _Run, path: Path, runner, outputs: list[dict], batch: np.ndarray, frames: list) -> None:
    """Detections as test_faster_rcnn.py compares them (>= 99% matched, same class, IoU >= 0.99,
    the run-derived score bound when the difference passes the floor) and masks: mean mask IoU
    >= 0.99 over every matched pair, masks that are neither empty nor full."""
    from trtdeploy.exact import K_SCORE, SCORE_FLOOR

    reference = run.reference(batch, frames)
    ours = in_original([runner.read(out)[0] for out in outputs], frames)
    stats = compare(reference, ours, TOLERANCE)
    assert stats.reference == K * len(reference), stats  # the fixture keeps all its detections (score threshold 0)
    assert stats.matched_fraction >= TOLERANCE.min_matched and stats.matched >= 0.99 * stats.candidate, stats
    assert stats.mask_pairs == stats.matched and stats.mean_mask_iou >= TOLERANCE.mask_iou, stats
    on = np.mean([(d.masks > 0.5).mean() for d in reference])
    assert 0.1 < on < 0.9, on  # masks with both sides: the comparison can fail
    if stats.max_score_diff > SCORE_FLOOR:  # the float32 noise of the networks (ONNX Runtime unoptimised)
        import onnxruntime as ort

        if run.plain_graph is not None:  # the plugin-free graph of the same core (the efficient head's has plugins)
            path, runner, outputs = run.plain_graph

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        plain = [runner.read(dict(zip(names, session.run(None, {"input_tensor": batch[i:i + 1]}), strict=True)))[0]
                 for i in range(len(batch))]
        noise = compare([runner.read(out)[0] for out in outputs], plain, TOLERANCE).max_score_diff
        assert stats.max_score_diff <= max(SCORE_FLOOR, K_SCORE * noise), (stats, noise)
    run.seconds.setdefault("mask IoU", stats.mean_mask_iou)


def test_onnx_head_deepstream_layout_matches_tensorflow_and_the_parser_reads_it(run, tmp_path):
    """--nms onnx, --output-layout deepstream (ds/mrcnn): standard ops only (GridSample crops at
    the proposals and at the detections), TensorFlow's detections and masks read back from the
    rows + per-class logits, NvDsInferParseCustomMrcnnTLTV2's emulation reading the same buffers,
    and a DeepStream config (network-type=3) that passes check-ds-config."""
    from trtdeploy.deepstream.check import check_ds_config
    from trtdeploy.deepstream.generate import DsOptions, gen_ds_config
    from trtdeploy.deepstream.parser_emulation import parse, raw_outputs_from_arrays
    from trtdeploy.runners import OnnxRuntimeRunner

    path, card = run.model("onnx", "deepstream")
    ops = [n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node]
    assert ops.count("GridSample") == 2 and "CropAndResizeDynamic" not in ops and "EfficientNMS_TRT" not in ops
    assert card.output.contract == "ds/mrcnn" and card.output.names == list(MRCNN_NAMES)
    assert card.provenance.model_family == "tfod_faster_rcnn" and card.preprocess.resize == "letterbox"
    runner = OnnxRuntimeRunner(path, card)
    batch, frames = runner.prepare(run.photos)
    start = time.perf_counter()
    outputs = [runner.infer(batch[i:i + 1]) for i in range(len(batch))]
    run.seconds["onnx runtime onnx"] = time.perf_counter() - start
    run.plain_graph = (path, runner, outputs)
    rows, logits = outputs[0][MRCNN_NAMES[0]], outputs[0][MRCNN_NAMES[1]]
    assert logits.shape == (1, K, 90, MASK_H, MASK_W) and rows.shape == (1, K, 6)
    _check(run, path, runner, outputs, batch, frames)

    threshold = 0.02
    objects = parse("mrcnn", raw_outputs_from_arrays(list(outputs[0].items())), 640, 640, 90, [threshold] * 90)
    kept = np.flatnonzero(rows[0, :, 5] >= threshold)
    assert len(objects) == len(kept) > 0
    for o, i in zip(objects, kept, strict=True):  # the detected class's logits block, byte for byte
        assert o.class_id == int(rows[0, i, 4])
        np.testing.assert_array_equal(o.mask, logits[0, i, o.class_id])

    ini = gen_ds_config(card, path, tmp_path / "ds", DsOptions(name="mrcnn")).paths[0]
    assert [p.message for p in check_ds_config(ini) if p.level == "error"] == []
    text = ini.read_text()
    assert "network-type=3" in text and "output-instance-mask=1" in text
    assert "parse-bbox-instance-mask-func-name=NvDsInferParseCustomMrcnnTLTV2" in text


def test_efficient_head_tfod_layout_matches_tensorflow(run):
    """--nms efficient, --output-layout tfod (tfod-masks): EfficientNMS_TRT and CropAndResizeDynamic
    (their CPU references), detection_masks [B,K,15,15] as TFOD returns them."""
    from trtdeploy.nms.ort_session import SplitSession
    from trtdeploy.runners import OnnxRuntimeRunner

    path, card = run.model("efficient", "tfod")
    ops = [n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node]
    assert ops.count("CropAndResizeDynamic") == 2 and ops.count("EfficientNMS_TRT") == 2 and "GridSample" not in ops
    assert card.output.contract == "tfod-masks" and card.output.names[-1] == "detection_masks"
    runner = OnnxRuntimeRunner(path, card)
    assert isinstance(runner.session, SplitSession)  # run split at its two crops (make_session)
    batch, frames = runner.prepare(run.photos)
    start = time.perf_counter()
    outputs = [runner.infer(batch[i:i + 1]) for i in range(len(batch))]
    run.seconds["onnx runtime efficient"] = time.perf_counter() - start
    assert outputs[0]["detection_masks"].shape == (1, K, MASK_H, MASK_W)
    _check(run, path, runner, outputs, batch, frames)


def test_mask_rcnn_refusals_name_what_is_missing(run):
    """--nms none (no final boxes) is refused when attaching a head to a Mask R-CNN core (before
    converting: tests/tfod/test_faster_rcnn_config.py); a mask head whose shape pipeline.config
    does not describe is refused naming both."""
    from dataclasses import replace

    from tfod_trt.create_onnx import attach_head
    from tfod_trt.families.faster_rcnn import _check_mask_shape
    from trtdeploy.errors import GraphError, UsageError

    with pytest.raises(UsageError, match="--nms none has no final detection boxes"):
        attach_head(run.core, run.prepared, "none")
    config = replace(run.prepared.config, mask_height=33)
    with pytest.raises(GraphError, match=r"\(90, 15, 15\).*says \(90, 33, 15\)"):
        _check_mask_shape(config, run.core.facts["mask_shape"])
