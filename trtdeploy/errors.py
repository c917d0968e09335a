"""User-facing errors. Library code raises these; only the CLI turns them into exit codes."""

from __future__ import annotations


class TrtDeployError(Exception):
    """A failure the user can act on. The message is one line naming the value and the fix."""

    exit_code = 1


class UsageError(TrtDeployError):
    """Bad or conflicting options (exit code 2)."""

    exit_code = 2


class InputError(TrtDeployError):
    """An input file or folder is missing, unreadable or not what it claims to be."""


class UnsupportedModelError(TrtDeployError):
    """The model family, architecture or feature is not supported."""


class GraphError(TrtDeployError):
    """Graph surgery could not find what it expected, or produced an invalid graph."""


class OutputExistsError(TrtDeployError):
    """An output file exists and --force was not given."""


class MissingDependencyError(TrtDeployError):
    """An optional heavy dependency (TensorFlow, TensorRT, ...) is not installed."""


class VerificationError(TrtDeployError):
    """Two runtimes disagree beyond the tolerance."""
