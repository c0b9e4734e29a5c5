"""Sentence spans on the original text: offsets in code points, whatever the line breaks and characters."""

from __future__ import annotations

import pytest

from monitor.api.spans import sentence_spans


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("You fool.\r\nReally!  Go away", ["You fool.", "Really!", "Go away"]),
        ("Family 👩‍👩‍👧 day. Flags 🇩🇪 too", ["Family 👩‍👩‍👧 day.", "Flags 🇩🇪 too"]),
        ("Cafe\u0301 time? t\u0336e\u0336x\u0336t", ["Cafe\u0301 time?", "t\u0336e\u0336x\u0336t"]),
        ("  one\u2028two\r\rthree  ", ["one", "two", "three"]),
        ("No sentence end", ["No sentence end"]),
        (" \r\n\t ", []),
    ],
)
def test_spans_slice_the_original_text_into_its_sentences(text, sentences):
    spans = sentence_spans(text)
    assert [text[b:e] for b, e in spans] == sentences
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_a_text_of_many_sentences_gets_at_most_the_limit_of_spans_covering_all_of_it():
    text = "a. " * 1000
    spans = sentence_spans(text, most=100)
    assert len(spans) == 100 and spans[0][0] == 0 and spans[-1][1] == len(text.rstrip())
    assert all(text[b:e].count("a.") == 10 for b, e in spans)
