"""Checks that span fields and files: references, duplicates, policy combinations, addresses.

Pydantic has already checked each object's shape; these rules need the whole configuration.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from controlplane.dsl.counts import object_count_problems, total_count_problems
from controlplane.dsl.policy import AddressPolicy
from controlplane.dsl.schema import DocumentSpec
from controlplane.dsl.schema_routes import ListenerSpec, RouteSpec
from controlplane.dsl.schema_services import ServiceSpec
from controlplane.dsl.service_rules import service_problems
from controlplane.dsl.yamltext import Located, Path, format_path
from controlplane.errors import Problem
from controlplane.model import KubernetesRef

_DOMAIN = re.compile(r"(\*|\*[.-][a-z0-9.-]+|[a-z0-9.-]+[.-]\*|[a-z0-9.-]+)")


@dataclass(frozen=True)
class FileDoc:
    """One parsed, shape-valid route file."""

    source: str
    located: Located
    spec: DocumentSpec


@dataclass
class Checker:
    """Collects every cross-cutting problem in a set of files."""

    docs: list[FileDoc]
    policy: AddressPolicy
    namespaces: Mapping[str, str] = field(default_factory=dict)
    """Source -> the one Kubernetes namespace its routes and services may use (RouteTables)."""
    problems: list[Problem] = field(default_factory=list)

    def run(self) -> list[Problem]:
        """All problems found, in no particular order."""
        self._check_counts()
        services = self._collect_services()
        self._check_listener_names()
        self._check_single_alerts_block()
        for doc, path, listener in self._listeners():
            self._check_listener(doc, path, listener, services)
        for doc, path, service in services.values():
            self._check_service(doc, path, service)
        return self.problems

    def report(self, doc: FileDoc, path: Path, message: str, *, key: bool = False) -> None:
        """Record a problem at `path` of `doc` (as far as the file has that path)."""
        line, col = doc.located.position(path, key=key)
        self.problems.append(Problem(doc.source, line, col, format_path(doc.located.resolve(path)), message))

    def _check_counts(self) -> None:
        """The count limits (limits.py): per list in each file, then over all files together."""
        for doc in self.docs:
            for path, message in object_count_problems(doc.spec):
                self.report(doc, path, message)
        for index, path, message in total_count_problems([doc.spec for doc in self.docs]):
            self.report(self.docs[index], path, message, key=path[0] == "services" and len(path) == 2)

    def _where(self, doc: FileDoc, path: Path, *, key: bool = False) -> str:
        line, _ = doc.located.position(path, key=key)
        return f"{doc.source}:{line}"

    def _listeners(self) -> Iterator[tuple[FileDoc, Path, ListenerSpec]]:
        for doc in self.docs:
            for i, listener in enumerate(doc.spec.listeners):
                yield doc, ("listeners", i), listener

    def _collect_services(self) -> dict[str, tuple[FileDoc, Path, ServiceSpec]]:
        found: dict[str, tuple[FileDoc, Path, ServiceSpec]] = {}
        for doc in self.docs:
            for name, service in doc.spec.services.items():
                path: Path = ("services", name)
                if name in found:
                    first = self._where(found[name][0], found[name][1], key=True)
                    self.report(doc, path, f"service '{name}' is already defined at {first}", key=True)
                    continue
                found[name] = (doc, path, service)
        return found

    def _check_single_alerts_block(self) -> None:
        with_alerts = [doc for doc in self.docs if doc.spec.alerts is not None]
        for doc in with_alerts[1:]:
            first = self._where(with_alerts[0], ("alerts",), key=True)
            self.report(doc, ("alerts",), f"alerts are already defined at {first}", key=True)

    def _check_listener_names(self) -> None:
        seen: dict[str, str] = {}
        bound: list[tuple[ListenerSpec, str]] = []
        for doc, path, listener in self._listeners():
            if listener.name in seen:
                self.report(
                    doc,
                    (*path, "name"),
                    f"listener '{listener.name}' is already defined at {seen[listener.name]}",
                )
            seen.setdefault(listener.name, self._where(doc, path))
            for other, where in bound:
                if _same_socket(listener, other):
                    self.report(
                        doc,
                        (*path, "port"),
                        f"port {listener.port} is already used by listener "
                        f"'{other.name}' at {where} for the same Envoys",
                    )
            bound.append((listener, self._where(doc, path)))

    def _check_listener(self, doc: FileDoc, path: Path, listener: ListenerSpec, services: Mapping[str, object]) -> None:
        self._check_domains(doc, path, listener)
        for routes_path, routes in _route_lists(listener):
            base = (*path, *routes_path)
            for j, route in enumerate(routes):
                self._check_route(doc, (*base, j), route, services)
            self._check_route_names(doc, base, routes)

    def _check_domains(self, doc: FileDoc, path: Path, listener: ListenerSpec) -> None:
        owners: dict[str, int] = {}
        names: dict[str, bool] = {}
        for i, host in enumerate(listener.hosts or []):
            name = host.name or min(d.lower() for d in host.domains)
            # Two unnamed hosts share a name only when they share a domain, reported below.
            if name in names and (host.name or names[name]):
                self.report(doc, (*path, "hosts", i), f"host name '{name}' is used twice in this listener")
            names.setdefault(name, bool(host.name))
            for j, domain in enumerate(host.domains):
                where = (*path, "hosts", i, "domains", j)
                invalid = _domain_problem(domain)
                if invalid:
                    self.report(doc, where, invalid)
                elif domain.lower() in owners:
                    self.report(doc, where, f"domain {domain!r} already belongs to hosts[{owners[domain.lower()]}]")
                owners.setdefault(domain.lower(), i)

    def _check_route(self, doc: FileDoc, path: Path, route: RouteSpec, services: Mapping[str, object]) -> None:
        self._check_targets(doc, (*path, "to"), [t.service for t in route.to or []], services)
        self._check_targets(doc, (*path, "mirror"), [m.service for m in route.mirror or []], services)
        if route.rewrite and route.rewrite.prefix is not None and route.match.prefix is None:
            self.report(doc, (*path, "rewrite", "prefix"), "a prefix rewrite needs a prefix match")
        if route.redirect and route.redirect.prefix is not None and route.match.prefix is None:
            self.report(doc, (*path, "redirect", "prefix"), "a prefix redirect needs a prefix match")

    def _check_targets(self, doc: FileDoc, path: Path, names: list[str], services: Mapping[str, object]) -> None:
        """Each name must be a service, listed once (Envoy would split or mirror twice)."""
        first: dict[str, int] = {}
        hint = " (add up the weights)" if path[-1] == "to" else ""
        for i, name in enumerate(names):
            self._check_reference(doc, (*path, i, "service"), name, services)
            if name in first:
                where = f"{path[-1]}[{first[name]}]"
                self.report(
                    doc, (*path, i, "service"), f"service '{name}' is already listed at {where}: list it once{hint}"
                )
            first.setdefault(name, i)

    def _check_reference(self, doc: FileDoc, path: Path, name: str, services: Mapping[str, object]) -> None:
        ref = KubernetesRef.parse(name)
        if ref is not None:  # NAMESPACE/NAME:PORT targets a Kubernetes Service port directly
            self._check_namespace(doc, path, ref.namespace)
            return
        if name in services:
            return
        close = difflib.get_close_matches(name, sorted(services), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        self.report(doc, path, f"unknown service '{name}'{hint}")

    def _check_route_names(self, doc: FileDoc, base: Path, routes: list[RouteSpec]) -> None:
        seen: set[str] = set()
        for j, route in enumerate(routes):
            if route.name and route.name in seen:
                self.report(doc, (*base, j, "name"), f"route name '{route.name}' is used twice in this host")
            if route.name:
                seen.add(route.name)

    def _check_service(self, doc: FileDoc, path: Path, service: ServiceSpec) -> None:
        for sub_path, message in service_problems(service, self.policy):
            self.report(doc, (*path, *sub_path), message)
        if service.kubernetes is not None:
            self._check_namespace(doc, (*path, "kubernetes", "namespace"), service.kubernetes.namespace)

    def _check_namespace(self, doc: FileDoc, path: Path, namespace: str) -> None:
        """A document confined to a namespace (a RouteTable) reaches only Services in it."""
        own = self.namespaces.get(doc.source)
        if own is not None and namespace != own:
            self.report(doc, path, f"this RouteTable is in namespace '{own}': it cannot use Services in '{namespace}'")


def _domain_problem(domain: str) -> str | None:
    """Why `domain` cannot be a virtual host domain, or None when it can."""
    if _DOMAIN.fullmatch(domain.lower()):
        return None
    host, _, port = domain.rpartition(":")
    if port.isascii() and port.isdigit() and _DOMAIN.fullmatch(host.lower()):
        return f"domain {domain!r} has a port: write {host!r} (ports in the Host header are ignored when matching)"
    return (
        f"invalid domain {domain!r}: use a host name such as example.com, optionally with one leading or trailing '*'"
    )


def _same_socket(a: ListenerSpec, b: ListenerSpec) -> bool:
    """Whether two listeners would bind the same port on one Envoy."""
    if a.port != b.port or not _addresses_overlap(a.address, b.address):
        return False
    return not a.nodes or not b.nodes or bool(set(a.nodes) & set(b.nodes))


def _addresses_overlap(a: str, b: str) -> bool:
    """Equal addresses, or a wildcard and an address of the same IP version.

    Envoy binds `::` with IPV6_V6ONLY (its `ipv4_compat` defaults to false), so on Linux a `::`
    listener takes the port for IPv6 only and `0.0.0.0` (or 127.0.0.1) may use it too.
    """
    if a == b:
        return True
    first, second = ipaddress.ip_address(a), ipaddress.ip_address(b)
    return first.version == second.version and (first.is_unspecified or second.is_unspecified)


def _route_lists(listener: ListenerSpec) -> Iterator[tuple[Path, list[RouteSpec]]]:
    """(path from the listener, routes) for the shorthand `routes` or each of `hosts`."""
    if listener.routes is not None:
        yield ("routes",), listener.routes
    for i, host in enumerate(listener.hosts or []):
        yield ("hosts", i, "routes"), host.routes
