"""What a DeepStream release reads: network-mode=3 ("best", 9.0 on) and YAML configs (6.1 on).

Facts (restated from the source, cited in trtdeploy/deepstream/config.py beside NETWORK_MODES):
- NVIDIA/DeepStream@DeepStream-9.0:includes/nvdsinfer_context.h L127-L133: NvDsInferNetworkMode
  is FP32, INT8, FP16, BEST (3); hiennguyen9874/deepstream-sources@6.3 (and 5.0-6.2)
  sources/includes/nvdsinfer_context.h L115-L119 stops at FP16, and its property parser
  (gstnvinfer_property_parser.cpp L647-L663) answers any other value with "Error. Invalid value".
- 9.0 nvdsinfer_model_builder.cpp L1026-L1058: BEST with a calibrator (int8-calib-file readable)
  sets kINT8 and kFP16, without one it falls back to FP16; the saved engine is named with
  networkMode2Str (nvdsinfer_func_utils.cpp L207-L222: "best") at model_builder.cpp L613-L616.
- YAML: hiennguyen9874/deepstream-sources@6.1 sources/gst-plugins/gst-nvinfer/gstnvinfer.cpp
  L458-L465 parses a .yml/.yaml config with gst_nvinfer_parse_config_file_yaml; branches 5.0,
  6.0 and 6.0.1 have no YAML parser in gst-nvinfer at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deepstream.test_check_ds_config import _tfod_card, ds_onnx
from tests.deepstream.test_ds_paths import _config
from trtdeploy.deepstream import DsOptions, check_ds_config, gen_ds_config, read_config
from trtdeploy.deepstream.config import release_reads_yaml
from trtdeploy.deepstream.validate import engine_save_path
from trtdeploy.deploy_card import card_path_for
from trtdeploy.errors import UsageError

CACHE = "TRT-100300-EntropyCalibration2\nx: 3c010204\n"


def _mode_problems(config: Path, deepstream: str | None = None) -> list[tuple[str, str]]:
    return [(p.level, p.message) for p in check_ds_config(config, deepstream=deepstream) if "network-mode" in p.message]


def test_best_is_read_from_deepstream_9_0_on(tmp_path: Path) -> None:
    ds_onnx(tmp_path / "m.onnx")
    (tmp_path / "cal.bin").write_text(CACHE)
    config = _config(tmp_path, "onnx-file=m.onnx\nbatch-size=1\nnetwork-mode=3\nint8-calib-file=cal.bin\n")
    assert _mode_problems(config, "9.0") == []
    for older in ("6.3", "6.2", "5.0"):
        ((level, message),) = _mode_problems(config, older)
        assert level == "error" and "DeepStream 9.0 on" in message and f"DeepStream {older} rejects" in message
    ((level, message),) = _mode_problems(config)  # no release named: it needs 9.0
    assert level == "warning" and "DeepStream >= 9.0" in message
    # the calibration cache is read in best mode: no "not used" warning
    assert not any("it is not used" in p.message for p in check_ds_config(config, deepstream="9.0"))
    config.write_text(config.read_text().replace("network-mode=3", "network-mode=4"))
    (message,) = [m for level, m in _mode_problems(config, "9.0") if level == "error"]
    assert message == "network-mode=4 must be one of fp32 (0), int8 (1), fp16 (2), best (3, DeepStream >= 9.0)"


def test_best_engine_names_with_and_without_a_calibration_file(tmp_path: Path) -> None:
    props = {"onnx-file": "m.onnx", "batch-size": "2", "network-mode": "3"}
    path, _ = engine_save_path(props, tmp_path / "config.txt")
    assert path is not None and path.name == "m.onnx_b2_gpu0_fp16.engine"  # no calibrator: FP16
    path, _ = engine_save_path({**props, "int8-calib-file": "cal.bin"}, tmp_path / "config.txt")
    assert path is not None and path.name == "m.onnx_b2_gpu0_best.engine"
    config = _config(tmp_path, "onnx-file=m.onnx\nbatch-size=2\nnetwork-mode=3\n")
    ds_onnx(tmp_path / "m.onnx")
    assert any("builds an FP16 engine" in m for level, m in _mode_problems(config, "9.0") if level == "warning")


def test_gen_ds_config_writes_best(tmp_path: Path) -> None:
    model = ds_onnx(tmp_path / "m.onnx")
    card = _tfod_card("deepstream")
    card.save(card_path_for(model))
    cache = tmp_path / "cal.bin"
    cache.write_text(CACHE)
    result = gen_ds_config(card, model, tmp_path / "ds", DsOptions(name="m", network_mode="best"), calib_cache=cache)
    props = read_config(result.paths[0]).properties
    assert props["network-mode"] == "3" and props["model-engine-file"].endswith("m.onnx_b1_gpu0_best.engine")
    assert any("DeepStream >= 9.0" in p.message for p in result.problems if p.level == "warning")
    with pytest.raises(UsageError, match="best \\(3, DeepStream >= 9.0\\)"):
        gen_ds_config(card, model, tmp_path / "ds2", DsOptions(name="m", network_mode="fastest"))


def test_yaml_configs_are_read_from_deepstream_6_1_on(tmp_path: Path) -> None:
    from trtdeploy.cli.ds_config import gen_ds_config as command

    model = ds_onnx(tmp_path / "m.onnx")
    card = _tfod_card("deepstream")
    card.save(card_path_for(model))
    yml = gen_ds_config(card, model, tmp_path / "ds", DsOptions(name="m")).paths[1]
    assert yml.suffix == ".yml"

    def yaml_errors(release: str) -> list[str]:
        return [p.message for p in check_ds_config(yml, deepstream=release) if "YAML" in p.message and p.level == "error"]

    assert yaml_errors("6.1") == [] and yaml_errors("9.0") == []
    for older in ("5.0", "6.0"):
        assert yaml_errors(older) == [f"DeepStream {older} reads no YAML nvinfer config (YAML from 6.1 on): use the .txt form"]
    assert "(DeepStream >= 6.1)" in (command.__doc__ or "")
    assert not release_reads_yaml("6.0.1") and release_reads_yaml("6.1.1")  # the dry run's releases too
