"""Model families: one protocol every front-end implements, and the registry that finds them.

A family knows one kind of trained model (TFOD SSD, a TAO architecture, ...): it recognises
its inputs (or says what it found instead), reads their config, converts them to a core graph,
names the graph passes that finish the core and append the head, and writes the deploy-card
facts only it knows. The stages that are the same for every family (run the passes, attach the
head, write the ONNX and its card atomically) live here, so adding a family is one module.

Registration imports no TensorFlow or TensorRT: the front-ends' family modules load their heavy
dependencies inside ``convert_core``. The built-in families are registered on first lookup
(``trtdeploy`` does not import its front-ends at import time: they depend on it, not the
reverse).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from trtdeploy.errors import InputError, UnsupportedModelError, UsageError
from trtdeploy.files import atomic_path, sha256_file
from trtdeploy.log import get_logger

if TYPE_CHECKING:  # onnx and the pass driver load with the first conversion, not at import
    import onnx

    from trtdeploy.deepstream.generate import DsModelHints
    from trtdeploy.deploy_card import DeployCard
    from trtdeploy.graph_passes import GraphPass

log = get_logger("families")

# Modules whose import registers the built-in families (each calls ``register``).
BUILTIN_PROVIDERS = ("tfod_trt.families", "tao_trt.families")


@dataclass
class ModelSource:
    """What the user pointed at: the model (a saved model folder, an ONNX file, ...), its
    config file (pipeline.config, a TAO spec), for front-ends that cannot tell the
    architecture from the files (TAO) the architecture the user named, and a labels file."""

    path: Path
    config: Path | None = None
    arch: str | None = None
    labels: Path | None = None  # a labels file / label map, for families whose config has no names


@dataclass
class Core:
    """A converted graph and the facts found on the way (read by passes and the card)."""

    model: onnx.ModelProto
    facts: dict[str, Any] = field(default_factory=dict)
    title: str = ""  # the family (and variant) as error messages name it, e.g. "TFOD SSD (SSD MobileNet v2)"


@runtime_checkable
class Family(Protocol):
    """One model family. ``request`` is the family's own prepared conversion request (read
    config, resolved options); the shared stages pass it back to the family untouched."""

    key: str  # registry key, recorded as the deploy card's provenance.model_family
    title: str  # in messages, e.g. "TFOD SSD"
    framework: str  # e.g. "tensorflow", "tao"
    heads: tuple[str, ...]  # NMS heads (trtdeploy.nms kinds) its graphs can end in
    layouts: tuple[str, ...]  # output contracts (deploy-card output layouts) it can emit

    def claims(self, source: ModelSource) -> bool:
        """Cheap: is ``source`` this family's kind of input at all (no parsing)?"""

    def recognise(self, source: ModelSource) -> str | None:
        """None when the family converts ``source``; otherwise one line naming what was found."""

    def read_config(self, source: ModelSource) -> Any:
        """The model's facts from its config file."""

    def convert_core(self, request: Any) -> Core:
        """The model as an ONNX core graph, before ``core_passes``."""

    def core_passes(self, request: Any) -> Sequence[tuple[str, GraphPass]]:
        """Passes that turn the converted graph into the family's core outputs."""

    def head_passes(self, request: Any) -> Sequence[tuple[str, GraphPass]]:
        """Passes that append the output head to the core."""

    def deploy_card(self, request: Any, model: onnx.ModelProto | None, facts: dict[str, Any]) -> DeployCard:
        """The deploy card of the final ``model`` (facts: everything the passes found); a family
        whose export is final (TAO) reads the model file instead and takes None."""


_REGISTRY: dict[str, Family] = {}
_loaded: set[str] = set()  # providers imported so far


def register(family: Family, replace: bool = False) -> Family:
    """Add ``family`` to the registry under ``family.key``; a second family with the same key is
    a programming error unless ``replace``."""
    if not isinstance(family, Family):
        raise TypeError(f"{family!r} does not implement the Family protocol")
    if family.key in _REGISTRY and not replace and _REGISTRY[family.key] is not family:
        raise ValueError(f"a model family {family.key!r} is already registered")
    _REGISTRY[family.key] = family
    return family


def unregister(key: str) -> None:
    _REGISTRY.pop(key, None)


def _load(provider: str) -> None:
    if provider in _loaded:
        return
    _loaded.add(provider)
    try:
        importlib.import_module(provider)
    except ImportError as exc:  # a front-end not installed: its families are absent, not an error
        log.debug("model families of %s not available: %s", provider, exc)


def _stages() -> Iterator[dict[str, Family]]:
    """The registry as it is, then after each built-in provider is loaded in turn: lookups stop
    at the first stage that answers, so converting a TFOD model never imports the TAO front-end
    (a conversion's imports are part of what makes its bytes reproducible)."""
    yield _REGISTRY
    for provider in BUILTIN_PROVIDERS:
        if provider not in _loaded:
            _load(provider)
            yield _REGISTRY


def registered() -> dict[str, Family]:
    """Every registered family by key (built-ins included)."""
    for _ in _stages():
        pass
    return dict(_REGISTRY)


def get(key: str) -> Family:
    for registry in _stages():
        if key in registry:
            return registry[key]
    raise UsageError(f"unknown model family {key!r}; known: {', '.join(sorted(_REGISTRY))}")


def find_family(source: ModelSource) -> Family:
    """The one family that converts ``source``. When none does, the refusal of every family
    that claims this kind of input is the error (naming what each found)."""
    asked: set[str] = set()
    refusals: list[str] = []
    for registry in _stages():
        for family in list(registry.values()):
            if family.key in asked:
                continue
            asked.add(family.key)
            if not family.claims(source):
                continue
            refusal = family.recognise(source)
            if refusal is None:
                return family
            refusals.append(refusal)
    if not refusals:
        raise UnsupportedModelError(
            f"no model family reads {source.path} (known: {', '.join(sorted(f.title for f in _REGISTRY.values()))})"
        )
    raise UnsupportedModelError(" | ".join(refusals))


def ds_hints(card: DeployCard, model_path: Path | None = None) -> DsModelHints | None:
    """The DeepStream facts beyond the card that the card's family knows (network type,
    parser, cluster mode, label lines...), or None when its family has none to add."""
    key = card.provenance.model_family
    family = next((registry[key] for registry in _stages() if key in registry), None) if key else None
    hints = getattr(family, "ds_hints", None)
    return hints(card, model_path) if callable(hints) else None


def check_head(family: Family, nms: str | None) -> None:
    """Refuse an NMS head the family does not declare (before any conversion work)."""
    if nms is not None and nms not in family.heads:
        raise UsageError(f"{family.title} models end in --nms {' or '.join(family.heads)}, not --nms {nms}")


def _context(title: str, facts: dict[str, Any], debug_dir: Path | None, stage: str) -> Any:
    from trtdeploy.graph_passes import PassContext

    return PassContext(family=title, facts=facts, debug_dir=Path(debug_dir) if debug_dir else None, stage=stage)


def core_graph(family: Family, request: Any, debug_dir: Path | None = None) -> Core:
    """Convert and run the family's core passes (debug files ``1-core-NN_<pass>.onnx``)."""
    from trtdeploy.graph_passes import run_passes

    core = family.convert_core(request)
    ctx = _context(core.title or family.title, core.facts, debug_dir, "1-core")
    model = run_passes(core.model, family.core_passes(request), ctx)
    return Core(model=model, facts=ctx.facts, title=core.title or family.title)


def with_head(
    family: Family, core: Core, request: Any, head_facts: dict[str, Any], debug_dir: Path | None = None
) -> tuple[onnx.ModelProto, DeployCard]:
    """Append the head (the family's head passes, reading ``head_facts`` such as the NMS kind)
    to a copy of ``core`` and make the validated deploy card."""
    from trtdeploy.graph_passes import run_passes

    check_head(family, head_facts.get("nms"))
    facts = {**core.facts, **head_facts}
    ctx = _context(family.title, facts, debug_dir, "2-head")
    model = run_passes(copy.deepcopy(core.model), family.head_passes(request), ctx)
    card = family.deploy_card(request, model, ctx.facts)
    if not card.provenance.model_family:
        card.provenance.model_family = family.key
    card.validate("generated deploy card")
    return model, card


def claim_output(stack: contextlib.ExitStack, path: Path) -> Path:
    """``atomic_path`` entered on ``stack``; a folder we cannot create a file in is one clear line."""
    try:
        return stack.enter_context(atomic_path(path))
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def claimed_outputs(output: Path) -> Iterator[tuple[Path, Path]]:
    """Temporary files for the ONNX and its card (``model.deploy.json``), renamed into place
    when the block completes and removed when it fails. Claim them before a long conversion,
    so an output that cannot be written fails first. The caller has checked the outputs
    (``trtdeploy.files.check_output``)."""
    from trtdeploy.deploy_card import card_path_for

    with contextlib.ExitStack() as stack:
        yield claim_output(stack, Path(output)), claim_output(stack, card_path_for(Path(output)))


def fill_outputs(tmp_onnx: Path, tmp_card: Path, model: onnx.ModelProto | bytes, card: DeployCard) -> None:
    """Write the ONNX (a model or its serialized bytes) and its card, which records the
    ONNX's sha256, into claimed temporary files."""
    if isinstance(model, bytes):
        Path(tmp_onnx).write_bytes(model)
    else:
        import onnx

        onnx.save(model, str(tmp_onnx))
    card.onnx_sha256 = sha256_file(tmp_onnx)
    Path(tmp_card).write_text(card.to_json(), encoding="utf-8")


def write_model(model: onnx.ModelProto | bytes, card: DeployCard, output: Path) -> None:
    """``fill_outputs`` into freshly claimed outputs."""
    with claimed_outputs(output) as (tmp_onnx, tmp_card):
        fill_outputs(tmp_onnx, tmp_card, model, card)


@dataclass
class Created:
    onnx_path: Path
    card_path: Path
    card: DeployCard
    family: Family


def create(
    source: ModelSource, output: Path, head_facts: dict[str, Any], force: bool = False,
    debug_dir: Path | None = None,
) -> Created:
    """The whole conversion for a family whose request is its config (``read_config``): find
    the family, convert, run the core and head passes, write ``output`` and its card. Front-ends
    with options of their own (``tfod_trt.create_onnx``) run the same stages themselves."""
    from trtdeploy.deploy_card import card_path_for
    from trtdeploy.files import check_output

    output = Path(output)
    inputs = [p for p in (source.path, source.config, source.labels) if p is not None]
    for out in (output, card_path_for(output)):
        check_output(out, force, inputs=inputs)
    family = find_family(source)
    check_head(family, head_facts.get("nms"))
    request = family.read_config(source)
    with claimed_outputs(output) as (tmp_onnx, tmp_card):
        core = core_graph(family, request, debug_dir)
        model, card = with_head(family, core, request, head_facts, debug_dir)
        fill_outputs(tmp_onnx, tmp_card, model, card)
    log.info("wrote %s and %s (%s)", output, card_path_for(output).name, family.title)
    return Created(output, card_path_for(output), card, family)
