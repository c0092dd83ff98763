"""ONNX export (opset 17) of a trained checkpoint and the model manifest."""
