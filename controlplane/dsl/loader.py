"""Load route files into one model, or raise ConfigError with every problem at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path as FsPath

from pydantic import ValidationError

from controlplane import model as m
from controlplane.dsl.convert import build_alerts, build_listener, build_service, host_name
from controlplane.dsl.locate import problems_from_validation
from controlplane.dsl.policy import AddressPolicy
from controlplane.dsl.schema import DocumentSpec
from controlplane.dsl.schema_routes import ListenerSpec, RouteSpec
from controlplane.dsl.semantic import Checker, FileDoc
from controlplane.dsl.yamltext import read_yaml
from controlplane.errors import ConfigError, Problem

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Route files above this size are refused before parsing."""


def load_files(paths: Iterable[str], policy: AddressPolicy | None = None) -> m.Model:
    """Read and validate `paths` (files, or directories of *.yaml / *.yml files) as one config."""
    texts: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for source in _expand(paths):
        text, problem = _read(source)
        if problem:
            problems.append(problem)
        else:
            texts.append((source, text))
    if problems:
        raise ConfigError(problems)
    return load_texts(texts, policy)


def load_texts(
    texts: Iterable[tuple[str, str]], policy: AddressPolicy | None = None, namespaces: Mapping[str, str] | None = None
) -> m.Model:
    """Validate (source name, YAML text) pairs as one config; raise ConfigError on any problem.

    `namespaces` confines some sources (RouteTable objects) to one Kubernetes namespace each.
    """
    docs: list[FileDoc] = []
    problems: list[Problem] = []
    for source, text in sorted(texts):
        doc, found = _parse(source, text)
        problems.extend(found)
        if doc is not None:
            docs.append(doc)
    if not problems:
        problems = Checker(docs, policy or AddressPolicy(), namespaces or {}).run()
    if problems:
        raise ConfigError(problems)
    return _build(docs)


def _parse(source: str, text: str) -> tuple[FileDoc | None, list[Problem]]:
    """Shape-check one file; YAML-level problems (e.g. duplicate keys) do not hide schema ones."""
    if _too_large(text):  # texts from Kubernetes or tests, not read by `_read`, are bounded too
        return None, [_too_large_problem(source)]
    located = read_yaml(text, source)
    value = {} if located.value is None else located.value
    if not isinstance(value, dict):
        line, col = located.values.get((), (1, 1))
        wrong = Problem(source, line, col, "", "a route file is a mapping with listeners and services")
        return None, located.problems or [wrong]
    try:
        spec = DocumentSpec.model_validate(value)
    except ValidationError as exc:
        # A value the YAML reader already refused (a number too long) is not reported twice.
        seen = {(p.line, p.column, p.field) for p in located.problems}
        schema = problems_from_validation(exc, DocumentSpec, located, source)
        return None, [*located.problems, *(p for p in schema if (p.line, p.column, p.field) not in seen)]
    return (None if located.problems else FileDoc(source, located, spec)), located.problems


def _build(docs: list[FileDoc]) -> m.Model:
    listeners: list[m.Listener] = []
    services: list[m.Service] = []
    origins: dict[str, m.Origin] = {}
    for doc in docs:
        for i, spec in enumerate(doc.spec.listeners):
            listeners.append(build_listener(spec))
            origins[f"listener/{spec.name}"] = m.Origin(doc.source, doc.located.position(("listeners", i))[0])
            origins.update(_route_origins(doc, i, spec))
        for name, service_spec in doc.spec.services.items():
            services.append(build_service(name, service_spec))
            origins[f"service/{name}"] = m.Origin(doc.source, doc.located.position(("services", name), key=True)[0])
    return m.Model(
        listeners=tuple(sorted(listeners, key=lambda x: x.name)),
        services=tuple(sorted(services, key=lambda x: x.name)),
        alerts=next((build_alerts(d.spec.alerts) for d in docs if d.spec.alerts is not None), m.AlertRules()),
        origins=origins,
    )


def _route_origins(doc: FileDoc, index: int, spec: ListenerSpec) -> dict[str, m.Origin]:
    """`route/LISTENER/HOST/N` (N counts from 0 in the host's routes) -> where that route starts."""
    at: tuple[str | int, ...] = ("listeners", index)
    hosts: list[tuple[str, tuple[str | int, ...], list[RouteSpec]]] = []
    if spec.routes is not None:
        hosts.append((spec.name, (*at, "routes"), spec.routes))
    for j, host in enumerate(spec.hosts or []):
        hosts.append((host_name(host), (*at, "hosts", j, "routes"), host.routes))
    return {
        f"route/{spec.name}/{name}/{k}": m.Origin(doc.source, doc.located.position((*path, k))[0])
        for name, path, routes in hosts
        for k in range(len(routes))
    }


def _expand(paths: Iterable[str]) -> list[str]:
    """Files as given; directories expanded to their *.yaml and *.yml files, sorted."""
    found: list[str] = []
    for path in paths:
        p = FsPath(path)
        if p.is_dir():
            found.extend(sorted(str(f) for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file()))
        else:
            found.append(path)
    return found


def _read(source: str) -> tuple[str, Problem | None]:
    try:
        path = FsPath(source)
        if path.stat().st_size > MAX_FILE_BYTES:
            return "", _too_large_problem(source)
        data = path.read_bytes()
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return "", Problem(source, 0, 0, "", f"cannot read: {not_utf8(data, exc)}")
    except OSError as exc:
        return "", Problem(source, 0, 0, "", f"cannot read: {exc.strerror or exc}")


def not_utf8(data: bytes, exc: UnicodeDecodeError) -> str:
    """Where `data` stops being UTF-8, as an editor shows it (Python's own message names a codec)."""
    before = data[: exc.start]
    line, column = before.count(b"\n") + 1, exc.start - (before.rfind(b"\n") + 1) + 1
    return f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column {column}"


def _too_large(text: str) -> bool:
    """Whether `text` is over MAX_FILE_BYTES in UTF-8 (encoded only when its length leaves a doubt)."""
    if len(text) <= MAX_FILE_BYTES // 4:
        return False
    return len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES


def _too_large_problem(source: str) -> Problem:
    return Problem(source, 0, 0, "", f"file is larger than {MAX_FILE_BYTES} bytes")
