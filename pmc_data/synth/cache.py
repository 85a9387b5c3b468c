"""The LLM completion cache: content-addressed, on disk, shared by processes, crash-proof.

A key is the sha256 of everything that decides a completion (see :func:`cache_key`); the value
is the completion's text and token counts. Entries are written as soon as a completion
arrives, so a rerun after a crash pays for nothing twice:

>>> import tempfile
>>> folder = tempfile.TemporaryDirectory()
>>> cache = Cache(folder.name)
>>> key = cache_key({"model": "m", "messages": [{"role": "user", "content": "Hi"}]})
>>> key[:12]
'3b13ba4d5238'
>>> cache.put(key, Entry("Hello.", 3, 2, "stop"))
>>> found = cache.get_many([key, "0" * 64])
>>> list(found) == [key], found[key]
(True, Entry(text='Hello.', prompt_tokens=3, completion_tokens=2, finish_reason='stop'))

The store is one SQLite table in write-ahead-log mode: readers never wait for writers,
several worker processes may write at once (SQLite serialises them, each waits up to a
minute), and a transaction is all or nothing, so a killed process never leaves half an entry.
A batched ``SELECT ... IN (...)`` serves well over 20,000 hits a second.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import orjson

# SQLite before 3.32 allowed at most 999 parameters in one statement.
_CHUNK = 900
_INSERT = "INSERT OR IGNORE INTO completions VALUES (?, ?, ?, ?, ?, ?)"


class Entry(NamedTuple):
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


def cache_key(fields: dict) -> str:
    """The sha256 hex digest of ``fields`` as canonical JSON (sorted keys, no spaces).

    >>> cache_key({"b": 1, "a": [0.7, "é"]}) == cache_key({"a": [0.7, "é"], "b": 1})
    True
    """
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


def cache_root(cache_dir: str | None = None) -> Path:
    """The pmc-data cache folder: ``cache_dir``, else ``$PMC_DATA_CACHE``, else
    ``~/.cache/pmc-data``."""
    chosen = cache_dir or os.environ.get("PMC_DATA_CACHE") or Path.home() / ".cache" / "pmc-data"
    return Path(chosen).expanduser()


class Cache:
    """Completions by key in ``<folder>/llm/completions.sqlite``."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / "llm" / "completions.sqlite"
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        # The OpenAI backend may write from its event loop's thread while the caller reads.
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[str]) -> dict[str, Entry]:
        """The entries of those ``keys`` that are cached."""
        keys = list(keys)
        found: dict[str, Entry] = {}
        with self._lock:
            connection = self._connect()
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                rows = connection.execute(
                    "SELECT key, text, prompt_tokens, completion_tokens, finish_reason "
                    f"FROM completions WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                for key, *entry in rows:
                    found[key] = Entry(*entry)
        return found

    def put(self, key: str, entry: Entry) -> None:
        """Store one entry before returning; a key already there keeps its first value."""
        with self._lock:
            # One statement outside a transaction is a transaction of its own: all or nothing.
            self._connect().execute(_INSERT, (key, *entry, time.time()))

    def put_many(self, items: Iterable[tuple[str, Entry]]) -> None:
        """Store entries in one transaction; a key already there keeps its first value."""
        now = time.time()
        rows = [(key, *entry, now) for key, entry in items]
        with self._lock:
            connection = self._connect()
            # IMMEDIATE: take the write lock now (waiting for other processes), not midway.
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(_INSERT, rows)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return self._connect().execute("SELECT count(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __getstate__(self) -> dict:
        # A connection is neither picklable nor usable in another process.
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"].parent.parent)

    def _connect(self) -> sqlite3.Connection:
        # A connection inherited through fork belongs to the parent: open our own.
        if self._connection is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=60, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA busy_timeout = 60000")
            connection.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL survives a crashed process (not a power cut) and saves an
            # fsync per commit, which matters at hundreds of commits a second.
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, text TEXT NOT "
                "NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, "
                "finish_reason TEXT, created REAL NOT NULL) WITHOUT ROWID"
            )
            self._connection, self._pid = connection, os.getpid()
        return self._connection
