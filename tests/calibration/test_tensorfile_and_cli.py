"""TAO tensorfiles and the `trtdeploy calib` commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from calibration import CalibrationError, read_cache, read_tensorfile, tensorfile_info, write_tensorfile
from tests.calibration.calib_helpers import conv_net, reference_cache
from trtdeploy.cli.main import app

runner = CliRunner()


def write_card(path: Path, shape: list[int], layout: str, preprocess: dict) -> None:
    """A minimal deploy card for a raw-output model with input ``x``."""
    card = {
        "schema": "trtdeploy.deploy_card",
        "schema_version": 1,
        "input": {"name": "x", "shape": shape, "layout": layout},
        "preprocess": preprocess,
        "output": {"nms": "none", "layout": "raw", "names": ["y"], "num_classes": 1},
        "labels": ["thing"],
    }
    path.write_text(json.dumps(card))


def test_tensorfile_round_trip_and_layout(tmp_path: Path) -> None:
    batches = [np.random.default_rng(i).normal(size=(2, 3, 4, 5)).astype(np.float32) for i in range(3)]
    path = tmp_path / "cal.tensorfile"
    assert write_tensorfile(path, batches) == 3
    with h5py.File(path, "r") as f:
        assert int(f.attrs["count"]) == 3 and list(f.attrs["shape"]) == [2, 3, 4, 5]
        assert sorted(f.keys()) == [f"_tensorfile_array_key__{i}" for i in range(3)]
        assert list(f["_tensorfile_array_key__1"].keys()) == ["_tensorfile_array_key_"]
    assert tensorfile_info(path) == (3, (2, 3, 4, 5))
    for got, want in zip(read_tensorfile(path), batches, strict=True):
        assert np.array_equal(got, want)


def test_tensorfile_errors(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="must all have shape"):
        write_tensorfile(tmp_path / "x.h5", [np.zeros((2, 3)), np.zeros((1, 3))])
    assert not (tmp_path / "x.h5").exists()
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("data", data=np.zeros(3))
    with pytest.raises(CalibrationError, match="not a TAO tensorfile"):
        tensorfile_info(tmp_path / "plain.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(CalibrationError, match="not an HDF5 tensorfile"):
        tensorfile_info(tmp_path / "text.h5")
    with h5py.File(tmp_path / "short.h5", "w") as f:
        f.attrs["count"] = 2
        f.create_group("_tensorfile_array_key__0").create_dataset("_tensorfile_array_key_", data=np.zeros(2))
    with pytest.raises(CalibrationError, match="has no batch 1"):
        list(read_tensorfile(tmp_path / "short.h5"))


def test_cli_inspect_reference_caches() -> None:
    path = reference_cache("lpdnet_usa_trt100100_blanklines.cal")
    result = runner.invoke(app, ["calib", "inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "TRT-100100-EntropyCalibration2" in result.output and "10.1.0" in result.output
    assert "tensors:    190" in result.output
    result = runner.invoke(app, ["calib", "inspect", "--json", str(path)])
    data = json.loads(result.output)
    assert data["trt_version"] == "10.1.0" and data["tensor_count"] == 190 and data["infinite"] == []


def test_cli_malformed_cache_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cache"
    bad.write_text("TRT-8601-EntropyCalibration2\nconv1: 3c0102\n")
    result = runner.invoke(app, ["calib", "inspect", str(bad)])
    assert result.exit_code == 1
    assert "line 2: truncated scale '3c0102'" in result.output
    assert "Traceback" not in result.output


def test_cli_retarget_and_diff(tmp_path: Path) -> None:
    src = tmp_path / "a.cache"
    src.write_text("TRT-8601-EntropyCalibration2\nx: 3c010204\ny: 3f800000\n")
    out = tmp_path / "b.cache"
    result = runner.invoke(app, ["calib", "retarget", str(src), "--trt-version", "10.16", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "identical" in result.output  # the warning
    assert read_cache(out).header == "TRT-101600-EntropyCalibration2"
    result = runner.invoke(app, ["calib", "retarget", str(src), "--trt-version", "10.16", "-o", str(out)])
    assert result.exit_code == 1 and "--force" in result.output
    result = runner.invoke(app, ["calib", "retarget", str(src), "--trt-version", "ten", "-o", str(tmp_path / "t.cache")])
    assert result.exit_code == 2 and "not like 10.16" in result.output  # bad usage (issue 11)
    other = tmp_path / "c.cache"
    other.write_text("TRT-101600-EntropyCalibration2\nx: 3c810204\nz: 3f800000\n")
    result = runner.invoke(app, ["calib", "diff", str(src), str(other)])
    assert result.exit_code == 0, result.output
    assert "only in A: 1, only in B: 1" in result.output and "x" in result.output


def test_cli_calibrate_and_tensorfile(tmp_path: Path, photo_jpegs: list[Path]) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for p in photo_jpegs[:12]:
        (images / p.name).write_bytes(p.read_bytes())
    model = conv_net(tmp_path / "net.onnx")
    write_card(tmp_path / "net.deploy.json", [-1, 3, 32, 32], "NCHW", {"scale": 1 / 127.5, "offsets": [127.5] * 3})
    result = runner.invoke(
        app,
        [
            "calib",
            "calibrate",
            str(model),
            "-i",
            str(images),
            "--calib-num",
            "8",
            "--qdq-onnx",
            str(tmp_path / "net_int8.onnx"),
            "--trt-version",
            "10.3",
        ],
    )
    assert result.exit_code == 0, result.output
    cache = read_cache(tmp_path / "net.cache")
    assert cache.header == "TRT-100300-EntropyCalibration2" and "r1" in cache.bits
    assert "from 8 images" in result.output and (tmp_path / "net_int8.onnx").is_file()
    result = runner.invoke(app, ["calib", "calibrate", str(model), "-i", str(images)])
    assert result.exit_code == 1 and "exists" in result.output
    result = runner.invoke(
        app,
        ["calib", "tensorfile", str(images), "--onnx", str(model), "-o", str(tmp_path / "cal.tensorfile"), "-b", "4"],
    )
    assert result.exit_code == 0, result.output
    assert tensorfile_info(tmp_path / "cal.tensorfile") == (3, (4, 3, 32, 32))
    result = runner.invoke(app, ["calib", "inspect", str(tmp_path / "cal.tensorfile")])
    assert "TAO tensorfile, 3 batches of shape [4, 3, 32, 32]" in result.output
    result = runner.invoke(
        app,
        [
            "calib",
            "tensorfile",
            str(tmp_path / "empty"),
            "--card",
            str(tmp_path / "net.deploy.json"),
            "-o",
            str(tmp_path / "x.h5"),
        ],
    )
    assert result.exit_code == 1 and "does not exist" in result.output


def test_calib_help_has_examples() -> None:
    for command in ("inspect", "retarget", "diff", "tensorfile", "calibrate"):
        result = runner.invoke(app, ["calib", command, "--help"])
        assert result.exit_code == 0 and "Examples" in result.output


def test_import_calibration_stays_light() -> None:
    """No heavy module, and of trtdeploy only the leaf modules (error family, file writes, versions)."""
    code = (
        "import sys, calibration; heavy = [m for m in ('tensorflow', 'tensorrt', 'tensorrt_rtx', 'tf2onnx', "
        "'onnx', 'onnxruntime', 'h5py') if m in sys.modules]; "
        "ours = sorted(m for m in sys.modules if m.startswith('trtdeploy')); print(heavy, ours)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    leaves = "['trtdeploy', 'trtdeploy.errors', 'trtdeploy.files', 'trtdeploy.versions']"
    assert out.strip() == f"[] {leaves}"


def test_tensorfile_is_a_calibration_source(tmp_path: Path, photo_jpegs: list[Path]) -> None:
    from calibration import ImageBatcher, PreprocessSpec, TensorfileBatches, calibrate_onnx

    spec = PreprocessSpec(32, 32, scale=1 / 127.5, offsets=(127.5, 127.5, 127.5))
    model = conv_net(tmp_path / "net.onnx")
    write_tensorfile(tmp_path / "cal.tensorfile", ImageBatcher(photo_jpegs[:12], spec, 4))
    source = TensorfileBatches(tmp_path / "cal.tensorfile")
    assert source.batch_size == 4 and len(source) == 3
    from_file = calibrate_onnx(model, tmp_path / "cal.tensorfile", spec, "minmax")
    from_images = calibrate_onnx(model, photo_jpegs[:12], spec, "minmax", batch_size=4)
    assert from_file.num_images == 12 and from_file.amax == pytest.approx(from_images.amax)
    # the CLI takes it too, and a COCO JSON with --image-root
    write_card(tmp_path / "net.deploy.json", [-1, 3, 32, 32], "NCHW", {"scale": 1 / 127.5, "offsets": [127.5] * 3})
    result = runner.invoke(
        app,
        ["calib", "calibrate", str(model), "-i", str(tmp_path / "cal.tensorfile"), "-o", str(tmp_path / "tf.cache")],
    )
    assert result.exit_code == 0, result.output
    coco = tmp_path / "instances.json"
    coco.write_text(json.dumps({"images": [{"file_name": p.name} for p in photo_jpegs[:6]]}))
    result = runner.invoke(app, ["calib", "calibrate", str(model), "-i", str(coco), "-o", str(tmp_path / "coco.cache")])
    assert result.exit_code == 1 and "--image-root" in result.output
    result = runner.invoke(
        app,
        [
            "calib",
            "calibrate",
            str(model),
            "-i",
            str(coco),
            "--image-root",
            str(photo_jpegs[0].parent),
            "-o",
            str(tmp_path / "coco.cache"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "from 6 images" in result.output


def test_cli_shuffle_orders_images_by_seed(tmp_path: Path, photo_jpegs: list[Path]) -> None:
    from calibration import ImageBatcher, PreprocessSpec, list_images

    images = tmp_path / "images"
    images.mkdir()
    for p in photo_jpegs[:8]:
        (images / p.name).write_bytes(p.read_bytes())
    spec = PreprocessSpec(16, 16, layout="NHWC")
    write_card(tmp_path / "card.json", [-1, 16, 16, 3], "NHWC", {})
    stored = {}
    for flags in ([], ["--shuffle", "--seed", "3"]):
        out = tmp_path / f"cal{len(flags)}.h5"
        args = ["calib", "tensorfile", str(images), "--card", str(tmp_path / "card.json"), "-o", str(out), "-b", "8"]
        result = runner.invoke(app, args + flags)
        assert result.exit_code == 0, result.output
        stored[bool(flags)] = np.concatenate(list(read_tensorfile(out)))
    for shuffled in (False, True):
        order = list_images(images, seed=3, shuffle=shuffled)
        assert np.array_equal(stored[shuffled], next(iter(ImageBatcher(order, spec, 8))))
    assert not np.array_equal(stored[True], stored[False])
