"""Optimization profiles: parse `--profile` / `--batch`, fill defaults, check against the ONNX.

A profile maps every dynamic network input to a (min, opt, max) shape. `--profile` may be
repeated: the k-th spec given for an input goes into the k-th optimization profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trtdeploy.errors import InputError, UsageError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ShapeRange:
    min: Shape
    opt: Shape
    max: Shape

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    def __str__(self) -> str:
        return ":".join("x".join(str(d) for d in shape) for shape in (self.min, self.opt, self.max))


Profile = dict[str, ShapeRange]


@dataclass(frozen=True)
class OnnxInput:
    """A network input as the ONNX declares it; ``-1`` marks a dynamic dimension."""

    name: str
    shape: Shape
    dtype: str

    @property
    def dynamic(self) -> bool:
        return any(d < 0 for d in self.shape)


def onnx_inputs(model: object) -> list[OnnxInput]:
    """The real inputs (not initializers) of an ``onnx.ModelProto``."""
    import onnx

    assert isinstance(model, onnx.ModelProto)
    initializers = {init.name for init in model.graph.initializer}
    result = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tensor.shape.dim)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "unknown"
        result.append(OnnxInput(value.name, dims, dtype))
    return result


def _parse_shape(text: str, spec: str) -> Shape:
    try:
        dims = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        raise UsageError(
            f"--profile {spec!r}: {text!r} is not a shape like 1x3x300x300 (integers joined by 'x')"
        ) from None
    if any(d <= 0 for d in dims):
        raise UsageError(f"--profile {spec!r}: dimensions must be positive, got {text!r}")
    return dims


def parse_profile_spec(spec: str) -> tuple[str, ShapeRange]:
    """``"input:1x3x300x300:4x3x300x300:8x3x300x300"`` -> (name, range).

    The input name may itself contain ``:`` (TensorFlow names like ``input_1:0``): the last
    three ``:``-separated fields are the shapes.
    """
    parts = spec.rsplit(":", 3)
    if len(parts) != 4 or not parts[0]:
        raise UsageError(f"--profile {spec!r} is not NAME:MIN:OPT:MAX, e.g. input:1x3x300x300:4x3x300x300:8x3x300x300")
    name, lo, mid, hi = parts
    shapes = [_parse_shape(text, spec) for text in (lo, mid, hi)]
    if len({len(s) for s in shapes}) != 1:
        raise UsageError(f"--profile {spec!r}: MIN, OPT and MAX must have the same rank")
    lo_s, mid_s, hi_s = shapes
    if not all(a <= b <= c for a, b, c in zip(lo_s, mid_s, hi_s, strict=True)):
        raise UsageError(f"--profile {spec!r}: every dimension needs MIN <= OPT <= MAX")
    return name, ShapeRange(lo_s, mid_s, hi_s)


def group_profiles(specs: Sequence[str]) -> list[Profile]:
    """Parse repeated ``--profile`` values; the k-th spec per input goes to profile k."""
    profiles: list[Profile] = []
    seen: dict[str, int] = {}
    for spec in specs:
        name, shape_range = parse_profile_spec(spec)
        index = seen.get(name, 0)
        seen[name] = index + 1
        while len(profiles) <= index:
            profiles.append({})
        profiles[index][name] = shape_range
    return profiles


def check_profile(profile: Profile, inputs: Sequence[OnnxInput], index: int = 0) -> None:
    """Refuse a profile that names an unknown input, has the wrong rank or changes static dims."""
    by_name = {i.name: i for i in inputs}
    where = f"profile {index}" if index else "profile"
    for name, shape_range in profile.items():
        if name not in by_name:
            raise UsageError(
                f"{where} names input {name!r} but the ONNX inputs are: "
                f"{', '.join(repr(n) for n in by_name) or 'none'}; fix the name in --profile"
            )
        declared = by_name[name].shape
        for label, shape in (
            ("MIN", shape_range.min),
            ("OPT", shape_range.opt),
            ("MAX", shape_range.max),
        ):
            if len(shape) != len(declared):
                raise UsageError(
                    f"{where} for {name!r}: {label} shape {_fmt(shape)} has rank {len(shape)} but the "
                    f"ONNX input is {_fmt(declared)} (rank {len(declared)})"
                )
            for axis, (want, got) in enumerate(zip(declared, shape, strict=True)):
                if want > 0 and want != got:
                    raise UsageError(
                        f"{where} for {name!r}: {label} shape {_fmt(shape)} changes static dimension "
                        f"{axis} of the ONNX input {_fmt(declared)} ({want} -> {got}); only dynamic (-1) "
                        "dimensions can vary"
                    )
    for inp in inputs:
        if inp.dynamic and inp.name not in profile:
            raise UsageError(
                f"ONNX input {inp.name!r} has dynamic shape {_fmt(inp.shape)} but {where} gives no "
                f"range for it; pass --profile {inp.name}:MIN:OPT:MAX or --batch N"
            )


def plan_profiles(
    inputs: Sequence[OnnxInput],
    specs: Sequence[str] = (),
    batch: int | None = None,
    card_shape: dict[str, Shape] | None = None,
) -> list[Profile]:
    """Work out the optimization profiles for a build.

    ``specs`` (from ``--profile``) win; otherwise ``batch`` (``--batch N``: dynamic batch
    1..N, opt N) and the deploy card's static dims fill the dynamic dims. A fully static
    network needs no profile (returns ``[]``).
    """
    if specs and batch is not None:
        raise UsageError("give either --batch or --profile, not both")
    if batch is not None and batch < 1:
        raise UsageError(f"--batch must be >= 1, got {batch}")
    if specs:
        profiles = group_profiles(specs)
    else:
        profiles = [_default_profile(inputs, batch, card_shape or {})]
        if not profiles[0]:
            return []
    for index, profile in enumerate(profiles):
        check_profile(profile, inputs, index)
    return profiles


def _default_profile(inputs: Sequence[OnnxInput], batch: int | None, card_shape: dict[str, Shape]) -> Profile:
    profile: Profile = {}
    for inp in inputs:
        if not inp.dynamic:
            if batch is not None and inp.shape and inp.shape[0] != batch:
                raise UsageError(
                    f"--batch {batch} but the ONNX input {inp.name!r} has a static batch of "
                    f"{inp.shape[0]} ({_fmt(inp.shape)}); re-export with a dynamic batch or drop --batch"
                )
            continue
        known = card_shape.get(inp.name)
        fixed: list[int] = []
        for axis, dim in enumerate(inp.shape):
            if dim > 0:
                fixed.append(dim)
            elif axis == 0:
                fixed.append(-1)  # the batch: filled below
            elif known is not None and len(known) == len(inp.shape) and known[axis] > 0:
                fixed.append(known[axis])
            else:
                raise UsageError(
                    f"ONNX input {inp.name!r} has dynamic dimension {axis} ({_fmt(inp.shape)}) and the "
                    f"deploy card does not fix it; pass --profile {inp.name}:MIN:OPT:MAX"
                )
        top = batch if batch is not None else 1
        lo = tuple(1 if d < 0 else d for d in fixed)
        hi = tuple(top if d < 0 else d for d in fixed)
        profile[inp.name] = ShapeRange(lo, hi, hi)
    return profile


def max_batch(profiles: Sequence[Profile], inputs: Sequence[OnnxInput]) -> int:
    """The largest batch any profile allows (the ``_b<N>`` of the engine name)."""
    best = 0
    for inp in inputs:
        if not inp.shape:
            continue
        if inp.shape[0] > 0:
            best = max(best, inp.shape[0])
        for profile in profiles:
            if inp.name in profile:
                best = max(best, profile[inp.name].max[0])
    return max(best, 1)


def card_shapes(onnx_path: Path) -> tuple[dict[str, Shape], object | None]:
    """Input shapes from the deploy card next to the ONNX, and the card (None if absent)."""
    from trtdeploy.deploy_card import DeployCard, card_path_for

    path = card_path_for(onnx_path)
    if not path.is_file():
        return {}, None
    card = DeployCard.load(path)
    return {card.input.name: tuple(card.input.shape)}, card


def check_card_matches(card_shape: dict[str, Shape], inputs: Sequence[OnnxInput], card_path: Path) -> None:
    """A card that names an input the ONNX does not have is stale: say so instead of guessing."""
    names = {i.name for i in inputs}
    for name in card_shape:
        if name not in names:
            raise InputError(
                f"deploy card {card_path} describes input {name!r} but the ONNX inputs are "
                f"{sorted(names)}; the card is stale: re-run create-onnx"
            )


def _fmt(shape: Sequence[int]) -> str:
    return "x".join("?" if d < 0 else str(d) for d in shape) if shape else "scalar"
