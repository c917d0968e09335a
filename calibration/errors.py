"""The exceptions the calibration package raises for problems the user can fix.

They belong to trtdeploy's one error family (trtdeploy.errors is a leaf module with no
dependencies), so the CLI maps them like every other error: CalibrationError exits 1,
CalibrationUsageError (a bad option value, e.g. an unknown method or TensorRT version) exits 2.
"""

from __future__ import annotations

from trtdeploy.errors import TrtDeployError, UsageError


class CalibrationError(TrtDeployError):
    """A calibration input, cache or option is wrong. The message is one line naming the value
    and the fix."""

    exit_code = 1


class CalibrationUsageError(CalibrationError, UsageError):
    """A calibration option has a value no run could accept (exit code 2)."""

    exit_code = 2
