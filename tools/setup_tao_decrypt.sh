#!/usr/bin/env bash
# Best effort: a Python 3.12 (or 3.10) venv .venv-tao with NVIDIA's nvidia-eff-tao-encryption,
# the only decrypter of TAO .etlt files (wheels for CPython 3.10/3.12 on x86_64 only). `make test`
# runs it (tests/tao/test_etlt.py finds .venv-tao) so the .etlt round-trip tests run where it installs; where it does not, they skip
# saying why. Never fails: prints what it did. Prints the interpreter's path on success.
set -u
VENV=${1:-.venv-tao}
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import eff_tao_encryption.tao_codec' >/dev/null 2>&1; then
    echo "$VENV/bin/python"; exit 0
fi
for candidate in python3.12 python3.10 "$HOME"/.pyenv/versions/3.12*/bin/python3.12 "$HOME"/.pyenv/versions/3.10*/bin/python3.10; do
    # a pyenv shim can be on PATH without the version behind it: check that it runs
    if "$candidate" -c 'import sys' >/dev/null 2>&1; then PY=$candidate; break; fi
done
if [ -z "${PY:-}" ]; then echo "no python3.12/python3.10 found: .etlt round-trip tests will skip" >&2; exit 0; fi
if "$PY" -m venv "$VENV" >/dev/null 2>&1 \
   && "$VENV/bin/python" -m pip install -q --no-deps nvidia-eff-tao-encryption >/dev/null 2>&1 \
   && "$VENV/bin/python" -m pip install -q cryptography >/dev/null 2>&1; then
    echo "$VENV/bin/python"
else
    echo "nvidia-eff-tao-encryption did not install with $PY: .etlt round-trip tests will skip" >&2
fi
exit 0
