"""`civmon score --input`: a researcher's CSV or JSONL corpus, one output row per input row, in order."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from monitor.errors import CivmonError
from monitor.scoring.alliance import AllianceScorer
from monitor.scoring.files import score_file


@pytest.fixture(scope="module")
def scorer(untrained_model):
    return AllianceScorer(untrained_model, device="cpu", runtime="torch")


def results(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_csv_rows_in_order_with_reasons(scorer, tmp_path):
    source = tmp_path / "corpus.csv"
    source.write_bytes(
        b"id,comment\n"
        b"1,Thank you for the thoughtful answer.\n"
        b'2,"A long one, with a comma, and ""quotes""."\n'
        b"3,\n"
        b"4,caf\xe9 au lait is nice\n"
        b"5,Das ist eine wirklich schlechte Idee von dir.\n"
        b"6,[deleted]\n"
    )
    target = tmp_path / "out.jsonl"
    counts = score_file(scorer, source, "comment", target)
    rows = results(target)
    assert counts == {"rows": 6, "scored": 2, "not scored": 4}
    assert [r["row"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(r["model_version"] == scorer.version for r in rows)
    assert rows[0]["reason"] is None and 0 <= rows[0]["hostility"] <= 1 and rows[0]["alliance"] is not None
    assert [r["reason"] for r in rows[2:]][0] == "empty"
    assert rows[3]["reason"] == "not UTF-8 text" and rows[3]["hostility"] is None
    assert "not English" in rows[4]["reason"] and rows[4]["language"] == "de"
    assert "no text" in rows[5]["reason"]
    assert set(rows[0]) == {"row", "hostility", "warmth", "respect", "alliance", "language", "model_version", "reason"}


def test_jsonl_bad_lines_are_rows_too(scorer, tmp_path):
    source = tmp_path / "corpus.jsonl"
    source.write_text(
        '{"text": "Great point, thanks!"}\n{"text": 42}\nnot json\n{"body": "wrong field"}\n{"text": null}\n'
    )
    target = tmp_path / "out.jsonl"
    score_file(scorer, source, "text", target)
    reasons = [r["reason"] for r in results(target)]
    assert reasons == [None, "'text' is not text", "not JSON (Expecting value)", "no 'text' field", "empty"]


def test_spreadsheet_csv_with_byte_order_mark_and_short_rows(scorer, tmp_path):
    source = tmp_path / "export.csv"
    source.write_bytes("\ufeffid,text\n1,Thanks a lot!\n2\n".encode())
    target = tmp_path / "out.jsonl"
    score_file(scorer, source, "text", target)
    assert [r["reason"] for r in results(target)] == [None, "no 'text' field (the row is short)"]


def test_json_array_file(scorer, tmp_path):
    source = tmp_path / "corpus.json"
    source.write_text(json.dumps([{"text": "Nice work."}, {"body": "x"}, "bare"], indent=2))
    target = tmp_path / "out.jsonl"
    assert score_file(scorer, source, "text", target) == {"rows": 3, "scored": 1, "not scored": 2}
    lines = tmp_path / "lines.json"  # JSON Lines under a .json name, as many corpora come
    lines.write_text('{"text": "one"}\n{"text": "two"}\n')
    assert score_file(scorer, lines, "text", target)["rows"] == 2


def test_output_that_is_a_folder_is_refused_before_scoring(scorer, tmp_path, monkeypatch):
    source = tmp_path / "corpus.jsonl"
    source.write_text('{"text": "Fine."}\n')
    monkeypatch.setattr(scorer, "score", lambda texts: pytest.fail("scored before refusing the output"))
    with pytest.raises(CivmonError, match="is a folder"):
        score_file(scorer, source, "text", tmp_path)


def test_output_over_the_input_is_refused_and_the_corpus_kept(scorer, tmp_path):
    source = tmp_path / "corpus.jsonl"
    source.write_text('{"text": "Keep me."}\n')
    with pytest.raises(CivmonError, match="is the input file"):
        score_file(scorer, source, "text", tmp_path / "." / "corpus.jsonl")
    assert source.read_text() == '{"text": "Keep me."}\n'


def test_a_crash_mid_file_leaves_the_previous_output_whole(scorer, tmp_path, monkeypatch):
    source = tmp_path / "corpus.jsonl"
    source.write_text('{"text": "Fine."}\n')
    target = tmp_path / "out.jsonl"
    target.write_text("earlier results\n")

    def crash(texts):
        raise RuntimeError("killed")

    monkeypatch.setattr(scorer, "score", crash)
    with pytest.raises(RuntimeError):
        score_file(scorer, source, "text", target)
    assert target.read_text() == "earlier results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "out.jsonl"]


def test_missing_column_is_a_clear_error(scorer, tmp_path):
    source = tmp_path / "corpus.csv"
    source.write_text("id,body\n1,hello\n")
    with pytest.raises(CivmonError, match="no column 'comment'") as caught:
        score_file(scorer, source, "comment", tmp_path / "out.jsonl")
    assert "--text-column" in caught.value.hint


def test_command_line(untrained_model, tmp_path):
    source = tmp_path / "corpus.csv"
    source.write_text("text\nThanks, that helps.\nYou are an idiot.\n")
    (tmp_path / "civmon.toml").write_text(f'[model]\nname = "{untrained_model}"\nruntime = "torch"\n')
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "score", "--input", str(source), "--output", str(tmp_path / "out.jsonl")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "2 rows, 2 scored" in result.stdout
    assert len(results(tmp_path / "out.jsonl")) == 2
