"""Comment text as a moderator would want it scored.

- Markdown is reduced to its words as Reddit shows them: links and images to their text,
  spoilers (`>!...!<`) to theirs, code kept as text (hostile words in a code block are
  still read), and HTML as the literal text it is on Reddit, which does not render it.
- Text is folded to the letters a reader sees, so hostility cannot hide behind Unicode:
  compatibility forms (fullwidth, mathematical letters) by NFKC; invisible characters
  (zero-width, soft hyphen, bidi controls) dropped; blank-looking letters (Hangul fillers,
  the blank Braille pattern) read as spaces; combining marks left on Latin letters once NFKC
  has composed the accented ones (é), or on punctuation, dropped, and all marks of a Latin
  word whose every letter carries one (ýóú); Latin small capitals (ʏᴏᴜ) read as their
  letters; and Cyrillic, Greek and other look-alike letters in Latin words read as the Latin
  letters they imitate (Unicode's confusables data, from the confusable-homoglyphs package).
  Upside-down text (ʎon) is not folded: no maintained mapping exists.
- Quoted text (`> ...`, usually the parent being answered) is dropped: quoting a
  hostile comment does not make the reply hostile.
- URLs become "link" and user mentions "@user": neither says anything about tone,
  and both would otherwise eat the model's word budget.
- Long comments are split into chunks of whole sentences; the scorer takes the worst
  chunk for hostility and the average for the rest. Given the model's window, chunks are
  sized in its tokenizer's word pieces too, and a "word" of hundreds of pieces (a run of
  tags or dashes) is cut, so nothing can push the rest of a text past what the model reads.
- A text in another language is scored on its English stretches only (an insult behind
  padding in Latin is read), and not at all when it has none.
- Empty, [deleted] and [removed] texts, text in a language other than English, text that
  is not valid Unicode (lone surrogates, NUL characters) and texts longer than
  MAX_CHARACTERS are not scored: they carry a reason instead.

PREPARATION names this recipe; it is part of every model version, so scores prepared
differently are never mixed under one version.
"""

from __future__ import annotations

import math
import os
import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from itertools import groupby

from markdown_it import MarkdownIt

# text1: before HTML-as-text, spoilers, image text, Unicode folding and chunks sized in word pieces
PREPARATION = "text2"
CHUNK_WORDS = 90  # about 120 word pieces of ordinary text: inside a 128-token window
CHUNK_TOKENS = 128
MIN_WORDS_FOR_LANGUAGE = 3
LANGUAGE_WINDOW = 8  # words: in a text of another language, stretches this long are looked at for English
LANGUAGE_CONFIDENCE = 0.6
PLACEHOLDERS = {"[deleted]", "[removed]", "[ removed by reddit ]"}
MAX_CHARACTERS = 100_000  # ten times Reddit's limit; past it, Markdown parsing and chunk scoring take seconds a text

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
MENTION = re.compile(r"(?<![\w/])(?:/?u/[\w-]+|@\w+)", re.IGNORECASE)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
SPACES = re.compile(r"[ \t]+")
SPOILER = re.compile(r">!(.+?)!<", re.DOTALL)  # Reddit's spoiler; at a line's start CommonMark would read a quote
WORD = re.compile(r"\w+")
INVALID = re.compile(r"[\x00\ud800-\udfff]")  # NUL, lone surrogates: no text a person wrote (and fatal to tokenizers)
KEPT_CONTROLS = "\n\t"
SMALL_CAPITAL = re.compile(r"LATIN LETTER SMALL CAPITAL [A-Z]")
# letters and symbols that show as nothing (Hangul fillers, the blank Braille pattern): read as the spaces they look
BLANKS = dict.fromkeys(map(ord, "\u115f\u1160\u3164\uffa0\u2800"), " ")


@dataclass(frozen=True)
class Prepared:
    chunks: tuple[str, ...]  # empty when the text is not scored
    language: str | None = None
    skip_reason: str | None = None


Spans = Callable[[list[str]], list[list[tuple[int, int]]]]  # per word, where each of its word pieces lies in it


@dataclass(frozen=True)
class Window:
    """What a model reads whole: at most `pieces` word pieces, as its tokenizer cuts them (`spans`)."""

    pieces: int
    spans: Spans


@cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("strikethrough")  # Reddit shows HTML as typed


@cache
def _language_identifier():  # type: ignore[no-untyped-def]
    from py3langid import langid

    model = os.path.join(os.path.dirname(langid.__file__), langid.MODEL_FILE)
    return langid.LanguageIdentifier.from_model_file(model, norm_probs=True)


def markdown_to_text(markdown: str) -> str:
    """The words of a Markdown text, without what it quotes."""
    parts: list[str] = []
    quote_depth = 0
    for token in _markdown().parse(SPOILER.sub(r"\1", markdown)):
        if token.type == "blockquote_open":
            quote_depth += 1
        elif token.type == "blockquote_close":
            quote_depth -= 1
        elif quote_depth == 0 and token.type in ("inline", "code_block", "fence"):
            text = token.content if token.children is None else _inline_text(token.children)
            parts.append(text.strip())
    return "\n".join(p for p in parts if p)


def _inline_text(children: list) -> str:  # type: ignore[type-arg]
    pieces = []
    for child in children:
        if child.type in ("text", "code_inline", "image"):  # an image's content is its alt text
            pieces.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            pieces.append(" ")
    return "".join(pieces)


@cache
def _lookalikes() -> dict[int, str]:
    """Letters of other scripts that Unicode's confusables data says look like an ASCII letter (Cyrillic а, Greek ο)."""
    from confusable_homoglyphs import categories, confusables

    table = {}
    for char, glyphs in confusables.confusables_data.items():
        if len(char) != 1 or not unicodedata.category(char).startswith("L") or categories.alias(char) == "LATIN":
            continue
        latin = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"] in string.ascii_letters]
        if latin:
            table[char] = latin[0]
    # the data gives capital look-alikes of I the prototype of I, l and 1: "l". A capital mapped to a small letter
    # takes the capital of its own small letter's look-alike instead (Greek Ι -> I, as ι -> i)
    return {ord(c): _capital(c, t, table) for c, t in table.items()} | _small_capitals()


def _small_capitals() -> dict[int, str]:
    """Latin small capitals (ʏᴏᴜ), phonetic letters no English word is spelt with, as the letters they are."""
    names = (unicodedata.name(chr(code), "") for code in range(0x20000))
    return {ord(unicodedata.lookup(n)): n[-1].lower() for n in names if SMALL_CAPITAL.fullmatch(n)}


def _capital(char: str, latin: str, table: dict[str, str]) -> str:
    if char.isupper() and latin.islower() and char.lower() in table:
        return table[char.lower()].upper()
    return latin


def _fold_word(match: re.Match[str]) -> str:
    """A word mixing look-alikes into Latin letters, or made of look-alikes only, as the Latin word it imitates;
    a word of another script (Russian "привет") stays as it is."""
    word = match.group()
    table = _lookalikes()
    if any(ch in string.ascii_letters for ch in word) or all(ord(ch) in table for ch in word if ch.isalpha()):
        return word.translate(table)
    return word


def fold(text: str) -> str:
    """The letters a reader sees: compatibility forms, invisible characters, stray marks and look-alike letters
    folded away ("ｆｕ<zero-width space>сk", with a Cyrillic с, -> "fuck")."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text.translate(BLANKS))
    text = "".join(ch for ch in text if ch in KEPT_CONTROLS or unicodedata.category(ch) not in ("Cf", "Cc"))
    return _without_stray_marks(WORD.sub(_fold_word, text))


@cache
def _marked_word() -> re.Pattern[str]:
    """A run of letters and the combining marks on them, or marks on no letter or digit (a space, a full stop)."""
    marks = "".join(chr(c) for c in (*range(0x20000), *range(0xE0000, 0xE1000)) if _is_mark(chr(c)))
    return re.compile(f"(?:[^\\W\\d_][{re.escape(marks)}]*)+|(?<!\\w)[{re.escape(marks)}]+")


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch) in ("Mn", "Me")


def _without_stray_marks(text: str) -> str:
    """Marks left on a Latin letter once NFKC composed what it could (é stays) or on punctuation: strikethrough,
    "zalgo"; and in a Latin word whose every letter carries one (ýóú, ỵọụ: no language is spelt so), all its marks."""
    return _marked_word().sub(_unmarked, text)


def _unmarked(match: re.Match[str]) -> str:
    word = match.group()
    if _is_mark(word[0]):
        return ""
    letters = re.findall(r"[^\W\d_]\W*", word)  # each letter with the marks after it
    if len(letters) > 1 and all(_latin(g[0]) and len(unicodedata.normalize("NFD", g)) > 1 for g in letters):
        return "".join(ch for ch in unicodedata.normalize("NFD", word) if not _is_mark(ch))
    return "".join(g[0] + ("" if _latin(g[0]) else g[1:]) for g in letters)


def _latin(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith("LATIN")


def normalise(text: str) -> str:
    text = URL.sub("link", text)
    text = MENTION.sub("@user", text)
    return SPACES.sub(" ", text).strip()


def chunk(text: str, words: int = CHUNK_WORDS, window: Window | None = None) -> tuple[str, ...]:
    """Whole sentences packed into chunks of at most `words` words and, given a window, at most its word pieces:
    a long sentence is cut, and so is a word of more pieces than the window holds ("<br>" a hundred times), so
    that no part of the text falls past what the model reads."""
    if window and len(text) <= window.pieces:
        window = None  # every word piece covers a character at least: this text fits, no need to count
    budget = window.pieces if window else math.inf
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for sentence in SENTENCE_END.split(text.replace("\n", " ")):
        tokens = _sized(sentence.split(), window)
        while (n := _fitting(tokens, words, budget)) < len(tokens):  # a run-on "sentence": cut it
            chunks.append(" ".join(w for w, _ in tokens[:n]))
            tokens = tokens[n:]
        size = sum(pieces for _, pieces in tokens)
        if current and (len(current) + len(tokens) > words or used + size > budget):
            chunks.append(" ".join(current))
            current, used = [], 0
        current += [w for w, _ in tokens]
        used += size
    if current:
        chunks.append(" ".join(current))
    return tuple(chunks)


def _fitting(tokens: list[tuple[str, int]], words: int, budget: float) -> int:
    """How many of the leading (word, pieces) fit in one chunk."""
    used = 0
    for n, (_, pieces) in enumerate(tokens[:words]):
        used += pieces
        if used > budget:
            return n
    return min(len(tokens), words)


def _sized(words: list[str], window: Window | None) -> list[tuple[str, int]]:
    """Each word with its count of word pieces (0 with no window), a word too long for the window cut in parts."""
    if window is None or not words:
        return [(w, 0) for w in words]
    return [part for word, spans in zip(words, window.spans(words), strict=True) for part in _cut(word, spans, window)]


def _cut(word: str, spans: list[tuple[int, int]], window: Window) -> list[tuple[str, int]]:
    """A word in parts of at most the window's pieces, cut between pieces, where possible beside punctuation: the
    tokenizer splits there anyway, so each part is cut into the same pieces on its own."""
    parts = []
    while len(spans) > window.pieces:
        cut = max((i for i in range(1, window.pieces + 1) if _splits(word, spans[i][0])), default=window.pieces)
        start = spans[cut][0]
        parts.append((word[:start], cut))
        word, spans = word[start:], [(a - start, b - start) for a, b in spans[cut:]]
    parts.append((word, len(spans)))
    return parts


def _splits(word: str, at: int) -> bool:
    return not (word[at - 1].isalnum() and word[at].isalnum())


def language(text: str) -> str | None:
    """The text's language when it can be told with confidence, else None."""
    if len(text.split()) < MIN_WORDS_FOR_LANGUAGE:
        return None
    code, probability = _language_identifier().classify(text)
    return code if probability >= LANGUAGE_CONFIDENCE else None


def _english_stretches(text: str) -> list[str]:
    """The stretches of a text in another language that are in English, each of overlapping windows of words
    (the last one ends with the text) that read as English."""
    words = text.split()
    last = max(len(words) - LANGUAGE_WINDOW, 0)
    english = [False] * len(words)
    for start in sorted({*range(0, last + 1, LANGUAGE_WINDOW // 2), last}):
        end = start + LANGUAGE_WINDOW
        if language(" ".join(words[start:end])) == "en":
            english[start:end] = [True] * len(english[start:end])
    runs = groupby(zip(words, english, strict=True), key=lambda pair: pair[1])
    return [" ".join(word for word, _ in run) for is_english, run in runs if is_english]


def prepare(raw: str | None, chunk_words: int = CHUNK_WORDS, window: Window | None = None) -> Prepared:
    if raw is None or not raw.strip():
        return Prepared((), skip_reason="empty")
    if INVALID.search(raw):
        return Prepared((), skip_reason="not valid text (NUL characters or lone surrogates)")
    if len(raw) > MAX_CHARACTERS:
        return Prepared((), skip_reason=f"too long to score ({len(raw):,} characters; at most {MAX_CHARACTERS:,})")
    if raw.strip().lower() in PLACEHOLDERS:
        return Prepared((), skip_reason=f"{raw.strip()} (no text to score)")
    text = normalise(fold(markdown_to_text(raw)))
    if not text:
        return Prepared((), skip_reason="nothing left to score once quotes and markup are removed")
    lang = language(text)
    if lang not in (None, "en"):
        english = _english_stretches(text)  # padding in another language (lorem ipsum) hides no English insult
        if not english:
            return Prepared((), language=lang, skip_reason=f"not English (language: {lang})")
        return Prepared(tuple(c for part in english for c in chunk(part, chunk_words, window)), language="en")
    # lang None: too short or unclear to tell; scored as English
    return Prepared(chunk(text, chunk_words, window), language=lang)
