"""Cleaning scientific text, and selecting documents by license.

``clean_paper_text`` applies the paper's removals to text that still has them (S2ORC and
PubMed text, or JATS parsed with citations kept); each rule is a named option, on by default:

>>> CleanPaperText().transform(
...     "Aspirin lowered risk [3, 5-7] (Smith et al., 2020) as shown (Fig. 2B); "
...     "OR 0.82 [95% CI 0.71-0.95], p < 0.01. Contact a.b@uni.edu or https://x.org/y.")
'Aspirin lowered risk as shown; OR 0.82 [95% CI 0.71-0.95], p < 0.01. Contact or.'

What must survive is tested: confidence intervals in brackets, doses, p-values, gene names,
and lines that begin with "o".
"""

from __future__ import annotations

import functools
import re

import pyarrow as pa

from pmc_data.licenses import POLICIES, allowed
from pmc_data.registry import Filter, StepArgs, TextTransform, register_step
from pmc_data.tidy import sub_at, sub_on_lines, subn_from, tidy, tidy_lines

# The scheme in any case; "www." in the three cases people write it (a fixed set, so that
# the candidates are found with literal searches: see _URL_STARTS).
_URL = re.compile(r"(?:(?i:https?|ftp)://|(?:www|WWW|Www)\.)[^\s<>\"')\]]+[^\s<>\"')\].,;:]")
# A DOI, with its "doi:" label when it has one: "doi: 10.7554/eLife.00007",
# "10.1186/1471-2180-11-174" (its suffix may hold "<>" and brackets: SICI DOIs do). The label
# is at most 10 characters, so every match starts at a "10." or 3-10 characters before one.
_DOI = re.compile(
    r"(?:(?<!\w)(?:doi|DOI|Doi)[ \t]{0,3}:?[ \t]{0,3}|(?<![\w.]))"
    r"10\.\d{4,9}/[^\s\"]*[^\s\"'.,;:)\]](\.(?=\s|$))?"
)


def _drop_doi(match: re.Match) -> str:
    """Nothing for a DOI; its full stop too when it was a sentence of its own ("PLOS ONE.
    10.1371/journal.pone.0120221.g001. Next" -> "PLOS ONE. Next"), else the stop stays."""
    if not match.group(1):
        return ""
    start = match.start()
    head = match.string[max(0, start - 8) : start].rstrip(" \t")
    alone = head[-1:] in (".", "\n") or (not head and start <= 8)
    return "" if alone else "."


_DOI_LABELS = ("DOI", "doi", "Doi")
_DOI_LINE = re.compile(r"^\s*(?:DOI|doi|Doi):\s*$", re.MULTILINE)


def _doi_line_starts(text: str) -> list[int]:
    """Where :data:`_DOI_LINE` can match: the first line start in the whitespace before a
    "DOI:" (its ``^\\s*`` takes blank lines before it too). A multi-line pattern that starts
    with ``^\\s*`` is tried at every position (~30 ns a character, 0.3-0.9 ms on an eLife
    article, whose every section ends with a "DOI:" line); :func:`sub_at` tries it only here.
    The labels are found from their colons (rarer than any letter of them)."""
    starts = []
    at = text.find(":")
    while at != -1:
        if text[at - 3 : at] in _DOI_LABELS:
            before = at - 4
            while before >= 0 and text[before].isspace():
                before -= 1
            if before < 0:
                starts.append(0)
            else:
                newline = text.find("\n", before + 1, at)
                if newline != -1:
                    starts.append(newline + 1)
        at = text.find(":", at + 1)
    return starts


_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# [1], [1-3, 7], [12–14]: integers only, so "[95% CI 1.2-3.4]" and "[1.2, 3.4]" stay.
_NUMERIC_CITATION = re.compile(r"\[\s*\d{1,4}(?:\s*[-\u2013,;]\s*\d{1,4})*\s*\]")
# An author-year citation: a surname (capitalised, after the particles names carry: "van der
# Berg", "de Souza", "d'Angelo", "al-Rashid"), "et al." or a second author, and a year with
# the letters that tell one author's papers of a year apart ("2020a, b"), or a paper not
# out yet; more years, and a page, may follow.
_PARTICLES = (
    r"(?:(?:Van|Von|De|Del|Della|Da|Das|Dos|Du|Di|La|Le|Ten|Ter|Al|El)[ -])?"
    r"(?:(?:van|von|der|den|de|del|della|da|das|dos|du|di|la|le|ten|ter|al|el|bin|ibn)[ -]|d')*"
)
# (a date is no citation: "(December 2019)", "[Spring 2020]"; "(Winter et al., 2003)" is)
_NOT_A_NAME = (
    r"(?!(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December|Spring|Summer|Autumn|Fall|Winter) (?:19|20)\d{2}\b)"
)
_CAPITAL = r"[A-Z\u00C0-\u00D6\u00D8-\u00DE\u0100-\u017F]"
_AUTHOR = rf"{_PARTICLES}{_NOT_A_NAME}{_CAPITAL}[A-Za-z'\u2019\u00C0-\u017F-]+"
_YEAR = r"(?:(?:19|20)\d{2}[a-z]?(?:,\s*[a-z]\b)*|in press|submitted|unpublished(?: data)?|n\.d\.)"
_YEARS = rf"{_YEAR}(?:,\s*(?:19|20)\d{{2}}[a-z]?)*"
_CITATION = (
    rf"(?:see also |see |e\.g\.,? |cf\.? )?{_AUTHOR}(?: et al\.?| and {_AUTHOR}| & {_AUTHOR})?,? "
    rf"{_YEARS}(?:,\s*pp?\.\s*\d+(?:[-\u2013]\d+)?)?"
)
# "(Smith et al., 2020; Lee, 2019)" and "[Smith et al., 2020]" go whole; of a narrative
# citation, "Smith et al. (2020) showed", the years go and the names stay.
_AUTHOR_YEAR = tuple(
    re.compile(
        rf"\{opening}(?:(?<=et al\. \{opening}){_YEARS}|[\s,;]*(?:{_CITATION}(?:;\s*)?)+)\{closing}"
    )
    for opening, closing in ("()", "[]")
)
# Patterns start at the bracket, not at an optional space before it (that would make the
# regex engine try every position): tidy() removes the space left behind.
# A parenthetical that starts like a figure/table reference (the lookahead spares the
# callback the other parentheticals)...
_FIGURE_START = (
    r"\s*(?:(?:see|cf\.?|also|as shown in|shown in|compare)\s+)*(?:appendix\s+\d+\s+)?"
    r"(?:(?:supplementary|suppl\.?|additional|extended\s+data)\s+)?"
    r"(?:fig(?:ure)?s?|tables?|movies?|videos?|files?|panels?)\.?\s*S?\d"
)
# One pattern per opening bracket: one that starts with a literal is found several times
# faster than a class. A bracket is a candidate when a mention is its first item (the
# separators a removed inner mention left may come first: "[, Table 2]") or a later one, after
# a comma or semicolon on the same line: "(AncMDH2-INS, Figure 6)", "(Fraction F; Fig. S2)".
# Cheap tests of the first letters come before the long case-insensitive lookaheads: most
# brackets open with a number, a name or "n =", and most commas are followed by a word that
# cannot start a mention. Case-insensitive matching takes the long s "\u017f" for an "s" and
# the dotted and dotless "\u0130" and "\u0131" for an "i"; the two letters are those of see,
# suppl..., shown, cf, compare, also, as, additional, appendix, extended, fig, file, table,
# movie, video, panel.
_FIRST_LETTERS = r"[sScCaAeEfFtTmMvVpP\u017f]"
_I = "iI\u0130\u0131"
_FIRST_TWO_LETTERS = (
    r"(?:[sS\u017f][eEuUhH]|[cC][fFoO]|[aA][lLsSdDpP\u017f]|[eE][xX]|"
    rf"[fF][{_I}]|[tT][aA]|[mM][oO]|[vV][{_I}]|[pP][aA])"
)
_FIRST_MENTION = rf"(?=[\s,;]*{_FIRST_LETTERS})(?=[\s,;]*(?i:{_FIGURE_START}))"
# A later item: the items up to a separator followed by a mention are skipped whole (no
# backtracking: an item is read once).
_MENTION_AFTER = rf"(?=\s*{_FIRST_TWO_LETTERS})(?=(?i:{_FIGURE_START}))"
_ITEM = r"[^()\[\]\n,;]*+"
_LATER_MENTION = rf"(?=(?:{_ITEM}[,;](?!{_MENTION_AFTER}))*+{_ITEM}[,;]{_MENTION_AFTER})"
_FIGURE_MENTIONS = tuple(
    re.compile(
        rf"\{opening}(?:{_FIRST_MENTION}|{_LATER_MENTION})"
        r"(?P<content>[^()\[\]]{1,200})[)\]]"
    )
    for opening in "(["
)
# ...goes with the items (between commas and semicolons) that are such references, their
# separators and the panels or places that continue them ("Figure 1, 2", "Fig. 2A, B", "Fig.
# 2, right"); the rest stays: "(Figure 7E, RMSD 0.9 A excluding the loop)" -> "(RMSD 0.9 A
# ...)", "(Figure 1, P < 0.05)" -> "(P < 0.05)". A bracket of references only goes whole.
_REFERENCE_WORDS = frozenset(
    "fig figs figure figures table tables supplementary suppl supplement supplements source "  # noqa: SIM905
    "data extended additional appendix movie movies video videos file files panel panels and "
    "or see also cf left right top bottom inset insets upper lower as shown in compare".split()
)
#: Words that join references only in lower case ("OR 1.2" is an odds ratio).
_CONNECTIVES = frozenset({"and", "or"})
_MENTION_START = re.compile(rf"(?i:{_FIGURE_START})")
# What may continue a mention after a comma: a panel or a range of them, two joined by
# "and"/"or" ("2 and 3", not "2 or 4 h"), or where in the figure ("right", "upper panel").
_ONE_PANEL = r"S?\d+[A-Za-z]?(?:[-\u2013]S?\d+[A-Za-z]?)?|[A-Za-z]"
_PLACE = r"left|right|top|bottom|middle|upper|lower|inset|insets|panel|panels"
_CONTINUATION = re.compile(
    rf"\s*(?:(?:{_ONE_PANEL})(?:\s+(?:and|or)\s+(?:{_ONE_PANEL}))?"
    rf"|(?:{_PLACE})(?:\s+(?:and|or|{_PLACE}))*)\s*"
)
# A run of references, as one pattern: blanks, points and dashes (never a comparison, an
# equals or a percent sign; a point may be in a book's "Figure 3.2"), a number with at most
# one letter after it ("2B", read whole), and whole words of letters that are reference
# words (in ASCII case, but "and"/"or" in lower case) or single letters (panels).
_WORDS = "|".join(sorted(_REFERENCE_WORDS - _CONNECTIVES, key=len, reverse=True))
_REFERENCES = re.compile(
    rf"(?:[\s.\u2013\u2014-]|(?>\d+[A-Za-z]?)|(?:(?ai:{_WORDS})|and|or|[A-Za-z])(?![A-Za-z]))*"
)
#: Commas and semicolons, but a comma between two digits ("1,200") separates no items.
_ITEM_SEPARATOR = re.compile(r"(;|(?<!\d),|,(?!\d))")


def _references_only(text: str) -> bool:
    """Whether ``text`` is nothing but figure/table reference words and panels, "Figs. 1 and
    3B", "Fig. 3.2", "right": no comparison or sign ("P < 0.05", "n = 12", "5%"), no "OR"
    (an odds ratio, not an "or")."""
    return _REFERENCES.fullmatch(text) is not None


def _is_mention(item: str) -> bool:
    """Whether a bracket's item is a figure/table reference on one line: "Figure 2A", "see
    Supplementary Table S1"."""
    return "\n" not in item and _MENTION_START.match(item) is not None and _references_only(item)


def _without_mention_items(content: str) -> str | None:
    """A bracket's ``content`` less the items (split at commas and semicolons) that are
    figure/table references, with the separator before each (after, for the first), and
    the panels or places that continue one after commas (:data:`_CONTINUATION`) when nothing
    else follows them before the end or a semicolon; None when no item is a reference.

    >>> _without_mention_items("AncMDH2-INS, Figure 6")
    'AncMDH2-INS'
    >>> _without_mention_items("Figure 1, P < 0.05")
    'P < 0.05'
    >>> _without_mention_items("A, Figure 2A, B; n = 1,200")
    'A; n = 1,200'
    >>> _without_mention_items("Figure 1, 5, 10 and 20 mg")
    '5, 10 and 20 mg'
    """
    parts = _ITEM_SEPARATOR.split(content)
    items, separators = parts[0::2], parts[1::2]
    mentions = [_is_mention(item) for item in items]
    if not any(mentions):
        return None
    dropped = list(mentions)
    for index, mention in enumerate(mentions):
        if not mention:
            continue
        end = index + 1  # the items that may continue it, after commas
        while (
            end < len(items)
            and separators[end - 1] == ","
            and _CONTINUATION.fullmatch(items[end])
            and "\n" not in items[end]
        ):
            end += 1
        if end == len(items) or separators[end - 1] == ";":
            dropped[index + 1 : end] = [True] * (end - index - 1)
    kept = ""
    for index, item in enumerate(items):
        if not dropped[index]:
            kept = kept + separators[index - 1] + item if kept else item.lstrip()
    return kept


def _drop_figure_mention(match: re.Match) -> str:
    """The bracket less the items that are figure/table references; nothing when nothing
    else was in it; the bracket as it was when no item is one."""
    kept = _kept_of_bracket(match.group("content"))
    if kept is None:
        return match.group(0)
    if not kept:
        return ""
    whole = match.group(0)
    return whole[0] + kept + whole[-1]


# Remembered: the same mentions come back in every paper ("Figure 1", "Fig. 2A", "Table 1",
# "Figure 1—figure supplement 2"), and reading one costs a few microseconds where a lookup
# costs a tenth of one. Bounded: at most this many contents of up to 200 characters.
@functools.lru_cache(maxsize=8192)
def _kept_of_bracket(content: str) -> str | None:
    """What stays of a bracket's ``content`` once its figure/table references go: ``""``
    when nothing else was in it, None when no item is one (the bracket stays as it was)."""
    if "," not in content and ";" not in content:  # one item (most are: "(Figure 1A)")
        return "" if _is_mention(content) else None
    kept = _without_mention_items(content)
    if kept is None:
        return None
    return kept if kept.strip() else ""


def _drop_figure_mentions(text: str) -> str:
    """Mentions in parentheses, then in brackets, then in parentheses again where a bracketed
    one was inside: a mention inside another goes first, and the outer one goes too if it
    was a mention: "[(Fig. 1), Table 2]" and "(Fig. 1 [Table 2])" go whole."""
    in_parentheses, in_brackets = _FIGURE_MENTIONS
    if "(" in text:  # (a one-character search is a memchr, a pass of the pattern is not)
        text = in_parentheses.sub(_drop_figure_mention, text)
    text, found = subn_from(in_brackets, _drop_figure_mention, text, "[")
    if found:
        text = in_parentheses.sub(_drop_figure_mention, text)
    return text


# A word broken at a line end by a hyphen: "treat-\nment". A real hyphen before a line
# break ("beta-\nblocker") cannot be told apart, so a capital or a digit after it is left.
_BROKEN_WORD = re.compile(r"(\w{2,})-[ \t]*\n[ \t]*([a-z]{2,})")
# What it needs, found from the hyphen (a two-character str.find is slower).
_HYPHEN_AT_LINE_END = re.compile(r"-[ \t]*\n")


#: A text without one of these holds no URL.
URL_NEEDLES = ("://", "www.", "WWW.", "Www.")


def _starts(text: str, needles: tuple[tuple[re.Pattern, tuple[int, ...]], ...]) -> list[int]:
    """Where a match can start: each needle's position less each of its offsets. For
    patterns that would be tried at every position (case-insensitive, or starting with a
    class of letters): :func:`sub_at` tries only these. The needles are literal patterns:
    the regex engine's literal-prefix search is faster than a ``str.find`` of three
    characters (no needle here overlaps itself, so their matches are all occurrences)."""
    starts = []
    for needle, offsets in needles:
        for found in needle.finditer(text):
            at = found.start()
            starts += (at - back for back in offsets if at >= back)
    return starts


def _literal(needle: str) -> re.Pattern:
    return re.compile(re.escape(needle))


#: A URL starts 3-5 characters before a "://" (ftp, http, https), or one before a "ww." or
#: "WW." ("www.", "Www.", "WWW."; two scans instead of three).
_URL_STARTS = ((_literal("://"), (5, 4, 3)), (_literal("ww."), (1,)), (_literal("WW."), (1,)))
#: A DOI starts at its "10.", or where its label can (3-10 characters before).
_DOI_STARTS = ((_literal("10."), (0, *range(3, 11))),)


def tidy_changed_lines(before: str, after: str) -> str:
    r"""``after`` with :func:`tidy` applied to the lines that differ from ``before``'s: what
    a removal left behind is tidied, the lines it did not touch stay as they were (readers
    tidy their own text). When lines were joined or dropped, the whole text is tidied.

    >>> tidy_changed_lines("Risk fell [3] .\nIt rose ( ; ) .", "Risk fell  .\nIt rose ( ; ) .")
    'Risk fell.\nIt rose ( ; ) .'
    """
    if after == before:
        return after.strip()
    lines, old_lines = after.split("\n"), before.split("\n")
    if len(lines) != len(old_lines):
        return tidy(after)
    changed = [i for i, (line, old) in enumerate(zip(lines, old_lines, strict=True)) if line != old]
    for i, line in zip(changed, tidy_lines([lines[i] for i in changed]), strict=True):
        lines[i] = line
    return "\n".join(lines).strip()


class CleanPaperTextArgs(StepArgs):
    #: Join words hyphenated across line ends (text extracted from PDFs).
    dehyphenate: bool = True
    #: URLs and DOIs ("doi: 10.7554/eLife.00007"), and "DOI:" lines left without theirs.
    urls: bool = True
    emails: bool = True
    #: Bracketed numbers and (Author et al., 2020) references.
    citation_markers: bool = True
    #: Parenthetical mentions: "(Fig. 1B)", "(Table 2)", "(see Supplementary Figure S3)".
    figure_mentions: bool = True


@register_step
class CleanPaperText(TextTransform):
    """URLs, e-mails, citation markers and figure/table mentions out of scientific text."""

    name = "clean_paper_text"
    Args = CleanPaperTextArgs

    def transform(self, text: str) -> str:
        args = self.args
        # Each pattern runs only where its text can occur: most documents lack most of them.
        if args.dehyphenate and _HYPHEN_AT_LINE_END.search(text):
            text = _BROKEN_WORD.sub(r"\1\2", text)
        before = text
        if args.urls:
            text = sub_at(_URL, "", text, _starts(text, _URL_STARTS))
            text = sub_at(_DOI, _drop_doi, text, _starts(text, _DOI_STARTS))
        # An e-mail never spans lines, and the pattern is tried at most positions of the
        # lines it runs on: only lines that can hold one are searched.
        if args.emails and "@" in text:
            text = sub_on_lines(_EMAIL, "", text, ("@",))
        # Figure mentions first: a bracket that held citations and a mention then holds
        # citations only, and goes too ("(Fig. 1; Lee, 2010)", "[3, Table 2]").
        if args.figure_mentions:
            text = _drop_figure_mentions(text)
        if args.citation_markers:
            text, found = subn_from(_NUMERIC_CITATION, "", text, "[")
            if "(" in text:
                text, more = _AUTHOR_YEAR[0].subn("", text)
                found += more
            text, more = subn_from(_AUTHOR_YEAR[1], "", text, "[")
            found += more
            # ...and a bracket that held a citation inside may now be one of references:
            # "(Figure 1, as in [Eventoff et al., 1977])"
            if found and args.figure_mentions:
                text = _drop_figure_mentions(text)
        text = tidy_changed_lines(before, text)
        # Last, as it removes lines: "DOI:" lines whose link went (tidied to "DOI:").
        if args.urls and (starts := _doi_line_starts(text)):
            text = sub_at(_DOI_LINE, "", text, starts).strip()
        return text


class LicenseFilterArgs(StepArgs):
    #: ``commercial`` (CC0, CC BY), ``share-alike`` (+ CC BY-SA), ``research`` (every CC
    #: license), or a list of SPDX ids and families (``[CC-BY-4.0, CC-BY-NC]``).
    policy: str | list[str] = "commercial"


@register_step
class LicenseFilter(Filter):
    """Drops rows whose license the policy does not allow, as ``license:<SPDX id>``."""

    name = "license_filter"
    Args = LicenseFilterArgs
    threads = True  # a dictionary lookup per row: light

    def __init__(self, args: LicenseFilterArgs | None = None, schema: str = "medc_k") -> None:
        super().__init__(args, schema)
        policy = self.args.policy
        if isinstance(policy, str) and policy not in POLICIES:
            raise ValueError(f"policy {policy!r}: allowed: {', '.join(POLICIES)} or a list")

    def reasons(self, batch: pa.Table) -> list[str | None]:
        return [
            None if allowed(spdx, self.args.policy) else f"license:{spdx}"
            for spdx in batch.column("license").to_pylist()
        ]
