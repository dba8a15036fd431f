"""Citations: sentence splitting, lexical support, refusals, and `cite()` renumbering, dropping,
link cleaning and verification, all on the real seed article."""

from __future__ import annotations

import pytest
from conftest import SEED

from assistant.cite import NUMBER_CAP, REFUSAL, UNVERIFIED, cite, is_refusal, split_sentences, support
from assistant.schema import Passage

ARTICLE = SEED.read_text(encoding="utf-8")
PARAGRAPHS = [p.strip() for p in ARTICLE.split("\n\n") if p.strip()]
FABRICATED = "Qureshi said Russia will invade Pakistan [1]."


def passage(n: int, text: str) -> Passage:
    return Passage(chunk_id=f"seed-{n}", article_id="seed", title="Russia, Pakistan agree to deepen ties",
                   source="IANS", published_at="2021-04-08", url=f"https://news.example/lavrov-{n}",
                   text=text)


@pytest.fixture
def passages() -> list[Passage]:
    """Three chunks of the seed: the visit and meeting; energy, pipeline and vaccine; the press conference."""
    chunks = [PARAGRAPHS[0:3], PARAGRAPHS[3:7], PARAGRAPHS[7:14]]
    return [passage(n, "\n\n".join(chunk)) for n, chunk in enumerate(chunks, start=1)]


# --- split_sentences ------------------------------------------------------------------------------------


def test_split_sentences_keeps_abbreviations_initials_and_decimals_inside():
    text = ("Mr. Lavrov met U.S. officials in Washington on Monday. The U.S. The deal is worth $3.5 billion. "
            "Sen. John F. Kennedy Jr. said so.")
    assert split_sentences(text) == ["Mr. Lavrov met U.S. officials in Washington on Monday.", "The U.S.",
                                     "The deal is worth $3.5 billion.", "Sen. John F. Kennedy Jr. said so."]


def test_split_sentences_handles_quotes_and_lines():
    text = '"Go now." Then he left. "Why?" he asked.\n- first point\n- second point'
    assert split_sentences(text) == ['"Go now."', "Then he left.", '"Why?" he asked.', "- first point",
                                     "- second point"]


def test_split_sentences_gives_a_trailing_marker_to_the_sentence_before():
    sentences = split_sentences("Lavrov arrived. [1] Khan met him [2].")
    assert sentences == ["Lavrov arrived. [1]", "Khan met him [2]."]


def test_split_sentences_on_the_seed():
    sentences = split_sentences(PARAGRAPHS[13])
    assert sentences[0] == '"There is a new approach and mindset in Pakistan for a relationship with Russia.'
    assert sentences[1].endswith("he added.")


# --- support --------------------------------------------------------------------------------------------


def test_a_paraphrase_is_supported_by_its_sentence():
    score, quote = support("Lavrov met Prime Minister Imran Khan and Qureshi, and the two sides agreed to "
                           "strengthen bilateral ties [1].", ARTICLE)
    assert score >= 0.9
    assert quote == PARAGRAPHS[1]


def test_support_stems_words():
    score, quote = support("Khan congratulated Russia on developing the Sputnik-V vaccine.", ARTICLE)
    assert score >= 0.9
    assert quote in ARTICLE and "development of Sputnik-V vaccine" in quote


def test_support_may_span_two_adjacent_sentences():
    score, quote = support("Lavrov expressed concern over the deteriorating security situation in "
                           "Afghanistan and said trade is satisfactory.", ARTICLE)
    assert score >= 0.8
    assert quote == PARAGRAPHS[9] + "\n\n" + PARAGRAPHS[10]


def test_names_alone_do_not_support_a_claim():
    score, _ = support(FABRICATED, ARTICLE)
    assert score < 0.5


@pytest.mark.parametrize(("claim", "supported"), [
    ("Lavrov visited Pakistan for three days.", False),
    ("Lavrov arrived in Pakistan for a two-day visit.", True),
    ("Lavrov arrived in Pakistan for a 2-day visit.", True),
    ("Covid-20 was discussed.", False),
])
def test_numbers_must_match(claim, supported):
    score, _ = support(claim, ARTICLE)
    assert (score >= 0.5) is supported
    if not supported:
        assert score <= NUMBER_CAP


def test_context_words_count_as_found():
    claim = "On April 8, IANS reported that Lavrov arrived in Pakistan."
    without, _ = support(claim, PARAGRAPHS[0])
    assert without < support(claim, PARAGRAPHS[0], context="IANS 2021-04-08 April 8")[0]


def test_support_of_nothing_is_zero():
    assert support("It was.", ARTICLE) == (0.0, "")
    assert support("Lavrov arrived.", "") == (0.0, "")


# --- refusals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    REFUSAL, "The articles don’t say who will build the pipeline.", "Insufficient information.",
    "I cannot answer that from the articles.", "The date of the next visit is not mentioned in the passages.",
    "The provided articles do not contain information about the pipeline's cost.",
    "There is no information about the cost in the articles.",
])
def test_refusals_are_recognised(text):
    assert is_refusal(text)


@pytest.mark.parametrize("text", [
    "Officials said they cannot say when the pipeline will be finished.",
    "The articles don't say when the pipeline will be finished, but Khan vowed to speed it up [1].",
    "Lavrov visited Pakistan. " * 12 + "The articles don't say more.",
])
def test_answers_are_not_refusals(text):
    assert not is_refusal(text)


def test_a_refusal_gets_no_citations_and_nothing_unsupported(passages):
    cited = cite(REFUSAL, passages)
    assert (cited.text, cited.refused, cited.citations, cited.unsupported) == (REFUSAL, True, [], [])


# --- cite -----------------------------------------------------------------------------------------------


def test_markers_are_renumbered_in_order_of_first_appearance(passages):
    cited = cite("Lavrov said Russia is ready to supply military equipment [3]. Lavrov arrived for a two-day "
                 "visit [1]. Both countries agreed on more joint military exercises [3].", passages)
    assert cited.text == ("Lavrov said Russia is ready to supply military equipment [1]. Lavrov arrived for "
                          "a two-day visit [2]. Both countries agreed on more joint military exercises [1].")
    assert [(c.n, c.url) for c in cited.citations] == [(1, passages[2].url), (2, passages[0].url)]
    assert all(c.supported for c in cited.citations) and cited.unsupported == []


def test_markers_to_missing_passages_are_dropped(passages):
    cited = cite("Lavrov arrived for a two-day visit [7][1]. Khan congratulated Russia on Sputnik-V [7].",
                 passages)
    assert cited.dropped == [7]
    assert "[7]" not in cited.text
    assert cited.text.startswith("Lavrov arrived for a two-day visit [1]. Khan congratulated Russia on "
                                 f"Sputnik-V {UNVERIFIED}.")  # its only marker went, so it is unsourced
    assert [c.n for c in cited.citations] == [1]


@pytest.mark.parametrize("markers", ["[1, 2]", "[1,2]", "[1][2]", "[2] [1]", "[2, 1][1]"])
def test_grouped_markers(passages, markers):
    cited = cite(f"Lavrov met Khan, and energy and railways cooperation was discussed {markers}.", passages)
    assert cited.text == "Lavrov met Khan, and energy and railways cooperation was discussed [1][2]."
    assert [c.n for c in cited.citations] == [1, 2]


def test_three_grouped_markers(passages):
    cited = cite("Lavrov met Khan and Qureshi [1,2,3].", passages)
    assert cited.text == "Lavrov met Khan and Qureshi [1][2][3]."
    assert all(c.supported for c in cited.citations)  # one of them supports the sentence


def test_a_fabricated_claim_is_unsupported_and_marked(passages):
    answer = f"Lavrov met Prime Minister Imran Khan and Qureshi [1]. {FABRICATED}"
    cited = cite(answer, passages)
    assert cited.unsupported == [FABRICATED]
    marked = f"{FABRICATED[:-1]} {UNVERIFIED}."
    assert cited.text == f"Lavrov met Prime Minister Imran Khan and Qureshi [1]. {marked}"
    [citation] = cited.citations
    assert not citation.supported


def test_a_sentence_may_be_supported_by_its_passages_jointly(passages):
    claim = "Lavrov arrived for a two-day visit, and railways and the Covid-19 pandemic were discussed"
    assert support(claim, passages[0].text)[0] < 0.5 and support(claim, passages[1].text)[0] < 0.5
    cited = cite(f"{claim} [1][2].", passages)
    assert cited.unsupported == []
    assert all(c.supported for c in cited.citations)
    assert "two-day visit" in cited.citations[0].quote and "Covid-19" in cited.citations[1].quote


def test_unmarked_claims_are_unsupported_but_glue_is_not(passages):
    cited = cite("Here is what the articles say:\nLavrov arrived for a two-day visit [1]. Russia will "
                 "sell fighter jets to Pakistan. The articles don't say when he will return.", passages)
    assert cited.unsupported == ["Russia will sell fighter jets to Pakistan."]
    assert f"Pakistan {UNVERIFIED}. The articles" in cited.text
    assert not cited.refused


def test_quotes_are_exact_spans_of_their_passages(passages):
    answer = ("Lavrov said Russia is ready to supply military equipment to Pakistan [3]. Khan stressed a "
              "negotiated political settlement in Afghanistan [2]. Lavrov arrived on Tuesday [1].")
    cited = cite(answer, passages)
    assert [c.url for c in cited.citations] == [passages[2].url, passages[1].url, passages[0].url]
    for citation in cited.citations:
        assert citation.quote and citation.quote in citation.passage
    assert cited.citations[0].quote == PARAGRAPHS[7]
    assert cited.citations[1].quote == PARAGRAPHS[6]
    assert cited.citations[2].quote == PARAGRAPHS[0]


def test_article_metadata_travels_with_the_citation(passages):
    reordered = passages[1:] + passages[:1]
    [citation] = cite("On April 8, IANS reported Lavrov's two-day visit [3].", reordered).citations
    assert citation.n == 1 and citation.url == passages[0].url
    assert (citation.title, citation.source) == (passages[0].title, "IANS")
    assert citation.published_at == "2021-04-08"
    assert citation.passage == passages[0].text and citation.supported


def test_links_not_to_cited_articles_are_removed(passages):
    answer = ("Lavrov arrived for a two-day visit [1]. See [the full story](https://evil.example/steal?x=1), "
              "[IANS](https://news.example/lavrov-1) and https://news.example/lavrov-1/, not "
              "https://evil.example/a. Or <https://news.example/lavrov-3>.")
    text = cite(answer, passages).text
    assert "evil.example" not in text and "lavrov-3" not in text
    kept = "See the full story, [IANS](https://news.example/lavrov-1) and https://news.example/lavrov-1/, not"
    assert kept in text
    assert text.endswith(" Or.")


def test_cite_is_deterministic(passages):
    answer = f"Lavrov met Khan [2][1]. {FABRICATED} Energy was discussed [2]."
    assert cite(answer, passages) == cite(answer, passages)
