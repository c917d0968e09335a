"""Two-stage TFOD detectors (Faster R-CNN): the TensorFlow cut (``tf_cut``, loads TensorFlow
inside its functions) and the ONNX passes that rebuild the glue between the two networks
(``passes``)."""
