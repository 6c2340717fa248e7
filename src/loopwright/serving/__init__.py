"""Serving: the inference server, traffic routing, batching, the prediction log and batch scoring."""
