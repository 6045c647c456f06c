"""The status page: one server-rendered HTML page, no scripts, no CDN, refreshed every 5 seconds.

Everything shown comes from the same view as the JSON API; every value is escaped.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from typing import Any

from controlplane.status.states import TYPES, type_state
from controlplane.translate.common import short_type

REFRESH_SECONDS = 5
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2430;background:#f6f7f9}
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.6rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.35rem .6rem;text-align:left;
border-bottom:1px solid #e3e6ea;vertical-align:top}th{background:#eef0f3;font-weight:600}
.ok{color:#146c2e}.bad{color:#b3261e;font-weight:600}.warn{color:#8a5a00}.muted{color:#6b7280}
.pill{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:.8rem;background:#e3e6ea}
.alert{background:#fde8e7;border-left:4px solid #b3261e;padding:.4rem .7rem;margin:.3rem 0}
code{font-size:.85rem}svg{vertical-align:middle}
"""
STATE_CLASS = {"SYNCED": "ok", "NACKED": "bad", "STALE": "warn", "NOT SENT": "muted"}


def e(value: Any) -> str:
    return html.escape(str(value))


def render(
    config: dict[str, Any],
    nodes: list[dict[str, Any]],
    services: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    now: float,
) -> str:
    """The whole page."""
    body = "".join(
        [
            _header(config, now),
            _alerts(alerts),
            _nodes(nodes, now),
            _services(services),
            _config(config, now),
        ]
    )
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>controlplane</title>"
        f"<meta http-equiv=refresh content={REFRESH_SECONDS}><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def _header(config: dict[str, Any], now: float) -> str:
    state = config.get("serving") or "nothing served yet"
    problems = config.get("problems") or []
    badge = (
        f"<span class=bad>{len(problems)} problem(s) in the last edit</span>"
        if problems
        else "<span class=ok>valid</span>"
    )
    return (
        f"<h1>controlplane</h1><div class=muted>config <code>{e(config.get('version') or '-')}</code> "
        f"&middot; {e(state)} &middot; {badge} &middot; {e(_security(config))} "
        f"&middot; {time.strftime('%H:%M:%S', time.localtime(now))}</div>"
    )


def _security(config: dict[str, Any]) -> str:
    """`xDS: mTLS, node authorization on` (or plaintext, off)."""
    security = config.get("xds_security") or {}
    transport, authorization = security.get("transport", "plaintext"), security.get("node_authorization", "off")
    return f"xDS: {transport}, node authorization {authorization}"


def _alerts(alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        return "<h2>Alerts</h2><p class=ok id=alerts>No alert firing.</p>"
    items = "".join(
        f"<div class=alert><b>{e(a['name'])}</b> {e(_labels(a['labels']))}: {e(a['summary'])}{_silenced(a)}</div>"
        for a in alerts
    )
    return f"<h2>Alerts</h2><div id=alerts>{items}</div>"


def _silenced(alert: dict[str, Any]) -> str:
    until = alert.get("silenced_until")
    if not until:
        return ""
    return f" <span class=muted>(silenced until {time.strftime('%Y-%m-%d %H:%M', time.localtime(until))})</span>"


def _labels(labels: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _nodes(nodes: list[dict[str, Any]], now: float) -> str:
    head = (
        "<tr><th>Envoy</th><th>Group</th><th>Identity</th><th>Version</th><th>API</th>"
        + "".join(f"<th>{short}</th>" for short, _ in TYPES)
        + "<th>Connected</th><th>Last NACK</th></tr>"
    )
    rows = []
    for node in sorted(nodes, key=lambda n: n["node_id"]):
        by_type = {short_type(t["type_url"]): t for t in node["types"]}
        cells = "".join(_type_cell(by_type.get(long), type_state(by_type.get(long))) for _, long in TYPES)
        nack = next((t["last_nack"]["message"] for t in node["types"] if t["last_nack"]), "")
        rows.append(
            f"<tr><td>{e(node['node_id'])}</td><td>{e(node['node_cluster'])}</td>"
            f"<td>{e(node.get('identity', '-'))}</td>"
            f"<td>{e(node['envoy_version'] or '-')}</td><td>{e(node['api'])}</td>{cells}"
            f"<td>{int(now - node['connected_at'])}s</td><td class=bad>{e(nack)}</td></tr>"
        )
    table = (
        f"<table id=nodes>{head}{''.join(rows)}</table>" if rows else "<p class=muted id=nodes>No Envoy connected.</p>"
    )
    return f"<h2>Envoys ({len(rows)})</h2>{table}"


def _type_cell(state: dict[str, Any] | None, shown: str) -> str:
    version = (state or {}).get("acked_version", "")[:8]
    return f"<td class={STATE_CLASS[shown]}>{e(shown)}<br><code class=muted>{e(version)}</code></td>"


def _services(services: list[dict[str, Any]]) -> str:
    head = (
        "<tr><th>Service</th><th>Endpoints</th><th>Requests/s</th><th>Errors</th><th>p50</th><th>p99</th>"
        "<th>Last 5 min</th></tr>"
    )
    rows = "".join(_service_row(s) + _endpoint_rows(s) for s in services)
    return f"<h2>Services ({len(services)})</h2><table id=services>{head}{rows}</table>"


def _service_row(service: dict[str, Any]) -> str:
    t = service["traffic"]
    error_class = "bad" if t["error_rate"] > 0.05 else "ok"
    endpoints = (
        "<br>".join(
            f"<code>{e(ep['address'])}</code>"
            + (" <span class=pill>backup</span>" if ep["priority"] else "")
            + (" <span class=pill>draining</span>" if ep["draining"] else "")
            for ep in service["endpoints"]
        )
        or "<span class=muted>none</span>"
    )
    latency = [_ms(t["p50_ms"]), _ms(t["p99_ms"])]
    chart = (
        sparkline([p["rate"] for p in service["series"]], "#2563eb")
        + " "
        + sparkline([p["error_rate"] for p in service["series"]], "#b3261e")
    )
    return (
        f"<tr data-service={e(service['name'])}><td><b>{e(service['name'])}</b><br>"
        f"<span class=muted>{e(service['lb'])}</span></td><td>{endpoints}</td><td>{t['rate']:.1f}</td>"
        f"<td class={error_class}>{t['error_rate']:.1%}</td><td>{latency[0]}</td><td>{latency[1]}</td>"
        f"<td>{chart}</td></tr>"
    )


def _endpoint_rows(service: dict[str, Any]) -> str:
    """Under a service: each endpoint's traffic and health as the Envoys pushed them (last minute)."""
    if not service["endpoints"]:
        return ""
    head = "<tr><th>Endpoint</th><th>Health (Envoy's view)</th><th>Requests/s</th><th>Requests</th><th>5xx</th></tr>"
    rows = "".join(
        f"<tr data-endpoint={e(ep['address'])}><td><code>{e(ep['address'])}</code></td>{_health_cell(ep)}"
        f"<td>{ep['rate']:.1f}</td><td>{ep['requests']}</td>"
        f"<td class={'bad' if ep['errors'] else 'ok'}>{ep['errors']} ({ep['error_rate']:.1%})</td></tr>"
        for ep in service["endpoints"]
    )
    return (
        f"<tr class=endpoints data-endpoints-of={e(service['name'])}><td></td>"
        f"<td colspan=6><table>{head}{rows}</table></td></tr>"
    )


def _health_cell(endpoint: dict[str, Any]) -> str:
    if endpoint["health"] == "unknown":
        return "<td class=muted>not reported yet</td>"
    if endpoint["health"] == "healthy":
        return f"<td class=ok>healthy in {len(endpoint['healthy_in'])} Envoy(s)</td>"
    where = ", ".join(endpoint["unhealthy_in"])
    return f"<td class=bad>unhealthy in {e(where)}: {e('; '.join(endpoint['causes']))}</td>"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def sparkline(values: Iterable[float], color: str, width: int = 120, height: int = 24) -> str:
    """A tiny inline SVG line chart of `values` (scaled to their maximum)."""
    points = list(values)
    if not points:
        return ""
    top = max(points) or 1.0
    step = width / max(1, len(points) - 1)
    path = " ".join(f"{i * step:.1f},{height - (v / top) * (height - 2) - 1:.1f}" for i, v in enumerate(points))
    return (
        f"<svg width={width} height={height} viewBox='0 0 {width} {height}' role=img>"
        f"<polyline fill=none stroke='{color}' stroke-width=1.5 points='{path}'/></svg>"
    )


def _config(config: dict[str, Any], now: float) -> str:
    problems = "".join(f"<li><code>{e(p)}</code></li>" for p in config.get("problems") or [])
    held = "".join(
        f"<li>{e(q['type'])} <b>{e(q['name'])}</b> ({e(q['source'])}): {e(q['message'])}</li>"
        for q in config.get("quarantined") or []
    )
    history = "".join(
        f"<li><code>{e(h['version'])}</code> {int(now - h['at'])}s ago</li>"
        for h in reversed((config.get("history") or [])[-8:])
    )
    sources = ", ".join(e(s) for s in config.get("sources") or []) or "-"
    age = config.get("source_age")
    sources += f" <span class=muted>(checked {age:.0f}s ago)</span>" if age is not None else ""
    return (
        f"<h2>Configuration</h2><p>Sources: {sources}</p>"
        + _kubernetes(config.get("kubernetes"))
        + (
            f"<p class=bad>Invalid edit, still serving the last good config:</p><ul id=problems>{problems}</ul>"
            if problems
            else ""
        )
        + (f"<p class=bad>Quarantined after a NACK:</p><ul id=quarantine>{held}</ul>" if held else "")
        + f"<p>Recent versions:</p><ul id=history>{history}</ul>"
    )


def _kubernetes(report: dict[str, Any] | None) -> str:
    """One line on the Kubernetes source: synced or not, how fresh, and what it refused."""
    if not report:
        return ""
    age = report.get("sync_age")
    fresh = f"last heard {age:.0f}s ago" if age is not None else "never heard from"
    state = "synced" if report.get("synced") else "<span class=bad>not synced yet</span>"
    errors = "".join(f"<li class=bad>{e(x)}</li>" for x in report.get("errors") or [])
    refused = "".join(f"<li>{e(x)}</li>" for x in report.get("refused") or [])
    return (
        f"<p id=kubernetes>Kubernetes: {state}, {fresh}; {report.get('ports', 0)} Service ports "
        f"<span class=muted>({e(report.get('endpoint_slices') or '-')})</span></p>"
        + (f"<ul>{errors}</ul>" if errors else "")
        + (f"<p>Left out:</p><ul>{refused}</ul>" if refused else "")
    )
