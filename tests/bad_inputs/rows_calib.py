"""Bad inputs for `trtdeploy calib ...` (issue 11)."""

from __future__ import annotations

from tests.bad_inputs.rows import Row
from tests.bad_inputs.setups import copy, edit_json, remove, symlink, write

CAL = "calib calibrate {onnx} -i {images}"
OUT = "{ws}/out.cache"

ROWS = [
    # inputs are sacred (issue 11 "Why": --qdq-onnx model.onnx --force replaced the FP32 model)
    Row("calib-qdq-onnx-is-the-input", f"{CAL} -o {OUT} --qdq-onnx {{onnx}} --force", 2, "is an input",
        absent=[OUT], unchanged=["{onnx}", "{card}"]),
    Row("calib-output-is-the-input-onnx", f"{CAL} -o {{onnx}} --force", 2, "is an input", unchanged=["{onnx}"]),
    Row("calib-output-is-the-card", f"{CAL} -o {{card}} --force", 2, "is an input", unchanged=["{card}"]),
    Row("calib-sidecar-would-be-the-card", f"{CAL} -o {{ws}}/model.deploy --force", 2, "is an input",
        absent=["{ws}/model.deploy"], unchanged=["{card}"]),
    Row("calib-qdq-onnx-symlink-to-input", f"{CAL} -o {OUT} --qdq-onnx {{ws}}/link.onnx --force", 2, "is an input",
        absent=[OUT], unchanged=["{onnx}"], setup=symlink("link.onnx", "onnx")),
    Row("calib-output-is-an-image", f"{CAL} -o {{images}}/img0.jpg --force", 2, "is an input",
        unchanged=["{images}/img0.jpg"]),
    Row("calib-qdq-onnx-equals-cache", f"{CAL} -o {OUT} --qdq-onnx {OUT}", 2, "same file", absent=[OUT]),
    Row("calib-output-is-a-folder", f"{CAL} -o {{dir}} --force", 2, "is a folder", unchanged=["{dir}"]),
    Row("calib-output-exists", f"{CAL} -o {{ws}}/old.cache", 1, "exists", unchanged=["{ws}/old.cache"],
        setup=write("old.cache", "keep me\n")),
    Row("calib-output-in-proc", f"{CAL} -o /proc/trtdeploy-test/out.cache", 1, "/proc/trtdeploy-test"),
    # numeric ranges and choices, before any calibration
    Row("calib-batch-zero", f"{CAL} -o {OUT} --batch 0", 2, "--batch", absent=[OUT]),
    Row("calib-batch-negative", f"{CAL} -o {OUT} --batch -3", 2, "--batch", absent=[OUT]),
    Row("calib-num-zero", f"{CAL} -o {OUT} --calib-num 0", 2, "--calib-num", absent=[OUT]),
    Row("calib-num-not-a-number", f"{CAL} -o {OUT} --calib-num many", 2, "--calib-num", absent=[OUT]),
    Row("calib-percentile-zero", f"{CAL} -o {OUT} -m percentile --percentile 0", 2, "--percentile", absent=[OUT]),
    Row("calib-percentile-over-100", f"{CAL} -o {OUT} -m percentile --percentile 100.5", 2, "--percentile",
        absent=[OUT]),
    Row("calib-percentile-nan", f"{CAL} -o {OUT} -m percentile --percentile nan", 2, "--percentile", absent=[OUT]),
    Row("calib-percentile-without-method", f"{CAL} -o {OUT} --percentile 99.9", 2, "--calib-method percentile",
        absent=[OUT]),
    Row("calib-method-unknown", f"{CAL} -o {OUT} -m bogus", 2, "bogus", absent=[OUT]),
    Row("calib-trt-version-banana", f"{CAL} -o {OUT} --trt-version banana", 2, "banana", absent=[OUT]),
    Row("calib-trt-version-unreleased", f"{CAL} -o {OUT} --trt-version 99.99.99", 2, "99.99.99", absent=[OUT]),
    Row("calib-seed-negative", f"{CAL} -o {OUT} --seed -1", 2, "--seed", absent=[OUT]),
    Row("calib-missing-images-option", "calib calibrate {onnx}", 2, "--images"),
    Row("calib-unknown-option", f"{CAL} --bogus", 2, "--bogus"),
    # broken or missing inputs
    Row("calib-onnx-missing", f"calib calibrate {{missing}} -i {{images}} --card {{card}} -o {OUT}", 1, "not found",
        absent=[OUT]),
    Row("calib-onnx-is-text", f"calib calibrate {{text}} -i {{images}} --card {{card}} -o {OUT}", 1, "onnx",
        absent=[OUT], unchanged=["{text}"]),
    Row("calib-images-missing", f"calib calibrate {{onnx}} -i {{ws}}/nope -o {OUT}", 1, "nope", absent=[OUT]),
    Row("calib-images-empty-folder", f"calib calibrate {{onnx}} -i {{dir}} -o {OUT}", 1, "adir", absent=[OUT]),
    Row("calib-card-corrupt", f"{CAL} -o {OUT}", 1, "deploy card", absent=[OUT], setup=write("{card}", "{oops")),
    Row("calib-card-missing", f"{CAL} -o {OUT}", 1, "deploy card", absent=[OUT], setup=remove("{card}")),
    Row("calib-card-wrong-schema", f"{CAL} -o {OUT}", 1, "not a trtdeploy deploy card", absent=[OUT],
        setup=edit_json("{card}", lambda d: d.update(schema="something.else"))),
    Row("calib-card-of-another-onnx", f"{CAL} -o {OUT}", 1, "written for another ONNX", absent=[OUT],
        setup=edit_json("{card}", lambda d: d.update(onnx_sha256="0" * 64))),
    Row("tensorfile-card-of-another-onnx", "calib tensorfile {images} --onnx {onnx} -o {ws}/t.h5", 1,
        "written for another ONNX", absent=["{ws}/t.h5"],
        setup=edit_json("{card}", lambda d: d.update(onnx_sha256="f" * 64))),
    # retarget: a header only for real TensorRT releases; never over its input
    Row("retarget-unreleased-version", "calib retarget {cache} --trt-version 99.99.99 -o {ws}/new.cache", 2,
        "99.99.99", absent=["{ws}/new.cache"], unchanged=["{cache}"]),
    Row("retarget-tensorrt-11", "calib retarget {cache} --trt-version 11.0 -o {ws}/new.cache", 2,
        "reads no calibration cache", absent=["{ws}/new.cache"]),
    Row("calib-trt-version-11", f"{CAL} -o {OUT} --trt-version 11.1", 2, "--qdq-onnx", absent=[OUT]),
    Row("retarget-banana", "calib retarget {cache} --trt-version banana -o {ws}/new.cache", 2, "banana",
        absent=["{ws}/new.cache"]),
    Row("retarget-in-place-force", "calib retarget {cache} --trt-version 10.3 --force", 2, "--output",
        unchanged=["{cache}"]),
    Row("retarget-output-is-the-input", "calib retarget {cache} --trt-version 10.3 -o {cache} --force", 2,
        "is an input", unchanged=["{cache}"]),
    Row("retarget-output-symlink-to-input", "calib retarget {cache} --trt-version 10.3 -o {ws}/l.cache --force", 2,
        "is an input", unchanged=["{cache}"], setup=symlink("l.cache", "cache")),
    Row("retarget-cache-missing", "calib retarget {ws}/none.cache --trt-version 10.3 -o {ws}/new.cache", 1,
        "not found", absent=["{ws}/new.cache"]),
    Row("retarget-cache-truncated", "calib retarget {ws}/bad.cache --trt-version 10.3 -o {ws}/new.cache", 1,
        "truncated", absent=["{ws}/new.cache"], setup=write("bad.cache", "TRT-101600-EntropyCalibration2\nx: 3c01\n")),
    Row("retarget-cache-binary", "calib retarget {onnx} --trt-version 10.3 -o {ws}/new.cache", 1,
        "not a text calibration cache", absent=["{ws}/new.cache"]),
    # inspect / diff
    Row("inspect-cache-missing", "calib inspect {ws}/none.cache", 1, "not found"),
    Row("inspect-cache-no-header", "calib inspect {text}", 1, "header"),
    Row("diff-second-missing", "calib diff {cache} {ws}/none.cache", 1, "not found"),
    Row("diff-top-negative", "calib diff {cache} {cache} --top -1", 2, "--top"),
    # tensorfile
    Row("tensorfile-output-is-the-card", "calib tensorfile {images} --card {card} -o {card} --force", 2,
        "is an input", unchanged=["{card}"]),
    Row("tensorfile-batch-zero", "calib tensorfile {images} --card {card} -o {ws}/t.h5 --batch 0", 2, "--batch",
        absent=["{ws}/t.h5"]),
    Row("tensorfile-no-card", "calib tensorfile {images} -o {ws}/t.h5", 2, "--card", absent=["{ws}/t.h5"]),
    Row("tensorfile-output-in-images", "calib tensorfile {images} --card {card} -o {images}/img1.jpg --force", 2,
        "is an input", unchanged=["{images}/img1.jpg"]),
    # a cache whose sidecar is missing still reads (inspect does not need it)
    Row("inspect-cache-without-sidecar", "calib inspect {ws}/copy.cache", 0, "MinMaxCalibration",
        setup=copy("cache", "copy.cache")),
]
