# The control plane image: `controlplane serve ...` (compose.yaml, deploy/kubernetes/) and
# `controlplane bootstrap ...` (the gateway's init container in deploy/kubernetes/gateway.yaml).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Installed from this repository's files (pip compiles the bytecode now: the root filesystem is
# read-only at run time in Kubernetes). The dependencies come from the package index.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controlplane ./controlplane
RUN pip install . && rm -rf /src

# A fixed numeric uid, so that Kubernetes' runAsNonRoot can verify it (deploy/kubernetes uses it).
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin controlplane
USER 10001:10001
WORKDIR /

# xDS (gRPC: ADS, registry, stats sink) and the status page (HTTP). `serve` binds 127.0.0.1 unless
# told otherwise: pass --xds-address 0.0.0.0:18000 --status-address 0.0.0.0:9000 in a container,
# with --tls-cert, --tls-key and --client-ca for mTLS, or --insecure for plaintext (docs/security.md).
EXPOSE 18000 9000
ENTRYPOINT ["controlplane"]
CMD ["--help"]
