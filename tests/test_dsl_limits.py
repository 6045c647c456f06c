"""The count limits of the route DSL (controlplane/dsl/limits.py), tried with small values.

Files at the real limits would be tens of thousands of lines, so each test lowers one limit
with monkeypatch and checks the exact problem: file, line, field and the limit's name. The
single-value limits (header names and values, durations, counts Envoy holds in uint32, ...)
are in the tests/invalid corpus.
"""

from __future__ import annotations

import pytest

from bench.common import FULL
from controlplane.dsl import limits, load_texts
from controlplane.dsl.loader import MAX_FILE_BYTES
from controlplane.errors import ConfigError

SERVICES = """\
services:
  api:
    endpoints: [10.0.0.1:8080, 10.0.0.2:8080, 10.0.0.3:8080]
  web:
    endpoints: [10.0.1.1:8080]
"""

HOSTS = """\
listeners:
  - name: public
    port: 10000
    hosts:
      - domains: [a.example, b.example, c.example]
        routes:
          - match: {prefix: /a}
            to: api
          - match: {prefix: /b}
            to: api
          - match: {prefix: /}
            to: web
      - domains: [d.example]
        routes:
          - match:
              prefix: /
              query: {a: "1", b: "2", c: "3"}
            to: web
            response_headers:
              set: {x-a: "1", x-b: "2", x-c: "3"}
            cors:
              allow_origins: ["*"]
              allow_methods: [GET, PUT, POST]
"""

SHORTHAND = """\
listeners:
  - name: admin
    port: 10001
    routes:
      - match: {prefix: /a}
        to: api
      - match: {prefix: /}
        to: web
"""


def _problems(*texts: tuple[str, str]) -> list[str]:
    try:
        load_texts(list(texts))
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("limit", "value", "expected"),
    [
        pytest.param(
            "MAX_ROUTES_PER_HOST",
            2,
            "hosts.yaml:7:11: listeners[0].hosts[0].routes: 3 routes; at most 2 are allowed (limit: routes per host)",
            id="routes-per-host",
        ),
        pytest.param(
            "MAX_ROUTES_PER_LISTENER",
            3,
            "hosts.yaml:2:5: listeners[0]: 4 routes in this listener; at most 3 are allowed "
            "(limit: routes per listener)",
            id="routes-per-listener",
        ),
        pytest.param(
            "MAX_DOMAINS_PER_HOST",
            2,
            "hosts.yaml:5:18: listeners[0].hosts[0].domains: 3 domains; at most 2 are allowed "
            "(limit: domains per host)",
            id="domains-per-host",
        ),
        pytest.param(
            "MAX_DOMAINS_PER_LISTENER",
            3,
            "hosts.yaml:2:5: listeners[0]: 4 domains in this listener; at most 3 are allowed "
            "(limit: domains per listener)",
            id="domains-per-listener",
        ),
        pytest.param(
            "MAX_QUERY_MATCHERS",
            2,
            "hosts.yaml:17:22: listeners[0].hosts[1].routes[0].match.query: 3 query matches; at most 2 are allowed "
            "(limit: query matches per route)",
            id="query-matches",
        ),
        pytest.param(
            "MAX_ENDPOINTS_PER_SERVICE",
            2,
            "services.yaml:3:16: services.api.endpoints: 3 endpoints; at most 2 are allowed "
            "(limit: endpoints per service)",
            id="endpoints-per-service",
        ),
    ],
)
def test_a_list_over_its_limit_is_reported_where_it_is(
    monkeypatch: pytest.MonkeyPatch, limit: str, value: int, expected: str
) -> None:
    monkeypatch.setattr(limits, limit, value)
    assert _problems(("hosts.yaml", HOSTS), ("services.yaml", SERVICES)) == [expected]


def test_header_edits_and_cors_lists_count_as_header_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_HEADER_LIST", 2)
    rule = "at most 2 are allowed (limit: entries in one header list)"
    assert _problems(("hosts.yaml", HOSTS), ("services.yaml", SERVICES)) == [
        f"hosts.yaml:20:20: listeners[0].hosts[1].routes[0].response_headers.set: 3 entries; {rule}",
        f"hosts.yaml:23:30: listeners[0].hosts[1].routes[0].cors.allow_methods: 3 entries; {rule}",
    ]


@pytest.mark.parametrize(
    ("limit", "value", "expected"),
    [
        pytest.param(
            "MAX_LISTENERS",
            1,
            "shorthand.yaml:2:5: listeners[0]: 2 listeners in all files together; at most 1 are allowed "
            "(limit: listeners in total)",
            id="listeners",
        ),
        pytest.param(
            "MAX_ROUTES",
            5,
            "shorthand.yaml:7:9: listeners[0].routes[1]: 6 routes in all files together; at most 5 are allowed "
            "(limit: routes in total)",
            id="routes",
        ),
        pytest.param(
            "MAX_SERVICES",
            1,
            "services.yaml:4:3: services.web: 2 services in all files together; at most 1 are allowed "
            "(limit: services in total)",
            id="services",
        ),
        pytest.param(
            "MAX_ENDPOINTS",
            3,
            "services.yaml:5:17: services.web.endpoints[0]: 4 endpoints in all files together; at most 3 are "
            "allowed (limit: endpoints in total)",
            id="endpoints",
        ),
    ],
)
def test_a_total_over_its_limit_is_reported_at_the_first_item_beyond_it(
    monkeypatch: pytest.MonkeyPatch, limit: str, value: int, expected: str
) -> None:
    """Files count in the loader's order (sorted by name): the first item past the limit is named."""
    monkeypatch.setattr(limits, limit, value)
    files = (("hosts.yaml", HOSTS), ("services.yaml", SERVICES), ("shorthand.yaml", SHORTHAND))
    assert _problems(*files) == [expected]


def test_every_limit_is_met_exactly_without_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "MAX_ROUTES_PER_HOST": 3,
        "MAX_ROUTES_PER_LISTENER": 4,
        "MAX_DOMAINS_PER_HOST": 3,
        "MAX_DOMAINS_PER_LISTENER": 4,
        "MAX_QUERY_MATCHERS": 3,
        "MAX_HEADER_LIST": 3,
        "MAX_ENDPOINTS_PER_SERVICE": 3,
        "MAX_LISTENERS": 2,
        "MAX_ROUTES": 6,
        "MAX_SERVICES": 2,
        "MAX_ENDPOINTS": 4,
    }.items():
        monkeypatch.setattr(limits, name, value)
    assert _problems(("hosts.yaml", HOSTS), ("services.yaml", SERVICES), ("shorthand.yaml", SHORTHAND)) == []


def test_limits_leave_room_above_the_benchmarked_mesh() -> None:
    """bench S3: N services of M endpoints and N routes in one host, all in one file."""
    services, endpoints = FULL.translate_services, FULL.translate_endpoints
    assert 2 * services <= limits.MAX_ROUTES_PER_HOST
    assert 5 * services <= limits.MAX_ROUTES
    assert 5 * services <= limits.MAX_SERVICES
    assert 5 * services * endpoints <= limits.MAX_ENDPOINTS
    assert 100 * endpoints <= limits.MAX_ENDPOINTS_PER_SERVICE


def test_text_over_the_file_size_limit_is_refused_before_parsing() -> None:
    """Texts that do not come from files (Kubernetes RouteTables) have the same size limit."""
    text = "# " + "x" * MAX_FILE_BYTES + "\n"
    assert _problems(("routetable/default/big", text)) == [
        f"routetable/default/big:0:0: file is larger than {MAX_FILE_BYTES} bytes"
    ]


def test_size_limit_counts_utf8_bytes() -> None:
    text = "# " + "\u00e9" * (MAX_FILE_BYTES // 2) + "\n"
    assert len(text) < MAX_FILE_BYTES
    assert _problems(("wide.yaml", text)) == [f"wide.yaml:0:0: file is larger than {MAX_FILE_BYTES} bytes"]


def test_weights_of_a_split_add_up_to_at_most_uint32() -> None:
    """Envoy refuses weighted clusters whose weights add up to more than 2**32 - 1."""
    targets = ", ".join(f"{{service: s{i}, weight: 1000000}}" for i in range(4295))
    text = f"listeners: [{{name: a, port: 80, routes: [{{match: {{prefix: /}}, to: [{targets}]}}]}}]\n"
    assert _problems(("split.yaml", text)) == [
        "split.yaml:1:67: listeners[0].routes[0].to: the weights in 'to' add up to 4295000000; "
        "Envoy allows at most 4294967295"
    ]
