"""sgdlab's version, in a module of its own so that recording it (`store.provenance`) does not
import the package's public API."""

__version__ = "0.1.0"
