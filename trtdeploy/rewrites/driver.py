"""Rewrite the plugin nodes of an ONNX model into standard ops (``trtdeploy.rewrites`` registry).

``rewrite_plugins(model)`` returns the rewritten model and one ``Rewritten`` record per node;
``build-engine`` calls it for the plugins its backend lacks, ``trtdeploy rewrite-plugins`` for
all (or the ones named). The model given is not changed.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnx

from trtdeploy import plugins
from trtdeploy.errors import GraphError, UnsupportedModelError
from trtdeploy.graph_passes import infer_shapes_through_plugins
from trtdeploy.log import get_logger

log = get_logger("rewrites")


@dataclass(frozen=True)
class Rewritten:
    """One plugin node replaced by standard ops."""

    node: str
    plugin: str
    differences: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plugin_nodes(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(node name, op type) of every registered plugin node of ``model``."""
    return [(n.name, n.op_type) for n in model.graph.node if plugins.is_plugin_node(n.op_type, n.domain)]


def rewrite_plugins(
    model: onnx.ModelProto, only: Collection[str] | None = None
) -> tuple[onnx.ModelProto, list[Rewritten]]:
    """``model`` with every plugin node of a type in ``only`` (all rewritable ones when None)
    replaced; raises UnsupportedModelError for a plugin in ``only`` that has no rewrite. A
    standard op with a rewrite (``Rewrite.standard``: NonMaxSuppression) is rewritten only when
    ``only`` names it."""
    import onnx_graphsurgeon as gs

    from trtdeploy.rewrites import rewrites
    from trtdeploy.rewrites._opset import with_opset

    table = rewrites()
    wanted = {op for _, op in plugin_nodes(model)} if only is None else set(only)
    standard = {n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx") and n.op_type in table}
    standard &= {op for op, r in table.items() if r.standard}
    present = ({op for _, op in plugin_nodes(model)} | standard) & wanted
    lacking = sorted(present - set(table))
    if lacking:
        raise UnsupportedModelError(
            f"no standard-op rewrite for plugin(s) {', '.join(lacking)}; build with a TensorRT that ships them "
            f"(rewritable: {', '.join(sorted(table))})"
        )
    if not present:
        return model, []
    # TAO exports opset 12 and a rewrite may need more (GridSample: 16): raised with ONNX's
    # version converter around the plugin nodes (rewrites._opset), refused when it cannot.
    model = with_opset(model, max(table[op].min_opset for op in present))
    # One node at a time, in graph order, with shapes inferred again after each (through the
    # plugins left, with the registry's shape rules: graph_passes.infer_shapes_through_plugins).
    done: list[Rewritten] = []
    out = model
    while True:
        graph = gs.import_onnx(infer_shapes_through_plugins(out))
        index, node = next(
            ((i, n) for i, n in enumerate(graph.nodes) if n.op in present and n.domain in (None, "", "ai.onnx")),
            (-1, None),
        )
        if node is None:
            break
        if not node.name:
            node.name = f"{node.op}_{index}"
        table[node.op].apply(graph, node)
        graph.nodes.remove(node)
        done.append(Rewritten(node.name, node.op, table[node.op].differences))
        log.info("rewrote %s node %r into standard ops", node.op, node.name)
        graph.cleanup().toposort()
        out = gs.export_onnx(graph)
        out.ir_version = model.ir_version
        del out.opset_import[:]
        out.opset_import.extend(model.opset_import)
    if plugin_nodes(out):  # the checker knows no plugin op: check once none is left
        return out, done
    try:
        onnx.checker.check_model(out)
    except onnx.checker.ValidationError as exc:
        raise GraphError(f"the rewritten graph does not pass onnx.checker: {str(exc).splitlines()[0]}") from exc
    return out, done


@dataclass(frozen=True)
class RewriteResult:
    output: Path
    card: Path | None  # the deploy card written for the output (when the input had one)
    rewritten: list[Rewritten]
    kept: list[str]  # plugin op types left in the graph
    seconds: float


def rewrite_file(source: Path, output: Path, only: Collection[str] | None = None, force: bool = False) -> RewriteResult:
    """Write ``output``: ``source`` with its plugin nodes (those of ``only`` when given)
    rewritten; its deploy card, when there is one, is copied for ``output`` (same facts, the
    new ONNX's hash). Refuses a model with nothing to rewrite."""
    from trtdeploy.deploy_card import DeployCard, card_path_for
    from trtdeploy.errors import InputError, UsageError
    from trtdeploy.files import check_output, check_same_outputs, sha256_file, write_bytes_atomic

    start = time.perf_counter()
    source, output = Path(source), Path(output)
    if not source.is_file():
        raise InputError(f"ONNX file {source} not found")
    if output.suffix != ".onnx":
        raise UsageError(f"-o {output}: the output must be a .onnx file")
    card_in = card_path_for(source)
    card_out = card_path_for(output) if card_in.is_file() else None
    for path in (output, card_out):
        if path is not None:
            check_output(path, force, inputs=[source, card_in])
    check_same_outputs([output, card_out])
    try:
        model = onnx.load(str(source))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise InputError(f"{source} is not a readable ONNX model: {exc}") from exc
    if only is not None:
        unknown = sorted(set(only) - plugins.op_types())
        if unknown:
            raise UsageError(f"--plugin {', '.join(unknown)}: not a registered TensorRT plugin")
    if not plugin_nodes(model):
        raise UsageError(f"{source} has no TensorRT plugin nodes: nothing to rewrite")
    rewritten, done = rewrite_plugins(model, only)
    if not done:
        raise UsageError(f"{source} has no node of plugin(s) {', '.join(sorted(only or ()))}: nothing to rewrite")
    write_bytes_atomic(output, rewritten.SerializeToString())
    if card_out is not None:
        card = DeployCard.load(card_in)
        card.onnx_sha256 = sha256_file(output)
        card.save(card_out)
    kept = sorted({op for _, op in plugin_nodes(rewritten)})
    return RewriteResult(output, card_out, done, kept, time.perf_counter() - start)
