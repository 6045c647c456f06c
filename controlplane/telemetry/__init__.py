"""What the control plane measures of itself and of its Envoys, for /metrics and the status page."""
