"""TensorFlow-style crop-and-resize from standard ONNX ops (GridSample), and the rewrite of the
CropAndResizeDynamic plugin into them.

Measured against ``tf.image.crop_and_resize`` (random [2,8,40,40] maps, 50 boxes per image
inside the map, 14x14 crops; the script's numbers are in docs/faster_rcnn.md): GridSample with
``align_corners=1`` samples at exactly CropAndResize's grid points (y1*(H-1) + i*(y2-y1)*(H-1)/(n-1))
and is 1.4e-5 from it (float32 rounding of the sample position); ONNX RoiAlign (avg,
sampling_ratio 1, rois shifted by half a bin) is 3.1e-5 from it in ``half_pixel`` mode and up to
2.8 in ``output_half_pixel`` mode (which widens every roi to at least one pixel), and TensorRT
imports RoiAlign as the ROIAlign_TRT plugin, which TensorRT-RTX does not have ("ROIAlign plugin
was not found in the plugin registry"); a Gather-based bilinear is exact (the CPU reference
``trtdeploy.plugin_refs.crop_and_resize`` is one: equal to TensorFlow bit for bit) but gathers four
[B*N,n,n,C] tensors (1 GB for the fixture's 300 proposals). GridSample builds with TensorRT-RTX
(and natively in TensorRT 10/11).

Outside the image the two TF crops differ, and ``extrapolation`` picks one:

* ``"sample"``: ``tf.image.crop_and_resize`` and the plugin (NVIDIA/TensorRT release/10.16
  plugin/common/kernels/cropAndResizeKernel.cu l.62-76): a sample whose coordinate is outside
  [0, H-1] is 0. A mask computed with the kernel's own float32 formula zeroes those samples.
* ``"neighbor"``: TFOD's ``matmul_crop_and_resize`` (tensorflow/models research/object_detection/
  utils/spatial_transform_ops.py, ``multilevel_roi_align`` with align_corners=True): each of the
  four neighbours outside the map reads 0 — GridSample's ``padding_mode="zeros"`` as it is.

Every node is named ``<name>/...``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy.errors import GraphError
from trtdeploy.graph_passes import add_node, const
from trtdeploy.rewrites import Rewrite

MIN_OPSET = 16  # GridSample
EXTRAPOLATIONS = ("sample", "neighbor")


def _positions(op: Any, start: gs.Tensor, end: gs.Tensor, size: int, extent: int, axis: str) -> gs.Variable:
    """[B,N,size] input coordinates of the samples, the kernel's float32 formula:
    start*(E-1) + i*((end-start)*(E-1)/(size-1)), or the centre 0.5*(start+end)*(E-1)."""
    top = np.float32(extent - 1)
    if size > 1:
        span = op("Sub", [end, start], f"{axis}_span")
        step = op(
            "Div",
            [
                op("Mul", [span, op.c(f"{axis}_top", top)], f"{axis}_span_px"),
                op.c(f"{axis}_steps", np.float32(size - 1)),
            ],
            f"{axis}_step",
        )
        first = op("Mul", [start, op.c(f"{axis}_top2", top)], f"{axis}_first")
        index = op.c(f"{axis}_index", np.arange(size, dtype=np.float32).reshape(1, 1, size))
        return op("Add", [first, op("Mul", [index, step], f"{axis}_offsets")], f"{axis}_positions")
    centre = op("Mul", [op("Add", [start, end], f"{axis}_sum"), op.c(f"{axis}_half", np.float32(0.5))], f"{axis}_mid")
    return op("Mul", [centre, op.c(f"{axis}_top", top)], f"{axis}_positions")


class _Ops:
    def __init__(self, graph: gs.Graph, name: str) -> None:
        self.graph, self.name = graph, name

    def __call__(self, op: str, inputs: list[gs.Tensor], name: str, **attrs: Any) -> gs.Variable:
        return add_node(self.graph, op, inputs, f"{self.name}/{name}", attrs=attrs)[0]

    def c(self, name: str, value: Any) -> gs.Constant:
        return const(f"{self.name}/{name}", np.asarray(value))


def add_crop_and_resize(
    graph: gs.Graph,
    features: gs.Tensor,
    rois: gs.Tensor,
    crop_height: int,
    crop_width: int,
    extrapolation: str = "sample",
    name: str = "crop_and_resize",
    output: gs.Variable | None = None,
) -> gs.Variable:
    """Crops of ``features`` [B,C,H,W] (H, W static) at ``rois`` [B,N,4] (normalised y1,x1,y2,x2;
    N static) resized to crop_height x crop_width: returns [B,N,C,crop_height,crop_width] float32,
    the plugin's layout (written into ``output`` when given)."""
    if extrapolation not in EXTRAPOLATIONS:
        raise ValueError(f"extrapolation must be one of {EXTRAPOLATIONS}, got {extrapolation!r}")
    if graph.opset < MIN_OPSET:
        raise GraphError(
            f"crop-and-resize with standard ops needs ONNX opset >= {MIN_OPSET} (GridSample), "
            f"the graph has opset {graph.opset}"
        )
    shape = features.shape
    if shape is None or len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
        raise GraphError(
            f"crop-and-resize: the feature map {features.name!r} must be [B,C,H,W] with static C, H, W, got {shape}"
        )
    if rois.shape is None or len(rois.shape) != 3 or not isinstance(rois.shape[1], int):
        raise GraphError(f"crop-and-resize: rois {rois.name!r} must be [B,N,4] with a static N, got {rois.shape}")
    depth, height, width = shape[1:]
    num = rois.shape[1]
    op = _Ops(graph, name)
    y1, x1, y2, x2 = (
        op("Slice", [rois, op.c(f"s{i}", [i]), op.c(f"e{i}", [i + 1]), op.c(f"a{i}", [2])], f"coord{i}")
        for i in range(4)
    )
    in_y = _positions(op, y1, y2, crop_height, height, "y")  # [B,N,ch]
    in_x = _positions(op, x1, x2, crop_width, width, "x")  # [B,N,cw]
    # GridSample (align_corners=1) maps g in [-1, 1] to (g + 1) / 2 * (E - 1).
    grid_y = _to_grid(op, in_y, height, "y")
    grid_x = _to_grid(op, in_x, width, "x")
    ones = op.c("ones", np.ones((1, 1, crop_height, crop_width, 1), np.float32))
    gx = op("Mul", [op("Unsqueeze", [grid_x, op.c("gx_axes", [2, 4])], "gx_5d"), ones], "gx_full")
    gy = op("Mul", [op("Unsqueeze", [grid_y, op.c("gy_axes", [3, 4])], "gy_5d"), ones], "gy_full")
    grid = op("Concat", [gx, gy], "grid_5d", axis=4)  # [B,N,ch,cw,2] as (x, y)
    grid = op("Reshape", [grid, op.c("grid_shape", [-1, num * crop_height, crop_width, 2])], "grid")
    sampled = op(
        "GridSample", [features, grid], "grid_sample", mode="bilinear", padding_mode="zeros", align_corners=1
    )  # [B,C,N*ch,cw]
    sampled = op("Reshape", [sampled, op.c("split_shape", [-1, depth, num, crop_height, crop_width])], "split")
    if extrapolation == "sample":
        sampled = op("Mul", [sampled, _inside(op, in_y, in_x, height, width)], "extrapolated")
    out = output if output is not None else gs.Variable(f"{name}/crops", dtype=np.float32)
    out.shape = [features.shape[0], num, depth, crop_height, crop_width]
    out.dtype = np.float32  # a plugin output has no dtype yet; export needs it with the shape
    graph.nodes.append(
        gs.Node("Transpose", f"{name}/to_rois_first", attrs={"perm": [0, 2, 1, 3, 4]}, inputs=[sampled], outputs=[out])
    )
    return out


def _to_grid(op: Any, positions: gs.Tensor, extent: int, axis: str) -> gs.Variable:
    scale = np.float32(2.0 / (extent - 1)) if extent > 1 else np.float32(0.0)
    return op(
        "Sub",
        [
            op("Mul", [positions, op.c(f"{axis}_to_grid", scale)], f"{axis}_grid_scaled"),
            op.c(f"{axis}_one", np.float32(1.0)),
        ],
        f"{axis}_grid",
    )


def _inside(op: Any, in_y: gs.Tensor, in_x: gs.Tensor, height: int, width: int) -> gs.Variable:
    """[B,1,N,ch,cw] 1.0 where both coordinates are inside the map, else 0.0 (the kernel's test)."""

    def within(values: gs.Tensor, extent: int, axis: str) -> gs.Variable:
        low = op("GreaterOrEqual", [values, op.c(f"{axis}_zero", np.float32(0.0))], f"{axis}_low_ok")
        high = op("LessOrEqual", [values, op.c(f"{axis}_last", np.float32(extent - 1))], f"{axis}_high_ok")
        return op("Cast", [op("And", [low, high], f"{axis}_inside_b")], f"{axis}_inside", to=1)

    rows = op("Unsqueeze", [within(in_y, height, "y"), op.c("rows_axes", [1, 4])], "rows")  # [B,1,N,ch,1]
    cols = op("Unsqueeze", [within(in_x, width, "x"), op.c("cols_axes", [1, 3])], "cols")  # [B,1,N,1,cw]
    return op("Mul", [rows, cols], "inside")


def _rewrite_plugin(graph: gs.Graph, node: gs.Node) -> None:
    """One CropAndResizeDynamic node -> the standard ops, writing the node's own output."""
    out = node.outputs[0]
    features, rois = node.inputs[:2]
    if rois.shape is not None and len(rois.shape) == 4:  # [B,N,4,1] as the legacy plugin took
        rois = add_node(
            graph,
            "Reshape",
            [rois, const(f"{node.name}/rois_shape", np.array([0, 0, 4], np.int64))],
            f"{node.name}/rois",
        )[0]
        rois.shape, rois.dtype = list(node.inputs[1].shape[:3]), np.float32  # export needs both
    add_crop_and_resize(
        graph,
        features,
        rois,
        int(node.attrs["crop_height"]),
        int(node.attrs["crop_width"]),
        "sample",
        name=node.name or "crop_and_resize",
        output=out,
    )
    node.outputs.clear()
    node.inputs.clear()


REWRITES = [
    Rewrite(
        plugin="CropAndResizeDynamic",
        apply=_rewrite_plugin,
        min_opset=MIN_OPSET,
        differences="none measured: samples at the plugin's grid points, 0 outside the map as the kernel; "
        "float32 rounding of the sample position (GridSample maps the grid back to pixels) only",
        source="NVIDIA/TensorRT release/10.16 plugin/common/kernels/cropAndResizeKernel.cu l.26-107",
    ),
]
