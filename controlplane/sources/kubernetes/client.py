"""A thin JSON client over the official `kubernetes` package: its config loading, auth and TLS.

The generated typed APIs are not used: they lack `discovery.k8s.io/v1beta1` (still what a 1.20
cluster serves) and custom resources, and hide the watch stream's resource versions. Plain paths
and JSON give one code path for every kind and version.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import urllib3

if TYPE_CHECKING:
    from kubernetes import client as k8s

JSON = dict[str, Any]

CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 30.0


class KubeError(Exception):
    """The API server answered with an error status, or could not be reached (`status` 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status


def _kubernetes() -> Any:
    """The official client, imported on first use: it costs a process ~11 MB of memory and 0.1 s
    to load, which `serve` without `--kubernetes` (files, registry API) should not pay."""
    return importlib.import_module("kubernetes")


def load_configuration(kubeconfig: str | None) -> k8s.Configuration:
    """`--kubeconfig` when given; otherwise in-cluster config, then the default kubeconfig."""
    kubernetes = _kubernetes()
    k8s_config = kubernetes.config
    configuration = kubernetes.client.Configuration()
    if kubeconfig:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        return configuration
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(client_configuration=configuration)
    return configuration


class KubeClient:
    """GET, stream, create, replace and patch by path; JSON in, JSON out."""

    def __init__(self, configuration: k8s.Configuration) -> None:
        self.api = _kubernetes().client.ApiClient(configuration)

    def get(self, path: str, query: dict[str, str] | None = None) -> JSON:
        """One object or list."""
        return self._json("GET", path, query)

    def create(self, path: str, body: JSON) -> JSON:
        return self._json("POST", path, body=body)

    def replace(self, path: str, body: JSON) -> JSON:
        return self._json("PUT", path, body=body)

    def delete(self, path: str) -> JSON:
        return self._json("DELETE", path)

    def patch_merge(self, path: str, body: JSON) -> JSON:
        """A JSON merge patch (status subresources, labels)."""
        return self._json("PATCH", path, body=body, content_type="application/merge-patch+json")

    def stream(self, path: str, query: dict[str, str], read_timeout: float) -> Iterator[JSON]:
        """The events of a watch, one JSON object per line, until the server ends the stream."""
        response = self._send("GET", path, query, None, "", (CONNECT_TIMEOUT, read_timeout))
        buffered = b""
        try:
            for chunk in response.response.stream(65536, decode_content=True):
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeError(0, f"watch {path} broke: {exc}") from exc
        finally:
            response.response.release_conn()

    def _json(self, method: str, path: str, query: dict[str, str] | None = None, **kwargs: Any) -> JSON:
        response = self._send(
            method, path, query, kwargs.get("body"), kwargs.get("content_type", ""), (CONNECT_TIMEOUT, REQUEST_TIMEOUT)
        )
        data: JSON = json.loads(response.read() or b"{}")
        return data

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None,
        body: JSON | None,
        content_type: str,
        timeout: tuple[float, float],
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        request = self.api.param_serialize(
            method, path, query_params=list((query or {}).items()), header_params=headers, body=body,
            auth_settings=["BearerToken"],
        )  # fmt: skip
        try:
            response = self.api.call_api(*request[:4], _request_timeout=timeout)
        except _kubernetes().client.ApiException as exc:
            raise KubeError(exc.status or 0, _reason(exc.body) or str(exc.reason)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeError(0, f"{method} {path}: {exc}") from exc
        if response.status >= 400:
            raise KubeError(response.status, _reason(response.read()))
        return response


def _reason(body: Any) -> str:
    """The `message` of a Kubernetes Status body, or the body itself."""
    try:
        return str(json.loads(body).get("message", body))
    except (TypeError, ValueError, AttributeError):
        return str(body)
