"""IDX files, the format of MNIST and Fashion-MNIST (LeCun et al., yann.lecun.com/exdb/mnist):
a magic number 0x00 0x00 <type> <ndim>, then ndim sizes as big-endian uint32, then the
values big-endian in row-major order. Read from `.gz` or plain files.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from ..errors import UserError

# type byte → numpy dtype (big-endian)
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes, what: str = "IDX data") -> np.ndarray:
    """The array an IDX byte string holds; a one-line UserError when the bytes are not IDX."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise UserError(f"{what}: not an IDX file (magic {data[:4].hex() or 'missing'})")
    dtype, ndim = np.dtype(IDX_TYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserError(f"{what}: IDX header cut short ({len(data)} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise UserError(f"{what}: IDX shape {shape} needs {expected} bytes, the file has {len(data)}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: Path, ndim: int, type_byte: int = 0x08) -> np.ndarray:
    """The array in IDX file `path`, which must have `ndim` axes of type `type_byte`
    (0x08: unsigned bytes, as for images and labels)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc})") from None
    if len(data) >= 4 and data[:2] == b"\0\0" and (data[2], data[3]) != (type_byte, ndim):
        raise UserError(
            f"{path}: IDX magic {data[:4].hex()}, expected "
            f"{bytes((0, 0, type_byte, ndim)).hex()} ({ndim}-d, type {type_byte:#04x})"
        )
    return parse_idx(data, str(path))
