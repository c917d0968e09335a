"""The family registry: built-in families found without TensorFlow, one family per input,
refusals that name what was found."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.data import BUNDLED_MODEL, REPO
from trtdeploy import families
from trtdeploy.errors import UnsupportedModelError, UsageError


def test_registering_the_builtin_families_imports_no_heavy_module() -> None:
    code = (
        "import sys; from trtdeploy import families; keys = sorted(families.registered()); "
        "heavy = [m for m in ('tensorflow', 'tf2onnx', 'tensorrt', 'tensorrt_rtx') if m in sys.modules]; "
        "print(heavy, 'tfod_ssd' in keys, 'tao_yolo_v4' in keys)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[] True True", out.stderr


def test_the_bundled_ssd_is_the_tfod_ssd_family() -> None:
    source = families.ModelSource(BUNDLED_MODEL / "saved_model", BUNDLED_MODEL / "pipeline.config")
    family = families.find_family(source)
    assert family.key == "tfod_ssd" and family is families.get("tfod_ssd")
    assert family.read_config(source).feature_extractor == "ssd_mobilenet_v2_keras"
    assert "none" in family.heads and "raw" in family.layouts


def _saved_model(folder: Path, config: str) -> families.ModelSource:
    (folder / "saved_model").mkdir(parents=True)
    (folder / "saved_model" / "saved_model.pb").write_bytes(b"")
    (folder / "pipeline.config").write_text(config)
    return families.ModelSource(folder / "saved_model", folder / "pipeline.config")


@pytest.mark.parametrize(
    ("config", "found"),
    [
        ("model { faster_rcnn { num_classes: 2 } }", "describes a Faster R-CNN model"),
        ("model { center_net { num_classes: 2 } }", "describes a CenterNet model"),
        ('model { ssd { num_classes: 2 feature_extractor { type: "ssd_inception_v2" } } }', "'ssd_inception_v2'"),
    ],
)
def test_a_saved_model_no_family_converts_is_refused_naming_what_it_is(tmp_path, config, found) -> None:
    with pytest.raises(UnsupportedModelError, match=found):
        families.find_family(_saved_model(tmp_path, config))


def test_an_input_no_family_claims(tmp_path) -> None:
    with pytest.raises(UnsupportedModelError, match="no model family reads"):
        families.find_family(families.ModelSource(tmp_path))


def test_each_tao_architecture_is_a_family_claimed_by_its_name(tmp_path) -> None:
    from tao_trt.facts import ARCHITECTURES

    onnx = tmp_path / "m.onnx"
    for arch in ARCHITECTURES:
        family = families.find_family(families.ModelSource(onnx, tmp_path / "spec.txt", arch))
        assert family.key == f"tao_{arch}" and family.framework == "tao"
    with pytest.raises(UnsupportedModelError, match="needs the spec"):
        families.find_family(families.ModelSource(onnx, None, "ssd"))


def test_a_key_is_registered_once_and_a_non_family_is_refused() -> None:
    class Copy:
        key, title, framework, heads, layouts = "tfod_ssd", "copy", "x", (), ()

        def claims(self, source): ...
        def recognise(self, source): ...
        def read_config(self, source): ...
        def convert_core(self, request): ...
        def core_passes(self, request): ...
        def head_passes(self, request): ...
        def deploy_card(self, request, model, facts): ...

    with pytest.raises(ValueError, match="already registered"):
        families.register(Copy())
    with pytest.raises(TypeError, match="Family protocol"):
        families.register(object())  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="unknown model family 'nope'"):
        families.get("nope")


def test_ds_hints_come_from_the_cards_family_only() -> None:
    from trtdeploy.deploy_card import DeployCard, InputSpec, OutputSpec, Preprocess, Provenance

    card = DeployCard(
        input=InputSpec("x", [1, 3, 8, 8], "NCHW"), preprocess=Preprocess(),
        output=OutputSpec("other", "other", ["a", "b"], 2), labels=["p", "q"],
        provenance=Provenance(model_family="tfod_ssd"),
    )  # fmt: skip
    assert families.ds_hints(card) is None  # TFOD SSD: the card says it all
    card.provenance.model_family = "tao_multitask_classification"
    hints = families.ds_hints(card)
    assert hints is not None and hints.network_type == "classifier" and hints.label_lines == ["p;q"]
    card.provenance.model_family = "tao_detectnet_v2"
    hints = families.ds_hints(card)
    assert hints is not None and hints.builtin_parser and hints.cluster_mode == 2


def test_tao_families_declare_the_contract_their_cards_store_and_their_plugins(monkeypatch) -> None:
    from tao_trt.facts import ARCHITECTURES, TaoFacts, _shared
    from tao_trt.importer import tao_card
    from trtdeploy import capabilities

    for arch in ARCHITECTURES:
        family = families.get(f"tao_{arch}")
        facts = TaoFacts(arch, 3, 8, 8, "RGB", 1.0, [0.0] * 3, ["a", "b"], **_shared(arch))
        card = tao_card(facts, "x", 1, list(facts.output_names), {})
        assert family.contracts == (card.output.output_contract.key,), arch
        info = capabilities.family_info(family.key)
        assert info.contracts == family.contracts and info.plugin_ops == family.plugin_ops and info.own_head
    # YOLO's x1,y1,x2,y2 BatchedNMS outputs are what NvDsInferParseCustomBatchedNMSTLT reads (contracts.py).
    assert families.get("tao_yolo_v4").contracts == ("ds/batchednms",)
    # The matrix reads the family's declaration: a declared plugin shows in the backend cells,
    # as a refusal where the backend lacks it and no rewrite exists (MultilevelCropAndResize_TRT on
    # RTX; EfficientNMS_TRT is rewritten now: trtdeploy/rewrites/efficient_nms.py),
    # as build-engine's rewrite where one does (ProposalDynamic: trtdeploy/rewrites/proposal.py).
    monkeypatch.setattr(families.get("tao_unet"), "plugin_ops", ("MultilevelCropAndResize_TRT",))
    (row,) = [r for r in capabilities.matrix() if r.family.key == "tao_unet"]
    assert row.support("rtx").ok is False and "MultilevelCropAndResize_TRT" in row.support("rtx").why
    assert row.support("trt11").ok is True and row.support("trt11").why == ""
    monkeypatch.setattr(families.get("tao_unet"), "plugin_ops", ("ProposalDynamic",))
    (row,) = [r for r in capabilities.matrix() if r.family.key == "tao_unet"]
    assert row.support("rtx").ok is True and row.support("rtx").cell() == (
        "yes (build-engine rewrites ProposalDynamic into standard ops)"
    )
    assert row.support("trt10").cell() == "yes"  # TensorRT 10 keeps the plugin
