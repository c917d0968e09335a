"""Google AutoML EfficientDet (github.com/google/automl, efficientdet/) saved models.

``family`` registers the model family (TensorFlow-free: it reads the saved_model.pb with
``saved_model_proto``); ``convert`` freezes the export's ``predict`` signature (the raw class and
box heads) and converts it with the normalisation in front; ``reference`` decodes the raw heads
against AutoML's anchors in NumPy, for verify's TensorFlow side.
"""
