"""Name → factory tables. Every model, dataset, optimizer, loss, probe and experiment is
registered by name in exactly one place, so the config, the CLI and `sgdlab list` agree."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Generic, Iterator, TypeVar

from .errors import ConfigError, quote

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def registered_option(value: T | None, key: str, entry: str) -> T:
    """An option a registered entry reads, which resolution (`sgdlab.build.resolve`) has filled
    from the entry's defaults: `value` itself, typed without its None, or a ConfigError naming
    `key` (e.g. "model.width") when a config reaches `entry` unresolved."""
    if value is None:
        raise ConfigError(
            f"{key}: unset in the config given to {entry} (build from a resolved config, "
            f"sgdlab.build.resolve, and register every option an entry reads)"
        )
    return value


class OptionsView:
    """A resolved config section as a registered entry reads it: each option the subclass
    annotates, typed without the `None` that resolution (`sgdlab.build.resolve`) replaces by
    the entry's default, and a ConfigError naming it (`registered_option`) if it is still unset.

    An option is declared once, as its field of the config schema (`sgdlab.config.schema`:
    type, range, help). A view restates only the field's type without None, one line per option
    (`widths: tuple[int, ...]`), and gets a property for it whose docstring is the schema's
    help; `tests/test_option_views.py` checks every annotation against the schema and that every
    option an entry registers is in its view. So adding an option is: the schema field, the
    view's one line, and the `options=` default of each entry that reads it.
    """

    schema: ClassVar[type]  # the config section's dataclass
    section: ClassVar[str]  # its key in a config ("model")
    kind: ClassVar[str]  # what its entries are called ("model")

    def __init__(self, cfg: Any):
        self.cfg = cfg

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        helps = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls.schema)}
        for name, hint in vars(cls).get("__annotations__", {}).items():
            if "ClassVar" in str(hint) or name in vars(cls):
                continue
            setattr(cls, name, _option_property(name, helps.get(name) or name))

    @property
    def name(self) -> str:
        """The registered name of the entry."""
        return self.cfg.name

    def option(self, name: str) -> Any:
        """Option `name` of the section, which resolution must have filled."""
        return registered_option(
            getattr(self.cfg, name), f"{self.section}.{name}", f"{self.kind} {self.cfg.name!r}"
        )


def _option_property(name: str, doc: str) -> property:
    def read(self: OptionsView) -> Any:
        return self.option(name)

    return property(read, doc=doc)


@dataclass(frozen=True)
class Entry:
    """One registered name.

    Attributes:
        name: the name configs and the CLI use.
        factory: what builds it (a model constructor, a dataset loader, a probe class, …).
        help: the one-line description `sgdlab list` shows.
        options: the config fields this entry reads, with its defaults; the other optional
            fields of its config section must stay unset (`build.fill_options`).
        extra: anything else a table keeps per entry (e.g. an optimizer's forced `sampler`,
            the `paper` an experiment reproduces).
    """

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
        """A decorator registering its function or class as `name` (registering a name twice
        is a ValueError); extra keyword arguments are kept in the entry's `extra`."""

        def decorate(factory: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, factory, help, dict(options or {}), extra)
            return factory

        return decorate

    def get(self, name: str, key: str | None = None) -> Entry:
        """The entry of `name`; an unknown name is a ConfigError naming the config `key` and
        listing the known names."""
        if name not in self._entries:
            where = f"{key}: " if key else ""
            raise ConfigError(f"{where}{quote(name)} is not one of {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())
