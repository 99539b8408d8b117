"""Errors a user can act on. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from pathlib import Path

QUOTE_LIMIT = 200  # characters of a user's value an error message repeats


class UserError(Exception):
    """Bad input: a config, a path, a dataset that is not there. Never a bug in sgdlab."""


class ConfigError(UserError):
    """A config value is unknown, of the wrong type or out of range."""


class DamagedFile(UserError):
    """A file sgdlab wrote (a run's summary, metrics or checkpoint, a sweep's index, a
    reproduction's claims, a dataset cache) is missing a part, cannot be parsed or holds
    something it never writes. `path` is the file, `problem` what is wrong with it.

    The message names both and what to do: `sgdlab resume` or running the producing command
    again rebuilds what can be rebuilt."""

    def __init__(self, path: str | Path, problem: str, todo: str = ""):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: damaged ({problem})" + (f"; {todo}" if todo else ""))


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`repr(value)` for an error message, cut to `limit` characters with the length of what
    was left out, so that a huge value (a 50 MB string, a list of millions) gives a readable
    line.

    >>> quote("x" * 1000, limit=12)
    "'xxxxxxxxxx… (1,002 characters)"
    >>> quote([1, 2])
    '[1, 2]'
    """
    if isinstance(value, (list, tuple, dict, set)) and len(value) > limit:
        return f"{type(value).__name__} of {len(value):,} items"
    return shorten(repr(value), limit)


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` cut to `limit` characters with the length of what was left out (a key, a name)."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text):,} characters)"


def clip(message: str, limit: int = 5 * QUOTE_LIMIT) -> str:
    """One line of at most about `limit` characters: newlines become spaces and a longer
    message keeps its start and end (a last guard for values no `quote` shortened)."""
    line = " ".join(message.splitlines())
    if len(line) <= limit:
        return line
    keep = limit // 2
    return f"{line[:keep]} … ({len(line) - 2 * keep:,} characters left out) … {line[-keep:]}"
