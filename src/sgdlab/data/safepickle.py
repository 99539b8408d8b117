"""Unpickling that can only rebuild numpy arrays.

The data pickles sgdlab reads (MNIST's mnist.pkl.gz, CIFAR-10's python batches) name three
globals — numpy's array `_reconstruct`, `ndarray` and `dtype` — plus plain containers, bytes
and numbers. Any other global (os.system, builtins.eval, ...) is refused before it is looked up,
so a tampered file cannot run code.
"""

from __future__ import annotations

import pickle
from typing import Any, Protocol

import numpy as np

from ..errors import UserError

# `_reconstruct` is taken from an array's own __reduce__, which works on numpy 1.x (where it
# lives in numpy.core.multiarray) and 2.x (numpy._core.multiarray) without importing the
# deprecated numpy.core alias.
_RECONSTRUCT = np.zeros(0).__reduce__()[0]

ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class Readable(Protocol):
    """What pickle reads from: a binary file, a GzipFile, a BytesIO."""

    def read(self, n: int, /) -> bytes:
        """Up to n bytes."""

    def readline(self) -> bytes:
        """The bytes up to and including the next newline."""


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle names a global outside ALLOWED."""


class NumpyOnlyUnpickler(pickle.Unpickler):
    """A pickle.Unpickler whose `find_class` admits only ALLOWED."""

    def find_class(self, module: str, name: str) -> Any:
        """The ALLOWED object for (module, name); ForbiddenGlobal for any other, before import."""
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(f"{module}.{name}") from None


def load(f: Readable, what: str) -> Any:
    """Unpickle `f` (Python 2 pickles too: their byte strings are read as latin-1, the encoding
    numpy expects for array data). `what` names the file in the one-line error."""
    try:
        return NumpyOnlyUnpickler(f, encoding="latin1").load()
    except ForbiddenGlobal as exc:
        raise UserError(
            f"{what}: refused to unpickle, it names the global {exc} (only numpy "
            f"arrays are allowed); the file is not what sgdlab expects"
        ) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        OSError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
    ) as exc:
        raise UserError(f"{what}: not a readable pickle ({type(exc).__name__}: {exc})") from None
