"""The xDS protocol: sans-I/O stream state (sotw.py, delta.py, session.py) and grpc.aio servicers."""
