"""The probe table: each entry is a Probe subclass; its `options` are the keys of its
`[probes.NAME]` table with their defaults (types are checked against the defaults)."""

from ..registry import Registry
from .base import Probe

probes: Registry[type[Probe]] = Registry("probe")
