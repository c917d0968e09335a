"""Property-based fuzzing of every parser of user files (issue 11): no input may raise anything
but our error family, and every refusal is one line. 10^4 inputs per parser in CI (the ``ci``
profile, derandomized); ``HYPOTHESIS_PROFILE=long`` for 10^5 (see conftest.py)."""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given

from tests.fuzz import seeds
from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import Scratch, bytes_maker, inputs, json_maker, only_our_errors, text_maker

PROTO_CHARS = "{}<>[]:;,\"'\\#\n\t -+.0123456789eExXfFabcdnrtuvyz_"
INI_CHARS = "[]=;#\n\r\t -.0123456789abcdefgilmnoprstuxy:\"'\\/"
YAML_CHARS = ":-#\n\t '\"{}[],&*!|>%@`?0123456789abcdefgilmnoprstuy."


# protobuf's text unescaping warns on escapes like "\," in the fuzzed text: not a finding
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def scratch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(texts=inputs(text_maker(seeds.PROTOTEXT, PROTO_CHARS)))
def test_prototext(texts: list[str]) -> None:
    from trtdeploy.prototext import parse_text

    for text in texts:
        only_our_errors(lambda t: parse_text(t, "fuzz.config").to_dict(), text)


@FUZZ
@given(texts=inputs(text_maker([seeds.PIPELINE_CONFIG, seeds.PIPELINE_KEEP_ASPECT], PROTO_CHARS)))
def test_pipeline_config(texts: list[str], scratch_dir: Path) -> None:
    from tfod_trt.pipeline_config import read_pipeline_config

    scratch = Scratch(scratch_dir, "pipeline.config")
    for text in texts:
        only_our_errors(lambda t: read_pipeline_config(scratch.text(t)), text)


@FUZZ
@given(texts=inputs(text_maker([seeds.LABEL_MAP], PROTO_CHARS)))
def test_label_map(texts: list[str], scratch_dir: Path) -> None:
    from tfod_trt.pipeline_config import read_label_map

    scratch = Scratch(scratch_dir, "label_map.pbtxt")
    for index, text in enumerate(texts):
        only_our_errors(lambda t, n=index % 5: read_label_map(scratch.text(t), n), text)


TAO_PROTO = [
    ("ssd", seeds.TAO_SSD_SPEC),
    ("yolo_v4", seeds.TAO_SSD_SPEC),
    ("detectnet_v2", seeds.TAO_DETECTNET_SPEC),
    ("faster_rcnn", seeds.TAO_FRCNN_SPEC),
]


def _tao_spec(rng: random.Random) -> tuple[str, str]:
    arch, seed = rng.choice(TAO_PROTO)
    return arch, text_maker([seed], PROTO_CHARS)(rng)


@FUZZ
@given(specs=inputs(_tao_spec))
def test_tao_proto_spec(specs: list[tuple[str, str]]) -> None:
    from tao_trt.facts import facts_from_spec
    from tao_trt.spec import parse_proto_text

    for arch, text in specs:
        only_our_errors(lambda a_t: facts_from_spec(parse_proto_text(a_t[1], "spec.txt"), a_t[0], None), (arch, text))


@FUZZ
@given(texts=inputs(text_maker([seeds.TAO_YAML_SPEC], YAML_CHARS)))
def test_tao_yaml_spec(texts: list[str]) -> None:
    from tao_trt.facts import facts_from_spec
    from tao_trt.spec import parse_yaml

    for text in texts:
        only_our_errors(lambda t: facts_from_spec(parse_yaml(t, "spec.yaml"), "efficientdet", None), text)


@FUZZ
@given(texts=inputs(text_maker([seeds.NVINFER_INI], INI_CHARS)))
def test_nvinfer_ini(texts: list[str], scratch_dir: Path) -> None:
    from trtdeploy.deepstream.config import read_config

    scratch = Scratch(scratch_dir, "config_infer.txt")
    for text in texts:
        only_our_errors(lambda t: read_config(scratch.text(t)), text)


@FUZZ
@given(texts=inputs(text_maker([seeds.NVINFER_YAML], YAML_CHARS)))
def test_nvinfer_yaml(texts: list[str], scratch_dir: Path) -> None:
    from trtdeploy.deepstream.config import read_config

    scratch = Scratch(scratch_dir, "config_infer.yml")
    for text in texts:
        only_our_errors(lambda t: read_config(scratch.text(t)), text)


@FUZZ
@given(blobs=inputs(bytes_maker(seeds.LABEL_FILES)))
def test_label_file(blobs: list[bytes], scratch_dir: Path) -> None:
    from trtdeploy.deepstream.config import read_label_lines

    scratch = Scratch(scratch_dir, "labels.txt")
    for data in blobs:
        only_our_errors(lambda d: read_label_lines(scratch.data(d)), data)


@FUZZ
@given(texts=inputs(text_maker(seeds.CACHES, "TR-0123456789abcdefABCDEF: \n\r\tEntropyCalibration2MinMax")))
def test_calibration_cache(texts: list[str], scratch_dir: Path) -> None:
    from calibration.cache import inspect_cache, parse_cache, read_cache

    scratch = Scratch(scratch_dir, "fuzz.cache")
    for text in texts:
        only_our_errors(lambda t: inspect_cache(parse_cache(t, "fuzz.cache")).lines(), text)
        only_our_errors(lambda t: read_cache(scratch.text(t)).to_text(), text)


def _cache_key():  # type: ignore[no-untyped-def]
    from calibration.sidecar import CacheKey

    return CacheKey("ab" * 32, {"height": 32, "width": 32, "scale": 1.0}, "EntropyCalibration2", "10.16.0")


@FUZZ
@given(documents=inputs(json_maker([{"schema": "calibration.cache_sidecar", "schema_version": 1,
                                     **_cache_key().to_dict()}])))  # fmt: skip
def test_calibration_cache_sidecar(documents: list[object], scratch_dir: Path) -> None:
    """reuse_problem never raises: a broken sidecar is a reason not to reuse the cache."""
    from calibration.sidecar import reuse_problem

    cache = Scratch(scratch_dir, "s.cache").text(seeds.CACHES[0])
    sidecar = Scratch(scratch_dir, "s.cache.json")
    key = _cache_key()
    for data in documents:
        sidecar.text(json.dumps(data))
        only_our_errors(lambda _: _is_reason(reuse_problem(cache, key)), data)


def _is_reason(problem: object) -> None:
    assert problem is None or isinstance(problem, str)


def _card_seed() -> dict:
    from trtdeploy.deploy_card import DeployCard, InputSpec, OutputSpec, Preprocess

    return DeployCard(
        input=InputSpec(name="input_tensor", shape=[-1, 300, 300, 3]),
        preprocess=Preprocess(),
        output=OutputSpec(nms="efficient", layout="tfod", names=["a", "b", "c", "d"], num_classes=2),
        labels=["cat", "dog"],
    ).to_dict()


@FUZZ
@given(documents=inputs(json_maker([_card_seed()])))
def test_deploy_card(documents: list[object], scratch_dir: Path) -> None:
    from trtdeploy.deploy_card import DeployCard

    scratch = Scratch(scratch_dir, "m.deploy.json")
    for data in documents:
        only_our_errors(lambda d: DeployCard.load(scratch.text(json.dumps(d))).to_json(), data)


def _sidecar_seed() -> dict:
    from tests.bad_inputs.workspace import tiny_detector, write_fake_engine, write_tiny_card

    with tempfile.TemporaryDirectory() as folder:
        onnx_path = tiny_detector(Path(folder) / "m.onnx")
        write_tiny_card(onnx_path)
        engine = write_fake_engine(onnx_path, Path(folder) / "m.engine")
        return json.loads(engine.with_name("m.engine.json").read_text())


@FUZZ
@given(documents=inputs(json_maker([_sidecar_seed()])))
def test_engine_sidecar(documents: list[object], scratch_dir: Path) -> None:
    from trtdeploy.engine.inspect import EngineReport, report_rows
    from trtdeploy.engine.machine import GpuInfo, Machine
    from trtdeploy.engine.sidecar import check_usable, load_sidecar

    engine = Scratch(scratch_dir, "m.engine").data(b"engine")
    sidecar_file = Scratch(scratch_dir, "m.engine.json")
    machines = [
        Machine(backends={"tensorrt": "10.16.0"}),
        Machine(backends={"tensorrt": "10.16.0"}, cuda_driver="12.8", gpus=[GpuInfo(0, "NVIDIA T4", "7.5")]),
    ]

    def parse(machine: Machine) -> None:
        sidecar = load_sidecar(engine)
        verdict = check_usable(sidecar, machine, engine)
        _ = sidecar.inputs, sidecar.outputs, sidecar.to_dict()
        report_rows(EngineReport(engine, sidecar, verdict, machine))  # what `trtdeploy inspect` prints

    for index, data in enumerate(documents):
        sidecar_file.text(json.dumps(data))
        only_our_errors(lambda _, m=machines[index % 2]: parse(m), data)


@FUZZ
@given(blobs=inputs(bytes_maker(seeds.ETLT)))
def test_etlt_header(blobs: list[bytes], scratch_dir: Path) -> None:
    from tao_trt.etlt import read_etlt_header

    scratch = Scratch(scratch_dir, "m.etlt")
    for data in blobs:
        only_our_errors(lambda d: read_etlt_header(scratch.data(d)).is_uff, data)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.bad_inputs.workspace import write_images

    return write_images(tmp_path_factory.mktemp("fuzz_images"), 2)


@FUZZ
@given(texts=inputs(text_maker([seeds.IMAGE_LIST], "img0123.jpgnpe/#\n \t")))
def test_image_list_file(texts: list[str], image_dir: Path) -> None:
    from calibration.images import list_images

    scratch = Scratch(image_dir, "list.txt")
    for text in texts:
        only_our_errors(lambda t: list_images(scratch.text(t), num=None), text)


@FUZZ
@given(documents=inputs(json_maker([seeds.COCO])))
def test_coco_json(documents: list[object], image_dir: Path) -> None:
    from calibration.images import list_images

    scratch = Scratch(image_dir, "instances.json")
    for data in documents:
        only_our_errors(lambda d: list_images(scratch.text(json.dumps(d)), num=None, image_root=image_dir), data)


@FUZZ
@given(blobs=inputs(bytes_maker([seeds.TENSORFILE], max_size=96)))
def test_tensorfile_header(blobs: list[bytes], scratch_dir: Path) -> None:
    from calibration.tensorfile import is_tensorfile, tensorfile_info

    scratch = Scratch(scratch_dir, "calib.tensorfile")
    for data in blobs:
        only_our_errors(lambda d: is_tensorfile(scratch.data(d)) and tensorfile_info(scratch.path), data)
