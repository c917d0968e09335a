"""The one exception the calibration package raises for problems the user can fix.

It deliberately subclasses nothing from trtdeploy (this package depends on nothing of ours);
the trtdeploy CLI turns it into a one-line message and exit code 1.
"""

from __future__ import annotations


class CalibrationError(Exception):
    """A calibration input, cache or option is wrong. The message is one line naming the value
    and the fix."""

    exit_code = 1
