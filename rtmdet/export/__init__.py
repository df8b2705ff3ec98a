"""Deployment graphs: the ONNX export of the raw forward pass or of forward + in-graph decode
(``onnx``) and the onnxruntime parity check that every exported graph must pass (``parity``).
"""
