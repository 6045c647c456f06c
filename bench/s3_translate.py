"""S3: full translation of N services x M endpoints and N routes, against the protobuf floor.

Measured: a cold `IncrementalTranslator.build` plus `Snapshot.from_resources` (every resource
built, serialized and hashed). Floor: the same resources built with one constructor call per
message and serialized (bench/floor.py), checked byte-identical. Best of a few runs each, so
other load on the machine disturbs the ratio little. The DSL load (YAML -> validated model) is
reported beside it: it is not translation, but a file edit pays it.
"""

from __future__ import annotations

from typing import Any

from bench import floor
from bench.common import Sizes, best_of, route_file
from bench.report import Row
from controlplane.cache import Snapshot
from controlplane.dsl import load_texts
from controlplane.translate import IncrementalTranslator


def run(sizes: Sizes) -> tuple[dict[str, Any], list[Row]]:
    services, endpoints = sizes.translate_services, sizes.translate_endpoints
    text = route_file(10_000, services, endpoints)
    load_s = best_of(1, lambda: load_texts([("routes.yaml", text)]))
    model = load_texts([("routes.yaml", text)])

    def translate() -> Snapshot:
        return Snapshot.from_resources(IncrementalTranslator().build(model, [""])[""])

    translate_s = best_of(sizes.translate_repeats, translate)
    snapshot = translate()
    messages = [r.message for t in snapshot.types.values() for r in t.resources.values()]
    plans = [floor.recipe(m) for m in messages]
    floor.check_same(messages, plans)
    floor_s = best_of(sizes.translate_repeats, lambda: floor.build_and_serialize(plans))

    translator = IncrementalTranslator()
    first = Snapshot.from_resources(translator.build(model, [""])[""])
    changed = load_texts([("routes.yaml", route_file(10_000, services, endpoints, extra={0: endpoints - 1}))])

    def one_change() -> None:
        Snapshot.from_resources(translator.build(changed, [""])[""], first)

    incremental_s = best_of(1, one_change)
    ratio = translate_s / floor_s
    size = f"{services:,} services x {endpoints} endpoints + {services:,} routes"
    rows = [
        Row(
            f"S3 full translation ({size})",
            f"{translate_s * 1000:.0f} ms",
            f"{floor_s * 1000:.0f} ms",
            "<= 1 s",
            translate_s <= 1,
        ),
        Row("S3 translation / protobuf floor", f"{ratio:.2f}x", "1x", "<= 2x", ratio <= 2),
        Row("S3 one endpoint change, incremental", f"{incremental_s * 1000:.1f} ms", "", "", None),
        Row("S3 DSL load of the same file (not translation)", f"{load_s * 1000:.0f} ms", "", "", None),
    ]
    result = {
        "services": services,
        "endpoints": endpoints,
        "resources": len(messages),
        "translate_s": translate_s,
        "floor_s": floor_s,
        "ratio": ratio,
        "incremental_s": incremental_s,
        "load_s": load_s,
    }
    return result, rows
