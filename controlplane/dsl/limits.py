"""Input limits of the route DSL: how much one configuration may hold, and how large its values may be.

Every limit is checked with a problem that names the file, line, field and the limit. The
counts leave ample room above the largest mesh the project benchmarks (bench/s3_translate.py:
10,000 services of 10 endpoints each and 10,000 routes in one host), and stop a generated or
hostile input from making every Envoy hold, and the control plane translate, an unbounded
configuration. The file size and YAML limits are in `loader.MAX_FILE_BYTES`,
`yamltext.MAX_NODES` and `yamltext.MAX_DEPTH`; the regex limit is `types.RE2_MAX_PROGRAM_SIZE`.
"""

from __future__ import annotations

MAX_LISTENERS = 1_000
"""Listeners in all files together: each one is a bound port on every Envoy of its node groups."""

MAX_ROUTES_PER_HOST = 20_000
"""Routes of one virtual host: Envoy tries them one by one, in order, for every request.

Twice the 10,000 routes that the benchmarks put in one host.
"""

MAX_ROUTES_PER_LISTENER = 50_000
"""Routes of one listener, all hosts together: they form one RouteConfiguration, one xDS resource."""

MAX_ROUTES = 100_000
"""Routes in all files together: ten times the benchmarked 10,000."""

MAX_SERVICES = 50_000
"""Services in all files together (each is a Cluster on the Envoys that use it): five times 10,000."""

MAX_ENDPOINTS_PER_SERVICE = 5_000
"""Endpoints listed under one service. Larger services get their endpoints from the registry or
Kubernetes, which do not go through route files."""

MAX_ENDPOINTS = 500_000
"""Endpoints listed in all files together: five times the benchmarked 10,000 x 10."""

MAX_DOMAINS_PER_HOST = 1_000
"""Domains of one virtual host."""

MAX_DOMAINS_PER_LISTENER = 50_000
"""Domains of one listener, all hosts together (Envoy keeps them in one lookup table per listener)."""

MAX_HEADER_MATCHERS = 32
"""Header matches of one route: every one is evaluated on every request the route is tried for."""

MAX_QUERY_MATCHERS = 32
"""Query parameter matches of one route (evaluated like header matches)."""

MAX_HEADER_LIST = 100
"""Entries of one header list: `set`, `add`, `remove`, and a CORS policy's `allow_methods`,
`allow_headers` and `expose_headers`. Envoy accepts at most 1,000 header additions per route or
host; `set` and `add` together stay well below that."""

MAX_HEADER_NAME_BYTES = 256
"""Length of a header name. No standard or common header comes close; a longer one is a mistake
(a value pasted where a name belongs)."""

MAX_HEADER_VALUE_BYTES = 8_192
"""Length of a header value (UTF-8 bytes), and of a CORS origin. Envoy's API allows 16 KiB, but
many servers refuse a header line above 8 KiB (nginx's default buffer), so a longer value would
break requests rather than configure them."""

MAX_QUERY_NAME_BYTES = 1_024
"""Length of a query parameter name: the most Envoy's QueryParameterMatcher accepts."""

MAX_DURATION_MS = 365 * 24 * 3_600_000
"""Longest duration (a year). Longer ones mean "never" and are better written by leaving the field
out; without a bound, `99999999999h` overflows Envoy's Duration range and the whole update is
rejected."""

MAX_UINT32 = 2**32 - 1
"""Largest count Envoy's API can carry in the uint32 fields that rate limits, circuit breakers and
outlier detection use."""
