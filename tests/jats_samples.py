# ruff: noqa: E501 - XML fixtures read best with one element per line, however long
"""Project-written JATS and NLM 2.3 articles covering the constructs the reader handles."""

from __future__ import annotations

import random

from tests.conftest import sentence

JATS = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and Interchange DTD v1.2 20190208//EN" "JATS-archivearticle1.dtd">
<article xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:mml="http://www.w3.org/1998/Math/MathML"
         xmlns:ali="http://www.niso.org/schemas/ali/1.0/" article-type="research-article" dtd-version="1.2">
<front>
 <journal-meta><journal-title-group><journal-title>Journal of Test Medicine</journal-title></journal-title-group></journal-meta>
 <article-meta>
  <article-id pub-id-type="pmcid">{pmcid}</article-id>
  {pmid}
  <article-id pub-id-type="doi">10.1234/jtm.{n}</article-id>
  <title-group><article-title>Statins and <italic>renal</italic> outcomes in trial {n}</article-title></title-group>
  <contrib-group><contrib contrib-type="author"><name><surname>Doe</surname><given-names>Jane</given-names></name>
   <aff>Department of Nephrology, Example University, jane.doe@example.edu</aff></contrib></contrib-group>
  <pub-date pub-type="epub"><day>3</day><month>4</month><year>2021</year></pub-date>
  <permissions><copyright-statement>© 2021 Doe</copyright-statement>
   {license}
  </permissions>
  <abstract><sec><title>Background</title><p>Statins may slow the decline of kidney function in adults with chronic kidney disease.</p></sec>
   <sec><title>Results</title><p>The hazard ratio was 0.82 [95% CI 0.71-0.95], p &lt; 0.01.</p></sec></abstract>
  <abstract abstract-type="summary"><title>Plain language summary</title><p>A common cholesterol drug helped kidneys.</p></abstract>
 </article-meta>
</front>
<body>
 <sec><title>Introduction</title>
  <p>Chronic kidney disease affects about 10% of adults<sup><xref ref-type="bibr" rid="b1">1</xref>,<xref ref-type="bibr" rid="b2">2</xref></sup> and raises cardiovascular risk (<xref ref-type="bibr" rid="b3">Smith et al., 2019</xref>; <xref ref-type="bibr" rid="b4">Lee, 2020</xref>).</p>
  <p>Patients received 20 mg/day of atorvastatin (<xref ref-type="fig" rid="f1">Fig. 1</xref>); <italic>HMGCR</italic> and IL-6 were measured.
   <fig id="f1"><label>Figure 1</label><caption><p>Study flow diagram of trial {n}.</p></caption><graphic xlink:href="f1.jpg"/></fig></p>
 </sec>
 <sec><title>Discussion</title><p>{extra}</p></sec>
 <sec><title>Methods</title>
  <sec><title>Study design</title><p>We ran a randomised trial with an energy model <inline-formula><mml:math><mml:mi>E</mml:mi><mml:mo>=</mml:mo><mml:mi>m</mml:mi><mml:msup><mml:mi>c</mml:mi><mml:mn>2</mml:mn></mml:msup></mml:math></inline-formula> in mind.</p>
   <disp-formula id="e1"><tex-math>\\frac{{a}}{{b}}</tex-math></disp-formula>
   <list list-type="bullet"><list-item><p>o-phenylenediamine was used as a substrate.</p></list-item><list-item><p>Doses were 5 mg/kg.</p></list-item></list>
  </sec>
  <boxed-text><caption><title>Box 1. Key points</title></caption><p>Statins are cheap.</p></boxed-text>
 </sec>
 <sec sec-type="supplementary-material"><title>Supplementary material</title><p>Supplementary file S1.</p></sec>
 <sec><title>Acknowledgements</title><p>We thank the nurses.</p></sec>
 <sec><title>Conflicts of interest</title><p>None declared.</p></sec>
 <table-wrap id="t1"><label>Table 1</label><caption><p>Baseline characteristics.</p></caption>
  <table><thead><tr><th>Group</th><th>n</th></tr></thead><tbody><tr><td>Statin</td><td>120</td></tr></tbody></table></table-wrap>
</body>
<back>
 <ack><p>Funded by the Example Foundation.</p></ack>
 <fn-group><fn><p>The authors declare no competing interests.</p></fn></fn-group>
 <app-group><app><title>Appendix A</title><p>Sensitivity analyses gave the same result.</p></app></app-group>
 <ref-list><ref id="b1"><mixed-citation>Smith J. Kidney. 2019.</mixed-citation></ref></ref-list>
</back>
<floats-group><fig id="f2"><caption><p>Kaplan-Meier curves.</p></caption></fig></floats-group>
<sub-article article-type="reply"><body><p>Author response text.</p></body></sub-article>
</article>
"""

CC_BY = (
    '<license license-type="open-access" xlink:href="https://creativecommons.org/licenses/by/4.0/">'
    "<license-p>This is an open access article under the CC BY license.</license-p></license>"
)
CC_BY_NC = (
    "<license><ali:license_ref>http://creativecommons.org/licenses/by-nc/4.0/</ali:license_ref>"
    "<license-p>Non-commercial use only.</license-p></license>"
)

#: An NLM 2.3 article: ``pmc`` ids without prefix, no PMID, license only as free text.
NLM23 = """<?xml version="1.0"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD Journal Archiving and Interchange DTD v2.3 20070202//EN" "archivearticle.dtd">
<article xmlns:xlink="http://www.w3.org/1999/xlink" article-type="research-article">
<front><journal-meta><journal-title>Old Journal of Medicine</journal-title></journal-meta>
<article-meta><article-id pub-id-type="pmc">176545</article-id>
<title-group><article-title>An older article</article-title></title-group>
<pub-date pub-type="ppub"><year>2003</year></pub-date>
<copyright-statement>This is an Open Access article: verbatim copying and redistribution of this article are permitted in all media for any purpose, provided this notice is preserved along with the article's original URL.</copyright-statement>
<abstract><p>Old abstract text about hypertension treatment in older adults.</p></abstract></article-meta></front>
<body><p>Body paragraph of the older article on blood pressure.</p></body></article>
"""


def jats(
    n: int = 1, pmcid: str = "PMC1000001", pmid: str | None = "31000001", license: str = CC_BY
) -> bytes:
    pmid_node = f'<article-id pub-id-type="pmid">{pmid}</article-id>' if pmid else ""
    rng = random.Random(n)
    # Distinct prose per article (English with function words, as papers are).
    extra = " ".join(
        f"The {w[0]} of the {w[1]} was {w[2]} in the {w[3]} and in {w[4]} {w[5]}."
        for w in (sentence(rng).lower().rstrip(".").split()[:6] for _ in range(12))
    )
    return JATS.format(pmcid=pmcid, pmid=pmid_node, n=n, license=license, extra=extra).encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE article [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<article><front><article-meta><article-id pub-id-type="pmcid">PMC9</article-id></article-meta></front>
<body><p>&lol3;</p></body></article>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE article [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<article><body><p>&secret;</p></body></article>
"""
