"""Sentences of a comment as spans of its original text, for Perspective's per-sentence `spanScores`.

Offsets are Unicode code points (Python's string indices) into the text exactly as the caller sent it,
CR LF, emoji and combining marks included: a span never starts or ends inside a character. Sentences end
where civmon's chunker ends them (after . ! or ? and a space) and at line breaks; each span is trimmed of
the white space around it. A text of more than MAX_SPANS sentences gets spans of several sentences each.
"""

from __future__ import annotations

import re

from monitor.scoring.text import SENTENCE_END

LINE_BREAK = re.compile(r"\r\n|[\r\n\u2028\u2029\x85]")
MAX_SPANS = 100  # each span is one more text to score


def sentence_spans(text: str, most: int = MAX_SPANS) -> list[tuple[int, int]]:
    """(begin, end) of each sentence, in order, never empty, never overlapping; past `most` sentences, runs of
    neighbouring sentences share a span, so that "a. " ten thousand times costs `most` texts, not 10,000."""
    spans = _sentences(text)
    if len(spans) <= most:
        return spans
    size = -(-len(spans) // most)  # sentences per span, rounded up
    return [(spans[i][0], spans[min(i + size, len(spans)) - 1][1]) for i in range(0, len(spans), size)]


def _sentences(text: str) -> list[tuple[int, int]]:
    spans = []
    for line_start, line_end in _pieces(text, LINE_BREAK, 0, len(text)):
        for begin, end in _pieces(text, SENTENCE_END, line_start, line_end):
            stripped = text[begin:end]
            lead = len(stripped) - len(stripped.lstrip())
            trail = len(stripped.rstrip())
            if trail > lead:
                spans.append((begin + lead, begin + trail))
    return spans


def _pieces(text: str, separator: re.Pattern[str], start: int, end: int) -> list[tuple[int, int]]:
    """The stretches of text[start:end] between the separator's matches."""
    pieces, at = [], start
    for match in separator.finditer(text, start, end):
        pieces.append((at, match.start()))
        at = match.end()
    pieces.append((at, end))
    return pieces
