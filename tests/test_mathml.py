"""MathML as one line of text (the JATS reader's ``formulas: text``)."""

from __future__ import annotations

import pytest
from lxml import etree

from pmc_data.sources.jats import JatsOptions, parse_article
from pmc_data.sources.mathml import mathml_text

MML = 'xmlns="http://www.w3.org/1998/Math/MathML"'


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("<mi>E</mi><mo>=</mo><mi>m</mi><msup><mi>c</mi><mn>2</mn></msup>", "E = mc^2"),
        # scripts of more than one token are grouped; a script ends its piece
        (
            "<msub><mi>R</mi><mi>nn</mi></msub><msub><mi>β</mi><mi>j</mi></msub><mo>+</mo>"
            "<msubsup><mi>x</mi><mrow><mi>i</mi><mo>+</mo><mn>1</mn></mrow><mn>2</mn></msubsup>",
            "R_nn β_j + x_(i + 1)^2",
        ),
        # fractions, roots, a sign, brackets already there are not doubled
        (
            "<mfrac><mn>0.5</mn><mrow><mo>(</mo><mn>1</mn><mo>+</mo><msup><mi>e</mi><mrow>"
            "<mo>−</mo><mi>t</mi></mrow></msup><mo>)</mo></mrow></mfrac><mo>=</mo>"
            "<msqrt><mi>n</mi></msqrt><mo>+</mo><mroot><mi>x</mi><mn>3</mn></mroot>",
            "0.5/(1 + e^(−t)) = sqrt(n) + x^(1/3)",
        ),
        # invisible operators go; the annotation is not the formula
        (
            "<semantics><mrow><mi>sin</mi><mo>\u2061</mo><mi>x</mi><mo>\u2062</mo><mi>y</mi>"
            "</mrow><annotation encoding='TeX'>\\sin x y</annotation></semantics>",
            "sinxy",
        ),
        (
            "<munderover><mo>∑</mo><mrow><mi>i</mi><mo>=</mo><mn>1</mn></mrow><mi>n</mi>"
            "</munderover><msub><mi>a</mi><mi>i</mi></msub>",
            "∑_(i = 1)^n a_i",
        ),
        ("<mfenced open='[' close=']'><mi>a</mi><mi>b</mi></mfenced>", "[a, b]"),
        (
            "<mtable><mtr><mtd><mn>1</mn></mtd><mtd><mn>0</mn></mtd></mtr><mlabeledtr><mtd>"
            "<mtext>(2)</mtext></mtd><mtd><mn>0</mn></mtd><mtd><mn>1</mn></mtd></mlabeledtr>"
            "</mtable>",
            "1, 0; 0, 1",
        ),
        # an empty accent over p, and a lost operator under a limit, leave nothing
        (
            "<munder><mo/><mi>m</mi></munder><mover><mi>p</mi><mo/></mover><mo>=</mo><mn>0</mn>",
            "m p = 0",
        ),
        ("<mi>n</mi><mo>!</mo><mo>,</mo><msup><mi>f</mi><mo>′</mo></msup>", "n!, f^′"),
    ],
)
def test_mathml_text(body, text):
    assert mathml_text(etree.fromstring(f"<math {MML}>{body}</math>")) == text


ARTICLE = (
    b"<article xmlns:mml='http://www.w3.org/1998/Math/MathML' "
    b"xmlns:xlink='http://www.w3.org/1999/xlink'><front><article-meta><article-id "
    b"pub-id-type='pmc'>1</article-id><title-group><article-title>T</article-title>"
    b"</title-group></article-meta></front><body><p>Fitness can be written as<disp-formula>"
    b"<graphic xlink:href='e1.jpg'/></disp-formula>in the diploid case, and as"
    b"<disp-formula><label>(2)</label><mml:math><mml:mi>F</mml:mi><mml:mo>=</mml:mo>"
    b"<mml:mfrac><mml:mn>1</mml:mn><mml:mi>N</mml:mi></mml:mfrac></mml:math></disp-formula>"
    b"otherwise, with <inline-formula><tex-math>\\alpha</tex-math></inline-formula>.</p>"
    b"</body></article>"
)


def test_formulas_inside_a_paragraph_stand_apart_and_images_keep_the_placeholder():
    text = parse_article(ARTICLE, JatsOptions(formulas="text")).text
    assert text.endswith(
        "Fitness can be written as [formula] in the diploid case, and as F = 1/N otherwise, "
        "with \\alpha."
    )
    placeholder = parse_article(ARTICLE).text
    assert placeholder.endswith(
        "written as [formula] in the diploid case, and as [formula] otherwise, with [formula]."
    )
