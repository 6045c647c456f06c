"""Checkpoints: round trip with identical versions; damage is detected, never served."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controlplane.cache.checkpoint import FILE_NAME, Checkpoint, CheckpointError, load, save
from tests.xds_harness import services_yaml, snapshot_of


def saved(tmp_path: Path) -> Checkpoint:
    checkpoint = Checkpoint(
        groups={"": snapshot_of(services_yaml("a", "b")), "edge": snapshot_of(services_yaml("a"))},
        written_at=1_800_000_000.0,
        inputs={"routes.yaml": "abc"},
    )
    save(tmp_path, checkpoint)
    return checkpoint


def test_round_trip_keeps_every_version(tmp_path: Path) -> None:
    original = saved(tmp_path)
    restored = load(tmp_path)
    assert restored is not None
    assert {g: s.version for g, s in restored.groups.items()} == {g: s.version for g, s in original.groups.items()}
    for group, snapshot in original.groups.items():
        for type_url, resources in snapshot.types.items():
            assert restored.groups[group].types[type_url].resources.keys() == resources.resources.keys()
    assert (restored.inputs, restored.written_at) == (original.inputs, original.written_at)


def test_no_checkpoint_is_none(tmp_path: Path) -> None:
    assert load(tmp_path) is None


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: text[: len(text) // 2], id="truncated"),
        pytest.param(
            lambda text: text.replace('"written_at": 1800000000.0', '"written_at": 1800000001.0'), id="edited"
        ),
        pytest.param(lambda text: "", id="empty"),
        pytest.param(lambda text: json.dumps({"sha256": "x"}), id="wrong-checksum"),
    ],
)
def test_damage_is_detected(tmp_path: Path, damage: object) -> None:
    saved(tmp_path)
    path = tmp_path / FILE_NAME
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")  # type: ignore[operator]
    with pytest.raises(CheckpointError):
        load(tmp_path)


def test_a_leftover_temporary_file_is_harmless(tmp_path: Path) -> None:
    saved(tmp_path)
    (tmp_path / f".{FILE_NAME}.tmp").write_text("half a write", encoding="utf-8")
    assert load(tmp_path) is not None
