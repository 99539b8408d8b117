"""The reference table of every config key, as `sgdlab list config` prints it."""

from __future__ import annotations

import dataclasses

from .convert import to_dict
from .schema import Config, ProbesConfig


def field_help() -> list[tuple[str, str, str]]:
    """(dotted key, repr of its TOML default, help) for every field of `Config`, in order.

    Sections are walked into (`optim.schedule.period`); `probes.use` and `probes.options`
    are rows of their own. The help ends with "one of …" for fields with fixed choices.

    >>> field_help()[1]
    ('device', "'auto'", 'one of cpu, cuda, auto')
    """
    rows: list[tuple[str, str, str]] = []

    def walk(cls: type, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:  # every config field has a default (`opt` gives one)
                raise TypeError(f"config field {prefix}{f.name} has no default")
            if dataclasses.is_dataclass(default) and not isinstance(default, ProbesConfig):
                walk(type(default), f"{prefix}{f.name}.")
                continue
            meta = f.metadata
            text = meta.get("help", "")
            if meta.get("choices"):
                text = (text + "; " if text else "") + "one of " + ", ".join(meta["choices"])
            rows.append((f"{prefix}{f.name}", repr(to_dict(default)), text))

    walk(Config, "")
    return rows
