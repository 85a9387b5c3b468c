"""What of an article's bytes the JATS reader never reads, found before lxml parses it.

Parsing is the largest part of reading an article, and much of a PMC article is never read
with the default options: its reference list, figures and tables, formulae (placeholders),
supplementary material, author lists and sub-articles (peer reviews, author responses).
:func:`unread_contents` finds the *contents* of such elements in the bytes; the reader parses
the document without them. Their start and end tags stay, so the tree holds every element,
and only what those held is missing.

>>> data = (b'<article><body><p>Text.</p><fig id="f1"><caption><p>A.</p></caption></fig>'
...         b'</body></article>')
>>> [data[start:end] for start, end in unread_contents(data, anywhere=[(b"fig",)])]
[b'<caption><p>A.</p></caption>']

A span is cut only where that is provably the element's content, in a well-formed document:

- **Anywhere** (``anywhere``): from the ``>`` that ends an element's start tag to the first
  end tag of its name after it, with no start tag of that name between. Had the element's
  own end tag been missed (written ``</fig >``), the span would run on to an ancestor's end:
  the cut document would then hold start tags without their end tags, which is not
  well-formed, and the reader parses the whole document whenever the cut one is not. (A
  ``>`` inside an attribute value leaves a "<" in that value: not well-formed either.)
- **Last children of the root** (``trailing``): elements that end right before
  ``</article>``, which closes the document, one after the other with only whitespace
  between: then each is a child of the root, by syntax alone. The back matter before them
  is one too, and its content goes when it holds no appendix.
- Spans are nested or apart in a well-formed document: one inside another goes with it;
  two that overlap otherwise prove nothing, and nothing is cut.
- Never in or around a comment, CDATA section or processing instruction (a tag there is
  text); never in a document with a DOCTYPE internal subset, or with a default namespace
  (under which ``<fig>`` is not the JATS element the stylesheet knows), or that does not
  start as UTF-8 or an ASCII-compatible encoding does (UTF-16's bytes can spell ``<fig>``).

Which elements are never read, under which options, is the reader's to say
(``pmc_data/sources/jats.py``). What a cut span holds is not parsed, so a document whose only
fault lies there (malformed XML, an undeclared entity) is no longer rejected.

The work is linear in the bytes however a hostile document lays out its tags (each search
is bounded by the next tag found), and bounded in count: at most :data:`_MOST_MARKUP`
comments and processing instructions, :data:`_MOST_TAGS` start tags of a group of names and
trailing children; past those, less is cut, or nothing.

The bytes are searched with StringZilla, whose SIMD substring search is some 30 times
faster than ``bytes.find`` here (CPython's search reads every few bytes of a 400 kB article
for each tag name: as long as parsing what a cut saves).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable

import stringzilla as sz

_find, _rfind = sz.find, sz.rfind
#: What may end an element's name in a start tag ("/" of "<fig/>" too), as byte values.
_NAME_ENDS = frozenset(b" \t\r\n/>")
_BLANKS = frozenset(b" \t\r\n")
_SLASH = ord("/")
_ROOT_END = b"</article>"
#: The most comments, CDATA sections and processing instructions a document may hold for
#: a cut (an article has a few; a document with thousands is parsed whole).
_MOST_MARKUP = 256
#: The most start tags of one group of names looked at, and of the root's last children
#: walked (an article has tens); past them the rest of the document is not searched.
_MOST_TAGS = 4096
#: The most blanks walked over between the root's last children.
_MOST_BLANKS = 4096


def unread_contents(
    data: bytes,
    anywhere: Iterable[tuple[bytes, ...]] = (),
    before_body: Iterable[tuple[bytes, ...]] = (),
    trailing: Iterable[bytes] = (),
    back_unless: bytes | None = None,
) -> list[tuple[int, int]]:
    """``(start, end)`` of the contents to cut, sorted and apart: of every element named in
    ``anywhere``, of those named in ``before_body`` that stand before ``<body`` (front
    matter: where it is, searching the rest of the article would cost more than it saves),
    of the root's last children named in ``trailing``, and of the ``back`` before them
    unless it holds ``back_unless`` (``b"<app"``: the appendices, which are read; see the
    module).

    ``anywhere`` and ``before_body`` hold groups of names that start alike, searched for at
    once: the longer first, each starting with the last (``(b"fig-group", b"fig")``); an
    element found inside another one cut is part of that cut. ``[]`` when the document's
    markup allows no proof.
    """
    if not starts_ascii_compatible(data):
        return []
    markup = _Markup.of(data)
    if markup is None or _declares_default_namespace(data):
        return []
    spans, stop = _last_children(data, tuple(trailing), back_unless, markup)
    groups = [(names, stop) for names in anywhere]
    if before_body:
        body = _find(data, b"<body", 0, stop)
        groups += [(names, stop if body == -1 else body) for names in before_body]
    for names, end in groups:
        found = _contents(data, names, end, markup, spans)
        if found:
            outermost = _outermost(sorted(spans + found))
            if outermost is None:
                return []
            spans = outermost
    return spans


def starts_ascii_compatible(data: bytes) -> bool:
    """Whether ``data`` starts as a document in UTF-8 or an ASCII-compatible encoding does:
    with a tag, blanks or the UTF-8 byte order mark (UTF-16 starts with its own, or with
    "<\\x00").

    >>> starts_ascii_compatible(b"<?xml"), starts_ascii_compatible("<?xml".encode("utf-16"))
    (True, False)
    """
    first = data[:1]
    if first == b"<":
        return data[1:2] != b"\x00"
    return first in (b" ", b"\t", b"\r", b"\n") or data.startswith(b"\xef\xbb\xbf")


def _outermost(spans: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
    """Sorted ``spans`` less those inside another (a formula in a reference list, found by
    its own name); None when two overlap otherwise, which no well-formed document makes."""
    outermost: list[tuple[int, int]] = []
    done = 0
    for start, end in spans:
        if start >= done:
            outermost.append((start, end))
            done = end
        elif end > done:
            return None
    return outermost


class _Markup:
    """Where the document's comments, CDATA sections, processing instructions and DOCTYPE
    are (more than that is harmless: a span touching one is not cut)."""

    def __init__(self, regions: list[tuple[int, int]]) -> None:
        regions.sort()
        self.starts = [start for start, _ in regions]
        self.reach = []  # the furthest end of the regions up to each one
        furthest = -1
        for _, end in regions:
            furthest = max(furthest, end)
            self.reach.append(furthest)

    @classmethod
    def of(cls, data: bytes) -> _Markup | None:
        """The regions of ``data``; None where one cannot be bounded: a DOCTYPE with an
        internal subset (or with quotes that do not pair up), a ``<!`` that opens none of
        these, a region never closed, more than :data:`_MOST_MARKUP` regions (each search
        for an end could run to the document's end). Each ``<!`` and ``<?`` counts, even
        inside another region: that only adds to what is not cut."""
        regions = []
        at = _find(data, b"<?")
        while at != -1:
            end = _find(data, b"?>", at + 2)
            if end == -1 or len(regions) == _MOST_MARKUP:
                return None
            regions.append((at, end + 2))
            at = _find(data, b"<?", at + 2)
        at = _find(data, b"<!")
        while at != -1:
            end = _markup_end(data, at)
            if end == -1 or len(regions) == _MOST_MARKUP:
                return None
            regions.append((at, end))
            at = _find(data, b"<!", at + 2)
        return cls(regions)

    def touches(self, start: int, end: int) -> bool:
        """Whether a region overlaps ``data[start:end]``."""
        before = bisect.bisect_left(self.starts, end)  # the regions starting before ``end``
        return before > 0 and self.reach[before - 1] > start


def _markup_end(data: bytes, at: int) -> int:
    """Where the ``<!`` construct at ``at`` ends; -1 where the proof cannot bound it."""
    for opening, closing in ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>")):
        if data.startswith(opening, at):
            end = _find(data, closing, at + len(opening))
            return -1 if end == -1 else end + len(closing)
    if data.startswith(b"<!DOCTYPE", at):
        # Its public and system literals may hold ">" and "[": walked over in order. An
        # internal subset ("[") ends the proof.
        end = at + 9
        while end < len(data) and end - at < _LONGEST_DOCTYPE:
            byte = data[end]
            if byte in _QUOTES:
                end = data.find(bytes([byte]), end + 1)
                if end == -1:
                    return -1
            elif byte == _OPEN_SUBSET:
                return -1
            elif byte == _CLOSE_TAG:
                return end + 1
            end += 1
    return -1


_QUOTES = frozenset(b"\"'")
_OPEN_SUBSET, _CLOSE_TAG = ord("["), ord(">")
#: A DOCTYPE without internal subset is a name and two literals: a longer one is not read.
_LONGEST_DOCTYPE = 4096


def _declares_default_namespace(data: bytes) -> bool:
    """Whether an ``xmlns="..."`` is anywhere (``xmlns:xlink`` declares a prefix)."""
    at = _find(data, b"xmlns")
    while at != -1:
        # (runs of blanks after two "xmlns" are apart: linear however long they are)
        if data[at + 5 : at + 6] != b":" and _BLANKS_THEN_EQUALS.match(data, at + 5):
            return True
        at = _find(data, b"xmlns", at + 5)
    return False


_BLANKS_THEN_EQUALS = re.compile(rb"[ \t\r\n]*=")


def _contents(
    data: bytes,
    names: tuple[bytes, ...],
    stop: int,
    markup: _Markup,
    taken: list[tuple[int, int]],
) -> list[tuple[int, int]]:
    """The contents of the elements named ``names`` that start before ``stop``, but inside
    none of the spans ``taken`` (sorted and apart): those go already.

    Every search is bounded by the next start tag found (of any of the names for the end of
    a start tag, of the same name for an end tag): the work is linear in the bytes however
    the tags of a hostile document are laid out."""
    candidates = _start_tags(data, names, stop)
    if len(candidates) > _MOST_TAGS:  # the rest of the document is not searched
        stop = candidates[_MOST_TAGS][0]
        candidates = candidates[:_MOST_TAGS]
    of_name: dict[bytes, list[int]] = {name: [] for name in names}
    for at, name in candidates:
        of_name[name].append(at)
    spans: list[tuple[int, int]] = []
    done = 0
    for index, (at, name) in enumerate(candidates):
        inside = bisect.bisect(taken, (at,))  # (the spans taken that start before ``at``)
        if at < done or (inside and taken[inside - 1][1] > at):
            continue  # inside a span found before
        following = candidates[index + 1][0] if index + 1 < len(candidates) else stop
        closing_of_start = _find(data, b">", at, following)
        if closing_of_start == -1 or data[closing_of_start - 1] == _SLASH:
            continue  # not a tag one can tell, or empty ("<fig/>")
        # One of the name's end tags before its next start tag, or none: an element nested
        # in one of its name is not cut (the inner one is).
        same = of_name[name]
        later = bisect.bisect(same, at)
        closing = b"</" + name + b">"
        end = _find(data, closing, closing_of_start, same[later] if later < len(same) else stop)
        if end == -1 or markup.touches(at, end + len(closing)):
            continue
        spans.append((closing_of_start + 1, end))
        done = end
    return spans


def _start_tags(data: bytes, names: tuple[bytes, ...], stop: int) -> list[tuple[int, bytes]]:
    """``(position, name)`` of the start tags of ``names`` before ``stop``, one more than
    :data:`_MOST_TAGS` at most (names that start alike, found with one search: ``<fig``
    finds ``<fig-group`` too)."""
    opening = b"<" + names[-1]
    found: list[tuple[int, bytes]] = []
    at = _find(data, opening, 0, stop)
    while at != -1 and len(found) <= _MOST_TAGS:
        for name in names:
            after = at + 1 + len(name)
            if data.startswith(name, at + 1) and after < len(data) and data[after] in _NAME_ENDS:
                found.append((at, name))
                break
        at = _find(data, opening, at + 1, stop)
    return found


def _last_children(
    data: bytes, names: tuple[bytes, ...], back_unless: bytes | None, markup: _Markup
) -> tuple[list[tuple[int, int]], int]:
    """The contents of the root's last children named ``names``, walked back from
    ``</article>``, and of the ``back`` before them unless it holds ``back_unless``; and
    where the first of them starts (where the rest of the document ends: the length of
    ``data`` when none is)."""
    spans: list[tuple[int, int]] = []
    if back_unless is not None:
        names += (b"back",)
    if not names:
        return spans, len(data)
    root_end = _rfind(data, b"</")
    if (
        not data.startswith(_ROOT_END, root_end)
        or data[root_end + len(_ROOT_END) :].strip()
        or markup.touches(root_end, len(data))
    ):
        return spans, len(data)
    start = root_end  # of the child after the one looked for (the root's end tag, first)
    while len(spans) < _MOST_TAGS:
        tag_end = start
        while tag_end > 0 and data[tag_end - 1] in _BLANKS and start - tag_end < _MOST_BLANKS:
            tag_end -= 1
        name = next((n for n in names if data.endswith(b"</" + n + b">", 0, tag_end)), None)
        if name is None:
            break
        end = tag_end - len(name) - 3  # where its end tag starts
        opening = _rfind(data, b"<" + name, 0, end)
        after = opening + 1 + len(name)
        if (
            opening == -1
            or data[after] not in _NAME_ENDS
            # no other tag of the name between: then the start found is this element's
            or _find(data, b"<" + name, after, end) != -1
            or _find(data, b"</" + name, after, end) != -1
            or markup.touches(opening, tag_end)
        ):
            break
        closing_of_start = _find(data, b">", after, end)
        if closing_of_start == -1 or data[closing_of_start - 1] == _SLASH:
            break
        if name == b"back" and _find(data, back_unless, closing_of_start, end) != -1:
            break  # it holds what is read
        spans.append((closing_of_start + 1, end))
        start = opening
        if name == b"back":
            break  # (the body is before it)
    return spans, start
