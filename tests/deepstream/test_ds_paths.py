"""Paths as gst-nvinfer resolves them, and where it saves an engine it builds.

Facts (read in the source, restated):
- get_absolute_file_path resolves a relative path against the folder of the config file, not the
  working directory (hiennguyen9874/deepstream-sources 6.3,
  sources/gst-plugins/gst-nvinfer/gstnvinfer_property_parser.cpp lines 30-77).
- An engine built from onnx-file is saved as ``<onnx-file path>_b<batch-size>_gpu<gpu-id>_<mode>.engine``
  (``dla<use-dla-core>`` with enable-dla), i.e. next to the MODEL
  (sources/libs/nvdsinfer/nvdsinfer_model_builder.cpp lines 713-724; nvdsinfer_context_impl.cpp
  line 1800 serializes it there); network-mode=1 without int8-calib-file builds FP16
  (nvdsinfer_model_builder.cpp lines 1029-1047), so the name says fp16.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.deepstream.test_check_ds_config import _tfod_card, ds_onnx
from trtdeploy.deepstream import DsOptions, check_ds_config, gen_ds_config, read_config
from trtdeploy.deploy_card import card_path_for

BASE = """[property]
gpu-id=0
net-scale-factor=1.0
model-color-format=0
network-input-order=1
infer-dims=3;300;300
labelfile-path=labels.txt
num-detected-classes=2
gie-unique-id=1
network-type=0
cluster-mode=4
"""


def _config(folder: Path, extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("cat\ndog\n")
    path = folder / "config.txt"
    path.write_text(BASE + extra)
    return path


def _errors(config: Path) -> list[str]:
    return [p.message for p in check_ds_config(config) if p.level == "error"]


def _warnings(config: Path) -> list[str]:
    return [p.message for p in check_ds_config(config) if p.level == "warning"]


def test_generated_engine_path_is_where_nvinfer_saves_it(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    model = ds_onnx(models / "ssd.onnx")
    _tfod_card("deepstream").save(card_path_for(model))
    out = tmp_path / "deepstream"
    result = gen_ds_config(_tfod_card("deepstream"), model, out, DsOptions(name="ssd"))
    props = read_config(result.paths[0]).properties
    assert props["onnx-file"] == "../models/ssd.onnx"
    # resolved from the config's folder, the engine path is the model path + the suffix
    engine = os.path.normpath(out / props["model-engine-file"])
    assert engine == str(models / "ssd.onnx_b1_gpu0_fp16.engine")
    assert not any("rebuilt" in e for e in _errors(result.paths[0]))
    yml = read_config(result.paths[1]).properties
    assert yml["model-engine-file"] == props["model-engine-file"]


def test_demo_engine_in_config_folder_is_reported(tmp_path: Path) -> None:
    """What make demo wrote: the engine named in the config's folder, the model one level up."""
    ds_onnx(tmp_path / "ds.onnx")
    config = _config(tmp_path / "deepstream", "onnx-file=../ds.onnx\nmodel-engine-file=ds.onnx_b1_gpu0_fp16.engine\n"
                     "batch-size=1\nnetwork-mode=2\n")  # fmt: skip
    errors = _errors(config)
    assert any("rebuilt at every start" in e and str(tmp_path / "ds.onnx_b1_gpu0_fp16.engine") in e for e in errors), errors
    # the fix the message asks for passes
    config.write_text(config.read_text().replace("model-engine-file=ds.onnx", "model-engine-file=../ds.onnx"))
    assert not any("rebuilt" in e for e in _errors(config))


def test_int8_without_calibration_file_is_saved_as_fp16(tmp_path: Path) -> None:
    ds_onnx(tmp_path / "m.onnx")
    int8_name = "onnx-file=m.onnx\nmodel-engine-file=m.onnx_b1_gpu0_int8.engine\nbatch-size=1\nnetwork-mode=1\n"
    config = _config(tmp_path, int8_name)
    assert any("m.onnx_b1_gpu0_fp16.engine" in e and "rebuilt" in e for e in _errors(config))
    (tmp_path / "cal.bin").write_text("TRT-100300-EntropyCalibration2\nx: 3c010204\n")
    config.write_text(config.read_text() + "int8-calib-file=cal.bin\n")
    assert not any("rebuilt" in e for e in _errors(config))


def test_batch_gpu_and_dla_in_the_name(tmp_path: Path) -> None:
    ds_onnx(tmp_path / "m.onnx")
    config = _config(tmp_path, "onnx-file=m.onnx\nmodel-engine-file=m.onnx_b4_gpu1_fp16.engine\n"
                     "batch-size=4\nnetwork-mode=2\n")  # fmt: skip
    config.write_text(config.read_text().replace("gpu-id=0", "gpu-id=1"))
    assert not any("rebuilt" in e for e in _errors(config))
    config.write_text(config.read_text() + "enable-dla=1\nuse-dla-core=1\n")
    assert any("m.onnx_b4_dla1_fp16.engine" in e for e in _errors(config))


def test_existing_engine_elsewhere_is_a_warning(tmp_path: Path) -> None:
    ds_onnx(tmp_path / "m.onnx")
    (tmp_path / "prebuilt.engine").write_bytes(b"x")
    config = _config(tmp_path, "onnx-file=m.onnx\nmodel-engine-file=prebuilt.engine\nbatch-size=1\nnetwork-mode=2\n")
    assert not any("rebuilt" in e for e in _errors(config))
    assert any("m.onnx_b1_gpu0_fp16.engine" in w for w in _warnings(config))


def test_relative_path_that_does_not_resolve_from_the_config_folder(tmp_path: Path) -> None:
    ds_onnx(tmp_path / "m.onnx")
    # m.onnx exists in tmp_path, but the config is in tmp_path/cfg: "m.onnx" does not resolve
    config = _config(tmp_path / "cfg", "onnx-file=m.onnx\nbatch-size=1\nnetwork-mode=2\n")
    assert any("onnx-file=m.onnx does not resolve from the config's folder" in w for w in _warnings(config))
    config.write_text(config.read_text().replace("onnx-file=m.onnx", "onnx-file=../m.onnx"))
    assert not any("does not resolve" in w for w in _warnings(config))


def test_generating_into_a_new_folder_does_not_warn_about_a_model_beside_it(tmp_path: Path, caplog) -> None:
    # make demo's first run: the output folder does not exist yet when gen-ds-config checks the
    # config, so "<new folder>/../ds.onnx" must be judged as it resolves once the folder exists.
    model = ds_onnx(tmp_path / "ds.onnx")
    out = tmp_path / "deepstream"
    assert not out.exists()
    with caplog.at_level("WARNING"):
        result = gen_ds_config(_tfod_card("deepstream"), model, out, DsOptions(name="ds"))
    assert read_config(result.paths[0]).properties["onnx-file"] == "../ds.onnx"
    assert not [r.getMessage() for r in caplog.records if "does not resolve" in r.getMessage()]
