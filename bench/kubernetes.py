"""EndpointSlice write -> ACK: from writing a slice to a real kube-apiserver until N real Envoys ACK.

Each write adds or removes one endpoint of `shop/users` (alternating), so the EDS version every
Envoy must reach alternates too. The clock starts before the write request is sent (the API
server's own write is included) and stops at the last Envoy's ACK as stamped by the control
plane's /api/nodes (same wall clock). Needs the binaries of tests/kube/build.py.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from bench.report import latencies, write
from controlplane.translate import ENDPOINT_TYPE
from tests.e2e import ControlPlane, Envoy, Upstream, free_port, listener, request, stopping, wait_for
from tests.kube.apiserver import ApiServer, binaries, endpoint_slice, namespace, service


def eds_acks(cp: ControlPlane, count: int) -> tuple[set[str], float] | None:
    """(the EDS versions the Envoys ACKed, when the last ACK came), once all `count` are connected."""
    nodes = cp.get("/api/nodes")
    acked = [(t["acked_version"], t["acked_at"]) for n in nodes for t in n["types"] if t["type_url"] == ENDPOINT_TYPE]
    if len(acked) != count:
        return None
    return {v for v, _ in acked}, max(at for _, at in acked)


def write_slice(apiserver: ApiServer, upstreams: list[Upstream]) -> None:
    endpoints = [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]
    for upstream in upstreams:
        ports = [{"name": "http", "port": upstream.port, "protocol": "TCP"}]
        endpoint_slice(apiserver.client, "shop", f"users-{upstream.name}", "users", endpoints, ports)


def remove_slice(apiserver: ApiServer, upstream: Upstream) -> None:
    apiserver.client.delete(f"/apis/discovery.k8s.io/v1beta1/namespaces/shop/endpointslices/users-{upstream.name}")


def run(envoys: int, writes: int) -> dict[str, object]:
    bin_dir = binaries()
    if bin_dir is None:
        raise SystemExit("kube-apiserver is not built: python3 tests/kube/build.py")
    tmp = Path(tempfile.mkdtemp(prefix="bench-kubernetes-"))
    apiserver = ApiServer(bin_dir, tmp).start()
    upstreams = [Upstream(f"u{i}").start() for i in range(2)]
    namespace(apiserver.client, "shop")
    service(apiserver.client, "shop", "users", [{"name": "http", "port": 80}])
    write_slice(apiserver, upstreams[:1])
    port = free_port()
    args = ("--kubernetes", "--kubeconfig", str(apiserver.kubeconfig), "--log-level", "info")
    cp = ControlPlane(listener(port, "      - match: {prefix: /}\n        to: shop/users:http\n"), tmp, args).start()
    fleet = [Envoy(tmp, cp.xds_port, f"envoy-{i}", "sotw").start() for i in range(envoys)]
    samples: list[float] = []
    with stopping(apiserver, *upstreams, cp, *fleet):
        wait_for(lambda: request(port)[1] == "u0", 60, "traffic")
        for n in range(writes):
            before = wait_for(lambda: eds_acks(cp, envoys), 10, "all Envoys connected")[0]
            time.sleep(random.uniform(0.05, 0.15))
            start = time.time()
            if n % 2 == 0:
                write_slice(apiserver, upstreams[1:])
            else:
                remove_slice(apiserver, upstreams[1])

            def converged(old: set[str] = before) -> float | None:
                found = eds_acks(cp, envoys)
                return found[1] if found and len(found[0]) == 1 and found[0] != old else None

            samples.append((wait_for(converged, 10, f"write {n} acked", every=0.01) - start) * 1000)
    return {"envoys": envoys, "writes": writes, **latencies(samples)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--envoys", type=int, default=10)
    parser.add_argument("--writes", type=int, default=50)
    args = parser.parse_args(argv)
    result = run(args.envoys, args.writes)
    rows = [
        (f"EndpointSlice write -> all {args.envoys} Envoys ACK, p50", f"{result['p50_ms']:.1f} ms"),
        ("p99", f"{result['p99_ms']:.1f} ms"),
        ("max", f"{result['max_ms']:.1f} ms"),
    ]
    path = write("kubernetes", result, rows)
    sys.stdout.write(path.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
