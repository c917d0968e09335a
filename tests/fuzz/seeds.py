"""Small valid inputs for the fuzzers to mutate (kept short: every example parses one)."""

from __future__ import annotations

PIPELINE_CONFIG = """model {
  ssd {
    num_classes: 3
    image_resizer { fixed_shape_resizer { height: 300 width: 300 } }
    feature_extractor { type: "ssd_mobilenet_v2_keras" depth_multiplier: 0.35 }
    box_coder { faster_rcnn_box_coder { y_scale: 10.0 x_scale: 10.0 height_scale: 5.0 width_scale: 5.0 } }
    post_processing {
      batch_non_max_suppression { score_threshold: 1e-8 iou_threshold: 0.6 max_detections_per_class: 100
        max_total_detections: 100 }
      score_converter: SIGMOID
    }
  }
}
train_config { batch_size: 8 data_augmentation_options { random_horizontal_flip { } } }
"""

PIPELINE_KEEP_ASPECT = PIPELINE_CONFIG.replace(
    "fixed_shape_resizer { height: 300 width: 300 }",
    "keep_aspect_ratio_resizer { min_dimension: 640 max_dimension: 640 pad_to_max_dimension: true }",
)

PROTOTEXT = [
    PIPELINE_CONFIG,
    'a: 1 b: -2.5e3 c: "x\\ty" d: ENUM e: true f: [1, 2, 3] g < h: 0x1f >, i: [{ j: 1 }, { j: 2 }]; k: \'q\'',
    "list: [] nested { deeper { deepest { x: inf y: -nan z: 1.5f } } }",
]

LABEL_MAP = """item {
  id: 1
  name: 'circle'
  display_name: 'circle'
}
item { id: 2 name: "square" }
item { name: "triangle" id: 3 }
"""

TAO_SSD_SPEC = """ssd_config { arch: "resnet" nlayers: 18 }
augmentation_config { output_width: 300 output_height: 300 output_channel: 3 }
nms_config { confidence_threshold: 0.01 clustering_iou_threshold: 0.6 top_k: 200 }
dataset_config {
  target_class_mapping { key: "car" value: "car" }
  target_class_mapping { key: "person" value: "person" }
}
"""

TAO_DETECTNET_SPEC = """dataset_config { image_extension: "png" }
model_config { arch: "resnet" num_layers: 18 }
augmentation_config {
  preprocessing { output_image_width: 960 output_image_height: 544 output_image_channel: 3 }
}
cost_function_config { target_classes { name: "car" } target_classes { name: "cyclist" } }
postprocessing_config { target_class_config { key: "car" value { clustering_config { dbscan_eps: 0.2 } } } }
"""

TAO_FRCNN_SPEC = """dataset_config { target_class_mapping { key: "car" value: "car" } }
model_config {
  input_image_config {
    image_type: RGB
    image_channel_order: "bgr"
    size_height_width { height: 384 width: 1248 }
    image_channel_mean { key: "b" value: 103.939 }
    image_channel_mean { key: "g" value: 116.779 }
    image_channel_mean { key: "r" value: 123.68 }
    image_scaling_factor: 1.0
  }
}
inference_config { bbox_visualize_threshold: 0.6 classifier_nms_max_boxes: 100 }
"""

TAO_YAML_SPEC = """dataset:
  num_classes: 91
  image_size: "512,512"
evaluate:
  min_score_thresh: 0.4
  max_detections_per_image: 0x64
  label_map: {1: car, 2: person}
model:
  name: efficientdet-d0
"""

NVINFER_INI = """[property]
gpu-id=0
net-scale-factor=0.0039215697906911373
onnx-file=model.onnx
model-engine-file=model.onnx_b1_gpu0_fp16.engine
labelfile-path=labels.txt
batch-size=1
network-mode=2
num-detected-classes=4
gie-unique-id=1
output-blob-names=num_detections;detection_boxes
parse-bbox-func-name=NvDsInferParseCustomTfSSD
custom-lib-path=/opt/nvidia/deepstream/lib/libnvds_infercustomparser.so

[class-attrs-all]
pre-cluster-threshold=0.2
topk=20

[class-attrs-0]
pre-cluster-threshold=0.5
"""

NVINFER_YAML = """property:
  gpu-id: 0
  onnx-file: model.onnx
  num-detected-classes: 4
  output-blob-names: num_detections;detection_boxes
  gie-unique-id: 0x1
  operate-on-class-ids: [0, 1]
class-attrs-all:
  pre-cluster-threshold: 0.2
"""

LABEL_FILES = [b"car\nbicycle\nperson\nroadsign\n", b"\xef\xbb\xbfcar \r\nbicycle\r\n\r\n", b"a;b;c\n"]

CACHES = [
    "TRT-101600-EntropyCalibration2\ninput_tensor: 3c010204\nconv/Relu:0: 3d8d3b52\nout: 7f800000\n",
    "TRT-8601-MinMaxCalibration\r\nx: 3F800000\r\n\r\ny: 00000000",
]

ETLT = [b"\x05\x00\x00\x00Input\x8f\x11encrypted", b"\x00\x00\x00\x00payload", b"\x03\x00\x00\x00ab"]

IMAGE_LIST = "img0.jpg\n# a comment\nsub/img1.png\n\n/abs/path/img2.jpeg\nimg3.JPG\n"

COCO = {
    "images": [{"id": 1, "file_name": "img0.jpg", "width": 48, "height": 40},
               {"id": 2, "file_name": "img1.jpg"}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
    "categories": [{"id": 1, "name": "cat"}],
}  # fmt: skip

TENSORFILE = b"\x89HDF\r\n\x1a\n" + bytes(range(64)) * 4
