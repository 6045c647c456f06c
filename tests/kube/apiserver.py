"""A real etcd and kube-apiserver on loopback, for the Kubernetes integration tests.

The binaries come from tests/kube/build.py (Debian's kubernetes 1.20.2 sources, cached outside
the work tree). The API server trusts a static token, serves a self-signed certificate, and has
the EndpointSliceTerminatingCondition gate on, so `serving` and `terminating` survive a write.
There is no controller-manager: tests write Services and EndpointSlices themselves.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from controlplane.sources.kubernetes.client import KubeClient, KubeError, load_configuration
from tests.e2e import free_port, wait_for
from tests.kube.build import default_cache, ready

SA_NAMESPACE = "controlplane-system"
SERVICE_ACCOUNT = f"system:serviceaccount:{SA_NAMESPACE}:controlplane"


def binaries() -> Path | None:
    """The folder with kube-apiserver, etcd and etcdctl, or None when not built."""
    cache = Path(os.environ.get("CONTROLPLANE_KUBE_CACHE", default_cache()))
    return cache / "bin" if ready(cache) else None


class ApiServer:
    """etcd plus kube-apiserver; `restart_apiserver` keeps etcd, so resource versions persist."""

    def __init__(self, bin_dir: Path, tmp: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.bin, self.tmp, self.extra_args = bin_dir, tmp, extra_args
        self.port = free_port()
        self.etcd_port, self.peer_port = free_port(), free_port()
        self.token = secrets.token_hex(16)
        self.etcd: subprocess.Popen[bytes] | None = None
        self.apiserver: subprocess.Popen[bytes] | None = None
        self.kubeconfig = tmp / "kubeconfig"
        """An administrator's (group system:masters)."""
        self.sa_token = secrets.token_hex(16)
        self.sa_kubeconfig = tmp / "kubeconfig-controlplane"
        """The control plane's service account: only what RBAC grants it (with RBAC on)."""
        self._client: KubeClient | None = None

    def start(self) -> ApiServer:
        self._credentials()
        self.etcd = self._spawn("etcd", self._etcd_args())
        wait_for(lambda: _http_ok(f"http://127.0.0.1:{self.etcd_port}/health"), 20, "etcd")
        self.start_apiserver()
        return self

    def start_apiserver(self) -> None:
        self.apiserver = self._spawn("kube-apiserver", self._apiserver_args())
        wait_for(self._healthy, 60, "kube-apiserver /readyz", every=0.2)

    def stop_apiserver(self) -> None:
        """SIGKILL the API server alone (etcd keeps the data)."""
        _stop(self.apiserver, kill=True)
        self.apiserver = None

    def restart_apiserver(self) -> None:
        self.stop_apiserver()
        self.start_apiserver()

    def stop(self) -> None:
        _stop(self.apiserver)
        _stop(self.etcd)

    @property
    def client(self) -> KubeClient:
        if self._client is None:
            self._client = KubeClient(load_configuration(str(self.kubeconfig)))
        return self._client

    def _healthy(self) -> bool:
        try:
            self.client.get("/api/v1/namespaces/default")
            return True
        except (KubeError, ValueError):
            return False

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - the process owns it
        return subprocess.Popen([str(self.bin / name), *args], stdout=log, stderr=subprocess.STDOUT)

    def _etcd_args(self) -> list[str]:
        client, peer = f"http://127.0.0.1:{self.etcd_port}", f"http://127.0.0.1:{self.peer_port}"
        return [
            f"--data-dir={self.tmp / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        return [
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            "--insecure-port=0",
            f"--cert-dir={self.tmp / 'certs'}",
            f"--tls-cert-file={self.tmp / 'serving.crt'}",
            f"--tls-private-key-file={self.tmp / 'serving.key'}",
            f"--token-auth-file={self.tmp / 'tokens.csv'}",
            f"--service-account-key-file={self.tmp / 'sa.key'}",
            f"--service-account-signing-key-file={self.tmp / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--feature-gates=EndpointSliceTerminatingCondition=true",
            "--enable-priority-and-fairness=false",
            "--endpoint-reconciler-type=none",
            "--v=0",
            *self.extra_args,
            # A list flag: repeating it would add to the list, so the default goes only when unset.
            *(
                []
                if any(a.startswith("--authorization-mode") for a in self.extra_args)
                else ["--authorization-mode=AlwaysAllow"]
            ),
        ]

    def _credentials(self) -> None:
        """Serving certificate, service-account key, token file and a kubeconfig using them."""
        (self.tmp / "tokens.csv").write_text(
            f'{self.token},controlplane-test,1,"system:masters"\n'
            f'{self.sa_token},{SERVICE_ACCOUNT},2,"system:serviceaccounts,system:serviceaccounts:{SA_NAMESPACE}"\n'
        )
        self.kubeconfig.write_text(_kubeconfig(self.port, self.tmp / "serving.crt", self.token))
        self.sa_kubeconfig.write_text(_kubeconfig(self.port, self.tmp / "serving.crt", self.sa_token))
        if (self.tmp / "serving.crt").exists():
            return
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", str(self.tmp / "serving.key"), "-out", str(self.tmp / "serving.crt")],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(["openssl", "genrsa", "-out", str(self.tmp / "sa.key"), "2048"], check=True, capture_output=True)


def _kubeconfig(port: int, ca: Path, token: str) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {ca}
users:
- name: test
  user:
    token: {token}
contexts:
- name: test
  context: {{cluster: test, user: test}}
current-context: test
"""


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as response:
        return response.status == 200


def _stop(process: subprocess.Popen[bytes] | None, kill: bool = False) -> None:
    if process is None or process.poll() is not None:
        return
    if kill:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


# --- writing objects, as a controller-manager (or kubectl) would -------------------------------


def apply(client: KubeClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create `body` in the collection at `path`, or replace it when it exists."""
    name = body["metadata"]["name"]
    try:
        return client.create(path, body)
    except KubeError as exc:
        if exc.status != 409:
            raise
    current = client.get(f"{path}/{name}")
    body = {**body, "metadata": {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
    if "spec" in body and "clusterIP" in current.get("spec", {}):  # immutable once allocated
        kept = {k: current["spec"][k] for k in ("clusterIP", "clusterIPs") if k in current["spec"]}
        body["spec"] = {**body["spec"], **kept}
    return client.replace(f"{path}/{name}", body)


def namespace(client: KubeClient, name: str) -> None:
    apply(client, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def service(client: KubeClient, ns: str, name: str, ports: list[dict[str, Any]], **spec: Any) -> None:
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"ports": ports, **spec}}  # fmt: skip
    apply(client, f"/api/v1/namespaces/{ns}/services", body)


def endpoint_slice(
    client: KubeClient,
    ns: str,
    name: str,
    service_name: str,
    endpoints: list[dict[str, Any]],
    ports: list[dict[str, Any]],
    version: str = "v1beta1",
) -> None:
    """An EndpointSlice as the endpoint-slice controller would write it."""
    body = {
        "apiVersion": f"discovery.k8s.io/{version}",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }
    apply(client, f"/apis/discovery.k8s.io/{version}/namespaces/{ns}/endpointslices", body)
