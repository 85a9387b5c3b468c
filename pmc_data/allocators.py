"""Settings that keep a build's resident memory close to what it is using.

::

    from pmc_data import allocators

    allocators.configure()  # before polars and pyarrow are first imported
    import polars

Both of the core libraries keep freed memory for reuse, which a build that moves from phase
to phase (units, then the global steps' tables, then the writing) pays as a peak that only
grows. Measured on the de-duplication benchmark (50,000 documents, two workers): 390 MiB
with the libraries' defaults, ~300 MiB with these, at the same speed.

- polars allocates through jemalloc, which returns freed pages to the system only after ten
  seconds: ``dirty_decay_ms:0,muzzy_decay_ms:0`` returns them at once.
- pyarrow's default pool (mimalloc) keeps a heap per thread that one thread cannot release
  for another: the system allocator's freed memory goes back with :func:`release`.

Variables the user has set are left alone; worker processes inherit these settings.
"""

from __future__ import annotations

import importlib.abc
import os
import sys

SETTINGS = {
    # polars' bundled jemalloc (tikv-jemallocator reads the _RJEM_ prefix).
    "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0",
    "ARROW_DEFAULT_MEMORY_POOL": "system",
}


def configure() -> None:
    """Set the settings above unless set already; effective in libraries not yet imported."""
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)


def release() -> None:
    """Give the C heap's free pages back to the system, at the end of a phase.

    With the system pool this is glibc's ``malloc_trim(0)``: it also trims what Python's
    objects, NumPy and the other threads' arenas freed, which glibc keeps otherwise. Between
    the build's phases it lowers the resident memory the next phase starts from (by 30 MiB
    before the plots of the de-duplication benchmark). A no-op elsewhere.
    """
    import pyarrow as pa  # here: configure() must run before pyarrow's first import

    pa.default_memory_pool().release_unused()


class _NoPandas(importlib.abc.MetaPathFinder):
    """An import finder under which ``import pandas`` fails."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def pyarrow_without_pandas() -> None:
    """Let pyarrow decide once, before its first use, that pandas is not installed.

    ``pa.array`` and ``pa.table`` on Python lists first ask whether the data is a pandas
    object, and to answer, import pandas when it is installed (``datasets`` installs it):
    45 MiB in every build process, for objects a build never makes. Under this setting
    pyarrow's own pandas conversions (``to_pandas``, ``from_pandas``) still import pandas
    when called; only pandas objects given to ``pa.array`` or ``pa.table`` go unrecognised,
    so it is for processes this package runs (the CLI's builds and their workers), not for
    a library user's session. No effect when pandas or pyarrow's check came first.
    """
    if "pandas" in sys.modules:
        return
    import pyarrow as pa  # here: configure() must run before pyarrow's first import

    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([None])  # pyarrow's first pandas check: it records "no pandas"
    finally:
        sys.meta_path.remove(finder)
