"""Bad usage at the top of the CLI and across commands (issue 11): typer/click's own usage
errors are one ``error:`` line with exit 2, like ours (rendered by run_app)."""

from __future__ import annotations

from tests.bad_inputs.rows import Row
from tests.bad_inputs.setups import write

ROWS = [
    Row("cli-unknown-command", "convert-everything", 2, "No such command"),
    Row("cli-unknown-root-option", "--colour", 2, "--colour"),
    Row("cli-unknown-subcommand", "calib frobnicate", 2, "No such command"),
    Row("cli-version", "--version", 0, "trtdeploy "),
    Row("cli-help-of-a-command", "calib calibrate --help", 0, "Examples"),
    Row("cli-option-missing-value", "build-engine {onnx} --batch", 2, "--batch"),
    Row("cli-extra-argument", "calib inspect", 2, "FILES"),
    Row("cli-two-positional-for-one", "build-engine {onnx} {onnx}", 2, "unexpected extra argument"),
    Row("cli-bool-flag-with-value", "calib calibrate {onnx} -i {images} --force=yes", 2, "--force"),
    Row("inspect-engine-missing", "inspect {ws}/none.engine", 1, "none.engine"),
    Row("inspect-engine-changed-after-build", "inspect {engine}", 1, "changed since its sidecar",
        setup=write("{engine}", "tampered")),
    Row("inspect-sidecar-wrong-types", "inspect {engine}", 1, "corrupt",
        setup=write("{engine}.json", '{"schema": "trtdeploy.engine_sidecar", "schema_version": 1, "backend": 7}')),
    Row("calib-inspect-tensorfile-corrupt", "calib inspect {ws}/bad.tensorfile", 1, "bad.tensorfile",
        setup=write("bad.tensorfile", b"\x89HDF\r\n\x1a\ngarbage")),
    Row("calib-diff-binary", "calib diff {cache} {onnx}", 1, "not a text calibration cache"),
]
