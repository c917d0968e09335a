"""Hypothesis profiles of the parser fuzzers (issue 11).

Each hypothesis example feeds a parser ``strategies.INPUTS_PER_EXAMPLE`` (10) inputs, so:

* ``ci`` (the default): 1,000 examples = 10^4 inputs per parser, derandomized (the same inputs
  every run, so CI is reproducible and never flaky), no deadline, no example database.
* ``long``: 10,000 examples = 10^5 inputs per parser, randomized, for a local hunt:
  ``HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest -q tests/fuzz``
* ``quick``: 20 examples = 200 inputs per parser, while editing a parser.

The profile applies to the fuzz tests only (they take it with ``@FUZZ``), not to other
hypothesis tests in the session.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
}
settings.register_profile("ci", max_examples=1_000, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("long", max_examples=10_000, derandomize=False, print_blob=True, **_COMMON)
settings.register_profile("quick", max_examples=20, derandomize=True, **_COMMON)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE not in ("ci", "long", "quick"):
    PROFILE = "ci"
FUZZ = settings(settings.get_profile(PROFILE))
