"""Every source of randomness is a named generator derived from the run seed, so adding a new
consumer of randomness never shifts the streams of the existing ones."""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, name: str) -> int:
    """A 63-bit seed for stream `name` of run `seed` (stable across versions and platforms)."""
    digest = hashlib.sha256(f"sgdlab:{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(seed: int, name: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded with derive_seed(seed, name): stream `name` of run
    `seed`, independent of every other stream."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(seed, name))
    return gen
