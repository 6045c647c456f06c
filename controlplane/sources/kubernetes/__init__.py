"""Kubernetes discovery: Services and EndpointSlices become model ports (see source.py)."""
