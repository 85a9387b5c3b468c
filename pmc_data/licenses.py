"""License strings to SPDX ids, and the license policies recipes select by.

Articles state their license in many ways: a Creative Commons URL, a ``license-type``
attribute, free text, or a PMC file-list column. Every form is parsed as a whole, never by
prefix ("CC BY" is a prefix of "CC BY-NC"):

>>> to_spdx("http://creativecommons.org/licenses/by-nc-sa/3.0/")
'CC-BY-NC-SA-3.0'
>>> to_spdx("CC BY-NC")          # a PMC file list: no version given
'LicenseRef-CC-BY-NC'
>>> to_spdx("This work is licensed under a Creative Commons Attribution 4.0 International License.")
'CC-BY-4.0'
>>> to_spdx("All rights reserved.")
'LicenseRef-unknown'

Policies: ``commercial`` (CC0, CC BY), ``share-alike`` (also CC BY-SA), ``research`` (every
Creative Commons license), or an explicit list of SPDX ids or families (``CC-BY-NC``).
"""

from __future__ import annotations

import re

UNKNOWN = "LicenseRef-unknown"
#: Creative Commons families, each the set of its elements.
FAMILIES = {
    frozenset(): "CC0",
    frozenset({"BY"}): "CC-BY",
    frozenset({"BY", "SA"}): "CC-BY-SA",
    frozenset({"BY", "ND"}): "CC-BY-ND",
    frozenset({"BY", "NC"}): "CC-BY-NC",
    frozenset({"BY", "NC", "SA"}): "CC-BY-NC-SA",
    frozenset({"BY", "NC", "ND"}): "CC-BY-NC-ND",
}
POLICIES = {
    "commercial": {"CC0", "CC-BY", "PD"},
    "share-alike": {"CC0", "CC-BY", "CC-BY-SA", "PD"},
    "research": {"CC0", "CC-BY", "CC-BY-SA", "CC-BY-ND", "CC-BY-NC", "CC-BY-NC-SA",
                 "CC-BY-NC-ND", "PD"},
}  # fmt: skip

_URL = re.compile(
    r"creativecommons\.org/(?:licenses/(?P<kind>[a-z-]+)|publicdomain/(?P<pd>zero|mark))"
    r"(?:/(?P<version>\d\.\d))?(?:/(?P<port>igo))?",
    re.IGNORECASE,
)
_SHORT = re.compile(
    r"^\s*(?:CC[\s_-]*(?P<zero>0|zero)|CC[\s_-]*(?P<kind>BY(?:[\s_-]*(?:NC|SA|ND))*))"
    r"(?:[\s_-]*(?P<version>\d\.\d))?(?:[\s_-]*(?P<port>IGO))?(?:\s+license)?\s*$",
    re.IGNORECASE,
)
_WORDS = {
    "attribution": "BY",
    "noncommercial": "NC",
    "non-commercial": "NC",
    "sharealike": "SA",
    "share-alike": "SA",
    "share alike": "SA",
    "noderivatives": "ND",
    "noderivs": "ND",
    "no-derivatives": "ND",
    "no derivatives": "ND",
}
_TEXT = re.compile(
    r"creative\s+commons\s+(?P<terms>attribution(?:[\s,-]*(?:non-?commercial|share[\s-]?alike"
    r"|no[\s-]?deriv(?:ative)?s?))*)(?:[\s-]+(?:license|licence))?(?:[\s,(]*(?:version\s*)?"
    r"(?P<version>\d\.\d))?",
    re.IGNORECASE,
)
_CC0_TEXT = re.compile(r"\bCC0\b|public\s+domain\s+dedication", re.IGNORECASE)
_PD_TEXT = re.compile(r"\b(?:in|into|to)\s+the\s+public\s+domain\b", re.IGNORECASE)
_NO_CC = re.compile(r"^\s*NO[\s-]*CC(?:[\s-]*CODE)?\s*$", re.IGNORECASE)


def _spdx(elements: frozenset[str], version: str | None, port: str | None) -> str:
    family = FAMILIES.get(elements)
    if family is None:
        return UNKNOWN
    if family == "CC0":
        return "CC0-1.0"
    if version is None:
        return f"LicenseRef-{family}"
    return f"{family}-{version}" + ("-IGO" if port else "")


def _elements(kind: str) -> frozenset[str]:
    return frozenset(re.findall(r"BY|NC|SA|ND", kind.upper()))


def to_spdx(text: str | None) -> str:
    """The SPDX id (or ``LicenseRef-...``) a license URL, code or sentence states."""
    if not text or not text.strip():
        return UNKNOWN
    if match := _URL.search(text):
        if match.group("pd") == "zero":
            return "CC0-1.0"
        if match.group("pd") == "mark":
            return "LicenseRef-public-domain"
        return _spdx(_elements(match.group("kind")), match.group("version"), match.group("port"))
    if match := _SHORT.match(text):
        if match.group("zero"):
            return "CC0-1.0"
        return _spdx(_elements(match.group("kind")), match.group("version"), match.group("port"))
    if _NO_CC.match(text):
        return "LicenseRef-PMC-no-cc"
    if _CC0_TEXT.search(text):
        return "CC0-1.0"
    if match := _TEXT.search(text):
        terms = match.group("terms").lower()
        elements = {"BY"} | {code for word, code in _WORDS.items() if word in terms}
        return _spdx(frozenset(elements), match.group("version"), None)
    if _PD_TEXT.search(text):
        return "LicenseRef-public-domain"
    return UNKNOWN


def family(spdx: str) -> str | None:
    """``CC-BY-NC-4.0`` and ``LicenseRef-CC-BY-NC`` -> ``CC-BY-NC``; public domain -> ``PD``."""
    name = spdx.removeprefix("LicenseRef-")
    if name == "public-domain":
        return "PD"
    name = re.sub(r"-\d\.\d(?:-IGO)?$", "", name)
    return name if name in FAMILIES.values() else None


def allowed(spdx: str, policy: str | list[str]) -> bool:
    """Whether a license passes a policy name or an explicit list of ids and families."""
    accepted = POLICIES[policy] if isinstance(policy, str) else set(policy)
    return spdx in accepted or family(spdx) in accepted
