"""The mask path on a small TensorFlow graph with the structure of TFOD's Mask R-CNN mask branch,
exported as a saved model, converted with tf2onnx, shaped by trtdeploy.masks and read by the
DeepStream parser emulation; compared with TensorFlow's own detection_masks.

The structure (tensorflow/models research/object_detection): the second-stage crop of the feature
map at the detection boxes (``tf.image.crop_and_resize``, meta_architectures/
faster_rcnn_meta_arch.py), then predictors/heads/keras_mask_head.py ``MaskRCNNMaskHead._predict``:
``resize_bilinear(align_corners=True)`` to the mask size, 3x3 SAME convolutions with an activation,
a last 3x3 convolution with one channel per class, ``transpose([0, 3, 1, 2])`` and
``expand_dims(axis=1)``: per-class mask logits; the postprocess gathers the detected class's mask
and applies ``tf.sigmoid`` (detection_masks). The detections themselves are constants here (the
Faster R-CNN part is developer FRCNN's): what is tested is the mask branch and its DeepStream form.
"""

from __future__ import annotations

import numpy as np
import pytest

from trtdeploy.contracts import MRCNN_NAMES

pytestmark = [pytest.mark.tf, pytest.mark.slow]

H, W, C, K, MASK = 32, 48, 3, 4, 12
COUNT = 3
BOXES = np.array([[0.1, 0.2, 0.6, 0.7], [0.3, 0.05, 0.9, 0.5], [0.0, 0.5, 0.4, 1.0], [0.0, 0.0, 0.0, 0.0]],
                 np.float32)
SCORES = np.array([0.9, 0.7, 0.5, 0.0], np.float32)
CLASSES = np.array([2, 0, 1, 0], np.int32)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(TensorFlow's outputs on one image, the ONNX of the same saved model, the image, the
    loaded saved model's serving function)."""
    import tensorflow as tf
    import tf2onnx

    rng = np.random.default_rng(140)

    def weights(*shape):  # numpy: constants inside the traced graph (a tf.constant here would be captured)
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    backbone, conv, last = weights(3, 3, 3, 6), weights(3, 3, 6, 8), weights(3, 3, 8, C)
    bias = np.linspace(-0.5, 0.5, C).astype(np.float32)

    class MaskBranch(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, H, W, 3], tf.float32, name="image")])
        def serve(self, image):
            features = tf.nn.relu(tf.nn.conv2d(image / 255.0, backbone, 2, "SAME"))  # [1, H/2, W/2, 6]
            crops = tf.image.crop_and_resize(features, BOXES, tf.zeros([K], tf.int32), [7, 7])
            x = tf.compat.v1.image.resize_bilinear(crops, [MASK, MASK], align_corners=True)
            x = tf.nn.relu(tf.nn.conv2d(x, conv, 1, "SAME"))
            x = tf.nn.conv2d(x, last, 1, "SAME") + bias  # [K, MASK, MASK, C] logits
            per_class = tf.expand_dims(tf.transpose(x, [0, 3, 1, 2]), axis=0)  # [1, K, C, MASK, MASK]
            picked = tf.gather(per_class[0], CLASSES, axis=1, batch_dims=1)  # the detected class
            return {
                "num_detections": tf.constant([[COUNT]], tf.int32),
                "detection_boxes": tf.constant(BOXES[None]),
                "detection_scores": tf.constant(SCORES[None]),
                "detection_classes": tf.constant(CLASSES[None]),
                "per_class_masks": per_class,
                "detection_masks": tf.sigmoid(picked)[None],
            }

    branch = MaskBranch()
    folder = tmp_path_factory.mktemp("mask_branch") / "saved_model"
    tf.saved_model.save(branch, str(folder))
    loaded = tf.saved_model.load(str(folder))  # TensorFlow's reference: the exported saved model
    image = np.random.default_rng(7).integers(0, 256, (1, H, W, 3)).astype(np.float32)
    tf_out = {k: v.numpy() for k, v in loaded.serve(tf.constant(image)).items()}
    # the same function converted (a restored function feeds its constants as captured inputs)
    model, _ = tf2onnx.convert.from_function(
        branch.serve, input_signature=[tf.TensorSpec([1, H, W, 3], tf.float32, name="image")], opset=17
    )
    return tf_out, model, image, loaded.serve


def run(model, image):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: image}), strict=True))


def test_tfod_masks_match_tensorflow(converted):
    from trtdeploy.detections import Detections, match
    from trtdeploy.masks import with_tfod_masks

    tf_out, model, image, _ = converted
    out = run(with_tfod_masks(model, "per_class_masks"), image)

    def dets(masks):
        return Detections(BOXES[:COUNT], SCORES[:COUNT], CLASSES[:COUNT].astype(np.int64), masks[0, :COUNT])

    stats = match(dets(tf_out["detection_masks"]), dets(out["detection_masks"]), 0.99)
    assert stats.mask_pairs == COUNT and stats.mean_mask_iou >= 0.99
    on = (tf_out["detection_masks"][0, :COUNT] > 0.5).mean()
    assert 0.1 < on < 0.9  # masks with both sides: the comparison can fail


def test_deepstream_parser_reads_the_masks_tensorflow_made(converted):
    from trtdeploy.deepstream.parser_emulation import parse, raw_outputs_from_arrays
    from trtdeploy.detections import mask_iou
    from trtdeploy.masks import shape_for_deepstream

    tf_out, model, image, _ = converted
    out = run(shape_for_deepstream(model, "per_class_masks", (H, W)), image)
    assert list(out) == list(MRCNN_NAMES)
    objects = parse("mrcnn", raw_outputs_from_arrays(list(out.items())), W, H, C, [0.3] * C)
    assert [o.class_id for o in objects] == CLASSES[:COUNT].tolist()
    # the parser's block is the converted per-class logits of the detected class, byte for byte
    for i, o in enumerate(objects):
        np.testing.assert_array_equal(o.mask, out[MRCNN_NAMES[1]][0, i, CLASSES[i]])
    # shown by DeepStream at segmentation-threshold 0 (logits) vs TensorFlow's masks at 0.5
    ious = [mask_iou((o.mask > 0).astype(np.float32), tf_out["detection_masks"][0, i]) for i, o in enumerate(objects)]
    assert np.mean(ious) >= 0.99


def test_generated_config_passes_check_ds_config_and_ds_run_shows_tensorflows_masks(converted, tmp_path):
    """gen-ds-config on the shaped model, check-ds-config on what it wrote, then the dry run: the
    masks the parser hands to the OSD (at segmentation-threshold) against TensorFlow's (at 0.5) on
    the very pixels nvinfer fed the model."""
    import onnx
    import tensorflow as tf
    from PIL import Image

    from trtdeploy.deepstream.check import check_ds_config
    from trtdeploy.deepstream.dry_run import DryRun, NvInferSetup
    from trtdeploy.deepstream.generate import DsOptions, gen_ds_config
    from trtdeploy.deploy_card import DeployCard, InputSpec, NmsParams, OutputSpec, Preprocess, card_path_for
    from trtdeploy.detections import mask_iou
    from trtdeploy.masks import shape_for_deepstream

    _, model, image, serve = converted
    path = tmp_path / "model" / "branch.onnx"
    path.parent.mkdir()
    onnx.save(shape_for_deepstream(model, "per_class_masks", (H, W)), str(path))
    card = DeployCard(InputSpec("image", [1, H, W, 3], "NHWC"), Preprocess(scale=1.0),  # the graph divides by 255
                      OutputSpec(nms="efficient", layout="deepstream_masks", names=list(MRCNN_NAMES), num_classes=C,
                                 box_units="pixels", class_dtype="float32", max_detections=K),
                      ["a", "b", "c"], nms=NmsParams(score_threshold=0.3, max_detections=K))
    card.save(card_path_for(path))
    ini = gen_ds_config(card, path, tmp_path / "ds", DsOptions(name="branch")).paths[0]
    assert [p.message for p in check_ds_config(ini) if p.level == "error"] == []
    result = DryRun(NvInferSetup.from_config(ini)).run_image("photo.png", Image.fromarray(image[0].astype(np.uint8)))
    assert result.masks.mask_pairs == COUNT and result.masks.mean_mask_iou == 1.0  # parser vs the ONNX's own
    tf_masks = serve(tf.constant(result.surface[None].astype(np.float32)))["detection_masks"].numpy()[0]
    by_class = {o.class_id: o for o in result.objects}
    ious = [mask_iou((by_class[int(c)].mask > 0).astype(np.float32), tf_masks[i]) for i, c in enumerate(CLASSES[:COUNT])]
    assert len(by_class) == COUNT and np.mean(ious) >= 0.99
