"""One lookup for every registry of names (tasks, networks, losses, schedules, ...), so every
"unknown X" error reads the same way and lists what is known."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from training.errors import UnknownKeyError

Value = TypeVar("Value")


def unknown_key_message(kind: str, key: object, known: Iterable[object]) -> str:
    """`unknown network 'dtp'; known: unet, linear, pup, mla, dpt`."""
    return f"unknown {kind} {key!r}; known: {', '.join(str(name) for name in known)}"


def lookup(kind: str, key: str, table: Mapping[str, Value]) -> Value:
    """`table[key]`, or an `UnknownKeyError` naming the kind, the key and the known keys."""
    try:
        return table[key]
    except (KeyError, TypeError):
        raise UnknownKeyError(unknown_key_message(kind, key, table)) from None
