"""The capability matrix: model family x NMS head / output contract x backend x DeepStream parser.

One table joins the registries that each know one axis: the model families
(``trtdeploy.families``: which heads and output layouts each can emit), the output contracts
(``trtdeploy.contracts``: which head makes each, which DeepStream parser variants read it) and
the backends (``trtdeploy.engine.capabilities``: which plugins and layers each TensorRT
generation builds). The CLI asks it for its choices and early refusals (``check_head``), and the
README's support table is generated from it (``docs/gen_support_table.py``), so none of them is
written by hand.

Nothing here imports TensorRT, TensorFlow or onnx.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from trtdeploy import contracts
from trtdeploy.contracts import OutputContract
from trtdeploy.engine.capabilities import Capabilities, capabilities_for
from trtdeploy.errors import UsageError

# --target names -> (backend module, a version of that generation). The version only picks
# the generation's row of engine/capabilities.py; nothing is imported.
TARGETS: dict[str, tuple[str, str]] = {
    "trt10": ("tensorrt", "10.0"),
    "trt11": ("tensorrt", "11.0"),
    "rtx": ("tensorrt_rtx", "1.0"),
}

# The TensorRT plugin op each NMS head puts in the graph (trtdeploy/nms/heads.py emits
# EfficientNMS_TRT and BatchedNMSDynamic_TRT; TAO's SSD-like exports carry NMS_TRT's dynamic
# version). The onnx head needs the NMS layer instead, none needs nothing.
HEAD_PLUGIN_OPS: dict[str, str] = {
    "efficient": "EfficientNMS_TRT",
    "batched": "BatchedNMSDynamic_TRT",
    "nms_trt": "NMSDynamic_TRT",
}
HEAD_HELP: dict[str, str] = {
    "efficient": "EfficientNMS_TRT plugin",
    "batched": "BatchedNMSDynamic_TRT plugin",
    "onnx": "standard ONNX NonMaxSuppression, TensorRT's NMS layer",
    "none": "no NMS: boxes + scores, DeepStream clusters them",
}
OWN_HEAD = "in model"  # the head column of a contract the family's own graph produces

# Until trtdeploy.families registers a family, the matrix uses these (key, title, heads, layouts).
_FALLBACK_FAMILIES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("tfod_ssd", "TFOD SSD", ("efficient", "batched", "onnx", "none"), ("tfod", "deepstream", "batched", "raw")),
)


@dataclass(frozen=True)
class Support:
    ok: bool | None  # None: unknown (the family declares no plugin list for its own graph)
    why: str = ""  # the reason when not ok; when ok, what build-engine does to make it so

    def cell(self) -> str:
        if self.ok is None:
            return f"unknown: {self.why}"
        if self.ok:
            return f"yes ({self.why})" if self.why else "yes"
        return f"no: {self.why}"


@dataclass(frozen=True)
class FamilyInfo:
    key: str
    title: str
    heads: tuple[str, ...]
    layouts: tuple[str, ...]
    plugin_ops: tuple[str, ...] | None = None  # plugins the family's own graph needs (None: not declared)
    contracts: tuple[str, ...] = ()  # contract keys it emits (empty: every contract of its layouts)
    own_head: bool = False  # its exports carry their own head (TAO) instead of one of trtdeploy.nms's


@dataclass(frozen=True)
class Row:
    family: FamilyInfo
    head: str
    contract: OutputContract
    backends: tuple[tuple[str, Support], ...]  # (target, support) in TARGETS order

    def support(self, target: str) -> Support:
        return dict(self.backends)[target]

    @property
    def ds_parsers(self) -> tuple[str, ...]:
        return self.contract.ds_readers


def target_capabilities(target: str) -> Capabilities:
    if target not in TARGETS:
        raise UsageError(f"--target {target!r} is not one of {', '.join(TARGETS)}")
    return capabilities_for(*TARGETS[target])


def target_label(target: str) -> str:
    return target_capabilities(target).label


def head_support(head: str, target: str, plugin_ops: Iterable[str] | None = (), own_head: bool = False) -> Support:
    """Can ``target`` build a graph ending in ``head`` (plus the family's ``plugin_ops``)?"""
    caps = target_capabilities(target)
    if head == "onnx" and not caps.nms_layer:
        # engine/capabilities.py: TensorRT-RTX parses NonMaxSuppression but finds no runner for it.
        return Support(False, f"{caps.label} cannot build the NMS layer")
    needed = [HEAD_PLUGIN_OPS[head]] if head in HEAD_PLUGIN_OPS else []
    missing = [op for op in [*needed, *(plugin_ops or ())] if caps.unavailable_plugin(op)]
    rewritten: list[str] = []
    if missing:
        # build-engine rewrites the plugins the backend lacks into standard ops that write the
        # same tensors (trtdeploy.rewrites), for TAO exports and trtdeploy's own heads alike.
        from trtdeploy import rewrites

        rewritten = [op for op in missing if op in rewrites.rewritable()]
        missing = [op for op in missing if op not in rewritten]
    if missing:
        return Support(False, f"{caps.label} ships no {', '.join(missing)} plugin")
    if plugin_ops is None and own_head and head not in HEAD_PLUGIN_OPS and head != "none":
        return Support(None, "the family lists no plugins")
    return Support(True, f"build-engine rewrites {', '.join(rewritten)} into standard ops" if rewritten else "")


def _info(family: object) -> FamilyInfo:
    """A registered family's row facts, as it declares them: ``contracts`` (default: every
    contract of its layouts), ``plugin_ops`` (default: none besides its head's; None: not known)
    and ``own_head`` (default: its graphs end in one of trtdeploy.nms's heads)."""
    plugins = getattr(family, "plugin_ops", ())
    return FamilyInfo(
        family.key, family.title, tuple(family.heads), tuple(family.layouts),  # type: ignore[attr-defined]
        tuple(plugins) if plugins is not None else None, tuple(getattr(family, "contracts", ())),
        bool(getattr(family, "own_head", False)),
    )


def families() -> list[FamilyInfo]:
    """The registered model families (trtdeploy.families), or the fallback list before any is."""
    try:
        from trtdeploy import families as registry
    except ImportError:  # the registry module not there yet
        registered = {}
    else:
        registered = registry.registered()
    if not registered:
        return [FamilyInfo(*row) for row in _FALLBACK_FAMILIES]
    return [_info(f) for f in registered.values()]


def rows_for(family: FamilyInfo) -> list[Row]:
    """One row per (head, contract) the family can emit, in registry order."""
    rows = []
    if family.contracts:
        emitted = [contracts.contract(key) for key in family.contracts]
    else:
        emitted = [c for c in contracts.CONTRACTS.values() if c.layout in family.layouts]
    for contract in emitted:
        heads = family.heads if family.own_head else [h for h in family.heads if h in contract.heads]
        for head in heads:
            backends = tuple((t, head_support(head, t, family.plugin_ops, family.own_head)) for t in TARGETS)
            rows.append(Row(family, f"{head} ({OWN_HEAD})" if family.own_head else head, contract, backends))
    return rows


def matrix() -> list[Row]:
    return [row for family in families() for row in rows_for(family)]


def family_info(key: str) -> FamilyInfo:
    for family in families():
        if family.key == key:
            return family
    raise UsageError(f"unknown model family {key!r}")


def default_head(target: str | None, family: str = "tfod_ssd") -> str:
    """The family's first head (its default) that ``target`` builds as it is, else the first
    it builds after build-engine's plugin rewrite; the plain default without a target."""
    info = family_info(family)
    if target is None:
        return info.heads[0]
    supports = [(head, head_support(head, target, info.plugin_ops, info.own_head)) for head in info.heads]
    native = [head for head, support in supports if support.ok and not support.why]  # no rewrite needed
    built = [head for head, support in supports if support.ok]
    if native or built:
        return (native or built)[0]
    raise UsageError(f"no {info.title} head builds for --target {target}")


def check_head(head: str, target: str | None, family: str = "tfod_ssd") -> None:
    """Refuse, before any conversion, an NMS head the target backend cannot build; the message
    names the heads of the family that it can."""
    if target is None:
        return
    info = family_info(family)
    support = head_support(head, target, info.plugin_ops, info.own_head)
    if support.ok is not False:
        return
    others = [h for h in info.heads if h != head and head_support(h, target, info.plugin_ops).ok]
    hint = f"use --nms {' or '.join(others)}" if others else f"no {info.title} head builds there"
    raise UsageError(f"--nms {head} cannot be built for --target {target}: {support.why}; {hint}")


# --- help texts and the README tables ------------------------------------------------------


def nms_help(family: str = "tfod_ssd") -> str:
    """--nms help: each head, what it emits and where it builds (from the matrix)."""
    info = family_info(family)
    parts = []
    for head in info.heads:
        builds = [target_label(t) for t in TARGETS if head_support(head, t, info.plugin_ops).ok]
        parts.append(f"{head} ({HEAD_HELP.get(head, head)}; builds on {', '.join(builds) or 'no backend'})")
    return "NMS head: " + ", ".join(parts) + f". Default: {info.heads[0]}."


def target_help() -> str:
    return (
        "The backend the ONNX is for: " + ", ".join(f"{t} ({target_label(t)})" for t in TARGETS)
        + "; an NMS head it cannot build is refused before converting, and without --nms, "
        "--output-layout or --ds-parser the default head is the first that builds there."
    )


def _md_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def support_table() -> str:
    """The README's support table (markdown), one row per family x head x contract."""
    header = ["family", "`--nms`", "output contract", *[target_label(t) for t in TARGETS], "DeepStream parser"]
    lines = [_md_row(header), _md_row(["---"] * len(header))]
    for row in matrix():
        head = f"`{row.head.split()[0]}`" + (f" ({OWN_HEAD})" if row.family.own_head else "")
        parsers = ", ".join(f"`{p}`" for p in row.ds_parsers) or "-"
        lines.append(_md_row([
            row.family.title, head, f"`{row.contract.key}`: {row.contract.describe()}",
            *[row.support(t).cell() for t in TARGETS], parsers,
        ]))
    return "\n".join(lines) + "\n"


def ds_parser_table() -> str:
    """The README's --ds-parser table: each variant create-onnx shapes outputs for."""
    from trtdeploy.deepstream.parsers import DEFAULT_DS_PARSER, VARIANTS

    lines = [_md_row(["`--ds-parser`", "parser (source read)", "`--nms`", "outputs"]), _md_row(["---"] * 4)]
    for key, contract in contracts.ds_contracts().items():
        parser = VARIANTS[key]
        default = " (default)" if key == DEFAULT_DS_PARSER else ""
        lines.append(_md_row([f"`{key}`{default}", f"{parser.func} ({parser.releases})", " or ".join(contract.heads),
                              contract.describe()]))
    return "\n".join(lines) + "\n"


GENERATED_SECTIONS = {"support-table": support_table, "ds-parser-table": ds_parser_table}
