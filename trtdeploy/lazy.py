"""Lazy imports of heavy optional modules, failing with one message that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from trtdeploy.errors import MissingDependencyError

# Which extra of the trtdeploy distribution provides each heavy module.
_EXTRAS = {
    "tensorflow": "tf",
    "tf2onnx": "tf",
    "tensorrt": None,  # not on PyPI for every platform: comes with TensorRT / DeepStream / JetPack
    "tensorrt_rtx": "rtx",
    "modelopt": "quant",
}


def require(module: str) -> ModuleType:
    """Import ``module`` now, or raise MissingDependencyError with how to get it."""
    try:
        imported = importlib.import_module(module)
        if getattr(imported, "__file__", None) is None and module.split(".")[0] in _EXTRAS:
            # An empty namespace folder, e.g. left in site-packages by the tensorrt-stubs wheel.
            raise ImportError(f"only an empty '{module}' folder (type stubs?) was found, not the module")
        return imported
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top)
        how = (
            f"pip install 'trtdeploy[{extra}]'"
            if extra
            else "install TensorRT (DeepStream/JetPack ship it; on x86 see NVIDIA's TensorRT install guide)"
        )
        raise MissingDependencyError(f"this needs the Python module '{module}' ({exc}); {how}") from exc
