"""Finding, hashing and opening input files; shared by every reader.

Paths in manifests and rows are *display* paths, ``<input name>/<path inside the input>``,
so that no absolute or home path is ever written and moving the inputs keeps the fingerprint.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import zstandard

from pmc_data.registry import Reader, Unit

HASH_BLOCK = 8 << 20


def list_files(root: str | Path, suffixes: Iterable[str]) -> list[Path]:
    """Files under ``root`` (itself if a file) whose name ends with one of ``suffixes``, sorted
    by their path below ``root``.

    Hidden files and folders (``.work``, ``.git``) are skipped, and so are links to folders
    (never followed, as ``Path.rglob``). One ``os.scandir`` walk: a folder entry says
    whether it is a file without a ``stat`` per file, which matters for a folder of a
    million articles.
    """
    return [Path(path) for path in list_file_names(root, suffixes)]


def list_file_names(root: str | Path, suffixes: Iterable[str]) -> list[str]:
    """:func:`list_files` as strings (a ``Path`` costs four times the memory of its name)."""
    root = Path(root)
    if root.is_file():
        return [str(root)]
    if not root.is_dir():
        return []  # the readers say which input has no files
    suffixes = tuple(suffixes)
    found: list[str] = []
    folders = [str(root)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif entry.name.endswith(suffixes) and entry.is_file():
                    found.append(entry.path)
    start = len(str(root)) + len(os.sep)
    found.sort(key=lambda path: path[start:].replace(os.sep, "/"))
    return found


def display_path(input_name: str, root: str | Path, path: str | Path) -> str:
    """``docs/part-1.jsonl`` for ``path`` inside the input named ``docs`` rooted at ``root``."""
    root, path = Path(root), Path(path)
    inner = path.name if root.is_file() else path.relative_to(root).as_posix()
    return f"{input_name}/{inner}"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def file_entry(input_name: str, root: str | Path, path: str | Path) -> dict:
    """A manifest entry for one input file: display path, size and sha256."""
    return {
        "path": display_path(input_name, root, path),
        "bytes": Path(path).stat().st_size,
        "sha256": sha256_file(path),
    }


def describe_path(input_name: str, value: str) -> list[dict]:
    """Manifest entries for an input given as a path (every file in it) or a Hub id."""
    if not Path(value).exists():
        return [{"path": value}]
    return [file_entry(input_name, value, f) for f in list_files(value, ("",))]


def compression_of(path: str | Path) -> str | None:
    name = str(path)
    if name.endswith(".gz"):
        return "gzip"
    if name.endswith(".zst"):
        return "zstd"
    return None


def open_decompressed(path: str | Path) -> BinaryIO:
    """A binary stream of the file's content, decompressing ``.gz`` and ``.zst`` on the fly."""
    kind = compression_of(path)
    raw = open(path, "rb")  # noqa: SIM115 - the returned stream owns it
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        return io.BufferedReader(reader, buffer_size=1 << 20)
    return raw


def line_aligned_ranges(
    path: str | Path, unit_bytes: int, digest: hashlib._Hash | None = None
) -> list[tuple[int, int, int]]:
    """Split an uncompressed line file into ``(start, end, first_line)`` byte ranges.

    Each range ends just after a newline (or at the end of the file) and is at least
    ``unit_bytes`` long, so workers can read their range without seeing a partial line.
    A ``digest`` given is fed the file's bytes on the way (one read for hash and plan).

    ``line_aligned_ranges("three-lines.jsonl", unit_bytes=1 << 30)`` is ``[(0, 123, 1)]``
    for a 123-byte file.
    """
    size = Path(path).stat().st_size
    ranges: list[tuple[int, int, int]] = []
    start, first_line, lines = 0, 1, 0
    target = unit_bytes
    position = 0
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            if digest is not None:
                digest.update(block)
            offset = 0
            while position + len(block) > target:
                cut = block.find(b"\n", max(target - position, offset))
                if cut < 0:
                    break
                lines += block.count(b"\n", offset, cut + 1)
                end = position + cut + 1
                ranges.append((start, end, first_line))
                start, first_line = end, lines + 1
                offset = cut + 1
                target = end + unit_bytes
            lines += block.count(b"\n", offset)
            position += len(block)
    if start < size or not ranges:
        ranges.append((start, size, first_line))
    return ranges


class FileReader(Reader):
    """A reader of the files under an input path whose names end with ``suffixes``.

    It lists, hashes and (by default) plans one unit per file; readers override
    :meth:`plan` to split files further or pair them.
    """

    suffixes: tuple[str, ...] = ()

    def files(self, path: str, start: int = 0, end: int | None = None) -> list[Path]:
        """The input's files (``[start:end]`` of them), listed once per reader: units of
        loose files are ranges of this list, and listing the folder again for each unit
        made reading quadratic. Kept as names, made ``Path`` objects when asked for."""
        listings = self.__dict__.setdefault("_listings", {})
        if path not in listings:
            names = list_file_names(path, self.suffixes)
            if not names:
                raise FileNotFoundError(
                    f"input {self.input_name!r}: no {'/'.join(self.suffixes)} files under {path}"
                )
            listings[path] = names
        return [Path(name) for name in listings[path][start:end]]

    def describe_inputs(self, path: str) -> list[dict]:
        return [file_entry(self.input_name, path, f) for f in self.files(path)]

    def plan(self, path: str, unit_bytes: int) -> list[Unit]:
        return [
            Unit(str(f), display_path(self.input_name, path, f), size=f.stat().st_size)
            for f in self.files(path)
        ]
