"""TAO front-end: spec parsing, .etlt headers, TAO models as trtdeploy deploy cards
(``import_tao`` writes one next to the ONNX; each architecture is a family, tao_trt.families).

Imports neither TensorFlow nor TensorRT.
"""

from tao_trt.etlt import EtltHeader, read_etlt_header
from tao_trt.facts import ARCHITECTURES, TaoFacts, facts_from_spec
from tao_trt.import_model import ImportedTao, import_tao
from tao_trt.importer import TaoModel, import_tao_model
from tao_trt.spec import SpecMessage, load_spec, parse_proto_text, parse_yaml

__all__ = [
    "ARCHITECTURES",
    "EtltHeader",
    "ImportedTao",
    "SpecMessage",
    "TaoFacts",
    "TaoModel",
    "facts_from_spec",
    "import_tao",
    "import_tao_model",
    "load_spec",
    "parse_proto_text",
    "parse_yaml",
    "read_etlt_header",
]
