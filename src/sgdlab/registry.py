"""Name → factory tables. Every model, dataset, optimizer, loss, probe and experiment is
registered by name in exactly one place, so the config, the CLI and `sgdlab list` agree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., Any]
    help: str
    # Config fields this entry reads, with its defaults; other optional fields must stay unset.
    options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[F]):
    """A named table of factories: `@models.register("mlp", help=...)`."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str, *, help: str, options: dict[str, Any] | None = None, **extra: Any
    ) -> Callable[[F], F]:
        def decorate(factory: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, factory, help, dict(options or {}), extra)
            return factory

        return decorate

    def get(self, name: str, key: str | None = None) -> Entry:
        if name not in self._entries:
            where = f"{key}: " if key else ""
            raise ConfigError(f"{where}{name!r} is not one of {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())
