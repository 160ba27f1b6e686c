"""The project's error base: every error a user can cause or fix, said in one sentence that names the file,
key or value at fault. The CLI catches `GeofmError` once and prints it; anything else is a bug."""

from __future__ import annotations


class GeofmError(Exception):
    """A failure the user can act on; its message is one sentence naming what is at fault."""


class UnknownKeyError(GeofmError, KeyError, ValueError):
    """A name looked up in a registry that does not hold it."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class MissingInputError(GeofmError, FileNotFoundError):
    """A stage's input is not there yet (run the stage before it)."""
