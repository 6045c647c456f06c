"""The project's own gRPC APIs, generated from protos/ (run `make protos` after editing a .proto)."""
