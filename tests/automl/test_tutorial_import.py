"""The tf2onnx-tutorial route: the whole AutoML fixture converted by tf2onnx as the tutorial does
(uint8 input, ``detections`` [1,100,7]), made DeepStream-ready by import-onnx: the same
detections as TensorFlow, and its generated DeepStream config passes the nvinfer dry run against
TensorFlow."""

from __future__ import annotations

import onnx
import pytest

from tests.automl.conftest import deepstream_dry_run
from trtdeploy.deploy_card import DeployCard, card_path_for
from trtdeploy.import_onnx import ImportOnnxOptions, import_onnx

pytestmark = [pytest.mark.slow, pytest.mark.tf]

DS_IMAGES = 4


def test_tutorial_onnx_imported_matches_tensorflow_and_passes_ds_run(automl_cache, tmp_path):
    from trtdeploy.deepstream.dry_run import class_id_base_for, compare_with_runner, matched_fraction
    from trtdeploy.runners import OnnxRuntimeRunner
    from trtdeploy.verify import Tolerance, compare, run_batched

    tutorial = automl_cache.tutorial()
    source = onnx.load(str(tutorial))
    assert source.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [o.name for o in source.graph.output] == ["detections:0"]
    path = tmp_path / "model" / "automl.onnx"
    path.parent.mkdir()
    result = import_onnx(ImportOnnxOptions(tutorial, path, num_classes=90, input_size=(512, 512)))
    card = DeployCard.load(card_path_for(path))
    assert card.input.dtype == "float32" and card.input.shape == [1, 512, 512, 3]
    assert (card.nms.iou_threshold, card.nms.score_threshold) == (0.5, 0.001)  # read from its NonMaxSuppression
    assert result.card.output.output_contract.ds_parser

    setup, results = deepstream_dry_run(path, tmp_path / "ds", DS_IMAGES)
    tf = automl_cache.hard_nms()
    comparisons = compare_with_runner(tf, results, setup, class_id_base_for(path))
    assert sum(c.reference for c in comparisons) >= 10 * DS_IMAGES
    assert matched_fraction(comparisons) >= 0.99, comparisons

    # the ONNX itself on the very pixels nvinfer fed it: TensorFlow's detections
    import numpy as np

    pixels = np.stack([r.surface for r in results]).astype(np.float32)
    ours = run_batched(OnnxRuntimeRunner(path, card).detections, pixels, 1)
    stats = compare(tf.detections(pixels), ours, Tolerance(iou=0.99, score_threshold=0.05))
    assert stats.reference >= 10 and stats.matched_fraction >= 0.99 and stats.matched >= 0.99 * stats.candidate, stats
