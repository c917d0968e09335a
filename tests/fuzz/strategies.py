"""Inputs for the fuzzers: valid files with random edits (where the crashes hide: deep in an
almost-valid file) and random text over a parser's own syntax characters.

Hypothesis draws one integer per example (derandomized in CI, so every run sees the same
inputs); the inputs are made from it with Python's ``random`` -- ``INPUTS_PER_EXAMPLE`` of them
per example, because hypothesis' own per-example cost (~1 ms, far more on a loaded machine)
would otherwise dominate the parsers' and 10^4 inputs per parser would not fit in CI's budget.
A failure names the exact input (``only_our_errors``) and the hypothesis seed reproduces it.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from trtdeploy.errors import TrtDeployError

INPUTS_PER_EXAMPLE = 10
_ANY = "".join(chr(c) for c in (0, 1, 9, 10, 13, 27, 127, 0xA0, 0xE9, 0x2028, 0xFEFF, 0x10348, 0xFFFD))


def inputs(make: Callable[[random.Random], Any]) -> st.SearchStrategy[list[Any]]:
    """A strategy of INPUTS_PER_EXAMPLE inputs, each ``make(rng)`` with its own seeded rng."""
    return st.integers(0, 2**62).map(
        lambda seed: [make(random.Random(seed * INPUTS_PER_EXAMPLE + i)) for i in range(INPUTS_PER_EXAMPLE)]
    )


def _piece(rng: random.Random, alphabet: str, seed: str, odd: str) -> str:
    choice = rng.random()
    if choice < 0.6 or not odd:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
    if choice < 0.8 and seed:
        at = rng.randrange(len(seed))
        return seed[at : at + rng.randint(1, 12)]  # a chunk of the seed: duplicated keys, blocks
    return "".join(rng.choice(odd) for _ in range(rng.randint(1, 2)))


def mutate_text(rng: random.Random, seed: str, alphabet: str, max_edits: int = 6, odd: str = _ANY) -> str:
    """1..max_edits inserts / deletes / replaces at random places (``odd``: rare characters)."""
    text = seed
    for _ in range(rng.randint(1, max_edits)):
        at = rng.randint(0, len(text))
        op = rng.random()
        if op < 0.4:
            text = text[:at] + _piece(rng, alphabet, seed, odd) + text[at:]
        elif op < 0.7:
            text = text[:at] + text[at + rng.randint(1, 8) :]
        else:
            text = text[:at] + _piece(rng, alphabet, seed, odd) + text[at + rng.randint(1, 4) :]
    return text


def text_maker(seeds: list[str], alphabet: str, max_size: int = 200) -> Callable[[random.Random], str]:
    """Mutated seeds (4 in 5) or random text over ``alphabet`` with some of everything else."""

    def make(rng: random.Random) -> str:
        if rng.random() < 0.8:
            return mutate_text(rng, rng.choice(seeds), alphabet)
        pool = alphabet * 8 + _ANY
        return "".join(rng.choice(pool) for _ in range(rng.randint(0, max_size)))

    return make


def bytes_maker(seeds: list[bytes], max_size: int = 64) -> Callable[[random.Random], bytes]:
    alphabet = "".join(chr(b) for b in range(256))

    def make(rng: random.Random) -> bytes:
        if rng.random() < 0.7:
            return mutate_text(rng, rng.choice(seeds).decode("latin-1"), alphabet, 4, odd="").encode("latin-1")
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, max_size)))

    return make


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 2 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, 1, -1, 2, 3, 4, 100, 2**31, -(2**63), 10**30])
    if kind == 3:
        return rng.choice([0.0, -0.0, 0.5, 1e-300, 1e308, float("inf"), float("-inf"), float("nan")])
    if kind in (4, 5, 6):
        return rng.choice(["", "a", "-1", "NHWC", "fp16", "10.16.0", "gpu0", "\x00", "é", "../x", "1e3"])
    if kind == 7:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["", "a", "name", "shape", "x"]): random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


def mutate_json(rng: random.Random, seed: Any) -> Any:
    """Replace, delete or add values at random paths of a copy of ``seed``."""
    data = json.loads(json.dumps(seed))
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(data))
        if not path:
            if rng.random() < 0.1:
                data = random_json(rng)
            continue
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        op = rng.random()
        if op < 0.2:
            del parent[path[-1]]
        elif op < 0.3 and isinstance(parent, dict):
            parent[rng.choice(["extra", "schema", "name"])] = random_json(rng)
        else:
            parent[path[-1]] = random_json(rng)
    return data


def json_maker(seeds: list[Any]) -> Callable[[random.Random], Any]:
    def make(rng: random.Random) -> Any:
        return mutate_json(rng, rng.choice(seeds)) if rng.random() < 0.9 else random_json(rng)

    return make


def only_our_errors(parse: Callable[[Any], Any], given_input: Any) -> None:
    """Run ``parse(given_input)``; anything raised must be our error family, with a one-line message."""
    try:
        parse(given_input)
    except TrtDeployError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message.strip(), f"not one line: {message!r} for {given_input!r}"
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc} -- for input {given_input!r}") from exc


class Scratch:
    """One reusable file per fuzzer (hypothesis runs all examples in one test call)."""

    def __init__(self, folder: Path, name: str) -> None:
        self.path = folder / name

    def text(self, text: str) -> Path:
        return self.data(text.encode("utf-8", "surrogatepass"))

    def data(self, data: bytes) -> Path:
        # Rewrite in place: opening with O_TRUNC makes ext4 flush the file on close (auto_da_alloc),
        # 4 ms per input here instead of 0.02 ms.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
        return self.path
