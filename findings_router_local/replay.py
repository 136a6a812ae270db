"""`findings-router replay`: the dry run. What would this policy have done with these findings?

Reads EventBridge events, `aws securityhub get-findings` output, bare findings, JSON arrays or JSON lines, from files or
from standard input (`-`). Makes no AWS call: dedup state lives in memory across all inputs, and deliveries are only
built, never sent. `--silences FILE` applies silences (as `silence list --output json` prints them) at each finding's
time: a finding one holds back shows as `silenced` (there is no sweep in a replay: what a silence held back pages at
the finding's next copy after it ended). `--shadow` decides with the rules marked `shadow: true` too.

Inputs are streams: 50,000 findings neither fill memory nor keep the terminal silent.

* get-findings output (`{"Findings": [...], "NextToken": ...}`) and JSON arrays are read one item at a time
  (`_Items`). Only the brackets, commas and keys around the items are followed here; every item is decoded by `json`
  itself (`JSONDecoder.raw_decode`), so values, numbers (NaN, Infinity, 1e400, integers of more than 4300 digits),
  lone surrogates, nesting limits and error messages are those of `json.loads` on the whole file.
* JSON lines are read line by line; any other document (an EventBridge event, a bare finding: small) whole, as before.

Findings are routed in batches of 100 (one batched state read each) while the input is read, and each record is
written as soon as it is routed. Only what the output needs is kept: the counts for `json`, the rows for `table`.
Problems name the input and the position: `file:line` for JSON lines, `file: .Findings[i]` or `file: .[i]` (jq's
path, from 0) for an item of get-findings output or of an array, and json's line and column when JSON does not parse.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import IO, Any, TextIO

from findings_router.adapters.memory import InMemoryDedupStore, InMemoryStormCounter
from findings_router.adapters.silences import StaticSilences
from findings_router.domain.model import Finding, FindingError
from findings_router.domain.normalize import clean_json_text, normalize_document
from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.domain.policy import CompiledPolicy
from findings_router.domain.silences import Silence
from findings_router.notify import DeliveryResult
from findings_router.notify.pagerduty.events import build_event
from findings_router.notify.recording import RecordingNotifier
from findings_router.service.canary import CanaryProbe
from findings_router.service.route import FindingsRouter, Routed
from findings_router.settings.schema import Policy
from findings_router_local.tables import clip, render_table, table_lines

BATCH = 100  # findings per batched state read, as in the Lambda
PROGRESS_THRESHOLD = 1000  # findings; shorter replays of small inputs finish before a bar would help
PROGRESS_STEP = 200  # findings between two looks at the clock when the total is known
PROGRESS_INTERVAL = 0.2  # seconds: the bar is redrawn at most five times a second
SMALL_INPUT = 4 << 20  # bytes: files this small (all together) are read before routing, so the bar knows the total
CHUNK = 1 << 20  # bytes read at a time
CELL_WIDTH = 48  # a table cell never shows more (then the table is fitted to the terminal)
STDIN = "-"
STDIN_LABEL = "<stdin>"

COLUMNS = (
    "finding_id",
    "dedup_key",
    "format",
    "product",
    "severity",
    "account",
    "region",
    "resource_ids",
    "cve_ids",
    "max_cvss",
    "decision",
    "reason",
)
DECISIONS = ("page", "notify", "resolve", "duplicate", "drop")
# Columns with few distinct values: a long table keeps one copy of each ("asff", "eu-central-1", "page", ...).
_REPEATING = frozenset(i for i, c in enumerate(COLUMNS) if c not in ("finding_id", "dedup_key", "resource_ids"))


@dataclass(frozen=True)
class InputProblem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def outcome_of(routed: Routed) -> str:
    """The decision as replay shows it: `silenced` for a trigger a silence held back (the router records a drop)."""
    decision = routed.decision
    return "silenced" if decision.outcome == "drop" and decision.silenced_by is not None else decision.outcome


def record_of(routed: Routed) -> dict[str, Any]:
    f = routed.finding
    return {
        "finding_id": f.id,
        "dedup_key": routed.decision.key,
        "format": f.format.value,
        "product": f.product_name,
        "severity": f.severity.value,
        "account": f.account,
        "region": f.region,
        "resource_ids": list(f.resource_ids),
        "cve_ids": list(f.cve_ids),
        "max_cvss": f.max_cvss,
        "decision": outcome_of(routed),
        "reason": routed.decision.reason,
    }


# ------------------------------------------------------------------------------------------ whole documents


def read_documents(path: Path) -> Iterator[tuple[str, Any]]:
    """(position, parsed JSON) for a file holding one JSON document or JSON lines, read whole (`explain` reads its
    inputs so). Raises ValueError when the whole file is unusable; a line that is not JSON is yielded as its error."""
    yield from _documents_from_text(str(path), path.read_text(encoding="utf-8"))


def _documents_from_text(label: str, text: str) -> Iterator[tuple[str, Any]]:
    try:
        yield label, _load(text)
        return
    except json.JSONDecodeError as whole_error:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        if len(lines) <= 1:
            raise ValueError(
                f"line {whole_error.lineno} column {whole_error.colno}: not JSON: {whole_error.msg}"
            ) from None
    except (ValueError, RecursionError) as exc:  # nesting too deep, an integer of thousands of digits
        raise ValueError(_unusable(exc)) from None
    for n, line in lines:
        yield f"{label}:{n}", _load_line(line)


def _load(text: str) -> Any:
    value = json.loads(text)
    return clean_json_text(value) if "\\u" in text else value


def _load_line(line: str) -> Any:
    """One JSON line's value, or the ValueError that says why it is none."""
    try:
        return _load(line)
    except json.JSONDecodeError as exc:
        return ValueError(f"column {exc.colno}: not JSON: {exc.msg}")
    except (ValueError, RecursionError) as exc:
        return ValueError(_unusable(exc))


def _unusable(exc: BaseException) -> str:
    return f"not usable JSON: {type(exc).__name__}: {str(exc)[:200]}"


# ------------------------------------------------------------------------------------------ reading inputs


class UnreadableInputError(OSError):
    """An input that cannot be opened, with its one-line reason: no such file, is a directory, permission denied."""


class NotUtf8Error(ValueError):
    """Input that is not UTF-8 (the message is the one `Path.read_text` gives, with the position in the file)."""


def _not_utf8(exc: UnicodeDecodeError, base: int) -> NotUtf8Error:
    start = base + exc.start
    if exc.end - exc.start == 1:
        byte = exc.object[exc.start]
        return NotUtf8Error(f"'utf-8' codec can't decode byte 0x{byte:02x} in position {start}: {exc.reason}")
    return NotUtf8Error(f"'utf-8' codec can't decode bytes in position {start}-{base + exc.end - 1}: {exc.reason}")


class _Text:
    """The UTF-8 text of one input, piece by piece, with universal newlines (as `Path.read_text` decodes it). Bytes
    that are not UTF-8 end the text early: `read` gives the text before them, then "", and `error` says why."""

    def __init__(self, read: Callable[[int], bytes], on_bytes: Callable[[int], None] | None = None) -> None:
        self._read = read
        self._on_bytes = on_bytes
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._newlines = io.IncrementalNewlineDecoder(None, translate=True)
        self.error: NotUtf8Error | None = None
        self.position = 0  # bytes read
        self.eof = False

    def read(self) -> str:
        """The next piece of text; "" at the end."""
        while not self.eof:
            data = self._read(CHUNK)
            pending = len(getattr(self._utf8, "buffer", b""))
            try:
                text = self._utf8.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                self.error = _not_utf8(exc, self.position - pending)
                text = exc.object[: exc.start].decode("utf-8")  # what came before is text
            self.position += len(data)
            self.eof = not data or self.error is not None
            if data and self._on_bytes is not None:
                self._on_bytes(len(data))
            text = self._newlines.decode(text, final=self.eof)
            if text:
                return text
        return ""

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def pieces(self) -> Iterator[str]:
        """The text to its end, then the error if it ended early (what came before is not the end of anything)."""
        while piece := self.read():
            yield piece
        self.check()

    def read_all(self) -> str:
        return "".join(self.pieces())


class _Spooled:
    """A pipe (standard input) that can be read from its start once more: what is read before `rewind` is kept in a
    temporary file, which is read first afterwards, then the rest of the pipe. Nothing is kept after the rewind."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.spool: IO[bytes] | None = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.replaying = False

    def read(self, size: int) -> bytes:
        if self.replaying and self.spool is not None:
            kept = self.spool.read(size)
            if kept:
                return kept
            self.close()
        read1 = getattr(self.raw, "read1", None)  # what has arrived, without waiting for a whole chunk
        data: bytes = read1(size) if read1 is not None else self.raw.read(size)
        if self.spool is not None:
            self.spool.write(data)
        return data

    def rewind(self) -> None:
        if self.spool is None or self.replaying:
            raise RuntimeError("standard input can be read again only once")
        self.spool.seek(0)
        self.replaying = True

    def close(self) -> None:
        self.replaying = False
        if self.spool is not None:
            self.spool.close()
            self.spool = None


class _File:
    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw

    def read(self, size: int) -> bytes:
        return self.raw.read(size)

    def rewind(self) -> None:
        self.raw.seek(0)

    def close(self) -> None:
        self.raw.close()


def _open_error(exc: OSError) -> UnreadableInputError:
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return UnreadableInputError("no such file")
    if isinstance(exc, IsADirectoryError):
        return UnreadableInputError("is a directory")
    if isinstance(exc, PermissionError):
        return UnreadableInputError("permission denied")
    return UnreadableInputError((exc.strerror or str(exc)).lower())


def _open(path: Path | str, stdin: IO[bytes] | None) -> tuple[str, _File | _Spooled, str]:
    """(label, byte source, what an empty one is called); raises `UnreadableInputError`."""
    if str(path) == STDIN:
        return STDIN_LABEL, _Spooled(stdin if stdin is not None else sys.stdin.buffer), "empty input"
    try:
        if stat.S_ISDIR(os.stat(path).st_mode):
            raise UnreadableInputError("is a directory")
        raw = open(path, "rb")  # noqa: SIM115 (closed by the caller)
    except OSError as exc:
        raise _open_error(exc) from None
    if raw.seekable():
        return str(path), _File(raw), "empty file"
    return str(path), _Spooled(raw), "empty file"  # a named pipe or a process substitution: no second pass


def input_size(path: Path | str) -> int | None:
    """Bytes of a regular file (0 when it cannot be read: it only shows an error); None for a pipe or stdin."""
    if str(path) == STDIN:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return 0
    if stat.S_ISREG(info.st_mode):
        return info.st_size
    return 0 if stat.S_ISDIR(info.st_mode) else None


# How an input is read, from its first characters (`_sniff`).
EMPTY, LINES, ARRAY, GET_FINDINGS, WHOLE = "empty", "lines", "array", "get-findings", "whole"

_NON_SPACE = re.compile(r"\S")  # what str.strip() keeps
_NOT_JSON_SPACE = re.compile(r"[^ \t\n\r]")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_LINE_BREAK = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # where str.splitlines() breaks
_GET_FINDINGS = re.compile(r'\{[ \t\n\r]*"Findings"[ \t\n\r]*:[ \t\n\r]*\[')
_HEAD = 4096  # characters looked at for `{"Findings": [`
_FIRST_LINE_LIMIT = 8 << 20  # characters of the first line kept, to try it alone as JSON


def _sniff(text: _Text) -> str:
    """How to read an input, from as little of its start as it takes (the caller then reads it from the start).

    An array or get-findings output (`{"Findings": [` first) is streamed; when its first line holds all of it and more
    lines follow, they are JSON lines (`_Items`). Anything else keeps the semantics of `read_documents`: JSON lines
    are two or more non-blank lines of which the first is JSON by itself, otherwise the input is one document, read
    whole. A first line longer than `_FIRST_LINE_LIMIT` followed by more lines is taken as JSON lines untried."""
    odd_space = False  # whitespace json does not skip (a form feed, a no-break space) before the document
    chunk = text.read()
    while True:
        if not chunk:
            return EMPTY
        found = _NON_SPACE.search(chunk)
        blank = chunk[: found.start()] if found else chunk
        odd_space = odd_space or bool(_NOT_JSON_SPACE.search(blank))
        if found:
            break
        chunk = text.read()
    rest = chunk[found.start() :]
    if not odd_space and rest[0] == "[":
        return ARRAY
    if not odd_space and rest[0] == "{":
        while len(rest) < _HEAD and (more := text.read()):
            rest += more
        if _GET_FINDINGS.match(rest):
            return GET_FINDINGS
    line: list[str] | None = []  # the first non-blank line from its first non-blank character, while not too long
    kept = 0
    while True:
        brk = _LINE_BREAK.search(rest)
        piece = rest[: brk.start()] if brk else rest
        if line is not None:
            line.append(piece)
            kept += len(piece)
            line = line if kept <= _FIRST_LINE_LIMIT else None
        if brk:
            rest = rest[brk.end() :]
            break
        rest = text.read()
        if not rest:
            return WHOLE  # a single line
    while not _NON_SPACE.search(rest):
        rest = text.read()
        if not rest:
            return WHOLE  # a single non-blank line
    if line is None:
        return LINES
    try:
        json.loads("".join(line))
    except (ValueError, RecursionError):  # whole, json.loads fails the same way (or parses a multi-line document)
        return WHOLE
    return LINES


def _json_lines(label: str, pieces: Iterable[str], first: int = 1) -> Iterator[tuple[str, Any, int | None]]:
    """Each non-blank line's value (or error), numbered (from `first`) as `str.splitlines()` numbers the text."""
    n = first - 1
    for segment in _segments(pieces):
        for line in segment.splitlines():
            n += 1
            if line.strip():
                yield f"{label}:{n}", _load_line(line), None


def _segments(pieces: Iterable[str]) -> Iterator[str]:
    """The text in pieces that end with a newline (the last one may not)."""
    pending: list[str] = []
    for chunk in pieces:
        start = 0
        while (end := chunk.find("\n", start)) >= 0:
            pending.append(chunk[start : end + 1])
            yield "".join(pending)
            pending = []
            start = end + 1
        if start < len(chunk):
            pending.append(chunk[start:])
    if pending:
        yield "".join(pending)


class _Broken(Exception):
    """JSON that does not parse, as json.loads of the whole text would report it."""


_DECODER = json.JSONDecoder()
_LOOKAHEAD = 16  # characters json may need past an error's position to see it (-Infinity, \uXXXX)
_NUMBER_TAIL = re.compile(r"[0-9eE.+\-]*\Z")  # what may still belong to a number at the window's end


class _Items:
    """The items of a JSON array, or of the `Findings` array of get-findings output, one at a time.

    Only the structure around the items (brackets, commas, the top-level keys) is followed here, with json.loads'
    own error messages; each item and key is decoded by `json` (`raw_decode`), from a window of the text that grows
    when an item does not fit. (ijson's C backend was the alternative; in 3.6.0 it segfaults on an integer of more
    than 4300 digits, needs memory quadratic in the nesting depth, so 100,000 nested brackets exhaust the machine,
    and its numbers and lone surrogates are not json's: the property tests feed replay all of these. It is also
    slower: 2.1 s for 50,000 findings against 1.2 s here.)"""

    def __init__(self, text: _Text) -> None:
        self.text = text
        self.buf = ""
        self.pos = 0
        self.offset = 0  # characters before buf[0]
        self.lines = 0  # line breaks before buf[0]
        self.line_start = 0  # offset of the start of the line buf[0] is on

    def _more(self, at_least: int = 1) -> bool:
        """Drop what was read, append at least `at_least` more characters (fewer at the end): False at the end."""
        if self.pos:
            breaks = self.buf.count("\n", 0, self.pos)
            if breaks:
                self.lines += breaks
                self.line_start = self.offset + self.buf.rindex("\n", 0, self.pos) + 1
            self.offset += self.pos
            self.buf = self.buf[self.pos :]
            self.pos = 0
        parts, got = [self.buf], 0
        while got < at_least and (piece := self.text.read()):
            parts.append(piece)
            got += len(piece)
        if got:
            self.buf = "".join(parts)
        return got > 0

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end), not consumed."""
        while True:
            match = _JSON_SPACE.match(self.buf, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def take(self, char: str, message: str) -> None:
        if self.peek() != char:
            raise self.broken(message, self.pos)
        self.pos += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                at = self.offset + exc.pos  # `_more` moves the window: keep the place in the text
                # A value cut by the window's end fails at the end (or, a string, where it starts): read on. A string
                # ends (or meets a control character) before the end of the text; other failures show within a few
                # characters of their cause.
                cut = exc.msg.startswith("Unterminated string") or exc.pos + _LOOKAHEAD >= len(self.buf)
                if cut and self._more(len(self.buf) - self.pos):  # doubles what is kept of a long value
                    continue
                raise self.broken(exc.msg, at - self.offset) from None
            # A number cut by the window's end reads as a shorter one (12 of 123, 1 of 1e5): read on.
            number = isinstance(value, int | float) and _NUMBER_TAIL.match(self.buf, end) is not None
            if number and self._more():
                continue
            escaped = self.buf.find("\\u", self.pos, end) >= 0
            self.pos = end
            return clean_json_text(value) if escaped else value

    def broken(self, message: str, pos: int) -> _Broken:
        line = self.lines + self.buf.count("\n", 0, pos) + 1
        newline = self.buf.rfind("\n", 0, pos)
        column = pos - newline if newline >= 0 else self.offset + pos - self.line_start + 1
        return _Broken(f"line {line} column {column}: not JSON: {message}")

    def line_number(self) -> int:
        """Line breaks before the current position."""
        return self.lines + self.buf.count("\n", 0, self.pos)

    def read(self, label: str, findings: bool) -> Iterator[tuple[str, Any, int | None]]:
        """(position, item or its error, index in `Findings` or None for an array item). After an error, nothing.

        When the document is all on its first line and more lines follow, the rest is read as JSON lines (the whole
        text is not JSON, and its first line is)."""
        index: int | None = 0
        try:
            self.peek()
            first_line = self.line_number()
            if findings:
                self.take("{", "Expecting value")
                self.value()  # "Findings", as the sniff saw
                self.take(":", "Expecting ':' delimiter")
            self.take("[", "Expecting value")
            if self.peek() == "]":
                self.pos += 1
            else:
                while True:
                    assert index is not None
                    item = self.value()
                    yield _item_label(label, findings, index), item, index if findings else None
                    index += 1
                    if self.peek() == "]":
                        self.pos += 1
                        break
                    self.take(",", "Expecting ',' delimiter")
            index = None  # from here on, problems are the document's
            if findings:
                self._rest_of_object()
            last_line = self.line_number()
            if not self.peek():
                self.text.check()
                return
            if first_line == last_line < self.line_number():
                pieces = chain([self.buf[self.pos :]], self.text.pieces())
                yield from _json_lines(label, pieces, first=self.line_number() + 1)
                return
            raise self.broken("Extra data", self.pos)
        except NotUtf8Error:
            raise
        except _Broken as exc:
            self.text.check()  # the text ended early: that is the problem
            yield _item_label(label, findings, index), ValueError(str(exc)), None
        except (ValueError, RecursionError) as exc:  # json's limits: nesting too deep, an integer of 4300+ digits
            yield _item_label(label, findings, index), ValueError(_unusable(exc)), None

    def _rest_of_object(self) -> None:
        """The keys after `Findings` (NextToken): read and left alone."""
        while True:
            char = self.peek()
            if char == "}":
                self.pos += 1
                return
            self.take(",", "Expecting ',' delimiter")
            if self.peek() != '"':
                raise self.broken("Expecting property name enclosed in double quotes", self.pos)
            self.value()
            self.take(":", "Expecting ':' delimiter")
            self.value()


def _item_label(label: str, findings: bool, index: int | None) -> str:
    if index is None:
        return label
    return f"{label}: {'.Findings' if findings else '.'}[{index}]"


def read_input(
    path: Path | str, stdin: IO[bytes] | None = None, on_bytes: Callable[[int], None] | None = None
) -> Iterator[tuple[str, Any, int | None]]:
    """(position, JSON value or the ValueError of that position, index in get-findings' `Findings` or None) of one
    input, as it is read. Raises `ValueError` when the input as a whole is unusable (empty, not UTF-8, not JSON) and
    `OSError` when it cannot be read (`UnreadableInputError` when it cannot be opened). `on_bytes` hears of every
    piece read."""
    label, source, empty = _open(path, stdin)
    try:
        sniffed = _Text(source.read)
        shape = _sniff(sniffed)
        if shape == EMPTY:
            sniffed.check()  # blank up to bytes that are not UTF-8: those are the problem
            raise ValueError(empty)
        source.rewind()
        text = _Text(source.read, on_bytes)
        if shape == LINES:
            yield from _json_lines(label, text.pieces())
        elif shape in (ARRAY, GET_FINDINGS):
            yield from _Items(text).read(label, shape == GET_FINDINGS)
        else:
            for where, doc in _documents_from_text(label, text.read_all()):
                yield where, doc, None
    finally:
        source.close()


# ------------------------------------------------------------------------------------------ routing


class _ForgettingNotifier(RecordingNotifier):
    """Builds every body as the real notifier would, and keeps none: a long replay must not hold every page."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def send(self, notification: Notification, context: NotifyContext) -> DeliveryResult:
        if self.fail_with is not None:
            raise self.fail_with
        build_event(notification, context, self.routing_key)
        self.count += 1
        return DeliveryResult(202, 1, notification.key)


_FIRST_ITEM_FIELD = "detail.findings[0]."


class Replayer:
    """`silences`: applied at each finding's time. `shadow`: the policy's shadow view (every rule, `shadow: true`
    ones too), which is also what a `mode: shadow` policy decides: a replay shows decisions, never shadow's drops."""

    def __init__(
        self,
        policy: Policy,
        now: dt.datetime | None = None,
        *,
        keep_sends: bool = True,
        silences: Iterable[Silence] = (),
        shadow: bool = False,
    ) -> None:
        self.store = InMemoryDedupStore()
        self.notifier = RecordingNotifier() if keep_sends else _ForgettingNotifier()
        self.storms = InMemoryStormCounter()
        self.now = now or dt.datetime.now(dt.UTC)
        # The environment's canary findings (they come back with `get-findings`) show as paging its own service.
        canary = CanaryProbe.dry_run(policy.environment, lambda: self.now) if policy.canary.routing_key_secret else None
        view = shadow or policy.mode == "shadow"
        decided = CompiledPolicy(policy.model_copy(update={"mode": "live"}), shadow=view)
        silenced = list(silences)
        self.router = FindingsRouter(
            decided,
            self.store,
            self.notifier,
            storms=self.storms,
            canary=canary,
            silences=StaticSilences(silenced) if silenced else None,
        )
        self.problems: list[InputProblem] = []

    def normalize_document(self, where: str, doc: Any) -> list[Finding]:
        if isinstance(doc, Exception):
            self.problems.append(InputProblem(where, str(doc)))
            return []
        try:
            normalized = normalize_document(doc)
        except FindingError as exc:
            self.problems.append(InputProblem(where, str(exc)))
            return []
        for error in normalized.errors:
            self.problems.append(InputProblem(where, str(error)))
        return normalized.findings

    def normalize_listed(self, where: str, raw: Any, index: int) -> list[Finding]:
        """Item `index` of get-findings' `Findings`, with the problem a whole document would give it."""
        if isinstance(raw, Exception):
            return self.normalize_document(where, raw)
        normalized = normalize_document({"Findings": [raw]})
        for error in normalized.errors:
            if index and error.field and not error.finding_id and error.field.startswith(_FIRST_ITEM_FIELD):
                error.field = f"detail.findings[{index}].{error.field.removeprefix(_FIRST_ITEM_FIELD)}"
                error.args = (f"missing or invalid field {error.field}",)
            self.problems.append(InputProblem(where, str(error)))
        return normalized.findings

    def read(
        self, path: Path | str, stdin: IO[bytes] | None = None, on_bytes: Callable[[int], None] | None = None
    ) -> Iterator[Finding]:
        """Every finding of one input (a file, or `-`: standard input) as it is read; problems are collected."""
        label = STDIN_LABEL if str(path) == STDIN else str(path)
        try:
            for where, doc, index in read_input(path, stdin, on_bytes):
                if index is None:
                    yield from self.normalize_document(where, doc)
                else:
                    yield from self.normalize_listed(where, doc, index)
        except (OSError, ValueError) as exc:
            self.problems.append(InputProblem(label, str(exc)))

    def normalize_files(self, paths: list[Path]) -> list[Finding]:
        """Every finding of every file, in order; problems are collected, never raised."""
        return [finding for path in paths for finding in self.read(path)]

    def route(self, findings: Iterable[Finding]) -> Iterator[Routed]:
        """Routes findings as they come, in batches of `BATCH` (one batched state read each)."""
        chunk: list[Finding] = []
        for finding in findings:
            chunk.append(finding)
            if len(chunk) == BATCH:
                yield from self._route_batch(chunk)
                chunk = []
        if chunk:
            yield from self._route_batch(chunk)

    def _route_batch(self, chunk: list[Finding]) -> Iterator[Routed]:
        self.router.prefetch(chunk)
        for f in chunk:
            yield self.router.route(f, finding_time(f, self.now))


def finding_time(finding: Finding, default: dt.datetime) -> dt.datetime:
    """Replay on the findings' own timeline (their last update), so TTLs, suppression expiry and storm windows
    behave as they would have then."""
    stamp = finding.updated_at or finding.last_observed_at
    if stamp:
        try:
            parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
            parsed.astimezone(dt.UTC)  # at the edge of time (year 1 or 9999 with an offset) this overflows
        except (ValueError, OverflowError):
            return default
        if not 1970 <= parsed.year <= 9000:  # TTL arithmetic needs room on both sides
            return default
        return parsed
    return default


# ------------------------------------------------------------------------------------------ progress


class Progress:
    """One line on stderr, redrawn at most every `interval` seconds and ended with a newline by `finish`:

    * total known (small inputs, read before routing): `[#####               ] 4,000/10,000 findings`
    * files being streamed, by bytes read: `[#####               ] 4,000 findings`
    * standard input (size unknown): `4,000 findings`
    """

    WIDTH = 30

    def __init__(
        self,
        stream: TextIO,
        *,
        total_findings: int | None = None,
        total_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self.stream = stream
        self.total_findings = total_findings
        self.total_bytes = total_bytes
        self.clock = clock
        self.interval = interval
        self.findings = 0
        self.bytes = 0
        self.drawn_at: float | None = None

    def update(self, findings: int) -> None:
        self.findings = findings
        self._tick()

    def add_bytes(self, count: int) -> None:
        self.bytes += count
        self._tick()

    def finish(self, findings: int) -> None:
        self.findings = findings
        self._draw(final=True)

    def _tick(self) -> None:
        now = self.clock()
        if self.drawn_at is None or now - self.drawn_at >= self.interval:
            self.drawn_at = now
            self._draw(final=False)

    def line(self, final: bool = False) -> str:
        if self.total_findings is not None:
            filled = self.WIDTH * min(self.findings, self.total_findings) // max(self.total_findings, 1)
            text = f"{self.findings:,}/{self.total_findings:,} findings"
        elif self.total_bytes is not None:
            if final or not self.total_bytes:
                filled = self.WIDTH if final else 0
            else:
                filled = self.WIDTH * min(self.bytes, self.total_bytes) // self.total_bytes
            text = f"{self.findings:,} findings"
        else:
            return f"{self.findings:,} findings"
        return f"[{'#' * filled}{' ' * (self.WIDTH - filled)}] {text}"

    def _draw(self, final: bool) -> None:
        self.stream.write("\r" + self.line(final) + ("\n" if final else ""))
        self.stream.flush()


# ------------------------------------------------------------------------------------------ output


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    return str(value)


def table_row(record: dict[str, Any], columns: tuple[str, ...] = COLUMNS, width: int = CELL_WIDTH) -> list[str]:
    return [clip(_cell(record[c]), width) for c in columns]


def render_records(
    records: list[dict[str, Any]],
    columns: tuple[str, ...] = COLUMNS,
    width: int = CELL_WIDTH,
    max_width: int | None = None,
) -> str:
    rows = [table_row(r, columns, width) for r in records]
    return render_table(columns, rows, "(no findings)", max_width=max_width)


def summary_line(counts: dict[str, int]) -> str:
    parts = [f"{counts.get(k, 0)} {k}" for k in DECISIONS]
    if counts.get("silenced"):
        parts.append(f"{counts['silenced']} silenced")
    return f"{sum(counts.values())} findings: " + ", ".join(parts)


def summarize(records: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["decision"]] = counts.get(r["decision"], 0) + 1
    return summary_line(counts)


def terminal_width(out: TextIO) -> int | None:
    """The width to fit the table to: the terminal's when `out` is one (or COLUMNS says), else none."""
    isatty = getattr(out, "isatty", None)
    if "COLUMNS" in os.environ or (isatty is not None and isatty()):
        return shutil.get_terminal_size().columns
    return None


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


def run_replay(
    policy: Policy,
    paths: list[Path | str],
    fmt: str,
    out: TextIO | None = None,
    err: TextIO | None = None,
    progress: bool = False,
    *,
    stdin: IO[bytes] | None = None,
    width: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    summary: bool = False,
    silences: Iterable[Silence] = (),
    shadow: bool = False,
) -> int:
    """Replays `paths` (`-`: standard input, `stdin` when given) and writes JSON lines or a table to `out`; progress
    (when asked) and problems go to `err`. `width`: fit the table to it (default: the terminal's, when `out` is one).
    `summary`: for json and csv, also write the summary line to `err` (a table always ends with it).
    Exit status: 0, or 2 when some input could not be read or parsed, or some finding not normalized."""
    out = out or sys.stdout
    err = err or sys.stderr
    replayer = Replayer(policy, keep_sends=False, silences=silences, shadow=shadow)
    counts: dict[str, int] = {}
    rows: list[tuple[str, ...]] = []
    cells: dict[str, str] = {}

    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(COLUMNS)

    def emit(routed: Routed) -> None:
        record = record_of(routed)
        counts[record["decision"]] = counts.get(record["decision"], 0) + 1
        if fmt == "json":
            out.write(json.dumps(record) + "\n")
        elif writer is not None:
            writer.writerow([_csv_cell(record[c]) for c in COLUMNS])
        elif fmt == "table":
            row = table_row(record)
            rows.append(tuple(cells.setdefault(c, c) if i in _REPEATING else c for i, c in enumerate(row)))

    sizes = [input_size(p) for p in paths]
    total_bytes = None if None in sizes else sum(s or 0 for s in sizes)
    done = 0
    bar: Progress | None
    if total_bytes is not None and total_bytes <= SMALL_INPUT:
        findings = [f for p in paths for f in replayer.read(p, stdin)]
        bar = None
        if progress and len(findings) >= PROGRESS_THRESHOLD:
            bar = Progress(err, total_findings=len(findings), clock=clock)
        for done, routed in enumerate(replayer.route(findings), 1):
            emit(routed)
            if bar is not None and done % PROGRESS_STEP == 0:
                bar.update(done)
    else:
        bar = Progress(err, total_bytes=total_bytes, clock=clock) if progress else None
        on_bytes = bar.add_bytes if bar is not None else None
        streamed = (f for p in paths for f in replayer.read(p, stdin, on_bytes))
        for done, routed in enumerate(replayer.route(streamed), 1):
            emit(routed)
            if bar is not None and done % BATCH == 0:
                bar.update(done)
    if bar is not None:
        bar.finish(done)
    if fmt == "table" and (rows or not replayer.problems):  # an input that failed as a whole is no empty table
        fit = width if width is not None else terminal_width(out)
        for line in table_lines(COLUMNS, rows, "(no findings)", max_width=fit):
            out.write(line + "\n")
        out.write(summary_line(counts) + "\n")
    elif fmt in ("json", "csv") and summary:
        err.write(summary_line(counts) + "\n")  # records stay machine-readable on stdout
    out.flush()
    for problem in replayer.problems:
        err.write(f"error: {problem}\n")
    return 2 if replayer.problems else 0
