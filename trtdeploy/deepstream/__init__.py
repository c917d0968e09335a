"""DeepStream nvinfer configs: generate them from a deploy card and check existing ones.

Public API: ``gen_ds_config``, ``build_config``, ``check_ds_config``, ``validate``,
``DsOptions``, ``DsModelHints``, ``NvInferConfig``, ``read_config``, ``PARSERS``.
"""

from trtdeploy.deepstream.check import check_ds_config
from trtdeploy.deepstream.config import (
    NvInferConfig,
    read_config,
    render_ini,
    render_labels,
    render_yaml,
)
from trtdeploy.deepstream.generate import (
    DsConfigError,
    DsModelHints,
    DsOptions,
    build_config,
    gen_ds_config,
)
from trtdeploy.deepstream.parsers import DEFAULT_CUSTOM_LIB, PARSERS
from trtdeploy.deepstream.validate import ConfigView, Problem, validate

__all__ = [
    "DEFAULT_CUSTOM_LIB",
    "PARSERS",
    "ConfigView",
    "DsConfigError",
    "DsModelHints",
    "DsOptions",
    "NvInferConfig",
    "Problem",
    "build_config",
    "check_ds_config",
    "gen_ds_config",
    "read_config",
    "render_ini",
    "render_labels",
    "render_yaml",
    "validate",
]
