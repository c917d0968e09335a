"""Build TensorRT engines (TensorRT 10, 11 or TensorRT-RTX) with a provenance sidecar.

Plain functions for notebooks and tests; the CLI (`trtdeploy build-engine`, `trtdeploy
inspect`) calls the same ones. Importing this package does not import TensorRT.
"""

from trtdeploy.engine.builder import BuildError, BuildOptions, BuildResult, build_engine
from trtdeploy.engine.capabilities import Capabilities, capabilities_for
from trtdeploy.engine.inspect import inspect_engine
from trtdeploy.engine.naming import default_engine_path, engine_file_name, sidecar_path
from trtdeploy.engine.sidecar import Sidecar, Verdict, check_usable, load_sidecar

__all__ = [
    "BuildError",
    "BuildOptions",
    "BuildResult",
    "Capabilities",
    "Sidecar",
    "Verdict",
    "build_engine",
    "capabilities_for",
    "check_usable",
    "default_engine_path",
    "engine_file_name",
    "inspect_engine",
    "load_sidecar",
    "sidecar_path",
]
