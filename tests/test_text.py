"""Text preparation: what a moderator expects to count, and what not to score."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pytest

from monitor.config import ModelSettings
from monitor.scoring import datasets
from monitor.scoring.models import default_scorer
from monitor.scoring.results import score_texts
from monitor.scoring.text import CHUNK_WORDS, MAX_CHARACTERS, chunk, fold, markdown_to_text, normalise, prepare

needs_data = pytest.mark.skipif(not datasets.available(), reason=f"labelled data not found at {datasets.data_dir()}")


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


HOSTILE = "You are a fucking idiot."
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]  # and soft hyphen: invisible in a word


def _every_letter(text: str, mark: str) -> str:
    return "".join(ch + mark if ch.isalpha() else ch for ch in text)


@pytest.mark.parametrize(
    "disguised",
    [
        *(HOSTILE.replace("uck", f"u{z}ck").replace("idiot", f"id{z}iot") for z in ZERO_WIDTH),
        "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in HOSTILE),  # fullwidth
        "𝐘𝐨𝐮 𝐚𝐫𝐞 𝐚 𝐟𝐮𝐜𝐤𝐢𝐧𝐠 𝐢𝐝𝐢𝐨𝐭.",  # mathematical bold
        _every_letter(HOSTILE, "\u0336"),  # strikethrough combining mark
        _every_letter(HOSTILE, "\u0316\u0353\u0489"),  # "zalgo" (a mark that composes makes an accented letter: é)
        HOSTILE.translate(str.maketrans("aceoiyY", "асеоіуУ")),  # Cyrillic look-alikes
        HOSTILE.translate(str.maketrans("aoiuY", "αοιυΥ")),  # Greek look-alikes
        "Υоu аrе а fuсkіng іdіоt.",  # whole words of look-alikes ("а", "аrе") as well as mixed ones
        "You are a &#x66;ucking &#105;diot.",  # character references
        "You are a f**u**cking *i*diot.",
        "You are a f~~u~~cking _idiot_.",
        "You are a [fucking idiot](https://example.org).",
        "You are a ![fucking idiot.](https://example.org/x.png)",
        ">!You are a fucking idiot.!<",  # a spoiler, not a quote
        "# You are a fucking idiot.",
        "`You are a fucking idiot.`",
        "```\nYou are a fucking idiot.\n```",  # code is read too: hostile words in it are still hostile
    ],
)
def test_disguised_hostility_reads_as_the_plain_words(disguised):
    assert prepare(disguised).chunks == prepare(HOSTILE).chunks


@pytest.mark.parametrize(
    "html",
    [
        "<div>\n{}",
        "<div>{}</div>",
        "<p>{}</p>",
        "<!-- -->{}",
        "<!-- a note -->\n{}",
        "<details><summary>more</summary>\n{}\n</details>",
        "<script>alert(1)</script>\n{}",
        "<b>{}</b>",
        "A reply: <span>{}</span>",
    ],
)
def test_html_is_text_as_reddit_shows_it(html):
    """Reddit does not render HTML: a comment opening with a tag shows the tag and what follows."""
    prepared = prepare(html.format(HOSTILE))
    assert prepared.skip_reason is None and "fucking idiot" in " ".join(prepared.chunks)


@pytest.mark.parametrize(
    "text",
    [
        "Это очень плохая идея, и ты это знаешь.",
        "Αυτή είναι μια πολύ κακή ιδέα και το ξέρεις.",
        "Це дуже погана ідея, і ти це знаєш.",
    ],
)
def test_other_scripts_are_not_folded_into_latin(text):
    prepared = prepare(text)
    assert prepared.chunks == () and "not English" in prepared.skip_reason


def test_folding_keeps_letters_a_reader_reads_as_they_are():
    assert fold("café, naïve, Ærøskøbing, straße") == "café, naïve, Ærøskøbing, straße"
    assert fold("привет and hello") == "привет and hello"  # a Russian word beside English ones stays Russian
    assert fold("Ι saw ΝΑΤΟ") == "I saw NATO"  # capitals: I, not the l that Unicode's data gives as I's prototype


@pytest.mark.parametrize(
    "text",
    ["lone high \ud800 surrogate", "lone low \udfff surrogate", "\udc80\udcff", "a NUL\x00 byte", "\x00"],
)
def test_text_that_is_not_valid_unicode_has_a_reason(text):
    prepared = prepare(text)
    assert prepared.chunks == () and prepared.skip_reason == "not valid text (NUL characters or lone surrogates)"


def test_enormous_text_has_a_reason():
    assert prepare("word " * (MAX_CHARACTERS // 5)).skip_reason is None
    prepared = prepare("[" * (MAX_CHARACTERS + 1))
    assert prepared.chunks == () and "too long to score (100,001 characters" in prepared.skip_reason


@pytest.mark.parametrize("text", ["", " \n\t ", "\u200b\u200b", "\u00ad", "&#8203;"])
def test_text_with_nothing_visible_is_not_scored(text):
    assert prepare(text).chunks == ()


PLAIN = re.compile(r"[\w ,.'!?;:()\"-]+")  # no Markdown or entities of its own for a disguise to collide with
CYRILLIC = str.maketrans("aceopxyisjABCEHKMOPTX", "асеорхуіѕјАВСЕНКМОРТХ")
GREEK = str.maketrans("aoivpuABEHIKMNOPTXYZ", "αοινρυΑΒΕΗΙΚΜΝΟΡΤΧΥΖ")
SMALL_CAPITALS = str.maketrans("abcdefghijklmnopqrstuvwyz", "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘꞯʀꜱᴛᴜᴠᴡʏᴢ")
DISGUISES = {
    "Cyrillic": lambda t: t.translate(CYRILLIC),
    "Greek": lambda t: t.translate(GREEK),
    "zero-width": lambda t: re.sub(r"(?<=\w)(?=\w)", lambda m: ZERO_WIDTH[m.start() % len(ZERO_WIDTH)], t),
    "fullwidth": lambda t: "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in t),
    "combining": lambda t: _every_letter(t, "\u0336"),
    "entities": lambda t: re.sub(r"\b([A-Za-z])", lambda m: f"&#x{ord(m.group(1)):x};", t),
    "Markdown split": lambda t: re.sub(r"\b(\w)(\w)(\w\w+)", r"\1**\2**\3", t),
    "dot below": lambda t: "".join(ch + "\u0323" for ch in t),  # NFKC composes most: ạ, ṛ, ẹ (not English: kab)
    "acute": lambda t: "".join(ch + "\u0301" for ch in t),  # (not English: yo)
    "small capitals": lambda t: t.translate(SMALL_CAPITALS),
    "Hangul filler spaces": lambda t: t.replace(" ", "\u3164"),
    "Braille blank spaces": lambda t: t.replace(" ", "\u2800"),
    "spoiler": lambda t: f">!{t}!<",
    "code block": lambda t: f"```\n{t}\n```",
}
HTML = {
    "div": "<div>\n{}",
    "p": "<p>{}</p>",
    "comment": "<!-- -->{}",
    "details": "<details><summary>more</summary>\n{}\n</details>",
    "script": "<script>alert(1)</script>\n{}",
    "span": "<span>{}</span>",
}


@pytest.fixture(scope="module")
def shipped():
    """The shipped model, fp32: the same on every CPU."""
    return default_scorer(ModelSettings(runtime="torch", device="cpu"))


@pytest.fixture(scope="module")
def hostile_comments(shipped):
    """The shipped model and the plain incivility test comments it finds hostile."""
    scorer = shipped
    rows = [e.text for e in datasets.load("incivility", "test") if e.label == 1 and PLAIN.fullmatch(e.text)]
    scores = _hostility(scorer, rows)
    hostile = scores >= 0.5
    return scorer, [t for t, h in zip(rows, hostile, strict=True) if h], scores[hostile]


def _hostility(scorer, texts):
    return np.array([r.scores["hostility"] for r in score_texts(scorer, texts)])


@needs_data
@pytest.mark.parametrize("disguise", DISGUISES)
def test_disguised_real_hostile_comments_score_as_the_plain_ones(hostile_comments, disguise):
    """Measured on these 44 comments (mean hostility 0.79) before folding: Cyrillic 0.06, fullwidth 0.02, Greek
    0.02 (14 not scored, taken for Greek), a spoiler none scored; combining marks on every character that compose
    (dot below, acute) none scored (taken for Kabyle, Yoruba), small capitals and Hangul fillers for spaces under
    0.05 (0.97 for "you are a stupid worthless idiot": 0.011, 0.014). Folded, each gives the plain text back:
    same scores.
    (Zero-width and combining marks never moved this model, whose tokenizer drops them; other models' may not.)"""
    scorer, comments, plain = hostile_comments
    disguised = _hostility(scorer, [DISGUISES[disguise](t) for t in comments])
    assert np.abs(disguised - plain).max() < 1e-6


@needs_data
@pytest.mark.parametrize("html", HTML)
def test_real_hostile_comments_behind_html_stay_hostile(hostile_comments, html):
    """HTML stays as the literal text Reddit shows, so it shifts scores a little. Measured on these 43 comments
    with hostility's readout (fp32): mean change -0.017 to +0.011 by kind, the worst single drop 0.376 (one
    comment, 0.87 -> 0.50, behind <span>), none below 0.47 against the threshold 0.31. (The linear head before
    it: mean change -0.066 to -0.006, worst drop 0.274.) Bounds: about 6x the mean change, 1.2x the worst drop."""
    scorer, comments, plain = hostile_comments
    wrapped = _hostility(scorer, [HTML[html].format(t) for t in comments])
    assert abs(wrapped.mean() - plain.mean()) < 0.1
    assert (plain - wrapped).max() < 0.45
    assert (wrapped >= scorer.thresholds["hostility"]).all()


BLUNT = "you are a stupid worthless idiot"  # hostility 0.97 alone
PADDING = {  # one whitespace "word" of hundreds of word pieces, or many short ones
    "br tags": "<br>" * 100,
    "div tags": "<div>" * 50,
    "empty tags": "<b></b>" * 50,
    "dashes": "-" * 300 + " ",
    "commas": "ab," * 150 + " ",
    "hyphenated": "-".join(["word"] * 100) + " ",
    "ellipses": "\u2026" * 200 + " ",
    "long letter run": "x" * 99 + "-" + "y" * 99 + " ",  # the tokenizer's longest word, twice
    "many words": "ok " * 200,
}


@pytest.mark.parametrize("padding", PADDING)
def test_hostility_after_padding_is_in_a_chunk_the_model_reads_whole(shipped, padding):
    """Chunks were counted in words, so one word of hundreds of pieces pushed what followed past the model's
    128-token window: measured hostility 0.007 to 0.08 on these. Chunked by the model's own pieces: 0.70 to 0.84
    (the padding beside the words dilutes them a little); the bound is the threshold."""
    text = PADDING[padding] + BLUNT
    chunks = prepare(text, shipped.chunk_words, shipped.window).chunks
    lengths = [len(shipped.tokenizer(c)["input_ids"]) for c in chunks]
    assert max(lengths) <= shipped.card.max_length
    assert "".join(chunks).replace(" ", "") == "".join(prepare(text).chunks).replace(" ", "")  # nothing lost
    assert _hostility(shipped, [text])[0] >= shipped.thresholds["hostility"]


def test_ordinary_text_chunks_as_by_words(shipped):
    sentence = "This is one sentence of eight words here."
    for text in [sentence, " ".join([sentence] * 40), "word " * 1000]:
        assert prepare(text, shipped.chunk_words, shipped.window).chunks == chunk(text)


@pytest.mark.parametrize("blank", ["\u3164", "\u115f", "\u1160", "\uffa0", "\u2800", "\u3164\u2800\u3164"])
def test_blank_looking_characters_are_spaces(blank):
    assert prepare(blank.join(HOSTILE.split())).chunks == prepare(HOSTILE).chunks
    assert prepare(blank * 3).chunks == ()


@pytest.mark.parametrize("mark", ["\u0323", "\u0301", "\u0300", "\u0308", "\u0331"])
def test_a_mark_on_every_character_is_no_language(mark):
    """Measured: taken for Kabyle (dot below), Yoruba (acute), so never scored. A one-letter word keeps its
    accent (French à, Spanish ó), which this model's tokenizer strips as it does every accent."""
    prepared = prepare("".join(ch + mark for ch in BLUNT))
    assert prepared.skip_reason is None
    assert prepared.chunks[0].replace(unicodedata.normalize("NFC", "a" + mark), "a") == BLUNT


def test_accents_of_real_words_stay():
    assert fold("été, où, à, ça, người ở đây, Ölçü") == "été, où, à, ça, người ở đây, Ölçü"


@pytest.mark.parametrize(
    "text",
    [
        "lorem ipsum " * 100 + BLUNT,  # measured: not scored, "not English (language: la)"
        BLUNT + " lorem ipsum" * 100,
        "lorem ipsum " * 50 + BLUNT + " lorem ipsum" * 50,
        "Das ist wirklich eine sehr schlechte Idee, und das weißt du auch. " * 10 + BLUNT,
        "Je pense que c'est une très mauvaise idée et tu le sais bien, mon ami. " * 10 + BLUNT,
    ],
)
def test_english_hostility_behind_foreign_padding_is_scored(shipped, text):
    """Only the English stretch is scored: measured 0.97, as the insult alone."""
    prepared = prepare(text, shipped.chunk_words, shipped.window)
    assert prepared.language == "en" and BLUNT in " ".join(prepared.chunks)
    assert _hostility(shipped, [text])[0] >= shipped.thresholds["hostility"]


@pytest.mark.parametrize(
    "text",
    [
        "Je pense que c'est une très mauvaise idée et tu le sais bien, mon ami. Merci quand même pour la réponse.",
        "Esto es una idea muy mala y lo sabes. No sé por qué lo haces siempre así, de verdad. " * 5,
        "Das ist wirklich eine sehr schlechte Idee, und das weißt du auch. " * 8,
        "lorem ipsum dolor sit amet " * 40,
    ],
)
def test_long_foreign_text_without_english_is_not_scored(text):
    prepared = prepare(text)
    assert prepared.chunks == () and "not English" in prepared.skip_reason
