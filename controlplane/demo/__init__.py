"""`controlplane demo`: replicas, gateways, upstreams and traffic on loopback (see run.py)."""
