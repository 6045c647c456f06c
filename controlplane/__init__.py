"""controlplane: an xDS control plane for Envoy, built for a highly available API gateway."""

__version__ = "0.1.0"
