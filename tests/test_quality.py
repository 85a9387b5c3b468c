"""Quality filters calibrated on papers: real content passes, each failure has its reason."""

from __future__ import annotations

import json

import pytest

from pmc_data.sources.jats import parse_article
from pmc_data.steps.quality import QualityFilter, QualityFilterArgs
from tests.conftest import DEMO_INPUTS, SHARED_FIXTURES

SCIENTIFIC = (
    "In this randomized trial (n = 412), the hazard ratio for the primary outcome was 0.82 "
    "[95% CI 0.71-0.95; p = 0.008]. Patients received 5 mg/kg of drug on days 1-14, and the "
    "concentration of IL-6 (pg/mL) fell from 12.4 +/- 3.1 to 8.2 +/- 2.7 after treatment. "
    "These results were consistent across all subgroups, including those with diabetes."
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (SCIENTIFIC, None),
        (
            "Bei den Patienten wurde eine signifikante Senkung des Blutdrucks beobachtet, die "
            "über den gesamten Zeitraum der Studie anhielt und mit einer geringeren Rate an "
            "Schlaganfällen verbunden war, was frühere Beobachtungen bestätigt.",
            "not_english",
        ),
        (
            "Chez les patients traités, une baisse significative de la pression artérielle a été "
            "observée pendant toute la durée de l'étude, avec une diminution des accidents "
            "vasculaires cérébraux, ce qui confirme des observations antérieures.",
            "not_english",
        ),
        (
            "在接受治疗的患者中观察到血压显著下降 该效果在整个研究期间持续存在 "
            "并且与中风发生率降低相关 这证实了先前的观察结果 研究共纳入四百名患者 随访时间为两年 结果在各亚组中一致 "  # noqa: E501 - wide characters
            "包括糖尿病患者 以及老年患者 以及肾功能不全的患者 均未发现严重不良事件",
            "not_english",
        ),
        (
            "Table values and the results were: "
            + " ".join(f"{i}.{i % 7} {i * 3}" for i in range(60)),
            "too_few_letters",
        ),
        (
            "The values of the and in were " + " ".join("∑∫≈±×÷√∞∂∆ the of" for _ in range(12)),
            "too_many_symbols",
        ),
        (
            "\n".join(
                ["Journal of Clinical Examples, Volume 12, Issue 3"] * 8
                + ["The patients were treated with the drug and the outcome was good."] * 2
            ),
            "repeated_lines",
        ),
    ],
)
def test_reasons(text, reason):
    assert QualityFilter().check(text) == reason


def test_short_texts_are_not_judged():
    assert QualityFilter().check("Kurzer deutscher Satz.") is None


def test_rules_can_be_switched_off():
    args = QualityFilterArgs(min_english_ratio=None)
    assert (
        QualityFilter(args).check(
            "Bei den Patienten wurde eine signifikante Senkung des Blutdrucks beobachtet, die "
            "über den gesamten Zeitraum der Studie anhielt und mit einer geringeren Rate an "
            "Schlaganfällen verbunden war."
        )
        is None
    )


def test_project_samples_pass():
    for line in (DEMO_INPUTS / "general.jsonl").read_bytes().splitlines():
        try:
            text = json.loads(line)["text"]
        except (ValueError, KeyError):
            continue
        assert QualityFilter().check(text) is None, text[:60]


@pytest.mark.skipif(not (SHARED_FIXTURES / "jats").is_dir(), reason="needs ../shared/fixtures")
def test_real_articles_pass():
    for path in sorted((SHARED_FIXTURES / "jats").glob("*.xml")):
        assert QualityFilter().check(parse_article(path.read_bytes()).text) is None, path.name


def test_character_counts_equal_the_per_character_definitions():
    """``character_counts`` counts in C what ``str.isspace``, ``str.isalpha`` and the Unicode
    symbol categories say one character at a time, on ASCII, Latin, Greek, CJK, symbols,
    control characters and every kind of blank."""
    import random
    import unicodedata

    from pmc_data.steps.quality import character_counts

    pieces = ["a", "Z", "1", " ", "\t", "\n", "\x1c", "\x0b", "\xa0", "\u2009", "\u3000", "\x85",
              "$", "+", "<", "^", "`", "|", "~", "±", "×", "°", "µ", "é", "ß", "α", "Ω", "²", "½",
              "∑", "→", "€", "©", "心", "_", "(", ".", "\u0301", "😀"]  # fmt: skip
    rng = random.Random(3)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        assert character_counts(text) == (
            sum(not c.isspace() for c in text),
            sum(c.isalpha() for c in text),
            sum(unicodedata.category(c).startswith("S") for c in text),
        ), text


def test_word_counts_equal_counting_the_words_one_by_one():
    """``word_counts`` counts words in C; the same as counting the regex's words in Python
    (non-ASCII letters inside and around words, digits of other scripts, the Kelvin sign
    that lower-cases to ASCII, underscores)."""
    import random

    from pmc_data.steps.quality import _WORD, ENGLISH, word_counts

    pieces = ["the", "The", "OF", " ", "and", "a", "was", "ab", "é", "ü", "ß", "α", "心", "²",
              "\u0661", "1", "_", "-", "'", ".", "\u212a", "İ", "\u0301", "\xa0", "\n",
              "x", "\x01", "\x80"]  # fmt: skip
    rng = random.Random(5)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        words = _WORD.findall(text)
        assert word_counts(text) == (
            len(words),
            sum(w.lower() in ENGLISH for w in words),
            sum(w.isascii() for w in words),
        ), text
