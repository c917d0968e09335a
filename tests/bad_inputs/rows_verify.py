"""Bad inputs for `trtdeploy verify` (issue 11: no vacuous "verified", wrong pairs refused before
anything runs, every range checked up front).

Rows without ``needs`` are refused before TensorFlow loads (the suite's TensorFlow guard enforces
it). The others run on the bundled model converted once per session (``{ssd_onnx}``), next to
its saved model ``{saved_model}/saved_model``.
"""

from __future__ import annotations

import shutil

from tests.bad_inputs.rows import Row
from tests.bad_inputs.setups import Setup, chain, edit_json, remove, write
from tests.bad_inputs.workspace import Workspace

V = "verify --saved-model {dir} --onnx {onnx}"  # usage rows: refused before the saved model is read
REAL = "verify --saved-model {saved_model}/saved_model --onnx {ssd_onnx}"


def row(id: str, args: str, code: int, message: str, **kw) -> Row:
    return Row(f"verify-{id}", args, code, message, **kw)


def other_saved_model(ws: Workspace) -> None:
    """A copy of the bundled saved model with other weights (one byte of the variables changed):
    what an ONNX converted from it does not come from."""
    from tests.data import BUNDLED_MODEL

    target = ws.root / "other" / "saved_model"
    shutil.copytree(BUNDLED_MODEL / "saved_model", target)
    data = sorted((target / "variables").glob("variables.data-*"))[0]
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))


def recorded_saved_model(digest: str) -> Setup:
    """The tiny model's card records a saved model graph hash (as create-onnx writes it)."""
    return chain(
        write("{ws}/sm/saved_model.pb", b"not the graph the card records"),
        edit_json("{card}", lambda d: d["provenance"]["source_files"].update({"saved_model/saved_model.pb": digest})),
    )


ROWS = [
    # ranges, before anything is loaded (exit 2)
    row("num-zero", V + " --num 0", 2, "--num must be >= 1"),
    row("num-negative", V + " --num -4", 2, "--num must be >= 1"),
    row("num-not-a-number", V + " --num many", 2, "--num"),
    row("batch-zero", V + " --batch 0", 2, "--batch must be >= 1"),
    row("batch-negative", V + " --batch -2", 2, "--batch must be >= 1"),
    row("batch-against-static", V + " --batch 4", 2, "static batch of 1"),
    row("score-threshold-5", V + " --score-threshold 5", 2, "--score-threshold must be in [0, 1]"),
    row("score-threshold-negative", V + " --score-threshold -0.1", 2, "--score-threshold must be in [0, 1]"),
    row("score-threshold-nan", V + " --score-threshold nan", 2, "--score-threshold must be in [0, 1]"),
    row("iou-above-1", V + " --iou 1.5", 2, "--iou must be in [0, 1]"),
    row("min-matched-above-1", V + " --min-matched 2", 2, "--min-matched must be in [0, 1]"),
    row("score-tol-negative", V + " --score-tol -1e-4", 2, "--score-tol must be in [0, 1)"),
    row("exact-num-zero", V + " --exact --exact-num 0", 2, "--exact-num must be in 1..--num"),
    row("exact-num-above-num", V + " --exact --num 2 --exact-num 3", 2, "--exact-num must be in 1..--num"),
    row("exact-with-score-tol", V + " --exact --score-tol 1e-3", 2, "exclude each other"),
    row("unknown-option", V + " --bogus", 2, "--bogus"),
    # missing or wrong inputs (exit 1), still before TensorFlow
    row("onnx-missing", "verify --saved-model {dir} --onnx {missing}", 1, "not found"),
    row("saved-model-missing", "verify --saved-model {ws}/nope --onnx {onnx}", 1, "nope"),
    row("card-missing", "verify --saved-model {dir} --onnx {onnx}", 1, "deploy card", setup=remove("{card}")),
    row("saved-model-not-the-recorded-one", "verify --saved-model {ws}/sm --onnx {onnx}", 1,
        "the ONNX was not made from", setup=recorded_saved_model("0" * 64), unchanged=["{onnx}", "{card}"]),
    row("recorded-file-missing", "verify --saved-model {dir} --onnx {onnx}", 1, "is missing",
        setup=recorded_saved_model("0" * 64)),
    # the real model: an ONNX from another saved model, and a comparison of 0 with 0 detections
    row("onnx-from-another-saved-model", "verify --saved-model {ws}/other/saved_model --onnx {ssd_onnx}", 1,
        "the ONNX was not made from", setup=other_saved_model, needs=["converted"]),
    row("nothing-compared", REAL + " --score-threshold 1 --num 2", 1, "nothing was compared", needs=["converted"]),
]
