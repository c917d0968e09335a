"""A CPU dry run of gst-nvinfer for detector configs: what DeepStream would attach to each frame.

``NvInferSetup.from_config`` reads the config as nvinfer does; ``DryRun`` preprocesses each image
as nvinfer would (``nvinfer_preprocess``), runs the ONNX the config names in ONNX Runtime (NMS
plugin nodes through trtdeploy's CPU references), hands each image's raw output buffers to the
parser emulation (``parser_emulation.parse``), clusters and filters like nvinfer
(``clustering``) and maps the boxes back to the image.

Sources: the community mirror hiennguyen9874/deepstream-sources, branch 6.3, and NVIDIA's own
NVIDIA/DeepStream, branch DeepStream-9.0 (src/gst-plugins/gst-nvinfer, src/utils/nvdsinfer), where
each rule below is the same code (compared token by token; "9.0 l." gives its lines). Only the
mapping back to the frame differs between releases, in 6.0-6.2 (clustering.MAPPING, ``--deepstream``).

* gstnvinfer_property_parser.cpp: relative paths resolve against the config's folder, a missing
  file keeps the unresolved path (``get_absolute_file_path`` l.30-78, 9.0 l.43-92; labelfile-path
  l.548-558, 9.0 l.597-606; custom-lib-path l.781-791, 9.0 l.895-904; onnx-file l.1005-1015, 9.0
  l.1127-1136); the YAML form reads the same keys (gstnvinfer_yaml_parser.cpp l.418-660, 9.0
  l.440-950), from 6.1 on (6.1 gstnvinfer.cpp l.458-460; 9.0 l.513-516).
* nvdsinfer_context_impl.cpp l.983-996 (9.0 l.1204-1222): the network size is infer-dims (C;H;W)
  when all three are set, else the engine input's dims read as C,H,W whatever network-input-order
  says; l.961-979 (9.0 l.1179-1200): output layers are handed to the parser in engine binding order
  (for an ONNX: its output order); l.580-591 (9.0 l.684-700): each frame's buffer is the batch
  buffer at ``frame * numElements * size``.
* nvdsinfer_context_impl.cpp l.472-504 ``parseLabelsFile`` (9.0 l.546-582): one label per line, only
  empty lines skipped (a line of spaces or of a lone '\\r' is a label), fields split on ';' (a
  detector uses the first).
* network-type 0 detector, 3 instance segmentation (gstnvinfer_property_parser.cpp l.710-728, 9.0
  l.821-838); instance segmentation takes only cluster-mode 4 (nvdsinfer_context_impl.cpp l.716-720,
  9.0 l.887-891) and its parser from parse-bbox-instance-mask-func-name (9.0 property_parser l.914).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trtdeploy.deepstream.clustering import (
    DBSCAN,
    DBSCAN_NMS,
    DEFAULT_RELEASE,
    MAPPING,
    NMS,
    NONE,
    ClassParams,
    NvObject,
    cluster,
    effective_params,
    pre_cluster_filter,
    to_frame,
)
from trtdeploy.deepstream.config import CLASS_ATTRS_ALL, YAML_SINCE, LoadedConfig, read_config, release_reads_yaml
from trtdeploy.deepstream.nvinfer_preprocess import (
    DEFAULT_FILTER,
    FILTER_NAMES,
    Normalization,
    ScaleGeometry,
    scale_frame,
    scale_geometry,
    to_network_tensor,
)
from trtdeploy.errors import InputError, UnsupportedModelError, UsageError
from trtdeploy.log import get_logger

log = get_logger("deepstream.dry_run")

DETECTOR, INSTANCE_SEGMENTATION = 0, 3

BUILTIN_VARIANT = "detectnet-builtin"


def parser_candidates(parse_func: str | None, custom_lib: str | None) -> list[str]:
    """Parser-variant keys (trtdeploy.deepstream.parsers.VARIANTS) a config's
    parse-bbox-func-name + custom-lib-path can mean, newest first.

    The same function name is different code in DeepStream's own library and in
    deepstream_tao_apps' libnvds_infercustomparser_tao.so (DOMAIN.md §5), so the library's file
    name decides; a library of another name (a user's build) may be any of them.
    """
    from trtdeploy.deepstream.parsers import VARIANTS, variants_for_func

    if not parse_func:
        return [BUILTIN_VARIANT]  # nvinfer's own DetectNet_v2 decoding (output_parsing.cpp l.33-149; 9.0 l.41-183)
    same_func = variants_for_func(parse_func)
    if not same_func:
        known = sorted({v.func for v in VARIANTS.values() if v.custom_lib_path})
        raise UnsupportedModelError(
            f"parse-bbox-func-name={parse_func} is not a parser the dry run emulates ({', '.join(known)}); "
            "pass --ds-parser VARIANT if it reads its outputs like one of them"
        )
    lib_name = Path(str(custom_lib or "")).name
    same_lib = [v for v in same_func if v.custom_lib_path and Path(v.custom_lib_path).name == lib_name]
    return [v.key for v in (same_lib or same_func)]


def choose_variant(candidates: list[str], recorded: str | None) -> str:
    """The variant to emulate: the one the model was made for (its deploy card) when the
    config's function + library allow it, else the newest candidate."""
    if recorded in candidates:
        return str(recorded)
    if len(candidates) > 1:
        log.warning(
            "the config's parser can be any of %s (same function and library in different releases); "
            "emulating %s, pass --ds-parser to choose", ", ".join(candidates), candidates[0],
        )
    return candidates[0]


# --- reading values as GKeyFile does -----------------------------------------------------------


def _int(props: dict[str, str], key: str, default: int, where: str) -> int:
    raw = props.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise InputError(f"{where}: {key}={raw!r} is not an integer (nvinfer fails to parse it)") from None


def _float(props: dict[str, str], key: str, default: float, where: str) -> float:
    raw = props.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw.strip())
    except ValueError:
        raise InputError(f"{where}: {key}={raw!r} is not a number (nvinfer fails to parse it)") from None


def _bool(props: dict[str, str], key: str, where: str) -> bool:
    raw = props.get(key)
    if raw is None or raw == "":
        return False
    value = raw.strip().lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise InputError(f"{where}: {key}={raw!r} is not a boolean (1/0/true/false)")


def _list(props: dict[str, str], key: str, kind: type, where: str) -> list[Any]:
    """A GKeyFile list: ';'-separated, a trailing ';' allowed (the YAML form is the same string)."""
    raw = props.get(key, "")
    try:
        return [kind(v.strip()) for v in raw.split(";") if v.strip()]
    except ValueError:
        what = "integers" if kind is int else "numbers"
        raise InputError(f"{where}: {key}={raw!r} is not a ';'-separated list of {what} (nvinfer fails to parse it)") from None


def read_labels(path: Path) -> list[str]:
    """Detector labels as nvinfer reads them: the first ';' field of each non-empty line
    (config.read_label_lines; a line of only '\\r' or spaces is a label)."""
    from trtdeploy.deepstream.config import read_label_lines

    if not path.is_file():
        raise InputError(f"labelfile-path {path} not found (nvinfer fails: 'Could not open labels file')")
    lines, _ = read_label_lines(path)
    return [line.split(";")[0] for line in lines]


def _class_params(sections: dict[str, dict[str, str]], num_classes: int, where: str) -> list[ClassParams]:
    def parse(group: dict[str, str], base: ClassParams) -> ClassParams:
        values: dict[str, Any] = {}
        for key, name, kind in (
            ("pre-cluster-threshold", "pre_cluster_threshold", float),
            ("threshold", "pre_cluster_threshold", float),  # deprecated alias (property_parser.cpp l.97-108; 9.0 l.111-122)
            ("post-cluster-threshold", "post_cluster_threshold", float),
            ("nms-iou-threshold", "nms_iou_threshold", float),
            ("topk", "topk", int),
            ("minBoxes", "min_boxes", int),
            ("detected-min-w", "detected_min_w", int),
            ("detected-min-h", "detected_min_h", int),
            ("detected-max-w", "detected_max_w", int),
            ("detected-max-h", "detected_max_h", int),
            ("roi-top-offset", "roi_top_offset", int),
            ("roi-bottom-offset", "roi_bottom_offset", int),
        ):
            if key in group:
                getter = _float if kind is float else _int
                values[name] = getter(group, key, 0, where)
        return ClassParams(**{**base.__dict__, **values})

    base = parse(sections.get(CLASS_ATTRS_ALL, {}), ClassParams())
    params = [base] * num_classes
    for name, group in sections.items():
        if not name.startswith("class-attrs-") or name == CLASS_ATTRS_ALL:
            continue
        # the class id is the suffix's leading integer (g_ascii_strtoull in the INI parser, std::stoi
        # in the YAML one): [class-attrs-2x] is class 2 (9.0 property_parser.cpp l.1395-1418,
        # yaml_parser.cpp l.1020-1037; 6.3 property_parser.cpp l.1216-1238)
        leading = re.match(r"\s*([+-]?\d+)", name[len("class-attrs-"):])
        if leading is None:
            raise InputError(f"{where}: group [{name}] is neither class-attrs-all nor class-attrs-<class id>")
        c = int(leading.group(1))
        if c < 0:
            raise InputError(f"{where}: group [{name}]: class-id should be >= 0 (nvinfer refuses it)")
        if c >= num_classes:
            # property_parser.cpp l.1232-1238 (9.0 l.1413-1418)
            raise InputError(f"{where}: [{name}] but num-detected-classes={num_classes} (nvinfer refuses it)")
        params[c] = parse(group, base)
    return params


def _release(loaded: LoadedConfig, deepstream: str | None, where: str) -> str:
    """The DeepStream release to emulate (the default one unless named), checked against the config's form."""
    release = deepstream or DEFAULT_RELEASE
    if release not in MAPPING:
        raise UsageError(f"--deepstream {release}: the dry run emulates DeepStream {', '.join(MAPPING)} "
                         "(7.x/8.0 have no public source; 6.3 and 9.0 agree, use 9.0)")
    if loaded.yaml and not release_reads_yaml(release):  # config.YAML_SINCE has the source lines
        raise InputError(f"{where}: DeepStream {release} reads no YAML config (from {YAML_SINCE} on); use the .txt form")
    return release


def _network_type(props: dict[str, str], where: str) -> int:
    network_type = _int(props, "network-type", DETECTOR, where)
    if "network-type" not in props and _bool(props, "is-classifier", where):
        network_type = 1
    if network_type not in (DETECTOR, INSTANCE_SEGMENTATION):
        raise UnsupportedModelError(
            f"{where}: network-type={network_type}; ds-run handles detectors (0) and instance segmentation (3)"
        )
    return network_type


def _onnx_path(loaded: LoadedConfig, where: str) -> Path:
    """The existing ONNX file named by onnx-file (the dry run runs nothing else)."""
    props = loaded.properties
    onnx_value = props.get("onnx-file")
    if not onnx_value:
        other = next((k for k in ("tlt-encoded-model", "uff-file", "model-file") if props.get(k)), None)
        raise UnsupportedModelError(
            f"{where}: no onnx-file" + (f" ({other} is not run by the dry run)" if other else "")
            + "; ds-run runs the ONNX named by onnx-file"
        )
    onnx_path = loaded.resolve(onnx_value)
    if not onnx_path.is_file():
        raise InputError(f"{where}: onnx-file={onnx_value} resolves to {onnx_path}, which does not exist")
    return onnx_path


def _parse_func(props: dict[str, str], network_type: int, where: str) -> tuple[str | None, str | None]:
    """The custom parser's function name and library (None, None for nvinfer's built-in parser)."""
    # instance segmentation names its parser with parse-bbox-instance-mask-func-name (property_parser.cpp l.798-803)
    func_key = "parse-bbox-instance-mask-func-name" if network_type == INSTANCE_SEGMENTATION else "parse-bbox-func-name"
    parse_func = props.get(func_key) or None
    if network_type == INSTANCE_SEGMENTATION and not parse_func:
        raise InputError(f"{where}: network-type=3 needs parse-bbox-instance-mask-func-name (nvinfer has no built-in one)")
    custom_lib = props.get("custom-lib-path") or None
    if parse_func and not custom_lib:
        raise InputError(f"{where}: parse-bbox-func-name={parse_func} without custom-lib-path")
    return parse_func, custom_lib


def _chosen_variant(variant: str | None, onnx_path: Path, parse_func: str | None, custom_lib: str | None) -> str:
    """The parser variant's key: the one named, else the one the parser and the ONNX's deploy card point to."""
    if variant is None:
        onnx_card = _card_for(onnx_path)
        recorded = getattr(onnx_card.output, "ds_parser", None) if onnx_card is not None else None
        return choose_variant(parser_candidates(parse_func, custom_lib), recorded)
    from trtdeploy.deepstream.parsers import variant as check_variant

    return check_variant(variant).key


def _cluster_mode_and_filter(props: dict[str, str], network_type: int, where: str) -> tuple[int, int]:
    cluster_mode = _int(props, "cluster-mode", 0, where)
    if "cluster-mode" not in props and _bool(props, "enable-dbscan", where):
        cluster_mode = 1
    scaling_filter = _int(props, "scaling-filter", DEFAULT_FILTER, where)
    if network_type == INSTANCE_SEGMENTATION and cluster_mode != NONE:
        # nvdsinfer_context_impl.cpp l.716-720 (9.0 l.887-891): "cluster mode %d not supported with
        # instance segmentation"
        raise InputError(f"{where}: network-type=3 with cluster-mode={cluster_mode}: nvinfer supports only cluster-mode=4")
    return cluster_mode, scaling_filter


@dataclass
class NvInferSetup:
    """The config's values the dry run uses, resolved and defaulted as nvinfer does."""

    config_path: Path
    onnx_path: Path
    network_type: int
    norm: Normalization
    maintain_aspect_ratio: bool
    symmetric_padding: bool
    scaling_filter: int
    cluster_mode: int
    num_classes: int
    labels: list[str]
    parse_func: str | None
    custom_lib: str | None
    variant: str
    class_params: list[ClassParams]
    infer_dims: tuple[int, int, int] | None  # C, H, W
    filter_out_class_ids: list[int] = field(default_factory=list)
    crop_objects_to_roi_boundary: bool = False
    output_instance_mask: bool = False  # masks are attached only with output-instance-mask=1 (meta_utils l.178)
    segmentation_threshold: float = 0.0  # the mask threshold handed to nvdsosd (meta_utils l.183)
    deepstream: str = DEFAULT_RELEASE  # the release whose mapping back to the frame is emulated

    @classmethod
    def from_config(cls, path: Path, variant: str | None = None, deepstream: str | None = None) -> NvInferSetup:
        loaded = read_config(Path(path))
        return cls.from_loaded(loaded, variant, deepstream)

    @classmethod
    def from_loaded(cls, loaded: LoadedConfig, variant: str | None = None,
                    deepstream: str | None = None) -> NvInferSetup:
        props = loaded.properties
        where = str(loaded.path)
        release = _release(loaded, deepstream, where)
        network_type = _network_type(props, where)
        onnx_path = _onnx_path(loaded, where)
        num_classes = _int(props, "num-detected-classes", 0, where)  # 0 after ResetInitParams' memset (9.0 l.2430)
        if num_classes <= 0:
            raise InputError(f"{where}: num-detected-classes is missing or 0: nvinfer then keeps no detections")
        labels: list[str] = []
        if props.get("labelfile-path"):
            labels = read_labels(loaded.resolve(props["labelfile-path"]))
        offsets = tuple(_list(props, "offsets", float, where))
        dims = _list(props, "infer-dims", int, where)
        if dims and len(dims) != 3:
            raise InputError(f"{where}: infer-dims must be C;H;W, got {props['infer-dims']!r}")
        parse_func, custom_lib = _parse_func(props, network_type, where)
        chosen = _chosen_variant(variant, onnx_path, parse_func, custom_lib)
        cluster_mode, scaling_filter = _cluster_mode_and_filter(props, network_type, where)
        return cls(
            config_path=loaded.path,
            onnx_path=onnx_path,
            network_type=network_type,
            norm=Normalization(
                scale=_float(props, "net-scale-factor", 1.0, where),
                offsets=offsets,
                color_format=_int(props, "model-color-format", 0, where),
                input_order=_int(props, "network-input-order", 0, where),
            ),
            maintain_aspect_ratio=_bool(props, "maintain-aspect-ratio", where),
            symmetric_padding=_bool(props, "symmetric-padding", where),
            scaling_filter=scaling_filter,
            cluster_mode=cluster_mode,
            num_classes=num_classes,
            labels=labels,
            parse_func=parse_func,
            custom_lib=custom_lib,
            variant=chosen,
            class_params=_class_params(loaded.sections, num_classes, where),
            infer_dims=(dims[0], dims[1], dims[2]) if dims and all(dims) else None,
            filter_out_class_ids=_list(props, "filter-out-class-ids", int, where),
            crop_objects_to_roi_boundary=_bool(props, "crop-objects-to-roi-boundary", where),
            output_instance_mask=_bool(props, "output-instance-mask", where),
            segmentation_threshold=_float(props, "segmentation-threshold", 0.0, where),  # memset 0
            deepstream=release,
        )

    def label(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else f"class {class_id}"

    def describe(self) -> str:
        mode, _ = effective_params(self.cluster_mode, self.class_params)
        resize = "stretch"
        if self.maintain_aspect_ratio:
            resize = "letterbox centred" if self.symmetric_padding else "letterbox bottom/right"
        return (
            f"parser {self.parse_func or 'built-in'} -> {self.variant}, cluster-mode {self.cluster_mode}"
            + (f" (runs as {mode})" if mode != self.cluster_mode else "")
            + f", {resize}, scaling {FILTER_NAMES.get(self.scaling_filter, self.scaling_filter)}"
            + f", mapped back as DeepStream {self.deepstream}"
        )


@dataclass
class FrameResult:
    """What nvinfer would attach to one frame, in frame pixels."""

    name: str
    width: int
    height: int
    objects: list[NvObject]
    geometry: ScaleGeometry
    surface: np.ndarray  # the uint8 RGB network-size image the model saw
    masks: Any = None  # instance segmentation: detections.MatchStats of the parser's masks vs the model's own

    def to_json(self, setup: NvInferSetup) -> dict[str, Any]:
        return {
            "image": self.name,
            "width": self.width,
            "height": self.height,
            "objects": [
                {
                    "class_id": o.class_id,
                    "label": setup.label(o.class_id),
                    "confidence": round(float(o.confidence), 6),
                    "left": round(o.left, 3),
                    "top": round(o.top, 3),
                    "width": round(o.width, 3),
                    "height": round(o.height, 3),
                    **({"mask": {"width": int(o.mask.shape[1]), "height": int(o.mask.shape[0]),
                                 "threshold": setup.segmentation_threshold}} if o.mask is not None else {}),
                }
                for o in self.objects
            ],
        }


class DryRun:
    """The config's model in ONNX Runtime behind nvinfer's pre- and post-processing."""

    def __init__(self, setup: NvInferSetup) -> None:
        from trtdeploy.nms import make_session

        self.setup = setup
        self.session = make_session(setup.onnx_path)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = [d if isinstance(d, int) and d > 0 else -1 for d in inp.shape]
        if len(self.input_shape) != 4:
            raise UnsupportedModelError(
                f"{setup.onnx_path.name}: input {inp.name} has shape {inp.shape}; nvinfer needs an image input [B,C,H,W] or [B,H,W,C]"
            )
        if inp.type != "tensor(float)":
            # nvinfer's conversion kernels write float (nvdsinfer_conversion.cu l.19-120; 9.0 l.24-292)
            raise UnsupportedModelError(
                f"{setup.onnx_path.name}: input {inp.name} is {inp.type}; nvinfer fills the input tensor with float32"
            )
        self.batch = self.input_shape[0] if self.input_shape[0] > 0 else 1
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.card = _card_for(setup.onnx_path)
        c, self.net_height, self.net_width = self._network_dims()
        self.channels = c

    def _network_dims(self) -> tuple[int, int, int]:
        if self.setup.infer_dims:
            return self.setup.infer_dims
        c, h, w = self.input_shape[1:]  # read as C,H,W whatever the layout (context_impl.cpp l.992-995; 9.0 l.1217-1222)
        if min(c, h, w) <= 0:
            raise InputError(
                f"{self.setup.onnx_path.name} has dynamic input dims {self.input_shape}; set infer-dims=C;H;W in the config"
            )
        return c, h, w

    def _input_tensor(self, surface: np.ndarray) -> np.ndarray:
        x = to_network_tensor(surface, self.setup.norm)
        if x.shape[0 if self.setup.norm.input_order == 0 else 2] != self.channels:
            raise InputError(
                f"the model takes {self.channels} channel(s) but model-color-format={self.setup.norm.color_format} "
                f"gives {x.shape[0 if self.setup.norm.input_order == 0 else 2]}"
            )
        want = [d for d in self.input_shape[1:]]
        if [d for d in x.shape] != want and all(d > 0 for d in want):
            if int(np.prod(want)) != x.size:
                raise InputError(
                    f"nvinfer writes a {'x'.join(map(str, x.shape))} tensor (network-input-order="
                    f"{self.setup.norm.input_order}) but {self.input_name} takes {want}: set network-input-order "
                    "and infer-dims to match the ONNX input"
                )
            # Same element count, other layout: the engine reads the same memory in its own order.
            log.warning(
                "the ONNX input is %s but nvinfer fills it as %s (network-input-order=%d): the model sees "
                "scrambled pixels", want, list(x.shape), self.setup.norm.input_order,
            )
            x = x.reshape(want)
        return x

    def outputs(self, surface: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """The model's outputs for one frame (batch arrays, binding order)."""
        x = self._input_tensor(surface)[None]
        if self.batch > 1:
            x = np.repeat(x, self.batch, axis=0)
        outputs = self.session.run(None, {self.input_name: x})
        return list(zip(self.output_names, outputs, strict=True))

    def raw_outputs(self, surface: np.ndarray) -> list[Any]:
        """The engine's output buffers for one frame, as parser_emulation.RawOutput (binding order)."""
        from trtdeploy.deepstream.parser_emulation import raw_outputs_from_arrays

        return raw_outputs_from_arrays(self.outputs(surface))

    def parse(self, surface: np.ndarray, named: list[tuple[str, np.ndarray]] | None = None) -> list[NvObject]:
        """The parser's objects for one frame, in network pixels (before clustering); ``named``:
        the frame's outputs when already run."""
        from trtdeploy.deepstream.parser_emulation import parse, raw_outputs_from_arrays

        s = self.setup
        raw = raw_outputs_from_arrays(named) if named is not None else self.raw_outputs(surface)
        parsed = parse(
            s.variant, raw, self.net_width, self.net_height, s.num_classes,
            [p.pre_cluster_threshold for p in s.class_params],
        )  # ParserFailure: where the C parser would return false, assert or crash
        keep_masks = s.network_type == INSTANCE_SEGMENTATION and s.output_instance_mask
        return parsed if keep_masks else [replace(o, mask=None) for o in parsed]

    def run_image(self, name: str, image: Image.Image) -> FrameResult:
        s = self.setup
        width, height = image.size
        geometry = scale_geometry(width, height, self.net_width, self.net_height, s.maintain_aspect_ratio,
                                  s.symmetric_padding)
        surface = scale_frame(image, geometry, s.scaling_filter)
        from trtdeploy.deepstream.parser_emulation import ParserFailure

        named = self.outputs(surface)
        try:
            parsed = self.parse(surface, named)
        except ParserFailure as exc:
            raise ParserFailure(exc.variant_key, exc.kind,
                                f"on {name}, DeepStream's parser would fail ({exc.kind}): "
                                f"{str(exc).removeprefix(exc.variant_key + ': ')}") from exc
        masks = self.mask_agreement(named, parsed) if self.compares_masks else None
        objects = pre_cluster_filter(parsed, s.class_params)
        mode, params = effective_params(s.cluster_mode, s.class_params)
        clustered = cluster(objects, mode, params)
        framed = to_frame(clustered, geometry, params, s.filter_out_class_ids, s.crop_objects_to_roi_boundary,
                          s.deepstream)
        return FrameResult(name, width, height, framed, geometry, surface, masks)

    @property
    def compares_masks(self) -> bool:
        """Instance segmentation with masks attached, and a deploy card whose contract has masks."""
        s = self.setup
        return (s.network_type == INSTANCE_SEGMENTATION and s.output_instance_mask and self.card is not None
                and self.card.output.output_contract.has_masks)

    def mask_agreement(self, named: list[tuple[str, np.ndarray]], parsed: list[NvObject]) -> Any:
        """The parser's masks against the model's own, as ``detections.MatchStats``.

        The model's own: its output contract's reader on the same outputs (the detected class's
        mask as a probability, binarised at 0.5 as TFOD does). The parser's: the block it copies
        (parser_emulation), binarised at segmentation-threshold as nvinfer has the OSD do
        (MRCNN_NVINFER_FACTS). Matched by class and box IoU >= IOU_MATCH, in network pixels, the
        model's detections restricted to the parser's threshold (perClassPreclusterThreshold[0])."""
        from trtdeploy.detections import Detections, match

        assert self.card is not None  # compares_masks
        arrays = dict(named)
        own = self.card.output.output_contract.read([arrays[n] for n in self.card.output.names], self.card)[0]
        own = own.above(self.setup.class_params[0].pre_cluster_threshold)
        h, w = float(self.net_height), float(self.net_width)
        boxes = np.array([[o.top / h, o.left / w, (o.top + o.height) / h, (o.left + o.width) / w] for o in parsed],
                         np.float64).reshape(-1, 4)
        shown = [np.asarray(o.mask) > self.setup.segmentation_threshold for o in parsed if o.mask is not None]
        masks = np.array(shown, np.float32) if len(shown) == len(parsed) and shown else None
        candidate = Detections(boxes, np.array([o.confidence for o in parsed], np.float32),
                               np.array([o.class_id for o in parsed], np.int64), masks)
        return match(own, candidate, IOU_MATCH)

    def run(self, images: Sequence[tuple[str, Image.Image]],
            on_image: Callable[[FrameResult], None] | None = None) -> list[FrameResult]:
        results = []
        for name, image in images:
            result = self.run_image(name, image)
            if on_image:
                on_image(result)
            results.append(result)
        return results


# --- images in, files out ---------------------------------------------------------------------


def load_images(source: Path | None, num: int | None) -> list[tuple[str, Image.Image]]:
    """A file, a folder (sorted, first ``num``), or, with None, bundled sample photos."""
    from trtdeploy.sample_images import IMAGE_SUFFIXES, load_folder, sample_photos

    if source is None:
        return [(f"{name}.png", img) for name, img in sample_photos(num or 8)]
    source = Path(source)
    if source.is_file():
        if source.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError(f"{source} is not a .jpg/.png/.bmp image")
        try:
            with Image.open(source) as img:
                return [(source.name, img.convert("RGB"))]
        except OSError as exc:
            raise InputError(f"cannot read image {source}: {exc}") from exc
    if not source.exists():
        raise InputError(f"--images {source} not found")
    return load_folder(source, num or 10**9)


def draw(image: Image.Image, result: FrameResult, setup: NvInferSetup) -> Image.Image:
    """The image with nvinfer's boxes and labels (nvinfer's default border colour is red,
    property_parser.cpp l.1183, 9.0 l.1360; we colour by class so neighbours stay apart)."""
    from PIL import ImageDraw

    palette = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
               (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)]
    out = image.convert("RGB").copy()
    for o in result.objects:
        if o.mask is not None:
            _paint_mask(out, o, setup.segmentation_threshold, palette[o.class_id % len(palette)])
    pen = ImageDraw.Draw(out)
    line = max(1, round(max(out.size) / 300))
    for o in result.objects:
        colour = palette[o.class_id % len(palette)]
        # sorted corners: with crop-objects-to-roi-boundary nvinfer can return a negative height
        xs, ys = sorted((o.left, o.left + o.width)), sorted((o.top, o.top + o.height))
        pen.rectangle((xs[0], ys[0], xs[1], ys[1]), outline=colour, width=line)
        text = f"{setup.label(o.class_id)} {o.confidence:.2f}"
        tl = pen.textbbox((o.left, o.top), text)
        y = o.top - (tl[3] - tl[1]) - 2 if o.top - (tl[3] - tl[1]) - 2 >= 0 else o.top
        tb = pen.textbbox((o.left + 2, y), text)
        pen.rectangle((tb[0] - 2, tb[1] - 1, tb[2] + 2, tb[3] + 1), fill=colour)
        pen.text((o.left + 2, y), text, fill=(255, 255, 255))
    return out


def _paint_mask(image: Image.Image, o: NvObject, threshold: float, colour: tuple[int, int, int]) -> None:
    """nvdsosd stretches the mask over the box and shows values above the threshold; we blend at 40%."""
    left, top = int(round(o.left)), int(round(o.top))
    w, h = int(round(o.width)), int(round(o.height))
    if w <= 0 or h <= 0 or o.mask is None:
        return
    resized = np.asarray(Image.fromarray(o.mask.astype(np.float32)).resize((w, h), Image.Resampling.BILINEAR))
    pixels = np.asarray(image).copy()
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, pixels.shape[0]), min(left + w, pixels.shape[1])
    if y1 <= y0 or x1 <= x0:
        return
    on = resized[y0 - top : y1 - top, x0 - left : x1 - left] > threshold
    region = pixels[y0:y1, x0:x1]
    region[on] = (0.6 * region[on] + 0.4 * np.asarray(colour)).astype(np.uint8)
    image.paste(Image.fromarray(pixels))


def output_paths(out_dir: Path, name: str) -> tuple[Path, Path]:
    stem = Path(name).stem
    return out_dir / f"{stem}.json", out_dir / f"{stem}_ds.png"


def check_outputs(out_dir: Path, images: Sequence[tuple[str, Image.Image]], force: bool,
                  inputs: Sequence[Path] = ()) -> None:
    """Refuse duplicate output names, existing outputs without --force and writing over an input."""
    from trtdeploy.errors import OutputExistsError
    from trtdeploy.files import check_output

    seen: dict[Path, str] = {}
    resolved_inputs = {Path(p).resolve() for p in inputs}
    for name, _ in images:
        for path in output_paths(out_dir, name):
            if path in seen:
                raise InputError(f"images {seen[path]} and {name} would both write {path.name}; rename one")
            seen[path] = name
            if path.resolve() in resolved_inputs:
                raise OutputExistsError(f"{path} is one of the input images; choose another -o folder")
            check_output(path, force)


def write_result(out_dir: Path, image: Image.Image, result: FrameResult, setup: NvInferSetup) -> None:
    import json

    from trtdeploy.files import atomic_path, write_text_atomic

    json_path, png_path = output_paths(out_dir, result.name)
    write_text_atomic(json_path, json.dumps(result.to_json(setup), indent=2) + "\n")
    with atomic_path(png_path) as tmp:
        draw(image, result, setup).save(tmp, format="PNG")


# --- against TensorFlow -------------------------------------------------------------------------

IOU_MATCH = 0.9
MIN_MATCHED = 0.99
# The parser's masks as the OSD shows them vs the model's own binarised at 0.5: at least this mean
# mask IoU (issue 14: masks match with mean mask IoU >= 0.99).
MIN_MASK_IOU = 0.99
# TF detections this close above the threshold may fall just below it in the ONNX (float32 noise,
# ~1e-4 on these models): they are not counted as missed.
SCORE_MARGIN = 1e-3


@dataclass
class ImageComparison:
    name: str
    reference: int  # TensorFlow detections above the config's threshold
    candidate: int  # dry-run detections
    matched: int
    min_iou: float
    max_score_diff: float


def tf_reference(tf_detections: Any, result: FrameResult, setup: NvInferSetup, class_id_base: int) -> list[NvObject]:
    """TensorFlow's detections on the same network-size pixels, mapped into the frame like
    nvinfer maps its own boxes, restricted to what the config's thresholds and size filters keep."""
    g = result.geometry
    mode, params = effective_params(setup.cluster_mode, setup.class_params)
    out = []
    for (y1, x1, y2, x2), score, cls in zip(tf_detections.boxes, tf_detections.scores, tf_detections.classes,
                                            strict=True):
        c = int(cls) + class_id_base
        # TFOD clips its boxes to the true image (its clip window), so clip to the frame here:
        # with letterboxing, TensorFlow's boxes may reach into the padding it was fed.
        left = min(max((x1 * g.net_width - g.offset_left) / g.ratio_x, 0.0), g.frame_width)
        top = min(max((y1 * g.net_height - g.offset_top) / g.ratio_y, 0.0), g.frame_height)
        right = min(max((x2 * g.net_width - g.offset_left) / g.ratio_x, 0.0), g.frame_width)
        bottom = min(max((y2 * g.net_height - g.offset_top) / g.ratio_y, 0.0), g.frame_height)
        width, height = right - left, bottom - top
        if width <= 0 or height <= 0:
            continue  # entirely in the padding
        p = params[c] if 0 <= c < len(params) else ClassParams()
        if score < p.pre_cluster_threshold + SCORE_MARGIN:
            continue
        if mode in (NMS, DBSCAN_NMS) and not score > p.post_cluster_threshold + SCORE_MARGIN:
            continue
        if mode == DBSCAN and score < p.post_cluster_threshold + SCORE_MARGIN:
            continue
        if width < p.detected_min_w or height < p.detected_min_h:
            continue
        if (p.detected_max_w > 0 and width > p.detected_max_w) or (p.detected_max_h > 0 and height > p.detected_max_h):
            continue
        out.append(NvObject(c, float(left), float(top), float(width), float(height), float(score)))
    return out


def compare_objects(name: str, reference: list[NvObject], candidate: list[NvObject]) -> ImageComparison:
    from trtdeploy.detections import Detections, match

    def as_detections(objs: list[NvObject]) -> Detections:
        boxes = np.array([[o.top, o.left, o.top + o.height, o.left + o.width] for o in objs], np.float64).reshape(-1, 4)
        return Detections(boxes, np.array([o.confidence for o in objs], np.float32),
                          np.array([o.class_id for o in objs], np.int64))

    stats = match(as_detections(reference), as_detections(candidate), IOU_MATCH)
    return ImageComparison(name, stats.reference, len(candidate), stats.matched, stats.min_iou, stats.max_score_diff)


def compare_with_runner(runner: Any, results: Sequence[FrameResult], setup: NvInferSetup,
                        class_id_base: int = 0,
                        on_image: Callable[[], None] | None = None) -> list[ImageComparison]:
    """Match each frame's dry-run objects against ``runner.detections`` (a TfodRunner) run on
    the very pixels the dry run inferred on."""
    comparisons = []
    for result in results:
        dets = runner.detections(result.surface[None].astype(np.float32))[0]
        comparisons.append(compare_objects(result.name, tf_reference(dets, result, setup, class_id_base), result.objects))
        if on_image:
            on_image()
    return comparisons


def compare_with_saved_model(saved_model: Path, results: Sequence[FrameResult], setup: NvInferSetup,
                             class_id_base: int = 0,
                             on_image: Callable[[], None] | None = None) -> list[ImageComparison]:
    """Run the saved model on the pixels the dry run inferred on and match detections (an AutoML
    EfficientDet export: its raw heads + the card's hard NMS, tfod_trt.runner.saved_model_runner)."""
    from tfod_trt.runner import saved_model_runner

    runner = saved_model_runner(Path(saved_model), _card_for(setup.onnx_path))
    return compare_with_runner(runner, results, setup, class_id_base, on_image)


def mask_summary(results: Sequence[FrameResult]) -> Any:
    """The frames' mask comparisons (DryRun.mask_agreement) merged, or None when none was made."""
    stats = [r.masks for r in results if r.masks is not None]
    if not stats:
        return None
    total = stats[0]
    for more in stats[1:]:
        total = total.merge(more)
    return total


def matched_fraction(comparisons: Sequence[ImageComparison]) -> float:
    reference = sum(c.reference for c in comparisons)
    return sum(c.matched for c in comparisons) / reference if reference else 1.0


def _card_for(onnx_path: Path) -> Any:
    """The deploy card next to the ONNX, or None."""
    from trtdeploy.deploy_card import DeployCard, card_path_for

    path = card_path_for(onnx_path)
    return DeployCard.load(path) if path.is_file() else None


def class_id_base_for(onnx_path: Path) -> int:
    """Where the model's class ids start in the labels (its deploy card), 0 without a card."""
    card = _card_for(onnx_path)
    return card.output.class_id_base if card is not None else 0
