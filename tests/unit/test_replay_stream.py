"""`findings-router replay` streams its inputs (issue 12): get-findings output and arrays item by item, JSON lines line
by line, standard input (`-`), one-line errors for missing, empty and directory inputs, progress by bytes from the
first second, and a table that fits the terminal."""

from __future__ import annotations

import io
import json
import math
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from findings_router.settings.load import load_policy, policy_path
from findings_router_local import replay
from findings_router_local.cli import main
from findings_router_local.replay import COLUMNS, Progress, Replayer, read_input, run_replay
from findings_router_local.tables import fit_widths, render_table
from tests.builders import CONFIG_DIR, FIXTURES, asff, event

POLICY = load_policy(policy_path(CONFIG_DIR, "prod"))
PROPERTY = settings(
    max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def replay_run(paths: list[Path | str], fmt: str = "json", **kwargs: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_replay(POLICY, [Path(p) for p in paths], fmt, out=out, err=err, **kwargs)
    return code, out.getvalue(), err.getvalue()


def records(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def get_findings(findings: list[dict[str, Any]], indent: int | None = 4) -> str:
    """As `aws securityhub get-findings` prints it."""
    return json.dumps({"Findings": findings, "NextToken": "token=="}, indent=indent)


def items_of(path: Path | str, stdin: io.BytesIO | None = None) -> list[tuple[str, Any, int | None]]:
    return list(read_input(path, stdin))


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read 7 bytes at a time: every item spans pieces, every window must grow, numbers end at a piece's end."""
    monkeypatch.setattr(replay, "CHUNK", 7)


# ----------------------------------------------------------------------------- the item reader is json.loads


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values, NaN included, with int and float told apart (json.loads' types)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(),
        st.text(max_size=12),
        st.sampled_from(["\ud800", "a\\ud800", "\u2028", "é", "\x1c", "[", "]", ",", '"', "\\"]),
    ),
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=6), kids, max_size=4)),
    max_leaves=20,
)
layouts = st.sampled_from([None, 0, 2, 4])


@PROPERTY
@given(values=st.lists(json_values, max_size=6), indent=layouts, findings=st.booleans(), ascii=st.booleans())
def test_streamed_items_are_what_json_loads_gives(tmp_path_factory, values, indent, findings, ascii):
    document = {"Findings": values, "NextToken": None} if findings else values
    text = json.dumps(document, indent=indent, ensure_ascii=ascii)
    if any("\ud800" <= c <= "\udfff" for c in text):  # a lone surrogate is no UTF-8: only its escape is
        text = json.dumps(document, indent=indent)
    path = tmp_path_factory.mktemp("items") / "input.json"
    path.write_text(text, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(replay, "CHUNK", 7)
        items = items_of(path)
    label = ".Findings" if findings else "."
    assert [where for where, _, _ in items] == [f"{path}: {label}[{i}]" for i in range(len(values))]
    assert [index for _, _, index in items] == [i if findings else None for i in range(len(values))]
    expected = json.loads(text)
    expected = expected["Findings"] if findings else expected
    expected = replay.clean_json_text(expected) if "\\u" in text else expected
    assert _same([doc for _, doc, _ in items], expected)


def _json_lines(text: str) -> bool:
    """JSON lines by `read_documents`' rule (the whole text not being JSON): two or more non-blank lines, of which
    the first is JSON by itself."""
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        json.loads(lines[0])
    except (ValueError, RecursionError, IndexError):
        return False
    return len(lines) >= 2


def _cut(text: str, data: st.DataObject) -> str:
    return text[: data.draw(st.integers(0, len(text) - 1))]


@PROPERTY
@given(values=st.lists(json_values, min_size=1, max_size=5), indent=layouts, findings=st.booleans(), data=st.data())
def test_a_broken_stream_is_reported_where_json_loads_reports_it(tmp_path_factory, values, indent, findings, data):
    text = json.dumps({"Findings": values, "NextToken": "x"} if findings else values, indent=indent)
    broken = data.draw(
        st.one_of(
            st.just(_cut(text, data)),  # truncated
            st.just(text + data.draw(st.sampled_from([" x", "]", ",", "\n{}", " 1"]))),  # trailing data
            st.just(text.replace(",", data.draw(st.sampled_from([" ", ",,", ";"])), 1)),  # a bad separator
            st.just(text.replace(":", " ", 1)),
        )
    )
    try:
        json.loads(broken)
    except json.JSONDecodeError as exc:
        expected = f"line {exc.lineno} column {exc.colno}: not JSON: {exc.msg}"
    else:
        return
    if _json_lines(broken):
        return  # tested below
    path = tmp_path_factory.mktemp("broken") / "input.json"
    path.write_text(broken, encoding="utf-8")
    with path.open("rb") as f:
        if replay._sniff(replay._Text(f.read)) not in (replay.ARRAY, replay.GET_FINDINGS):
            return  # read whole or as JSON lines: `read_documents`' semantics, tested elsewhere
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(replay, "CHUNK", data.draw(st.sampled_from([7, 64, 1 << 20])))
        items = items_of(path)
    where, error, _ = items[-1]
    assert isinstance(error, ValueError)
    assert str(error) == expected
    assert where.startswith(str(path))
    assert all(not isinstance(doc, Exception) for _, doc, _ in items[:-1])


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        *[("NaN", math.nan), ("Infinity", math.inf), ("-Infinity", -math.inf), ("1e400", math.inf), ("-0", 0)],
        *[("-0.0", -0.0), ("1.0", 1.0), ("1E5", 100000.0), ("12345678901234567890123", 12345678901234567890123)],
    ],
)
def test_numbers_are_json_loads_numbers(tmp_path, tiny_chunks, number, expected):
    path = tmp_path / "numbers.json"
    path.write_text('{"Findings": [1, ' + number + ", " + number + "]}")
    values = [doc for _, doc, _ in items_of(path)]
    assert _same(values, [1, expected, expected])


def test_an_integer_of_thousands_of_digits_and_deep_nesting_are_json_loads_errors(tmp_path):
    huge = tmp_path / "huge.json"
    huge.write_text('{"Findings": [{"a": 1}, ' + "7" * 5000 + ", {}]}")
    [first, (where, error, _)] = items_of(huge)
    assert first[1] == {"a": 1}
    assert where == f"{huge}: .Findings[1]"
    assert str(error).startswith("not usable JSON: ValueError: Exceeds the limit (4300 digits)")
    deep = tmp_path / "deep.json"
    deep.write_text("[{}, " + "[" * 100_000 + "]" * 100_000 + "]")
    [_, (where, error, _)] = items_of(deep)
    assert where == f"{deep}: .[1]"
    assert str(error).startswith("not usable JSON: RecursionError")


def test_lone_surrogates_are_replaced_as_before(tmp_path):
    path = tmp_path / "surrogates.json"
    path.write_text(json.dumps([asff(id="finding-\ud800", Title="a\udfffb")]))
    [(_, doc, _)] = items_of(path)
    assert doc["Id"] == "finding-\ufffd" and doc["Title"] == "a\ufffdb"


def test_a_streamed_file_replays_like_the_same_findings_as_json_lines(tmp_path, tiny_chunks):
    findings = [asff(severity=s) for s in ("CRITICAL", "LOW", "HIGH", "MEDIUM")] * 3
    findings[1]["Severity"] = {"Label": "HIGH", "Normalized": float("nan")}
    findings[2]["Vulnerabilities"] = [{"Id": "CVE-1", "Cvss": [{"BaseScore": float("inf")}, {"BaseScore": 7.5}]}]
    streamed = tmp_path / "get-findings.json"
    streamed.write_text(get_findings(findings))
    lines = tmp_path / "findings.jsonl"
    lines.write_text("".join(json.dumps(f) + "\n" for f in findings))
    code, out, err = replay_run([streamed])
    assert code == 0, err
    assert out == replay_run([lines])[1]
    assert [r["max_cvss"] for r in records(out)][2] == 7.5


# ----------------------------------------------------------------------------- streaming


class Trickle(io.RawIOBase):
    """Standard input that hands out its bytes a piece at a time and remembers how much was read."""

    def __init__(self, data: bytes, piece: int) -> None:
        self.data, self.piece, self.read_so_far = data, piece, 0

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        n = min(self.piece, size if size >= 0 else self.piece)
        chunk = self.data[self.read_so_far : self.read_so_far + n]
        self.read_so_far += len(chunk)
        return chunk

    def read(self, size: int = -1) -> bytes:
        return self.read1(size)


class Watching(io.StringIO):
    """stdout that notes how much of the input had been read when the first record was written."""

    def __init__(self, source: Trickle) -> None:
        super().__init__()
        self.source, self.read_at_first_write = source, None

    def write(self, text: str) -> int:
        if self.read_at_first_write is None:
            self.read_at_first_write = self.source.read_so_far
        return super().write(text)


@pytest.mark.parametrize("shape", ["get-findings", "array", "json-lines"])
def test_records_are_written_while_the_input_is_still_being_read(shape):
    findings = [asff(severity="LOW") for _ in range(1000)]
    if shape == "get-findings":
        data = get_findings(findings)
    elif shape == "array":
        data = json.dumps(findings)
    else:
        data = "".join(json.dumps(event(f)) + "\n" for f in findings)
    stdin = Trickle(data.encode(), piece=64 * 1024)
    out = Watching(stdin)
    code = run_replay(POLICY, [Path("-")], "json", out=out, err=io.StringIO(), stdin=stdin)  # type: ignore[arg-type]
    assert code == 0
    assert len(records(out.getvalue())) == 1000
    assert out.read_at_first_write is not None
    assert out.read_at_first_write < len(data) / 3  # the first batch of 100 was routed long before the end


def test_findings_are_routed_in_batches_of_100_as_they_come():
    replayer = Replayer(POLICY)
    batches: list[int] = []
    prefetch = replayer.router.prefetch
    replayer.router.prefetch = lambda chunk: (batches.append(len(chunk)), prefetch(chunk))[-1]  # type: ignore[method-assign]
    pulled = 0

    def findings():
        nonlocal pulled
        for i in range(250):
            pulled = i + 1
            yield replay.normalize_document(asff(severity="LOW")).findings[0]

    routed = replayer.route(findings())
    next(routed)
    assert pulled == 100 and batches == [100]  # the first batch is routed before the rest is read
    assert len(list(routed)) == 249
    assert batches == [100, 100, 50]
    assert replayer.store.read_calls == 3


def test_a_large_get_findings_file_is_replayed_in_a_fraction_of_its_size(tmp_path):
    findings = [asff(severity="LOW", Description="x" * 4000) for _ in range(3000)]
    path = tmp_path / "get-findings.json"
    path.write_text(get_findings(findings))
    size = path.stat().st_size
    assert size > replay.SMALL_INPUT
    tracemalloc.start()
    try:
        code, out, err = replay_run([path])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 0, err
    assert len(out.splitlines()) == 3000
    assert peak < size / 2, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"  # json.loads alone: ~2x


def test_the_json_output_keeps_no_records_and_no_pagerduty_bodies(tmp_path, monkeypatch):
    kept: list[Replayer] = []
    monkeypatch.setattr(replay, "Replayer", lambda *a, **k: kept.append(Replayer(*a, **k)) or kept[-1])
    path = tmp_path / "findings.json"
    path.write_text(json.dumps([asff(severity="CRITICAL") for _ in range(5)]))
    assert replay_run([path])[0] == 0
    assert kept[0].notifier.events == []
    assert kept[0].notifier.sent == [] and kept[0].notifier.count == 5  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- positions of problems


def test_problems_name_the_item_of_a_get_findings_file_or_array(tmp_path, tiny_chunks):
    no_id = {k: v for k, v in asff().items() if k != "Id"}
    no_account = asff(AwsAccountId=None)
    path = tmp_path / "get-findings.json"
    path.write_text(get_findings([asff(severity="CRITICAL"), no_id, no_account, 5, asff(severity="HIGH")]))
    array = tmp_path / "array.json"
    array.write_text(json.dumps([asff(severity="CRITICAL"), 5, {"x": 1}, [asff(severity="HIGH")]]))
    code, out, err = replay_run([path, array])
    assert code == 2
    assert [r["decision"] for r in records(out)] == ["page", "page", "page", "page"]
    assert err.splitlines() == [
        f"error: {path}: .Findings[1]: missing or invalid field detail.findings[1].Id",
        f"error: {path}: .Findings[2]: missing required field (finding {no_account['Id']}, field AwsAccountId)",
        f"error: {path}: .Findings[3]: finding must be an object, got int",
        f"error: {array}: .[1]: expected a JSON object or list, got int",
        f"error: {array}: .[2]: not a Security Hub event, get-findings output or finding "
        "(no detail-type, Findings, ProductArn or finding_info)",
    ]


def test_a_truncated_get_findings_file_replays_what_came_before_and_says_where_it_ends(tmp_path, tiny_chunks):
    text = get_findings([asff(severity="CRITICAL"), asff(severity="HIGH"), asff(severity="LOW")])
    cut = text[: text.index('"Title"', text.index('"LOW"'))]
    path = tmp_path / "truncated.json"
    path.write_text(cut)
    with pytest.raises(json.JSONDecodeError) as whole:
        json.loads(cut)
    code, out, err = replay_run([path, FIXTURES / "asff_inspector_log4j.json"])
    assert code == 2
    assert [r["decision"] for r in records(out)] == ["page", "page", "page"]  # two of the file, then the next file
    assert err == (
        f"error: {path}: .Findings[2]: line {whole.value.lineno} column {whole.value.colno}: not JSON: "
        f"{whole.value.msg}\n"
    )


def test_a_json_lines_problem_names_the_line_and_the_other_lines_still_run(tmp_path, tiny_chunks):
    path = tmp_path / "events.jsonl"
    path.write_text(
        json.dumps(event(asff(severity="CRITICAL")))
        + "\n\n{oops\n"
        + json.dumps(event(asff(severity="HIGH")))
        + "\n"
        + "7" * 5000
        + "\n"
    )
    code, out, err = replay_run([path])
    assert code == 2
    assert [r["decision"] for r in records(out)] == ["page", "page"]
    assert (
        err.splitlines()[0] == f"error: {path}:3: column 2: not JSON: Expecting property name enclosed in double quotes"
    )
    assert err.splitlines()[1].startswith(f"error: {path}:5: not usable JSON: ValueError: Exceeds the limit")


@pytest.mark.parametrize("shape", ["get-findings", "array"])
def test_pages_on_one_line_each_are_json_lines(tmp_path, tiny_chunks, shape):
    """`aws securityhub get-findings | jq -c .` page after page: the first line streams, then line by line."""
    pages = [[asff(severity="CRITICAL"), asff(severity="LOW")], [asff(severity="HIGH")], [asff(severity="LOW")]]
    lines = [json.dumps({"Findings": p}) if shape == "get-findings" else json.dumps(p) for p in pages]
    path = tmp_path / "pages.jsonl"
    path.write_text(lines[0] + "\n\n" + lines[1] + "\n{oops\n" + lines[2] + "\n")
    code, out, err = replay_run([path])
    assert code == 2
    assert [r["decision"] for r in records(out)] == ["page", "drop", "page", "drop"]
    assert err == f"error: {path}:4: column 2: not JSON: Expecting property name enclosed in double quotes\n"


@pytest.mark.parametrize("data", [b"\xff[]", b"  \n\xfe", b"[1,\n\xe9]", b'{"a": 1}\n{"b": \xe9}\n{}'])
def test_input_that_is_not_utf8_is_read_as_read_text_reads_it(tmp_path, tiny_chunks, data):
    path = tmp_path / "bytes.json"
    path.write_bytes(data)
    with pytest.raises(UnicodeDecodeError) as read_text:
        path.read_text(encoding="utf-8")
    code, _, err = replay_run([path])
    assert code == 2
    assert err.endswith(f"error: {path}: {read_text.value}\n")  # after the problems of what came before, if any


def test_input_that_is_not_utf8_says_where(tmp_path, tiny_chunks):
    path = tmp_path / "latin1.json"
    data = json.dumps([asff(severity="CRITICAL"), asff(Title="caf\u00e9")], ensure_ascii=False).encode()
    path.write_bytes(data.replace("\u00e9".encode(), b"\xe9"))
    code, out, err = replay_run([path])
    assert code == 2
    assert len(records(out)) == 1
    position = data.index("\u00e9".encode())
    assert (
        err
        == f"error: {path}: 'utf-8' codec can't decode byte 0xe9 in position {position}: invalid continuation byte\n"
    )


# ----------------------------------------------------------------------------- missing, empty, directory


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_missing_empty_and_directory_inputs_are_one_line_errors_and_no_empty_table(tmp_path, fmt):
    empty = tmp_path / "empty.json"
    empty.write_text("")
    blank = tmp_path / "blank.json"
    blank.write_text("  \n\t\n  ")
    missing = tmp_path / "missing.json"
    for path, message in [
        (missing, "no such file"),
        (empty, "empty file"),
        (blank, "empty file"),
        (tmp_path, "is a directory"),
    ]:
        code, out, err = replay_run([path], fmt)
        assert (code, out, err) == (2, "", f"error: {path}: {message}\n")
    code, out, err = replay_run([missing, FIXTURES / "asff_inspector_log4j.json", empty, tmp_path], fmt)
    assert code == 2
    assert err.splitlines() == [
        f"error: {missing}: no such file",
        f"error: {empty}: empty file",
        f"error: {tmp_path}: is a directory",
    ]
    assert ("1 findings: 1 page" in out) if fmt == "table" else (len(records(out)) == 1)


def test_an_input_without_findings_still_shows_the_empty_table(tmp_path):
    path = tmp_path / "none.json"
    path.write_text(get_findings([]))
    code, out, err = replay_run([path], "table")
    assert (code, err) == (0, "")
    assert "(no findings)" in out and "0 findings:" in out


# ----------------------------------------------------------------------------- standard input


@pytest.mark.parametrize(
    "text",
    [
        "".join(json.dumps(event(asff(severity=s))) + "\n" for s in ("CRITICAL", "LOW", "HIGH")),
        json.dumps(event(asff(severity="CRITICAL")), indent=2),
        get_findings([asff(severity=s) for s in ("CRITICAL", "LOW", "HIGH")]),
        json.dumps([asff(severity=s) for s in ("CRITICAL", "LOW", "HIGH")]),
    ],
    ids=["json-lines", "event", "get-findings", "array"],
)
def test_dash_reads_standard_input(text, tiny_chunks):
    code, out, err = replay_run(["-"], stdin=Trickle(text.encode(), piece=5))  # type: ignore[arg-type]
    assert code == 0, err
    decisions = [r["decision"] for r in records(out)]
    assert decisions == (["page"] if text.startswith('{\n  "version"') else ["page", "drop", "page"])


def test_standard_input_problems_are_named_stdin_and_an_empty_one_is_an_error():
    code, _, err = replay_run(["-"], stdin=io.BytesIO(b'{"source": "x", "detail-type": "y"}\n{oops\n'))
    assert code == 2
    assert err.splitlines() == [
        "error: <stdin>:1: unexpected event source 'x' (field source)",
        "error: <stdin>:2: column 2: not JSON: Expecting property name enclosed in double quotes",
    ]
    assert replay_run(["-"], "table", stdin=io.BytesIO(b"\n  \n")) == (2, "", "error: <stdin>: empty input\n")


def test_dash_on_the_command_line(monkeypatch, capsys):
    data = "".join(json.dumps(event(asff(severity=s))) + "\n" for s in ("CRITICAL", "LOW"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode())))
    code = main(["replay", "--config-dir", str(CONFIG_DIR), "--env", "prod", "--format", "json", "-"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [r["decision"] for r in records(out)] == ["page", "drop"]


# ----------------------------------------------------------------------------- progress


class FakeClock:
    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _draws(err: str) -> list[str]:
    return err.split("\r")[1:]


def test_progress_of_a_large_file_is_a_bar_by_bytes_with_the_count_at_most_five_times_a_second(tmp_path):
    path = tmp_path / "get-findings.json"
    path.write_text(get_findings([asff(severity="LOW", Description="x" * 3000) for _ in range(3000)]))
    assert path.stat().st_size > replay.SMALL_INPUT
    clock = FakeClock(0.01)
    code, _, err = replay_run([path], progress=True, clock=clock)
    assert code == 0
    draws = _draws(err)
    assert draws[0].endswith("] 0 findings")  # as soon as the first piece is read
    assert draws[-1] == "[" + "#" * 30 + "] 3,000 findings\n"
    assert len(draws) - 1 <= clock.now / 0.2 + 1  # at most five a second
    assert len(draws) > 3
    fills = [d.count("#") for d in draws]
    assert fills == sorted(fills) and 0 < fills[len(fills) // 2] < 30  # by bytes read
    counts = [int(d.split("] ")[1].split()[0].replace(",", "")) for d in draws]
    assert counts == sorted(counts)
    lengths = [len(d.rstrip("\n")) for d in draws]
    assert lengths == sorted(lengths)  # a line never leaves characters of a longer one behind


def test_progress_of_standard_input_is_the_count_only(tmp_path):
    data = "".join(json.dumps(asff(severity="LOW")) + "\n" for _ in range(300))
    code, _, err = replay_run(["-"], progress=True, clock=FakeClock(0.3), stdin=io.BytesIO(data.encode()))
    assert code == 0
    draws = _draws(err)
    assert draws[0] == "0 findings"
    assert draws[-1] == "300 findings\n"
    assert "[" not in err


def test_progress_of_a_small_input_counts_up_to_the_known_total(tmp_path):
    path = tmp_path / "get-findings.json"
    path.write_text(get_findings([asff(severity="LOW") for _ in range(1200)], indent=None))
    clock = FakeClock(0.15)
    code, _, err = replay_run([path], progress=True, clock=clock)
    assert code == 0
    draws = _draws(err)
    assert draws[0] == "[#####                         ] 200/1,200 findings"
    assert draws[-1] == "[" + "#" * 30 + "] 1,200/1,200 findings\n"
    # every 200 findings the clock is read (0.15 s later each time): redrawn when 0.2 s have passed, and at the end
    assert [d.split("] ")[1].split("/")[0] for d in draws] == ["200", "600", "1,000", "1,200"]


def test_progress_is_off_unless_asked(tmp_path):
    path = tmp_path / "get-findings.json"
    path.write_text(get_findings([asff(severity="LOW") for _ in range(1200)]))
    assert replay_run([path])[2] == ""


def test_progress_line_formats():
    stream = io.StringIO()
    bar = Progress(stream, total_bytes=1000, clock=FakeClock(1))
    bar.add_bytes(500)
    bar.update(42)
    bar.finish(50)
    assert stream.getvalue() == (
        "\r[###############               ] 0 findings"
        "\r[###############               ] 42 findings"
        "\r[##############################] 50 findings\n"
    )


# ----------------------------------------------------------------------------- the table fits the terminal


def test_fit_widths_cuts_the_widest_columns_first_and_never_below_the_minimum():
    assert fit_widths([10, 40, 5, 30], 100, [6, 6, 6, 6]) == [10, 40, 5, 30]  # fits: unchanged
    assert fit_widths([10, 40, 5, 30], 60, [6, 6, 6, 6]) == [10, 20, 5, 19]  # the wide ones cut to ~one width
    assert fit_widths([10, 40, 5, 30], 50, [6, 6, 6, 6]) == [10, 15, 5, 14]
    assert fit_widths([10, 40, 5, 30], 40, [6, 6, 6, 6]) == [10, 10, 5, 9]  # then the next widest too
    assert fit_widths([10, 40, 5, 30], 20, [6, 8, 6, 6]) == [6, 8, 5, 6]  # too narrow: the minimums


@pytest.mark.parametrize("width", [140, 200, 60])
def test_the_table_fits_the_given_width(width):
    files = sorted(FIXTURES.glob("asff_*.json"))
    _, out, _ = replay_run(files, "table", width=width)
    lines = out.splitlines()
    header = lines[0].split()
    assert header == list(COLUMNS)  # headers are never cut
    minimum = sum(len(c) for c in COLUMNS) + 2 * (len(COLUMNS) - 1)
    assert max(len(line) for line in lines[:-1]) <= max(width, minimum)
    wide = replay_run(files, "table", width=1000)[1].splitlines()
    assert len(lines) == len(wide)
    if width >= minimum:
        assert any("…" in line for line in lines[2:-1])
    assert lines[-1] == wide[-1]  # the summary


def test_the_table_width_defaults_to_the_terminal_and_json_ignores_it(monkeypatch):
    monkeypatch.setenv("COLUMNS", "150")
    files = sorted(FIXTURES.glob("asff_*.json"))
    _, out, _ = replay_run(files, "table")
    assert max(len(line) for line in out.splitlines()) <= 150
    monkeypatch.delenv("COLUMNS")
    assert replay_run(files, "json", width=100)[1] == replay_run(files, "json")[1]
    assert max(len(line) for line in replay_run(files, "table")[1].splitlines()) > 150  # no terminal: no fitting


def test_render_table_still_renders_unfitted_by_default():
    assert (
        render_table(["a", "bb"], [["x" * 70, "y"]]) == "a" + " " * 71 + "bb\n" + "-" * 70 + "  --\n" + "x" * 70 + "  y"
    )


# ----------------------------------------------------------------------------- the bench


def test_the_bench_writes_a_realistic_export_and_measures_replay_against_json_loads(tmp_path):
    from bench import replay_stream
    from findings_router.domain.normalize import normalize_document

    path = tmp_path / "export.json"
    size = replay_stream.write_export(path, 40)
    document = json.loads(path.read_text())
    assert size == path.stat().st_size
    assert list(document) == ["Findings", "NextToken"] and len(document["Findings"]) == 40
    normalized = normalize_document(document)
    assert not normalized.errors and len({f.id for f in normalized.findings}) == 40

    result = replay_stream.run(findings=replay_stream.QUICK_FINDINGS)
    assert result.name == "replay_stream" and result.passed is None
    assert isinstance(result.ratio, float) and result.ratio > 0
    details = result.details
    assert details["findings"] == replay_stream.QUICK_FINDINGS
    assert details["file_mb"] * 1024 * 1024 > replay.SMALL_INPUT  # streamed, not read before routing
    assert set(details["peak_rss_mb"]) == set(replay_stream.MODES)
    assert details["replay_json"]["exit_status"] == 0
    assert details["replay_json"]["output_lines"] == replay_stream.QUICK_FINDINGS
    assert details["replay_json"]["first_progress_seconds"] is not None
    assert details["json_loads_seconds"] > 0
    json.dumps(result.to_dict())


def test_csv_and_json_keep_stdout_machine_readable_and_put_the_summary_on_stderr(capsys):
    import csv
    import io

    from findings_router_local.cli import main
    from tests.builders import CONFIG_DIR, FIXTURES

    fixture = str(FIXTURES / "asff_inspector_log4j.json")
    assert main(["replay", "--env", "prod", "--config-dir", str(CONFIG_DIR), "--output", "csv", fixture]) == 0
    captured = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(captured.out)))
    assert rows[0][:2] == ["finding_id", "dedup_key"] and rows[1][rows[0].index("decision")] == "page"
    assert captured.err == "1 findings: 1 page, 0 notify, 0 resolve, 0 duplicate, 0 drop\n"
    assert main(["replay", "--env", "prod", "--config-dir", str(CONFIG_DIR), "--format", "json", "-q", fixture]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith('{"finding_id"')
