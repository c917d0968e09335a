"""build-engine --calib-cache (issue 12 item 7): a cache is replayed only when its sidecar says it
was made for this ONNX, preprocessing, algorithm and TensorRT version, or with
--trust-calib-cache, which says what is unverified. TensorRT 10 decisions are made in prepare()
with a backend whose module is absent; the RTX Q/DQ path builds for real (rtx)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.engine.conftest import conv_model, files_in, rtx_backend, write_card
from trtdeploy.engine import BuildOptions, build_engine, int8
from trtdeploy.engine.backend import Backend
from trtdeploy.engine.builder import prepare
from trtdeploy.engine.capabilities import capabilities_for
from trtdeploy.errors import InputError, UsageError

TRT10 = Backend(None, capabilities_for("tensorrt", "10.16.0.72"))


def _model(tmp_path: Path) -> Path:
    onnx_path = conv_model(tmp_path / "m.onnx", batch=1)
    write_card(onnx_path, shape=(1, 3, 16, 16))
    return onnx_path


def _cache(onnx_path: Path, path: Path, *, trt: str = "10.16", algorithm: str = "EntropyCalibration2") -> Path:
    """A cache with a sidecar written for ``onnx_path`` and its card, as `calib calibrate` writes it."""
    from calibration import CacheKey, CalibrationCache, PreprocessSpec
    from calibration.sidecar import save_cache_with_sidecar
    from trtdeploy.deploy_card import DeployCard, card_path_for
    from trtdeploy.files import sha256_file

    spec = PreprocessSpec.from_card_dict(DeployCard.load(card_path_for(onnx_path)).to_dict())
    cache = CalibrationCache.from_amax({"images": 2.5, "conv0_out": 4.0, "scores": 1.0}, trt, algorithm)
    key = CacheKey(sha256_file(onnx_path), spec.to_dict(), algorithm, f"{trt}.0" if trt.count(".") == 1 else trt)
    save_cache_with_sidecar(cache, path, key)
    return path


def _sidecar(cache: Path) -> Path:
    return cache.with_name(cache.name + ".json")


def _edit_sidecar(cache: Path, **changes: object) -> None:
    data = json.loads(_sidecar(cache).read_text())
    data.update(changes)
    _sidecar(cache).write_text(json.dumps(data))


def _int8(cache: Path, **extra: object) -> BuildOptions:
    return BuildOptions(precision="int8", calib_cache=cache, **extra)


def test_matching_cache_is_replayed(tmp_path, caplog):
    onnx_path = _model(tmp_path)
    cache = _cache(onnx_path, tmp_path / "m.cache")
    with caplog.at_level(logging.INFO, logger="trtdeploy"):
        prep = prepare(onnx_path, _int8(cache), TRT10)
    assert prep.plan.int8_source == "cache"
    assert "matches this model" in caplog.text


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda c: _sidecar(c).unlink(), "has no sidecar"),
        (lambda c: _edit_sidecar(c, onnx_sha256="0" * 64), "the ONNX model changed"),
        (lambda c: _edit_sidecar(c, trt_version="10.3.0"), "the TensorRT version changed"),
        (lambda c: _edit_sidecar(c, algorithm="MinMaxCalibration"), "the calibration algorithm changed"),
        (lambda c: _sidecar(c).write_text("{"), "unreadable"),
    ],
    ids=["no-sidecar", "other-onnx", "other-trt", "other-algorithm", "corrupt-sidecar"],
)
def test_unverified_cache_is_refused_before_building(tmp_path, damage, reason):
    onnx_path = _model(tmp_path)
    cache = _cache(onnx_path, tmp_path / "m.cache")
    damage(cache)
    before = files_in(tmp_path)
    with pytest.raises(InputError, match=f"--calib-cache .*m.cache cannot be used: .*{reason}.*--trust-calib-cache"):
        build_engine(onnx_path, _int8(cache), backend=TRT10)
    assert files_in(tmp_path) == before


def _drop_revision(cache: Path) -> None:
    data = json.loads(_sidecar(cache).read_text())
    del data["calibrator_revision"]
    _sidecar(cache).write_text(json.dumps(data))


@pytest.mark.parametrize(
    "damage, reason",
    [
        (_drop_revision, r"computed by an older calibrator \(no calibrator_revision\)"),
        (lambda c: _edit_sidecar(c, calibrator_revision=1), "computed by calibrator revision 1"),
    ],
    ids=["before-revisions", "revision-1"],
)
def test_cache_of_an_older_calibrator_is_refused(tmp_path, damage, reason):
    """A cache computed before the entropy fix (calibration/ranges.py: saturated tensors keep their
    clamp bound) holds other scales for the same ONNX, preprocessing, algorithm and TensorRT: its
    sidecar (written without calibrator_revision) must not match."""
    onnx_path = _model(tmp_path)
    cache = _cache(onnx_path, tmp_path / "m.cache")
    assert json.loads(_sidecar(cache).read_text())["calibrator_revision"] == 2
    damage(cache)
    with pytest.raises(InputError, match=f"cannot be used: the cache was {reason}.*recalibrate"):
        prepare(onnx_path, _int8(cache), TRT10)


def test_changed_preprocessing_is_refused(tmp_path):
    from trtdeploy.deploy_card import DeployCard, card_path_for

    onnx_path = _model(tmp_path)
    cache = _cache(onnx_path, tmp_path / "m.cache")
    card = DeployCard.load(card_path_for(onnx_path))
    card.preprocess.scale = 1 / 255
    card.save(card_path_for(onnx_path))
    with pytest.raises(InputError, match=r"cannot be used: the preprocessing changed \(scale\)"):
        prepare(onnx_path, _int8(cache), TRT10)


def test_cache_for_another_tensorrt_release_is_refused(tmp_path):
    onnx_path = _model(tmp_path)
    cache = _cache(onnx_path, tmp_path / "m.cache", trt="10.3")
    with pytest.raises(InputError, match="the TensorRT version changed: 10.3.0 -> 10.16.0"):
        prepare(onnx_path, _int8(cache), TRT10)


def test_trust_calib_cache_says_what_is_unverified(tmp_path, caplog):
    onnx_path = _model(tmp_path)
    cache = _cache(onnx_path, tmp_path / "m.cache")
    _sidecar(cache).unlink()
    with caplog.at_level(logging.WARNING, logger="trtdeploy"):
        prep = prepare(onnx_path, _int8(cache, trust_calib_cache=True), TRT10)
    assert prep.plan.int8_source == "cache"
    assert "UNVERIFIED" in caplog.text and "has no sidecar" in caplog.text


def test_trust_without_a_cache_is_bad_usage(tmp_path):
    with pytest.raises(UsageError, match="--trust-calib-cache needs --calib-cache"):
        prepare(_model(tmp_path), BuildOptions(precision="int8", trust_calib_cache=True), TRT10)


def test_replayed_cache_is_served_by_its_own_algorithm(tmp_path):
    """The replay calibrator is the TensorRT class of the header's algorithm (a fake module here)."""

    class Base:
        def __init__(self) -> None:
            pass

    module = SimpleNamespace(
        IInt8EntropyCalibrator2=type("IInt8EntropyCalibrator2", (Base,), {}),
        IInt8MinMaxCalibrator=type("IInt8MinMaxCalibrator", (Base,), {}),
    )
    backend = Backend(module, TRT10.caps)
    onnx_path = _model(tmp_path)
    minmax = _cache(onnx_path, tmp_path / "mm.cache", algorithm="MinMaxCalibration")
    entropy = _cache(onnx_path, tmp_path / "e.cache")
    assert isinstance(int8.cache_calibrator(backend, minmax), module.IInt8MinMaxCalibrator)
    calibrator = int8.cache_calibrator(backend, entropy)
    assert isinstance(calibrator, module.IInt8EntropyCalibrator2)
    assert calibrator.read_calibration_cache() == entropy.read_bytes()
    assert calibrator.get_batch(["images"]) == []


@pytest.mark.rtx
def test_rtx_trusted_cache_without_sidecar_builds_a_qdq_engine(tmp_path, caplog):
    onnx_path = _model(tmp_path)
    cache = _cache(onnx_path, tmp_path / "m.cache")
    _sidecar(cache).unlink()
    backend = rtx_backend()
    with pytest.raises(InputError, match="cannot be reused"):
        build_engine(onnx_path, _int8(cache, engine_path=tmp_path / "a.engine"), backend=backend)
    with caplog.at_level(logging.WARNING, logger="trtdeploy"):
        result = build_engine(
            onnx_path, _int8(cache, engine_path=tmp_path / "b.engine", trust_calib_cache=True), backend=backend
        )
    assert result.sidecar.precision["int8_source"] == "qdq_from_calibration"
    assert "UNVERIFIED" in caplog.text


def test_calibrating_with_the_card_of_another_onnx_is_refused(tmp_path):
    """The card's recorded ONNX hash must be this ONNX's: calibration preprocesses by the card."""
    from trtdeploy.deploy_card import DeployCard, card_path_for

    onnx_path = _model(tmp_path)
    card = DeployCard.load(card_path_for(onnx_path))
    card.onnx_sha256 = "0" * 64
    card.save(card_path_for(onnx_path))
    images = tmp_path / "imgs"
    images.mkdir()
    with pytest.raises(InputError, match="was written for another ONNX"):
        prepare(onnx_path, BuildOptions(precision="int8", calib_images=images), TRT10)


def test_a_stale_card_is_a_warning_for_float_builds(tmp_path, caplog):
    from trtdeploy.deploy_card import DeployCard, card_path_for

    onnx_path = _model(tmp_path)
    card = DeployCard.load(card_path_for(onnx_path))
    card.onnx_sha256 = "0" * 64
    card.save(card_path_for(onnx_path))
    with caplog.at_level(logging.WARNING, logger="trtdeploy"):
        prepare(onnx_path, BuildOptions(precision="fp16"), TRT10)
    assert "was written for another ONNX" in caplog.text
