"""Text preparation: what a moderator expects to count, and what not to score."""

from __future__ import annotations

from monitor.scoring.text import CHUNK_WORDS, chunk, markdown_to_text, normalise, prepare


def test_quoted_parent_does_not_count():
    text = "> You are an idiot and a liar.\n> Nobody likes you.\n\nI see it differently, but thank you."
    assert markdown_to_text(text) == "I see it differently, but thank you."


def test_markdown_reduced_to_words():
    text = "**Bold** and *emphasis*, a [link text](https://example.org) and `code`.\n\n- item one\n- item two"
    assert markdown_to_text(text) == "Bold and emphasis, a link text and code.\nitem one\nitem two"


def test_urls_and_mentions_normalised():
    assert normalise("see https://example.org/a?b=1 and www.x.com, ask u/Some_User or /u/other @handle") == (
        "see link and link ask @user or @user @handle".replace("@handle", "@user")
    )


def test_long_text_chunked_on_sentences():
    sentence = "This is one sentence of eight words here."
    chunks = chunk(" ".join([sentence] * 40))
    assert len(chunks) == 4 and all(len(c.split()) <= CHUNK_WORDS for c in chunks)
    assert all(c.endswith("here.") for c in chunks)  # never cut inside a sentence
    assert len(chunk("word " * 1000)) == 12  # one endless sentence is cut


def test_not_scored_with_a_reason():
    assert prepare(None).skip_reason == "empty"
    assert prepare("   ").skip_reason == "empty"
    assert "no text" in prepare("[deleted]").skip_reason
    assert "no text" in prepare("[removed]").skip_reason
    assert "nothing left" in prepare("> only a quote").skip_reason
    german = prepare("Das ist wirklich eine sehr schlechte Idee, und das weißt du auch.")
    assert (german.language, german.chunks) == ("de", ())
    assert "not English" in german.skip_reason


def test_english_is_scored():
    prepared = prepare("Thanks a lot, this really helped me understand the problem.")
    assert prepared.skip_reason is None and prepared.language == "en" and len(prepared.chunks) == 1
    short = prepare("ok")  # too short to tell: scored as English, but not recorded as detected English
    assert short.language is None and short.chunks == ("ok",)
