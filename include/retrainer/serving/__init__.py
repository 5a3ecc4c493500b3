"""Serving: the model store TensorFlow Serving reads, the export into it, the model server with
its batching, metrics and request contract, and the check after each deploy."""
