"""Bad inputs for `trtdeploy build-engine` and `trtdeploy inspect` (issue 11, issue 12 item 7).

Rows that fail on an option value are refused before a backend is chosen; rows whose refusal
comes from the plan (backend capabilities) are marked rtx (tensorrt_rtx is the backend here).
"""

from __future__ import annotations

import pytest

from tests.bad_inputs.rows import Row
from tests.bad_inputs.setups import copy, edit_json, remove, symlink, write

B = "build-engine {onnx}"
ENG = "{ws}/out.engine"
RTX = (pytest.mark.rtx,)


def _other_model(data: dict) -> None:
    data["onnx_sha256"] = "0" * 64


ROWS = [
    # numeric ranges, before anything is loaded (issue 11: --workspace -1 showed a pybind11 dump)
    Row("build-workspace-negative", f"{B} -o {ENG} --workspace -1", 2, "--workspace", absent=[ENG]),
    Row("build-workspace-zero", f"{B} -o {ENG} --workspace 0", 2, "--workspace", absent=[ENG]),
    Row("build-batch-zero", f"{B} -o {ENG} --batch 0", 2, "--batch", absent=[ENG]),
    Row("build-opt-level-too-high", f"{B} -o {ENG} --opt-level 9", 2, "--opt-level", absent=[ENG]),
    Row("build-opt-level-negative", f"{B} -o {ENG} --opt-level -1", 2, "--opt-level", absent=[ENG]),
    Row("build-gpu-id-negative", f"{B} -o {ENG} --gpu-id -2", 2, "--gpu-id", absent=[ENG]),
    Row("build-calib-num-zero", f"{B} -o {ENG} -p int8 --calib-num 0", 2, "--calib-num", absent=[ENG]),
    Row("build-calib-num-not-a-number", f"{B} -o {ENG} -p int8 --calib-num lots", 2, "--calib-num", absent=[ENG]),
    Row("build-calib-batch-zero", f"{B} -o {ENG} -p int8 --calib-batch 0", 2, "--calib-batch", absent=[ENG]),
    Row("build-workspace-not-a-number", f"{B} -o {ENG} --workspace big", 2, "--workspace", absent=[ENG]),
    Row("build-trust-without-cache", f"{B} -o {ENG} -p int8 --trust-calib-cache", 2, "--calib-cache",
        absent=[ENG]),
    Row("build-calib-cache-with-fp16", f"{B} -o {ENG} -p fp16 --calib-cache {{cache}}", 2, "--precision int8",
        absent=[ENG], unchanged=["{cache}"]),
    Row("build-precision-unknown", f"{B} -o {ENG} -p fp8", 2, "fp8", absent=[ENG]),
    Row("build-backend-unknown", f"{B} -o {ENG} --backend cuda", 2, "cuda", absent=[ENG]),
    # inputs are sacred
    Row("build-engine-is-the-onnx", f"{B} -o {{onnx}} --force", 2, "is an input", unchanged=["{onnx}"]),
    Row("build-sidecar-would-be-the-card", f"{B} -o {{ws}}/model.deploy --force", 2, "is an input",
        absent=["{ws}/model.deploy"], unchanged=["{card}"]),
    Row("build-engine-is-the-calib-cache", f"{B} -o {{cache}} -p int8 --calib-cache {{cache}} --force", 2,
        "is an input", unchanged=["{cache}"]),
    Row("build-timing-cache-is-the-onnx", f"{B} -o {ENG} --timing-cache {{onnx}}", 2, "is an input",
        absent=[ENG], unchanged=["{onnx}"]),
    Row("build-timing-cache-is-the-engine", f"{B} -o {ENG} --timing-cache {ENG}", 2, "is an input", absent=[ENG]),
    Row("build-engine-symlink-to-onnx", f"{B} -o {{ws}}/link.engine --force", 2, "is an input",
        unchanged=["{onnx}"], setup=symlink("link.engine", "onnx")),
    Row("build-engine-is-a-folder", f"{B} -o {{dir}} --force", 2, "is a folder", unchanged=["{dir}"], marks=RTX),
    Row("build-engine-exists", f"{B} -o {{engine}}", 1, "exists", unchanged=["{engine}"], marks=RTX),
    Row("build-engine-in-proc", f"{B} -o /proc/trtdeploy-test/m.engine", 1, "/proc/trtdeploy-test", marks=RTX),
    # broken inputs
    Row("build-onnx-missing", "build-engine {missing} -o {ws}/m.engine", 1, "not found", absent=["{ws}/m.engine"]),
    Row("build-onnx-is-text", "build-engine {text} -o {ws}/m.engine", 1, "not a readable ONNX",
        absent=["{ws}/m.engine"], unchanged=["{text}"]),
    Row("build-card-corrupt", f"{B} -o {ENG}", 1, "deploy card", absent=[ENG], setup=write("{card}", "[1, 2"),
        marks=RTX),
    Row("build-card-stale-input-name", f"{B} -o {ENG}", 1, "stale", absent=[ENG], marks=RTX,
        setup=edit_json("{card}", lambda d: d["input"].update(name="images"))),
    Row("build-calib-images-not-a-folder", f"{B} -o {ENG} -p int8 --calib-images {{text}}", 1, "not a folder",
        absent=[ENG], marks=RTX),
    Row("build-profile-garbage", f"{B} -o {ENG} --profile nonsense", 2, "--profile", absent=[ENG], marks=RTX),
    Row("build-layer-precision-garbage", f"{B} -o {ENG} --layer-precision conv=fp7", 2, "fp7", absent=[ENG],
        marks=RTX),
    Row("build-dla-on-rtx", f"{B} -o {ENG} --dla-core 0", 2, "DLA", absent=[ENG], marks=RTX),
    Row("build-compute-capability-bogus", f"{B} -o {ENG} --compute-capability 4.2", 2, "--compute-capability",
        absent=[ENG], marks=RTX),
    # issue 12 item 7: a calibration cache is used only when its sidecar matches
    Row("build-calib-cache-without-sidecar", f"{B} -o {ENG} -p int8 --calib-cache {{ws}}/bare.cache", 1,
        "cannot be", absent=[ENG], marks=RTX, unchanged=["{ws}/bare.cache"], setup=copy("cache", "bare.cache")),
    Row("build-calib-cache-of-another-model", f"{B} -o {ENG} -p int8 --calib-cache {{cache}}", 1, "cannot be",
        absent=[ENG], marks=RTX, unchanged=["{cache}"], setup=edit_json("{cache}.json", _other_model)),
    Row("build-calib-cache-missing", f"{B} -o {ENG} -p int8 --calib-cache {{ws}}/none.cache", 1, "does not exist",
        absent=[ENG, "{ws}/none.cache"], marks=RTX),
    Row("build-calib-cache-of-another-algorithm-rtx", f"{B} -o {ENG} -p int8 --calib-cache {{cache}}", 1,
        "algorithm changed", absent=[ENG], marks=RTX, unchanged=["{cache}"]),  # a minmax cache, entropy asked
    Row("build-trusted-cache-builds-and-says-so", f"{B} -o {ENG} -p int8 --calib-cache {{ws}}/bare.cache "
        "--trust-calib-cache", 0, "UNVERIFIED", marks=RTX, unchanged=["{ws}/bare.cache"],
        setup=copy("cache", "bare.cache")),
    # inspect
    Row("inspect-engine-missing-sidecar", "inspect {engine}", 1, "sidecar", setup=remove("{engine}.json")),
    Row("inspect-engine-sidecar-corrupt", "inspect {engine}", 1, "sidecar", setup=write("{engine}.json", "{")),
]
