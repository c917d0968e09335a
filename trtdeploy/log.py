"""The package logger. Library modules log through it and never configure logging."""

from __future__ import annotations

import logging

LOGGER_NAME = "trtdeploy"


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the package logger or a child of it (``get_logger("engine")``)."""
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")
