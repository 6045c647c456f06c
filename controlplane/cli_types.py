"""Argument types of the command line: text -> value, or argparse's error with the parser's message."""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Callable
from typing import TypeVar

from controlplane.bootstrap import parse_xds_addresses
from controlplane.dsl.policy import Network
from controlplane.dsl.types import parse_duration
from controlplane.overload import parse_max_heap

T = TypeVar("T")


def from_parser(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type from a parser that raises ValueError: its message is what the user sees."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _network(text: str) -> Network:
    return ipaddress.ip_network(text, strict=False)


def _seconds(text: str) -> float:
    return parse_duration(text) / 1000


network = from_parser(_network)
duration = from_parser(_seconds)
"""A DSL duration (`150ms`, `5s`) in seconds."""
xds_addresses = from_parser(parse_xds_addresses)
max_heap = from_parser(parse_max_heap)


def count(text: str) -> int:
    """A whole number of at least 0, for limits where 0 means "none"."""
    if not (text.isascii() and text.isdigit()):  # isdigit() alone takes "²", which int() refuses
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def positive(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value
