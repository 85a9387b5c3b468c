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

import re

import pyarrow as pa

from pmc_data.licenses import POLICIES, allowed
from pmc_data.registry import Filter, StepArgs, TextTransform, register_step
from pmc_data.tidy import tidy

_URL = re.compile(r"(?:https?://|ftp://|www\.)[^\s<>\"')\]]+[^\s<>\"')\].,;:]", re.IGNORECASE)
_DOI_LINE = re.compile(r"^\s*DOI:\s*$", re.IGNORECASE | re.MULTILINE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# [1], [1-3, 7], [12–14]: integers only, so "[95% CI 1.2-3.4]" and "[1.2, 3.4]" stay.
_NUMERIC_CITATION = re.compile(r"\s?\[\s*\d{1,4}(?:\s*[-\u2013,;]\s*\d{1,4})*\s*\]")
_AUTHOR = r"[A-Z][A-Za-z'\u2019\u00C0-\u017F-]+"
_AUTHOR_YEAR = re.compile(
    rf"\s?\((?:(?:see |e\.g\.,? )?{_AUTHOR}(?: et al\.?| and {_AUTHOR}| & {_AUTHOR})?,? "
    r"(?:19|20)\d{2}[a-z]?(?:,\s*\d{4}[a-z]?)*(?:;\s*)?)+\)"
)
_FIGURE_MENTION = re.compile(
    r"\s?[(\[](?:see\s+|cf\.\s+|as shown in\s+)?(?:(?:supplementary|suppl\.?|additional|extended"
    r"\s+data)\s+)?(?:fig(?:ure)?s?|tables?|movies?|videos?|files?|data)\.?\s*S?\d+[^()\[\]]{0,60}"
    r"[)\]]",
    re.IGNORECASE,
)


# A word broken at a line end by a hyphen: "treat-\nment". A real hyphen before a line
# break ("beta-\nblocker") cannot be told apart, so a capital or a digit after it is left.
_BROKEN_WORD = re.compile(r"(\w{2,})-[ \t]*\n[ \t]*([a-z]{2,})")


class CleanPaperTextArgs(StepArgs):
    #: Join words hyphenated across line ends (text extracted from PDFs).
    dehyphenate: bool = True
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
        if args.dehyphenate:
            text = _BROKEN_WORD.sub(r"\1\2", text)
        if args.urls:
            text = _DOI_LINE.sub("", _URL.sub("", text))
        if args.emails:
            text = _EMAIL.sub("", text)
        if args.citation_markers:
            text = _AUTHOR_YEAR.sub("", _NUMERIC_CITATION.sub("", text))
        if args.figure_mentions:
            text = _FIGURE_MENTION.sub("", text)
        return tidy(text)


class LicenseFilterArgs(StepArgs):
    #: ``commercial`` (CC0, CC BY), ``share-alike`` (+ CC BY-SA), ``research`` (every CC
    #: license), or a list of SPDX ids and families (``[CC-BY-4.0, CC-BY-NC]``).
    policy: str | list[str] = "commercial"


@register_step
class LicenseFilter(Filter):
    """Drops rows whose license the policy does not allow, as ``license:<SPDX id>``."""

    name = "license_filter"
    Args = LicenseFilterArgs

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
