"""Allocator settings that keep a build's resident memory close to what it is using.

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
  for another: the system allocator's freed memory goes back with ``release_unused()``
  (``malloc_trim``).

Variables the user has set are left alone; worker processes inherit these settings.
"""

from __future__ import annotations

import os

SETTINGS = {
    # polars' bundled jemalloc (tikv-jemallocator reads the _RJEM_ prefix).
    "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0",
    "ARROW_DEFAULT_MEMORY_POOL": "system",
}


def configure() -> None:
    """Set the settings above unless set already; effective in libraries not yet imported."""
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)
