"""Comment text as a moderator would want it scored.

- Markdown is reduced to its words (links to their text, code kept as text).
- Quoted text (`> ...`, usually the parent being answered) is dropped: quoting a
  hostile comment does not make the reply hostile.
- URLs become "link" and user mentions "@user": neither says anything about tone,
  and both would otherwise eat the model's word budget.
- Long comments are split into chunks of whole sentences; the scorer takes the worst
  chunk for hostility and the average for the rest.
- Empty, [deleted] and [removed] texts, and text in a language other than English,
  are not scored: they carry a reason instead.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache

from markdown_it import MarkdownIt

CHUNK_WORDS = 90  # about 120 word pieces: inside a 128-token window
CHUNK_TOKENS = 128
MIN_WORDS_FOR_LANGUAGE = 3
LANGUAGE_CONFIDENCE = 0.6
PLACEHOLDERS = {"[deleted]", "[removed]", "[ removed by reddit ]"}

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
MENTION = re.compile(r"(?<![\w/])(?:/?u/[\w-]+|@\w+)", re.IGNORECASE)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
SPACES = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class Prepared:
    chunks: tuple[str, ...]  # empty when the text is not scored
    language: str | None = None
    skip_reason: str | None = None


@cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("strikethrough")


@cache
def _language_identifier():  # type: ignore[no-untyped-def]
    from py3langid import langid

    model = os.path.join(os.path.dirname(langid.__file__), langid.MODEL_FILE)
    return langid.LanguageIdentifier.from_model_file(model, norm_probs=True)


def markdown_to_text(markdown: str) -> str:
    """The words of a Markdown text, without what it quotes."""
    parts: list[str] = []
    quote_depth = 0
    for token in _markdown().parse(markdown):
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
        if child.type in ("text", "code_inline"):
            pieces.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            pieces.append(" ")
    return "".join(pieces)


def normalise(text: str) -> str:
    text = URL.sub("link", text)
    text = MENTION.sub("@user", text)
    return SPACES.sub(" ", text).strip()


def chunk(text: str, words: int = CHUNK_WORDS) -> tuple[str, ...]:
    """Whole sentences packed into chunks of at most `words` words (a longer sentence is cut)."""
    chunks: list[str] = []
    current: list[str] = []
    for sentence in SENTENCE_END.split(text.replace("\n", " ")):
        tokens = sentence.split()
        while len(tokens) > words:  # a run-on "sentence": cut it
            chunks.append(" ".join(tokens[:words]))
            tokens = tokens[words:]
        if current and len(current) + len(tokens) > words:
            chunks.append(" ".join(current))
            current = []
        current += tokens
    if current:
        chunks.append(" ".join(current))
    return tuple(chunks)


def language(text: str) -> str | None:
    """The text's language when it can be told with confidence, else None."""
    if len(text.split()) < MIN_WORDS_FOR_LANGUAGE:
        return None
    code, probability = _language_identifier().classify(text)
    return code if probability >= LANGUAGE_CONFIDENCE else None


def prepare(raw: str | None, chunk_words: int = CHUNK_WORDS) -> Prepared:
    if raw is None or not raw.strip():
        return Prepared((), skip_reason="empty")
    if raw.strip().lower() in PLACEHOLDERS:
        return Prepared((), skip_reason=f"{raw.strip()} (no text to score)")
    text = normalise(markdown_to_text(raw))
    if not text:
        return Prepared((), skip_reason="nothing left to score once quotes and markup are removed")
    lang = language(text)
    if lang not in (None, "en"):
        return Prepared((), language=lang, skip_reason=f"not English (language: {lang})")
    return Prepared(chunk(text, chunk_words), language=lang)  # None: too short or unclear to tell; scored as English
