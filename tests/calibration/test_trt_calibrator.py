"""The TensorRT 10 calibrator factory: cache reuse decisions and batch feeding, with a fake
TensorRT module and a host-memory "device". The real-TensorRT test is marked `trt`."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from calibration import CalibrationError, ImageBatcher, PreprocessSpec, make_trt_calibrator
from calibration.trt_calibrator import BatchFeeder
from tests.calibration.calib_helpers import conv_net

SPEC = PreprocessSpec(32, 32, scale=1 / 127.5, offsets=(127.5, 127.5, 127.5))


class _Base:
    def __init__(self) -> None:
        pass


def fake_trt(version: str = "10.16.0.5", with_calibrators: bool = True) -> types.ModuleType:
    module = types.ModuleType("tensorrt")
    module.__version__ = version  # type: ignore[attr-defined]
    if with_calibrators:
        module.IInt8EntropyCalibrator2 = type("IInt8EntropyCalibrator2", (_Base,), {})  # type: ignore[attr-defined]
        module.IInt8MinMaxCalibrator = type("IInt8MinMaxCalibrator", (_Base,), {})  # type: ignore[attr-defined]
    return module


class HostDevice:
    """Stands in for CUDA: 'device memory' is a dict of numpy arrays."""

    def __init__(self) -> None:
        self.memory: dict[int, np.ndarray] = {}
        self.freed: list[int] = []

    def alloc(self, nbytes: int) -> int:
        pointer = 0x1000 * (len(self.memory) + 1)
        self.memory[pointer] = np.zeros(nbytes, np.uint8)
        return pointer

    def upload(self, pointer: int, array: np.ndarray) -> None:
        self.memory[pointer][:] = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)

    def free(self, pointer: int) -> None:
        self.freed.append(pointer)


def _run_calibration(calibrator, device: HostDevice, spec: PreprocessSpec) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """What TensorRT does: read the cache; if none, pull batches, then write the cache."""
    if calibrator.read_calibration_cache() is not None:
        return []
    seen = []
    while (pointers := calibrator.get_batch(["x"])) is not None:
        raw = device.memory[pointers[0]]
        seen.append(raw.view(np.float32).reshape(spec.shape(calibrator.get_batch_size())).copy())
    calibrator.write_calibration_cache(b"TRT-101600-EntropyCalibration2\nx: 3c010204\n")
    return seen


def test_calibrates_then_reuses_only_a_matching_cache(tmp_path: Path, photo_jpegs: list[Path]) -> None:
    model = conv_net(tmp_path / "net.onnx")
    cache = tmp_path / "net.cache"
    device = HostDevice()
    trt = fake_trt()
    first = make_trt_calibrator(trt, photo_jpegs[:10], SPEC, cache, onnx_path=model, batch_size=4, device=device)
    assert isinstance(first, trt.IInt8EntropyCalibrator2)
    assert not first.cache_reused and "no cache" in first.cache_problem
    seen = _run_calibration(first, device, SPEC)
    assert len(seen) == 2  # 10 images, batch 4: the partial batch is dropped
    expected = np.concatenate(list(ImageBatcher(photo_jpegs[:8], SPEC, 4)))
    assert np.array_equal(np.concatenate(seen), expected)
    assert device.freed  # the device buffer is released at the end
    assert cache.read_bytes().startswith(b"TRT-101600")
    assert (tmp_path / "net.cache.json").is_file()

    again = make_trt_calibrator(trt, photo_jpegs[:10], SPEC, cache, onnx_path=model, batch_size=4, device=device)
    assert again.cache_reused and again.read_calibration_cache() == cache.read_bytes()
    assert again.get_batch(["x"]) is None

    # another TensorRT version, preprocessing, algorithm or model: recalibrate, saying why
    cases = [
        (fake_trt("10.3.0"), SPEC, "entropy", model, "TensorRT version changed"),
        (trt, PreprocessSpec(32, 32), "entropy", model, "preprocessing changed"),
        (trt, SPEC, "minmax", model, "algorithm changed"),
        (trt, SPEC, "entropy", conv_net(tmp_path / "other.onnx", seed=5), "ONNX model changed"),
    ]
    for module, spec, method, onnx_path, reason in cases:
        calibrator = make_trt_calibrator(
            module, photo_jpegs[:8], spec, cache, method, onnx_path=onnx_path, batch_size=4, device=device
        )
        assert not calibrator.cache_reused and reason in calibrator.cache_problem
        with pytest.raises(CalibrationError, match=reason):
            make_trt_calibrator(module, photo_jpegs[:8], spec, cache, method, onnx_path=onnx_path, require_cache=True)


def test_minmax_class_card_object_and_refusals(tmp_path: Path, photo_jpegs: list[Path]) -> None:
    model = conv_net(tmp_path / "net.onnx")
    trt = fake_trt()

    class Card:  # what trtdeploy passes: a deploy card object with to_dict()
        def to_dict(self) -> dict:
            return {
                "input": {"shape": [-1, 3, 32, 32], "layout": "NCHW"},
                "preprocess": {"scale": 1 / 127.5, "offsets": [127.5] * 3},
            }

    calibrator = make_trt_calibrator(
        trt,
        images=photo_jpegs[:8],
        cache=tmp_path / "c.cache",
        method="minmax",
        onnx_path=model,
        num_images=4,
        batch_size=2,
        card=Card(),
        device=HostDevice(),
    )
    assert isinstance(calibrator, trt.IInt8MinMaxCalibrator)
    assert calibrator.key.preprocess == SPEC.to_dict() and calibrator.key.algorithm == "MinMaxCalibration"
    with pytest.raises(CalibrationError, match="percentile"):
        make_trt_calibrator(trt, photo_jpegs, SPEC, None, "percentile", onnx_path=model)
    with pytest.raises(CalibrationError, match="TensorRT 11 removed calibrators"):
        make_trt_calibrator(fake_trt("11.0.0", with_calibrators=False), photo_jpegs, SPEC, None, onnx_path=model)
    with pytest.raises(CalibrationError, match="deploy card"):
        make_trt_calibrator(trt, photo_jpegs, None, None, onnx_path=model)
    with pytest.raises(CalibrationError, match="no calibration images"):
        make_trt_calibrator(trt, None, SPEC, tmp_path / "none.cache", onnx_path=model)


def test_batch_feeder_uploads_each_batch_once_into_one_buffer(photo_jpegs: list[Path]) -> None:
    device = HostDevice()
    feeder = BatchFeeder(ImageBatcher(photo_jpegs[:6], SPEC, 3), SPEC, device)
    pointers = [feeder.next_pointer(), feeder.next_pointer(), feeder.next_pointer()]
    assert pointers[0] == pointers[1] and pointers[2] is None
    assert len(device.memory) == 1 and device.freed == [pointers[0]] and feeder.count == 2


@pytest.mark.trt
def test_real_tensorrt10_entropy_calibration(tmp_path: Path, photo_jpegs: list[Path]) -> None:
    trt = pytest.importorskip("tensorrt", reason="needs the full TensorRT 10 module and a GPU")
    if not hasattr(trt, "Builder"):
        pytest.skip("the 'tensorrt' found is not the TensorRT 10 Python module")
    if not hasattr(trt, "IInt8EntropyCalibrator2"):
        pytest.skip("this TensorRT has no calibrator API (11.x)")
    model = conv_net(tmp_path / "net.onnx", batch=4)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(model.read_bytes())
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.INT8)
    config.int8_calibrator = make_trt_calibrator(
        trt, photo_jpegs[:16], SPEC, tmp_path / "net.cache", onnx_path=model, batch_size=4
    )
    assert builder.build_serialized_network(network, config) is not None
    assert (tmp_path / "net.cache").read_text().startswith("TRT-10")
