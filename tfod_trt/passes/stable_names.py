"""Make the converted graph the same bytes in every run: a canonical node order and names that
depend only on the graph.

tf2onnx numbers what it creates from a process-wide counter (``const_fold_opt__492`` in one run,
``const_fold_opt__496`` in the next), keeps one arbitrary name when it merges identical
constants, and orders independent branches (box head vs class head) differently from run to
run. So this pass

* orders the nodes topologically, choosing among the ready nodes by what they are (name without
  counters, op, attributes, inputs by content or producer position), not by list position;
* merges nodes that compute the same thing (same op, attributes and inputs): tf2onnx leaves some
  such twins, and which of them gets which name varies from run to run (the reshapes feeding the
  box and the class head of the last feature map, in SSD MobileNet v2);
* drops every ``__<number>`` counter from node and tensor names, numbering the names that then
  collide in that order;
* names each constant after its first consumer (``<node>/const<slot>``), since the name a merged
  constant kept is arbitrary.

Graph inputs and outputs keep their names.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import re
from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy.graph_passes import PassContext

_COUNTER = re.compile(r"__\d+")


def stable_names(graph: gs.Graph, ctx: PassContext) -> None:
    del ctx
    _name_after_consumers(graph)
    graph.nodes = canonical_order(graph)
    io = {id(t) for t in (*graph.inputs, *graph.outputs)}
    tensors_taken = {t.name for t in (*graph.inputs, *graph.outputs)}
    nodes_taken: set[str] = set()
    named: set[int] = set(io)
    for node in graph.nodes:
        node.name = _unique(_base(node.name or node.op), nodes_taken)
        for slot, tensor in enumerate(node.inputs):
            if isinstance(tensor, gs.Constant) and id(tensor) not in named:
                tensor.name = _unique(f"{node.name}/const{slot}", tensors_taken)
                named.add(id(tensor))
        for tensor in node.outputs:
            if id(tensor) not in named:
                tensor.name = _unique(_base(tensor.name), tensors_taken)
                named.add(id(tensor))


def _name_after_consumers(graph: gs.Graph) -> None:
    """A node tf2onnx named after one of its consumers (a Reshape it put in front of a Conv,
    merged with its twin in front of the other head's Conv) carries whichever consumer's name
    the merge kept, which varies with the process (object ids); it gets the first of its
    consumers' names instead, and so do its outputs. A node whose consumers share one name keeps it."""
    for node in graph.nodes:
        base = _base(node.name or "")
        consumers = {_base(c.name or "") for t in node.outputs for c in t.outputs}
        if base in consumers and len(consumers) > 1:
            node.name = min(consumers)
            for tensor in node.outputs:  # its outputs carry the kept name too ("<name>:0")
                if _base(tensor.name).startswith(base) and tensor not in graph.outputs:
                    tensor.name = node.name + _base(tensor.name)[len(base):]


def canonical_order(graph: gs.Graph) -> list[gs.Node]:
    """A topological order of ``graph.nodes`` that does not depend on their order in the list,
    without twins (a node equal in op, attributes and inputs to one already placed is dropped and
    its consumers read the first one's outputs)."""
    producer: dict[int, tuple[gs.Node, int]] = {}
    for node in graph.nodes:
        for index, tensor in enumerate(node.outputs):
            producer[id(tensor)] = (node, index)
    waiting = {id(node): {id(producer[id(t)][0]) for t in node.inputs if id(t) in producer} for node in graph.nodes}
    consumers: dict[int, list[gs.Node]] = {}
    for node in graph.nodes:
        for dep in waiting[id(node)]:
            consumers.setdefault(dep, []).append(node)
    inputs = {id(t): i for i, t in enumerate(graph.inputs)}
    position: dict[int, int] = {}  # id(node) -> its place in the new order
    digests: dict[int, str] = {}

    def input_key(tensor: gs.Tensor) -> tuple[Any, ...]:
        if isinstance(tensor, gs.Constant):
            if id(tensor) not in digests:
                digests[id(tensor)] = _digest(tensor.values)
            return ("c", digests[id(tensor)])
        if id(tensor) in producer:
            node, index = producer[id(tensor)]
            return ("n", position[id(node)], index)
        if id(tensor) in inputs:
            return ("i", inputs[id(tensor)])
        return ("v", _base(tensor.name))

    def what(node: gs.Node) -> tuple[Any, ...]:
        attrs = tuple(sorted((k, _attr_key(v)) for k, v in node.attrs.items()))
        return (node.op, attrs, tuple(input_key(t) for t in node.inputs))

    def key(node: gs.Node) -> tuple[Any, ...]:
        return (_base(node.name or node.op), *what(node))

    graph_outputs = {id(t) for t in graph.outputs}
    placed: dict[tuple[Any, ...], gs.Node] = {}

    ready: list[tuple[tuple[Any, ...], int, gs.Node]] = []
    tiebreak = itertools.count()  # only between nodes that are the same in every respect
    for node in graph.nodes:
        if not waiting[id(node)]:
            heapq.heappush(ready, (key(node), next(tiebreak), node))
    order: list[gs.Node] = []
    while ready:
        _, _, node = heapq.heappop(ready)
        twin = placed.get(what(node))
        if twin is not None and _mergeable(node, graph_outputs):
            for mine, theirs in zip(node.outputs, twin.outputs, strict=True):
                for consumer in list(mine.outputs):
                    for slot, tensor in enumerate(consumer.inputs):
                        if tensor is mine:
                            consumer.inputs[slot] = theirs
        else:
            placed.setdefault(what(node), node)
            position[id(node)] = len(order)
            order.append(node)
        for consumer in consumers.get(id(node), []):
            pending = waiting[id(consumer)]
            pending.discard(id(node))
            if not pending:
                heapq.heappush(ready, (key(consumer), next(tiebreak), consumer))
    return order


def _digest(values: Any) -> str:
    array = np.asarray(values)
    digest = hashlib.sha256(np.ascontiguousarray(array).tobytes())
    digest.update(f"{array.dtype}{array.shape}".encode())
    return digest.hexdigest()


def _attr_key(value: Any) -> Any:
    """An attribute by content: arrays and tensors by digest (numpy's repr elides long arrays,
    which would make different values look equal), sequences element by element."""
    if isinstance(value, gs.Constant):
        return ("tensor", _digest(value.values))
    if isinstance(value, np.ndarray):
        return ("array", _digest(value))
    if isinstance(value, (list, tuple)):
        return tuple(_attr_key(v) for v in value)
    if isinstance(value, gs.Graph):
        return ("graph", _base(value.name or ""))
    return repr(value)


def _mergeable(node: gs.Node, graph_outputs: set[int]) -> bool:
    """Pure ops only (no random generators), no subgraphs (compared by name only), and never a
    node that produces a graph output."""
    return (
        "Random" not in node.op
        and not any(isinstance(v, gs.Graph) for v in node.attrs.values())
        and not any(id(t) in graph_outputs for t in node.outputs)
    )


def _base(name: str) -> str:
    return _COUNTER.sub("", name)


def _unique(base: str, taken: set[str]) -> str:
    name, index = base, 0
    while name in taken:
        index += 1
        name = f"{base}_{index}"
    taken.add(name)
    return name
