<?xml version="1.0" encoding="UTF-8"?>
<!--
  A JATS / NLM article as a stream of marked pieces of text, walked in C by libxslt (through
  lxml) instead of element by element in Python. pmc_data/sources/jats.py runs it and reads
  the stream; what the pieces are and how they become blocks is documented there (_read).

  Every piece starts with $m, a character the document does not hold, then one letter:
    I  the article title            A  an abstract (its abstract-type), then t: its title
    S  a section (its sec-type), then t: its title       B  a box inside a paragraph
    E  the end of an A, S or B                           P  a paragraph, L  a list item
    F  a block formula          C  a caption (its label), then c: each of its parts
    R  a table row, then c: each of its cells
  Sections with a dropped type or title are dropped by the reader (it owns those lists);
  everything else the options drop is left out here.

  Names are JATS's own, in no namespace, as the DTDs define them.
-->
<!--
  What every mode leaves out is named once, as entities (this file is the project's own: the
  reader parses it with its internal entities expanded, never a document).
  omitted: footnotes, supplementary material, reference lists, acknowledgements, glossaries,
  and the front matter the paper removes wherever it stands: author lists, affiliations,
  author notes, funding.
  citation: a bibliographic xref, or a superscript or subscript holding nothing but such
  xrefs and the punctuation between them ("<sup><xref ref-type="bibr">3</xref>,...</sup>");
  the reader keeps them when its option `citations` is on.
  unread: the elements whose content the reader may cut from the bytes before parsing
  (pmc_data/sources/unread.py), wherever they are. No mode reads it, and where text is read
  as a string (a citation's names, the journal title, the license), mode "kept-text" reads
  it without theirs: the article is the same whether they were cut or not.
-->
<!DOCTYPE xsl:stylesheet [
  <!ENTITY may-nest "*[*]">
  <!ENTITY omitted "supplementary-material | fn | fn-group | ref-list | ack | glossary
    | contrib-group | aff | author-notes | funding-group">
  <!ENTITY is-omitted "self::supplementary-material or self::fn or self::fn-group
    or self::ref-list or self::ack or self::glossary or self::contrib-group or self::aff
    or self::author-notes or self::funding-group">
  <!ENTITY only-citations "xref[@ref-type = 'bibr'] and not(xref[not(@ref-type = 'bibr')])
    and not(text()[translate(., 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', '') != .])">
  <!ENTITY citation "xref[@ref-type = 'bibr'] | sup[&only-citations;] | sub[&only-citations;]">
  <!ENTITY is-citation "self::xref[@ref-type = 'bibr'] or self::sup[&only-citations;]
    or self::sub[&only-citations;]">
  <!ENTITY unread "ref-list | supplementary-material | contrib-group | aff | author-notes
    | funding-group | fig-group | fig | table-wrap-group | table-wrap | inline-formula
    | disp-formula">
  <!ENTITY is-unread "self::ref-list or self::supplementary-material or self::contrib-group
    or self::aff or self::author-notes or self::funding-group or self::fig-group or self::fig
    or self::table-wrap-group or self::table-wrap or self::inline-formula
    or self::disp-formula">
]>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:xlink="http://www.w3.org/1999/xlink">
  <xsl:output method="text" encoding="UTF-8"/>

  <!-- The options (JatsOptions); the reader sets each when it compiles the stylesheet. -->
  <xsl:param name="m"/>
  <xsl:param name="citations" select="false()"/>
  <xsl:param name="figures" select="'drop'"/>
  <xsl:param name="tables" select="'drop'"/>
  <xsl:param name="formulas" select="'placeholder'"/>
  <xsl:param name="boxed_text" select="true()"/>
  <xsl:param name="appendices" select="true()"/>
  <xsl:param name="sub_articles" select="false()"/>

  <xsl:template match="/*">
    <xsl:apply-templates select="(front/article-meta)[1]" mode="meta"/>
    <xsl:value-of select="$m"/><xsl:text>#</xsl:text>
    <xsl:for-each select="(front/article-meta/title-group/article-title)[1]">
      <xsl:value-of select="$m"/><xsl:text>I</xsl:text>
      <xsl:apply-templates mode="inline"/>
    </xsl:for-each>
    <xsl:for-each select="front/article-meta/abstract | front/article-meta/trans-abstract">
      <xsl:if test="not(@abstract-type = 'toc' or @abstract-type = 'teaser'
                        or @abstract-type = 'web-summary')">
        <xsl:value-of select="$m"/><xsl:text>A</xsl:text><xsl:value-of select="@abstract-type"/>
        <xsl:value-of select="$m"/><xsl:text>t</xsl:text>
        <xsl:apply-templates select="title[1]" mode="inline"/>
        <xsl:apply-templates select="*" mode="block"/>
        <xsl:value-of select="$m"/><xsl:text>E</xsl:text>
      </xsl:if>
    </xsl:for-each>
    <xsl:apply-templates select="body[1]/*" mode="block"/>
    <xsl:if test="$appendices">
      <xsl:for-each select="back[1]/app-group | back[1]/app">
        <xsl:call-template name="section"/>
      </xsl:for-each>
    </xsl:if>
    <xsl:apply-templates select="floats-group[1]/*" mode="float"/>
    <xsl:if test="$sub_articles">
      <xsl:apply-templates select="sub-article/body[1]/*" mode="block"/>
    </xsl:if>
  </xsl:template>

  <!-- meta: identifiers, journal, years and license candidates, before "#" (the reader
       reads them as they are, without collapsing their whitespace). A text piece is an
       element's first child if that is text (lxml's `.text`); the license's own elements
       are matched in any namespace (ali:license_ref). None is looked for inside &unread;
       (as if cut, which it may be). -->
  <xsl:template match="*" mode="meta">
    <xsl:value-of select="$m"/><xsl:text>M</xsl:text>
    <xsl:for-each select="article-id">
      <xsl:value-of select="$m"/><xsl:text>i</xsl:text><xsl:value-of select="@pub-id-type"/>
      <xsl:value-of select="$m"/><xsl:text>v</xsl:text>
      <xsl:value-of select="node()[1][self::text()]"/>
    </xsl:for-each>
    <xsl:for-each select="(/*/front/journal-meta//journal-title[not(ancestor::*[&is-unread;])])[1]">
      <xsl:value-of select="$m"/><xsl:text>j</xsl:text><xsl:apply-templates mode="kept-text"/>
    </xsl:for-each>
    <xsl:for-each select="pub-date/year">
      <xsl:value-of select="$m"/><xsl:text>y</xsl:text>
      <xsl:value-of select="node()[1][self::text()]"/>
    </xsl:for-each>
    <xsl:for-each select="permissions[1]">
      <!-- in the order of the reader's candidates: license references and attributes, then
           license texts, then copyright statements -->
      <xsl:for-each select="descendant::*[local-name() = 'license_ref' or local-name() = 'license']
                            [not(ancestor::*[&is-unread;])]">
        <xsl:value-of select="$m"/><xsl:text>r</xsl:text>
        <xsl:choose>
          <xsl:when test="local-name() = 'license_ref'">
            <xsl:value-of select="node()[1][self::text()]"/>
          </xsl:when>
          <xsl:otherwise>
            <xsl:value-of select="@xlink:href"/>
            <xsl:value-of select="$m"/><xsl:text>r</xsl:text><xsl:value-of select="@license-type"/>
          </xsl:otherwise>
        </xsl:choose>
      </xsl:for-each>
      <xsl:for-each select="descendant::*[local-name() = 'license-p' or local-name() = 'license']
                            [not(ancestor::*[&is-unread;])]">
        <xsl:call-template name="words"/>
      </xsl:for-each>
      <xsl:for-each select="descendant::*[local-name() = 'copyright-statement']
                            [not(ancestor::*[&is-unread;])]">
        <xsl:call-template name="words"/>
      </xsl:for-each>
    </xsl:for-each>
  </xsl:template>

  <!-- Every text node of an element, each after a space (the reader normalises them). -->
  <xsl:template name="words">
    <xsl:value-of select="$m"/><xsl:text>n</xsl:text>
    <xsl:apply-templates mode="words"/>
  </xsl:template>
  <xsl:template match="text()" mode="words"><xsl:text> </xsl:text><xsl:value-of select="."/></xsl:template>
  <xsl:template match="&unread;" mode="words"/>

  <!-- kept-text: an element's text, as its string value but for the text of &unread;. -->
  <xsl:template match="&unread;" mode="kept-text"/>

  <!-- block: the children of a body, section, abstract or box. -->
  <xsl:template match="*" mode="block"/>
  <xsl:template match="sec" mode="block">
    <xsl:call-template name="section"/>
  </xsl:template>
  <xsl:template match="app | app-group" mode="block">
    <xsl:if test="$appendices"><xsl:call-template name="section"/></xsl:if>
  </xsl:template>
  <xsl:template match="p | disp-quote | statement" mode="block">
    <xsl:value-of select="$m"/><xsl:text>P</xsl:text>
    <xsl:apply-templates mode="inline"/>
    <xsl:apply-templates select="&may-nest;" mode="nested"/>
  </xsl:template>
  <xsl:template match="list | def-list" mode="block">
    <xsl:for-each select="list-item | def-item">
      <xsl:value-of select="$m"/><xsl:text>L</xsl:text>
      <xsl:apply-templates mode="inline"/>
    </xsl:for-each>
    <xsl:apply-templates select="&may-nest;" mode="nested"/>
  </xsl:template>
  <xsl:template match="disp-formula" mode="block">
    <xsl:value-of select="$m"/><xsl:text>F</xsl:text>
    <xsl:apply-templates select="." mode="inline"/>
  </xsl:template>
  <xsl:template match="fig | fig-group | table-wrap | table-wrap-group" mode="block">
    <xsl:apply-templates select="." mode="float"/>
  </xsl:template>
  <xsl:template match="boxed-text" mode="block">
    <xsl:if test="$boxed_text"><xsl:call-template name="box"/></xsl:if>
  </xsl:template>

  <xsl:template name="section">
    <xsl:value-of select="$m"/><xsl:text>S</xsl:text><xsl:value-of select="@sec-type"/>
    <xsl:value-of select="$m"/><xsl:text>t</xsl:text>
    <xsl:apply-templates select="title[1]" mode="inline"/>
    <xsl:apply-templates select="*" mode="block"/>
    <xsl:value-of select="$m"/><xsl:text>E</xsl:text>
  </xsl:template>

  <!-- A box: its title, its caption's paragraphs (part of the box's text, unlike a
       figure's caption), then its content. -->
  <xsl:template name="box">
    <xsl:choose>
      <xsl:when test="caption/title">
        <xsl:value-of select="$m"/><xsl:text>P</xsl:text>
        <xsl:apply-templates select="(caption/title)[1]" mode="inline"/>
      </xsl:when>
      <xsl:when test="title">
        <xsl:value-of select="$m"/><xsl:text>P</xsl:text>
        <xsl:apply-templates select="title[1]" mode="inline"/>
      </xsl:when>
    </xsl:choose>
    <xsl:for-each select="caption/p">
      <xsl:value-of select="$m"/><xsl:text>P</xsl:text>
      <xsl:apply-templates mode="inline"/>
    </xsl:for-each>
    <xsl:apply-templates select="*" mode="block"/>
  </xsl:template>

  <!-- nested: the blocks JATS allows inside a paragraph (outermost only) follow it as
       blocks of their own; a box there starts its own section path. Only elements with
       element children are visited (&may-nest;): the others hold no block, and a block
       without them (no caption, no rows, no paragraphs) has nothing to show. -->
  <xsl:template match="*" mode="nested">
    <xsl:apply-templates select="&may-nest;" mode="nested"/>
  </xsl:template>
  <xsl:template match="fig | fig-group | table-wrap | table-wrap-group" mode="nested">
    <xsl:apply-templates select="." mode="float"/>
  </xsl:template>
  <xsl:template match="boxed-text" mode="nested">
    <xsl:if test="$boxed_text">
      <xsl:value-of select="$m"/><xsl:text>B</xsl:text>
      <xsl:call-template name="box"/>
      <xsl:value-of select="$m"/><xsl:text>E</xsl:text>
    </xsl:if>
  </xsl:template>
  <xsl:template match="&omitted; | inline-formula | disp-formula | break" mode="nested"/>
  <xsl:template match="&citation;"
                mode="nested">
    <xsl:if test="$citations"><xsl:apply-templates select="&may-nest;" mode="nested"/></xsl:if>
  </xsl:template>

  <!-- float: a figure or a table, kept as "Figure: caption" / "Table: caption" and
       "Table row: a | b" when the options say so. Any element of floats-group that is not
       a table counts as a figure. -->
  <xsl:template match="fig-group | table-wrap-group" mode="float">
    <xsl:apply-templates select="*" mode="float"/>
  </xsl:template>
  <xsl:template match="table-wrap" mode="float">
    <xsl:if test="$tables = 'keep'">
      <xsl:for-each select="caption[1]">
        <xsl:call-template name="caption"><xsl:with-param name="label" select="'Table'"/></xsl:call-template>
      </xsl:for-each>
      <xsl:apply-templates select="*" mode="rows"/>
    </xsl:if>
  </xsl:template>
  <xsl:template match="*" mode="float">
    <xsl:call-template name="figure"/>
  </xsl:template>
  <xsl:template match="&omitted; | inline-formula | disp-formula | break" mode="float"/>
  <xsl:template match="&citation;" mode="float">
    <xsl:if test="$citations"><xsl:call-template name="figure"/></xsl:if>
  </xsl:template>
  <xsl:template name="figure">
    <xsl:if test="$figures = 'keep'">
      <xsl:for-each select="caption[1]">
        <xsl:call-template name="caption"><xsl:with-param name="label" select="'Figure'"/></xsl:call-template>
      </xsl:for-each>
    </xsl:if>
  </xsl:template>

  <!-- Each element of a caption is a part; what inline text leaves out is no part. -->
  <xsl:template name="caption">
    <xsl:param name="label"/>
    <xsl:value-of select="$m"/><xsl:text>C</xsl:text><xsl:value-of select="$label"/>
    <xsl:for-each select="*[not(&is-omitted;)][$citations or not(&is-citation;)]">
      <xsl:value-of select="$m"/><xsl:text>c</xsl:text>
      <xsl:apply-templates select="." mode="part"/>
    </xsl:for-each>
  </xsl:template>
  <!-- A part's own text: a formula or a line break is replaced as inline, a nested block
       keeps its text (only the blocks inside it leave it). -->
  <xsl:template match="*" mode="part">
    <xsl:apply-templates select="." mode="inline"/>
  </xsl:template>
  <xsl:template match="fig | fig-group | table-wrap | table-wrap-group | boxed-text" mode="part">
    <xsl:apply-templates mode="inline"/>
  </xsl:template>

  <!-- rows: every table row below a table, in document order (inside figures and boxes
       too), but none inside what inline text leaves out. -->
  <xsl:template match="*" mode="rows">
    <xsl:apply-templates select="*" mode="rows"/>
  </xsl:template>
  <xsl:template match="tr" mode="rows">
    <xsl:value-of select="$m"/><xsl:text>R</xsl:text>
    <xsl:for-each select="td | th">
      <xsl:value-of select="$m"/><xsl:text>c</xsl:text>
      <xsl:apply-templates mode="inline"/>
    </xsl:for-each>
    <xsl:apply-templates select="*" mode="rows"/>
  </xsl:template>
  <xsl:template match="&omitted; | inline-formula | disp-formula | break" mode="rows"/>
  <xsl:template match="&citation;"
                mode="rows">
    <xsl:if test="$citations"><xsl:apply-templates select="*" mode="rows"/></xsl:if>
  </xsl:template>

  <!-- inline: the prose of an element. Footnotes, supplementary material, reference lists
       and citations are left out, so are the blocks nested in it (they follow it);
       formulae are their placeholder or their text (set by the reader), a line break a
       space. -->
  <xsl:template match="&omitted; | fig | fig-group | table-wrap | table-wrap-group | boxed-text"
                mode="inline"/>
  <!-- Of a narrative citation, "Theobald and Wuttke (2005)", a part of its sentence ("as
       described in ...", "... showed that"), the names stay and the year goes, as
       clean_paper_text does with one in text: what comes before a "(" that a year follows.
       "(Smith et al., 2020)", "Lee, 2019" and "3" go whole. -->
  <xsl:template match="&citation;"
                mode="inline">
    <xsl:choose>
      <xsl:when test="$citations"><xsl:apply-templates mode="inline"/></xsl:when>
      <!-- (a "(" in the whole text is needed for one in the text kept: the common citation
           costs one test, as before) -->
      <xsl:when test="contains(., '(')">
        <xsl:variable name="text"><xsl:apply-templates mode="kept-text"/></xsl:variable>
        <xsl:if test="contains(translate(substring-after($text, '('), '0123456789', '##########'),
                      '####')">
          <xsl:value-of select="substring-before($text, '(')"/>
        </xsl:if>
      </xsl:when>
    </xsl:choose>
  </xsl:template>
  <xsl:template match="inline-formula" mode="inline">
    <xsl:call-template name="formula"/>
  </xsl:template>
  <xsl:template match="disp-formula" mode="inline">
    <!-- a display inside a paragraph stands apart from the words around it -->
    <xsl:text> </xsl:text><xsl:call-template name="formula"/><xsl:text> </xsl:text>
  </xsl:template>
  <xsl:template name="formula">
    <xsl:choose>
      <xsl:when test="$formulas = 'text'"><xsl:value-of select="."/></xsl:when>
      <xsl:otherwise><xsl:text>[formula]</xsl:text></xsl:otherwise>
    </xsl:choose>
  </xsl:template>
  <xsl:template match="break" mode="inline"><xsl:text> </xsl:text></xsl:template>
</xsl:stylesheet>
