"""Sources produce model inputs; they know nothing about Envoy."""
