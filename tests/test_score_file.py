"""`civmon score --input`: a researcher's CSV or JSONL corpus, one output row per input row, in order."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from monitor.errors import CivmonError
from monitor.scoring.alliance import AllianceScorer
from monitor.scoring.files import score_file
from monitor.scoring.text import PREPARATION

from conftest import civmon, start_civmon, wait_for


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
    assert (counts.rows, counts.scored, counts.not_scored) == (6, 2, 4)
    assert counts.reasons == {"empty": 1, "not UTF-8 text": 1, "not English": 1, "[deleted]": 1}
    assert [r["row"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(r["model_version"] == scorer.version for r in rows)
    assert rows[0]["reason"] is None and 0 <= rows[0]["hostility"] <= 1 and rows[0]["alliance"] is not None
    assert rows[0]["perspective_toxicity"] == rows[0]["hostility"]  # a card without a mapping: hostility as it is
    assert rows[3]["perspective_toxicity"] is None  # nothing scored, nothing mapped
    assert [r["reason"] for r in rows[2:]][0] == "empty"
    assert rows[3]["reason"] == "not UTF-8 text" and rows[3]["hostility"] is None
    assert "not English" in rows[4]["reason"] and rows[4]["language"] == "de"
    assert "no text" in rows[5]["reason"]
    assert set(rows[0]) == {
        "row",
        *scorer.dimensions,
        "perspective_toxicity",
        "alliance",
        "language",
        "model_version",
        "reason",
    }


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
    assert score_file(scorer, source, "text", target).scored == 1
    lines = tmp_path / "lines.json"  # JSON Lines under a .json name, as many corpora come
    lines.write_text('{"text": "one"}\n{"text": "two"}\n')
    assert score_file(scorer, lines, "text", target).rows == 2


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


def test_a_csv_row_with_more_fields_than_the_header_is_not_scored_as_a_cut_text(scorer, tmp_path):
    """An unquoted comma split the text: scoring its first part ("I agree") would report a hostile comment as
    civil, so the row gets a reason instead."""
    source = tmp_path / "corpus.csv"
    source.write_text('id,text\n1,I agree, you are a worthless idiot\n2,"Quoted, as it should be."\n3,Fine.\n')
    target = tmp_path / "out.jsonl"
    assert score_file(scorer, source, "text", target).reasons.total() == 1
    rows = results(target)
    assert rows[0]["reason"] == "3 fields where the header has 2 (an unquoted comma in the text?)"
    assert rows[0]["hostility"] is None and rows[1]["hostility"] is not None
    alone = tmp_path / "lines.csv"  # the text the only column: every field is the text's
    alone.write_text("text\nI agree, you are a worthless idiot\n")
    score_file(scorer, alone, "text", target)
    assert results(target)[0]["hostility"] == scorer.score(["I agree, you are a worthless idiot"])[0]["hostility"]


def test_a_text_field_that_no_row_has_is_an_error_and_the_output_is_left_as_it_was(scorer, tmp_path):
    """Say --input and --output were swapped: the results file, read as input, has no 'text' field; writing its
    rows of reasons would have replaced the corpus."""
    source, corpus = tmp_path / "scores.jsonl", tmp_path / "corpus.jsonl"
    source.write_text('{"row": 1, "hostility": 0.1}\n["not an object"]\nnot JSON, nor the field\n')
    corpus.write_text('{"text": "the researcher\'s corpus"}\n')
    with pytest.raises(CivmonError, match="no row of .*scores.jsonl has a field 'text'") as caught:
        score_file(scorer, source, "text", corpus)
    assert "--text-column" in caught.value.hint
    assert corpus.read_text() == '{"text": "the researcher\'s corpus"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "scores.jsonl"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the CSV file is empty"),
        ("text\nhello\n".encode("utf-16"), "header is not UTF-8 text"),
        ("t\xe9xt\nbonjour\n".encode("latin-1"), "header is not UTF-8 text"),
    ],
)
def test_a_csv_file_that_is_empty_or_not_utf8_is_a_clear_error(scorer, tmp_path, content, message):
    source = tmp_path / "corpus.csv"
    source.write_bytes(content)
    with pytest.raises(CivmonError, match=message):
        score_file(scorer, source, "text", tmp_path / "out.jsonl")


def test_missing_column_is_a_clear_error(scorer, tmp_path):
    source = tmp_path / "corpus.csv"
    source.write_text("id,body\n1,hello\n")
    with pytest.raises(CivmonError, match="no column 'comment'") as caught:
        score_file(scorer, source, "comment", tmp_path / "out.jsonl")
    assert "--text-column" in caught.value.hint


@pytest.fixture
def workdir(untrained_model, tmp_path):
    """A folder with a config naming the small real model, and a two-row corpus."""
    (tmp_path / "civmon.toml").write_text(f'[model]\nname = "{untrained_model}"\nruntime = "torch"\n')
    (tmp_path / "corpus.csv").write_text("text\nThanks, that helps.\nYou are an idiot.\n")
    return tmp_path


def score_to(workdir, output, source="corpus.csv"):
    return civmon(workdir, "score", "--input", source, "--output", str(output))


def test_an_existing_output_is_replaced_whole_and_keeps_its_permissions(workdir):
    target = workdir / "out.jsonl"
    target.write_text("earlier results\n")
    target.chmod(0o600)  # private results stay private
    result = score_to(workdir, target)
    assert result.returncode == 0, result.stderr
    assert len(results(target)) == 2 and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert " scoring: 2 rows" in result.stderr  # no terminal: progress as lines on stderr, not a silent spinner
    assert sorted(p.name for p in workdir.iterdir()) == ["civmon.toml", "corpus.csv", "out.jsonl"]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_a_run_stopped_by_a_signal_leaves_the_earlier_results_and_no_partial_file(workdir, stop):
    """SIGTERM is how systemd, Slurm, Kubernetes and `timeout` stop a job, SIGHUP a closed terminal: the run ends
    as on Ctrl-C, its unfinished file removed."""
    (workdir / "corpus.csv").write_text("text\n" + "".join(f"Comment number {i} is fine.\n" for i in range(50_000)))
    target = workdir / "out.jsonl"
    target.write_text("earlier results\n")
    command = ("score", "--input", "corpus.csv", "--output", str(target))
    run = start_civmon(workdir, *command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: list(workdir.glob(".*.part")) or run.poll() is not None)
        run.send_signal(stop)
        _, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 128 + stop, stderr
    assert target.read_text() == "earlier results\n" and not list(workdir.glob(".*part"))


def test_a_fifo_is_written_through_not_replaced(workdir):
    fifo = workdir / "results.fifo"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    result = score_to(workdir, fifo)
    if reader.is_alive() and stat.S_ISFIFO(os.lstat(fifo).st_mode):  # nobody wrote: release the reader
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [json.loads(line)["row"] for line in received[0].splitlines()] == [1, 2]


def _null_device(folder):
    """The null device: a node of its own where this user may make one (root), so that a regression replaces
    that node rather than the machine's /dev/null; /dev/null itself otherwise (a user who cannot write /dev)."""
    node = folder / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.stat("/dev/null").st_rdev)
    except PermissionError:
        return Path("/dev/null")
    return node


def test_a_character_device_is_written_through_not_replaced(workdir):
    device = _null_device(workdir)
    result = score_to(workdir, device)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(os.lstat(device).st_mode) and os.lstat(device).st_rdev == os.stat("/dev/null").st_rdev
    assert not list(workdir.glob(".*part"))


def test_results_to_standard_output_keep_the_summary_out_of_them(workdir):
    result = score_to(workdir, "/dev/stdout")  # a link, through /proc, to this process's pipe
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["row"] for line in result.stdout.splitlines()] == [1, 2]
    assert "2 rows, 2 scored" in result.stderr


@pytest.mark.parametrize("points_to", ["a file", "nothing"])
def test_a_symbolic_link_is_refused_and_left_as_it_was(workdir, points_to):
    """Replacing the link, or writing through it, would let a link planted at the output path (by another
    user, for a root job) overwrite whatever it points to."""
    linked = workdir / "elsewhere.jsonl"
    if points_to == "a file":
        linked.write_text("someone else's file\n")
    link = workdir / "out.jsonl"
    link.symlink_to(linked)
    result = score_to(workdir, link)
    assert result.returncode == 2 and "is a symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert link.is_symlink() and os.readlink(link) == str(linked)
    assert linked.read_text() == "someone else's file\n" if points_to == "a file" else not linked.exists()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("nodir/x.jsonl", "folder nodir does not exist"),
        ("corpus.csv/x.jsonl", "corpus.csv is a file, not a folder"),
        (".", "is a folder"),
        ("corpus.csv", "is the input file"),
        ("socket", "is not a file"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_the_model_loads(tmp_path, output, message):
    """The configured model cannot load here: the output's error showing instead proves it came first."""
    (tmp_path / "civmon.toml").write_text('[model]\nname = "no/such-model"\nfallback_to_default = false\n')
    (tmp_path / "corpus.csv").write_text("text\nFine.\n")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "socket"))
        result = civmon(tmp_path, "score", "--input", "corpus.csv", "--output", output, timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "corpus.csv").read_text() == "text\nFine.\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["civmon.toml", "corpus.csv", "socket"]


def test_an_output_name_near_the_file_systems_limit_is_written(scorer, tmp_path):
    """The file written first takes a short name of its own: the output's name plus more would pass 255 bytes."""
    source = tmp_path / "corpus.csv"
    source.write_text("text\nFine.\n")
    target = tmp_path / ("r" * 245 + ".jsonl")
    assert score_file(scorer, source, "text", target).scored == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.csv", target.name]


def test_a_csv_without_the_text_column_is_refused_before_the_model_loads(tmp_path):
    (tmp_path / "civmon.toml").write_text('[model]\nname = "no/such-model"\nfallback_to_default = false\n')
    (tmp_path / "corpus.csv").write_text("id,body\n1,Fine.\n")
    result = civmon(tmp_path, "score", "--input", "corpus.csv", "--output", "out.jsonl", timeout=60)
    assert result.returncode == 2 and "no column 'text' (columns: 'id', 'body')" in result.stderr, result.stderr
    assert "--text-column" in result.stderr and not (tmp_path / "out.jsonl").exists()


def test_a_reader_that_goes_away_is_a_clear_error(scorer, tmp_path):
    source = tmp_path / "corpus.jsonl"
    source.write_text('{"text": "Fine."}\n' * 2000)  # more than a pipe holds: the writer meets the closed end
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)

    def read_one_byte_and_leave():
        with fifo.open("rb") as pipe:
            pipe.read(1)

    reader = threading.Thread(target=read_one_byte_and_leave, daemon=True)
    reader.start()
    with pytest.raises(CivmonError, match="cannot write --output .*Broken pipe"):
        score_file(scorer, source, "text", fifo)
    reader.join(timeout=30)


BAD_JSON_LINES = [
    ('{"text": "\\ud800"}', "not valid text (NUL characters or lone surrogates)"),  # the lone surrogate
    ('{"text": "low \\udfff alone"}', "not valid text (NUL characters or lone surrogates)"),
    ('{"text": "a NUL \\u0000 inside"}', "not valid text (NUL characters or lone surrogates)"),
    ('{"text": "%s"}' % ("word " * 30_000), "too long to score (150,000 characters; at most 100,000)"),
    ('{"text": ""}', "empty"),
    ('{"text": "\\u200b\\u00ad"}', "nothing left to score once quotes and markup are removed"),
    ("[" * 100_000, "not JSON (nested too deeply)"),
    ('{"text": %s}' % ("9" * 5000), "not JSON (Exceeds the limit (4300 digits) for integer string conversion)"),
]


def test_command_line_gives_rows_that_are_not_text_a_reason_and_scores_the_rest(workdir):
    lines = ['{"text": "Thanks, that helps."}', *(line for line, _ in BAD_JSON_LINES), '{"text": "You idiot."}']
    (workdir / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    result = score_to(workdir, "out.jsonl", source="corpus.jsonl")
    assert result.returncode == 0, result.stderr
    assert f"{len(lines)} rows, 2 scored, {len(BAD_JSON_LINES)} not scored" in result.stdout
    rows = results(workdir / "out.jsonl")
    assert [r["reason"] for r in rows] == [None, *(reason for _, reason in BAD_JSON_LINES), None]
    assert rows[0]["hostility"] is not None and rows[-1]["hostility"] is not None
    assert all(r["hostility"] is None for r in rows[1:-1])
    assert f"+{PREPARATION}+" in rows[0]["model_version"]  # the scores cite how their text was read


def test_command_line_tells_why_rows_were_not_scored_and_how_to_re_encode_a_latin1_file(workdir):
    """A Windows-1252 export scores only its rows without accents: the summary says so and how to mend it."""
    (workdir / "export.csv").write_bytes("text\nCaf\u00e9 talk is great.\nThanks!\nNa\u00efve idea.\n".encode("cp1252"))
    result = score_to(workdir, "out.jsonl", source="export.csv")
    assert result.returncode == 0, result.stderr
    assert "3 rows, 1 scored, 2 not scored" in result.stdout
    assert "not scored: 2 not UTF-8 text" in result.stdout
    assert "iconv -f windows-1252 -t utf-8 export.csv > export-utf8.csv" in result.stdout
    clean = score_to(workdir, "out.jsonl")
    assert "not scored" not in clean.stdout.replace("0 not scored", "")  # nothing to explain, no hint


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        (b"caf\xe9 au lait", "not UTF-8 text"),  # Latin-1, not UTF-8
        (b"\xff\xfe\x00", "not UTF-8 text"),
        (b"before \x00 after", "not valid text (NUL characters or lone surrogates)"),
        (b"word " * 25_000, "too long to score (125,000 characters; at most 100,000)"),
        (b"", "empty"),
        (b"   ", "empty"),
        ("\u200b\u2060".encode(), "nothing left to score once quotes and markup are removed"),
    ],
)
def test_csv_fields_that_are_not_text_get_a_reason_and_the_rest_are_scored(scorer, tmp_path, field, reason):
    source = tmp_path / "corpus.csv"
    source.write_bytes(b'text\nThanks a lot!\n"' + field + b'"\nYou idiot.\n')
    target = tmp_path / "out.jsonl"
    assert score_file(scorer, source, "text", target).reasons.total() == 1
    assert [r["reason"] for r in results(target)] == [None, reason, None]


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        (b'id,text\n1,hello\n5,"unterminated\n6,ok\n', 3, "unexpected end of data"),  # would swallow row 6
        (b'id,text\n1,"never closed\n', 2, "unexpected end of data"),
        (b'id,text\n1,hello\n2,"a"b\n3,ok\n', 3, "',' expected after '\"'"),
        (b'"id,text\n1,hello\n', 1, "unexpected end of data"),  # in the header
    ],
)
def test_csv_with_a_quote_left_open_is_refused_naming_the_line(scorer, tmp_path, content, line, problem):
    source = tmp_path / "corpus.csv"
    source.write_bytes(content)
    target = tmp_path / "out.jsonl"
    target.write_text("earlier results\n")
    with pytest.raises(CivmonError, match=f"row starting at line {line}: {problem}") as caught:
        score_file(scorer, source, "text", target)
    assert "quote" in caught.value.hint
    assert target.read_text() == "earlier results\n"  # nothing half-written


@pytest.mark.parametrize(
    ("header", "positions"), [("text,text", "columns 1, 2"), ("text,id,text,text", "columns 1, 3, 4")]
)
def test_csv_with_the_text_column_twice_is_refused(scorer, tmp_path, header, positions):
    source = tmp_path / "corpus.csv"
    source.write_text(f"{header}\n{','.join(['x'] * len(header.split(',')))}\n")
    with pytest.raises(CivmonError, match=f"columns named 'text' \\({positions}\\)"):
        score_file(scorer, source, "text", tmp_path / "out.jsonl")


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("a\x1b]0;PWNED\x07b", r"a\x1b]0;PWNED\x07b"),  # sets the terminal's title
        ("\x1b[2J\x1b[H", r"\x1b[2J\x1b[H"),  # clears the screen
        ("a\x9b31mb", r"a\x9b31mb"),  # the one-byte CSI
        ("evil\u202etxt.exe", r"evil\u202etxt.exe"),  # bidi override
        ("a\rb", r"a\rb"),
    ],
)
def test_header_quoted_in_an_error_shows_control_characters_escaped(workdir, name, shown):
    (workdir / "corpus.csv").write_text(f'"{name}",other\nx,y\n', newline="")
    result = civmon(workdir, "score", "--input", "corpus.csv", "--output", "out.jsonl", timeout=60)
    assert result.returncode == 2 and shown in result.stderr
    assert not any(ch in result.stderr for ch in "\x1b\x07\x9b\u202e\r")
