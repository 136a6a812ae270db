"""Bad input (issue 6, part 3): malformed, truncated, oversized and wrong-typed events never take anything down.

Properties, from the pure edge inwards to the deployed shape:

* `normalize_event` / `normalize_document` raise nothing but `FindingError` on arbitrary JSON values
  (`st.recursive`), on envelopes around arbitrary findings, on mutations of the real fixtures (keys deleted, values
  replaced by other types, strings/lists/objects truncated, huge strings and lists, extreme numbers, lone
  surrogates, OCSF times given only as epochs), and on schema-aware ASFF/OCSF findings in which every field the
  normalizer reads is present or not and holds a plausible value or anything at all.
* Policy evaluation, the dedup key and the dedup decision (new, duplicate, resolve, reopen, escalate, expired) never
  crash on a finding `normalize` accepted, and the PagerDuty body built for it is strict JSON.
* The router Lambda (real handler, moto, local PagerDuty): a batch of bad records and valid neighbours never crashes;
  each failing record is a `batchItemFailures` entry with an ERROR log line giving `reason` and `error`; every valid
  neighbour is paged exactly once. Neither the routing key nor the webhook signing secret appears in any output,
  also when PagerDuty fails.
* The ack receiver answers arbitrary bytes and headers with 401/413 (400 when validly signed, or 200), never a 5xx,
  and changes nothing without a valid signature; its parsers raise only `WebhookError`.
* `findings-router replay` on a truncated or garbage file exits 2 with `error: <file>…` lines, never a traceback.

Bugs found. The bugs these properties found are listed in `KNOWN_BUGS`, all fixed; each keeps a minimal reproducer
at the end as a regression test (marked `regression`). The properties are strict: any exception fails them.
`known_bug` can still classify an exception as one of those bugs (for a helpful message while debugging) when
FR_BAD_INPUT_STRICT=0 makes the properties tolerate them again.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import hashlib
import hmac
import itertools
import json
import os
import re
import string
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from findings_router.domain.acks import (
    ACTED_ON,
    MAX_BODY_BYTES,
    V2_EVENT_TYPES,
    IncidentEvent,
    WebhookError,
    parse_eventbridge_v2,
    parse_webhook,
    sign,
    verify_signature,
)
from findings_router.domain.keys import dedup_key
from findings_router.domain.model import Finding, FindingError, Severity
from findings_router.domain.normalize import normalize_asff, normalize_document, normalize_event
from findings_router.domain.policy import CompiledPolicy
from findings_router.entrypoints import receive_acks as ack_handler
from findings_router.entrypoints import route_findings as router_handler
from findings_router.settings.load import load_policy, policy_path
from findings_router_local.cli import main as cli_main
from findings_router_local.fakes.pagerduty import Fault
from findings_router_local.function_url import function_url_event
from findings_router_local.replay import Replayer
from tests.builders import CONFIG_DIR, FIXTURES, NOW, FakeLambdaContext, asff, event, load_fixture, sqs_event
from tests.integration.conftest import ROUTING_KEY, TABLE, WEBHOOK_SECRET
from tests.property.conftest import Captured

STRICT = os.environ.get("FR_BAD_INPUT_STRICT", "1") != "0"  # every bug found so far is fixed
SECRETS = (ROUTING_KEY, WEBHOOK_SECRET)

# Deterministic (derandomize, no example database) so that CI sees the same examples every run.
_COMMON = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,  # moto-backed: one stack per test, each example cleans up after itself
    ],
}
PURE = settings(max_examples=150, **_COMMON)
REPLAY = settings(max_examples=40, **_COMMON)
STACK = settings(max_examples=20, **_COMMON)

# --------------------------------------------------------------------------------------------- known bugs

KNOWN_BUGS = {
    "detail-type-unhashable": "normalize_event: a list or object `detail-type` raises TypeError (unhashable), "
    "not FindingError; in the Lambda it escapes the pre-parse loop and fails the whole batch",
    "number-overflow": "domain.normalize._json.number: an integer beyond float range (Severity.Normalized, Cvss BaseScore, "
    "cvss base_score, OCSF epochs) raises OverflowError; in the Lambda the whole batch fails",
    "ocsf-epoch-range": "domain.normalize.ocsf._time: an OCSF epoch outside datetime's range (or NaN/inf) raises "
    "ValueError/OverflowError/OSError; in the Lambda the whole batch fails",
    "json-limits": "json.loads raises RecursionError (deep nesting) or ValueError (an integer of more than 4300 "
    "digits), neither a JSONDecodeError: the router batch fails, the webhook answers 5xx, replay prints a traceback",
    "lone-surrogate": "normalize accepts lone UTF-16 surrogates (JSON '\\ud800'): in an id, account, region, control "
    "or resource the dedup key raises UnicodeEncodeError before the batch is processed, failing the whole batch; "
    "replay prints a traceback; in other fields the record is dead-lettered after its page, and log lines are lost",
    "non-finite-number": "normalize accepts non-finite numbers (CVSS 1e400 or NaN become max_cvss inf/nan), which "
    "make the PagerDuty body invalid JSON (requests: InvalidJSONError): the finding can never page; the record "
    "fails as an 'unexpected error' on every receive (a permanent error, retried) and ends in the dead-letter queue",
    "signature-non-ascii": "verify_signature: a non-ASCII X-PagerDuty-Signature makes hmac.compare_digest raise "
    "TypeError; an unauthenticated request crashes the receiver (5xx)",
    "webhook-body-not-utf8": "pagerduty_webhook: a base64 body that is not UTF-8 raises UnicodeDecodeError in "
    "Powertools' decoded_body before the signature check; an unauthenticated request crashes the receiver (5xx)",
    "eventbridge-alerts-not-iterable": "parse_eventbridge_v2: a non-iterable incident.alerts (a number, true) "
    "raises TypeError instead of WebhookError",
    "replay-timeline-overflow": "replay.finding_time: an UpdatedAt near year 1 or 9999 with a UTC offset "
    "overflows in domain.episodes._iso (OverflowError), a traceback",
}


def _project_frames(exc: BaseException) -> list[tuple[str, str]]:
    """(file under its package, function) of the traceback frames in the project's own code, outermost first:
    e.g. ("domain/normalize/_json.py", "number"), ("replay.py", "read_documents")."""
    packages = ("findings_router", "findings_router_local")
    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        parts = Path(frame.filename).parts
        roots = [i for i, part in enumerate(parts) if part in packages]
        if roots:
            frames.append(("/".join(parts[roots[-1] + 1 :]), frame.name))
    return frames


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def has_lone_surrogate(raw: Any) -> bool:
    """Does a value (or the JSON text of one) hold a lone surrogate? Escaped pairs (emoji) decode to one char."""
    if isinstance(raw, str):
        with contextlib.suppress(ValueError, RecursionError):
            raw = json.loads(raw)
    return any(any("\ud800" <= c <= "\udfff" for c in s) for s in _strings(raw))


def known_bug(exc: BaseException | None, raw: Any = None) -> str | None:
    """The `KNOWN_BUGS` id an exception is an instance of, or None (a new problem)."""
    if exc is None or STRICT:
        return None
    frames = _project_frames(exc)
    inner = frames[-1] if frames else ("", "")
    msg = str(exc)
    name = type(exc).__name__
    if (
        isinstance(exc, TypeError)
        and inner == ("domain/normalize/__init__.py", "normalize_event")
        and "unhashable" in msg
    ):
        return "detail-type-unhashable"
    if isinstance(exc, OverflowError) and inner == ("domain/normalize/_json.py", "number"):
        return "number-overflow"
    if isinstance(exc, ValueError | OverflowError | OSError) and inner == ("domain/normalize/ocsf.py", "_time"):
        return "ocsf-epoch-range"
    json_limit = isinstance(exc, RecursionError) or (isinstance(exc, ValueError) and "integer string" in msg)
    if json_limit and inner in {
        ("entrypoints/route_findings.py", "_parse"),
        ("entrypoints/receive_acks.py", "pagerduty_webhook"),
        ("replay.py", "read_documents"),
    }:
        return "json-limits"
    if isinstance(exc, UnicodeEncodeError) and "surrogates not allowed" in msg:
        return "lone-surrogate"
    if name == "ClientError" and inner == ("adapters/state_table.py", "put") and has_lone_surrogate(raw):
        return "lone-surrogate"
    if name == "InvalidJSONError" and inner[0].startswith("notify/"):
        return "non-finite-number"
    if isinstance(exc, TypeError) and inner == ("domain/acks.py", "verify_signature") and "non-ASCII" in msg:
        return "signature-non-ascii"
    if isinstance(exc, UnicodeDecodeError) and inner == ("entrypoints/receive_acks.py", "pagerduty_webhook"):
        return "webhook-body-not-utf8"
    if isinstance(exc, TypeError) and inner == ("domain/acks.py", "parse_eventbridge_v2") and "not iterable" in msg:
        return "eventbridge-alerts-not-iterable"
    if (
        isinstance(exc, OverflowError)
        and inner == ("domain/episodes.py", "_iso")
        and any(f[0] == "replay.py" for f in frames)
    ):
        return "replay-timeline-overflow"
    return None


def tolerate(exc: BaseException, raw: Any = None) -> None:
    """End this example if `exc` is a known bug (its reproducer is below); re-raise anything else."""
    bug = known_bug(exc, raw)
    if bug is None:
        raise exc
    note(f"known bug: {bug}")


# --------------------------------------------------------------------------------------------- strategies

FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))
FIXTURE_DOCS: dict[str, Any] = {p.name: json.loads(p.read_text()) for p in FIXTURE_FILES}
FIXTURE_TEXTS: dict[str, str] = {p.name: p.read_text() for p in FIXTURE_FILES}
EVENT_DOCS = {n: d for n, d in FIXTURE_DOCS.items() if isinstance(d, dict) and "detail-type" in d}
EVENT_TEXTS = {n: FIXTURE_TEXTS[n] for n in EVENT_DOCS}
PD_FIXTURES = FIXTURES / "pagerduty"

# The finding the ack properties aim their webhooks at (its dedup key is fixed, so fixtures can name it).
TARGET_FINDING = asff(
    id="arn:aws:guardduty:eu-central-1:111122223333:detector/d1/finding/property-ack-target", severity="CRITICAL"
)
TARGET_KEY = dedup_key(normalize_asff(TARGET_FINDING))


def _webhook_docs() -> dict[str, Any]:
    docs = {}
    for p in sorted(PD_FIXTURES.glob("webhook_*.json")):
        doc = json.loads(p.read_text())
        data = doc["event"]["data"]
        if data.get("incident_key"):
            data["incident_key"] = TARGET_KEY
        docs[p.name] = doc
    return docs


WEBHOOK_DOCS = _webhook_docs()
WEBHOOK_TEXTS = {n: json.dumps(d) for n, d in WEBHOOK_DOCS.items()}
EB_EVENT = load_fixture("pagerduty/eventbridge_incident_acknowledged.json")
EB_EVENT["detail"]["incident"]["incident_key"] = TARGET_KEY


def _keys(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        out.update(node)
        for v in node.values():
            _keys(v, out)
    elif isinstance(node, list):
        for v in node:
            _keys(v, out)
    return out


# Object keys are often real field names, so that arbitrary values land where the code looks.
KEYS = sorted(_keys([*FIXTURE_DOCS.values(), *WEBHOOK_DOCS.values(), EB_EVENT], set()))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=24))
json_values = st.recursive(
    json_scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), kids, max_size=5),
    ),
    max_leaves=16,
)
ODD_VALUES = st.sampled_from(
    [None, True, False, 0, -1, 1.5, 2**63, -(2**63), "", " ", "\x00", "null", "[]", [], {}, [None], {"": None}]
)
EXTREME_NUMBERS = st.sampled_from(
    [10**400, -(10**400), float("inf"), float("-inf"), float("nan"), 1e308, -1e308, 5e-324, 10**20, -(10**20)]
)
_BY_TYPE: dict[type, st.SearchStrategy[Any]] = {
    type(None): st.none(),
    bool: st.booleans(),
    int: st.integers(),
    float: st.floats(),
    str: st.text(max_size=24),
    list: st.lists(json_values, max_size=4),
    dict: st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4),
}


def other_type_than(value: Any) -> st.SearchStrategy[Any]:
    return st.one_of([s for t, s in _BY_TYPE.items() if t is not type(value)])


LONE_SURROGATES = st.sampled_from(["\ud800", "id-\udfff", "\udc80"])
MUTATIONS = (
    "delete",
    "wrong_type",
    "odd_value",
    "truncate",
    "huge_string",
    "huge_list",
    "extreme_number",
    "lone_surrogate",
    "epoch_only",
)
# Half of the mutations land on a field the normalizer or the webhook parsers read (the rest anywhere).
FOCUS_FIELDS = frozenset(
    {
        *("detail-type", "source", "detail", "findings", "Findings", "region", "actionName"),
        *("Id", "ProductArn", "ProductName", "CompanyName", "AwsAccountId", "Title", "Description", "GeneratorId"),
        *("Types", "Region", "Severity", "Label", "Normalized", "Resources", "Type", "Tags", "Vulnerabilities"),
        *("Cvss", "BaseScore", "ProductFields", "Compliance", "Status", "SecurityControlId", "Workflow"),
        *("WorkflowState", "RecordState", "Remediation", "Recommendation", "Text", "Url", "Note", "SourceUrl"),
        *("FirstObservedAt", "LastObservedAt", "UpdatedAt", "SchemaVersion"),
        *("finding_info", "uid", "uid_alt", "title", "desc", "types", "analytic", "name", "src_url", "metadata"),
        *("first_seen_time", "last_seen_time", "modified_time", "time", "product", "vendor_name", "cloud"),
        *("account", "severity_id", "severity", "status_id", "activity_id", "compliance", "control", "status"),
        *("remediation", "references", "resources", "tags", "type", "vulnerabilities", "cve", "cvss", "base_score"),
        *("comment", "class_uid"),
        *("event", "event_type", "resource_type", "data", "id", "incident_key", "agent", "summary", "number"),
        *("html_url", "occurred_at", "incident", "alerts", "alert_key", "log_entries", "incident_number"),
        *("created_on", "created_at"),
    }
)
EPOCHS = st.one_of(EXTREME_NUMBERS, st.integers(), st.floats(), st.text(max_size=12))
Path_ = tuple[str | int, ...]


def _paths(node: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _get(doc: Any, path: Path_) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _put(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def _mutate(draw: Callable[[Any], Any], doc: Any, path: Path_, op: str) -> Any:
    value = _get(doc, path)
    if op == "delete":
        if not path:
            return None
        del _get(doc, path[:-1])[path[-1]]
        return doc
    if op == "wrong_type":
        new = draw(other_type_than(value))
    elif op == "truncate" and isinstance(value, str | list) and value:
        new = value[: draw(st.integers(0, len(value) - 1))]
    elif op == "truncate" and isinstance(value, dict) and value:
        new = dict(list(value.items())[: draw(st.integers(0, len(value) - 1))])
    elif op == "huge_string":
        new = draw(st.sampled_from(["A", "é", "0", " "])) * draw(st.integers(10_000, 120_000))
    elif op == "huge_list":
        items = value if isinstance(value, list) and value else [value]
        unit = len(json.dumps(items, default=str)) // len(items) + 1
        n = min(draw(st.integers(1_000, 20_000)), max(len(items), 200_000 // unit))
        new = [items[i % len(items)] for i in range(n)]
    elif op == "extreme_number":
        new = draw(EXTREME_NUMBERS)
    elif op == "lone_surrogate":
        new = draw(LONE_SURROGATES)
    elif op == "epoch_only" and _has_dt_pair(value):
        # OCSF gives times twice (epoch ms and `_dt`); a producer may send only the epoch, and any number.
        key = draw(st.sampled_from(sorted(k for k in value if f"{k}_dt" in value)))
        del value[f"{key}_dt"]
        value[key] = draw(EPOCHS)
        return doc
    else:
        new = draw(ODD_VALUES)
    return _put(doc, path, new)


@st.composite
def mutated(draw: Callable[[Any], Any], docs: dict[str, Any], max_mutations: int = 3) -> Any:
    """A real fixture with 1–3 mutations at random places."""
    doc = copy.deepcopy(docs[draw(st.sampled_from(sorted(docs)))])
    for _ in range(draw(st.integers(1, max_mutations))):
        paths = list(_paths(doc))
        op = draw(st.sampled_from(MUTATIONS))
        if op == "extreme_number":  # numbers are where extreme numbers hurt
            candidates = [p for p in paths if _is_number(_get(doc, p))]
        elif op == "epoch_only":
            candidates = [p for p in paths if _has_dt_pair(_get(doc, p))]
        else:
            candidates = [p for p in paths if p and p[-1] in FOCUS_FIELDS]
        path = draw(st.sampled_from(candidates if candidates and draw(st.booleans()) else paths))
        doc = _mutate(draw, doc, path, op)
    return doc


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _has_dt_pair(value: Any) -> bool:
    return isinstance(value, dict) and any(f"{k}_dt" in value for k in value)


@st.composite
def truncated(draw: Callable[[Any], Any], texts: dict[str, str]) -> str:
    """A fixture's JSON text cut short (never at a line end: a JSON-lines prefix of whole lines is valid)."""
    text = texts[draw(st.sampled_from(sorted(texts)))].rstrip()
    cut = draw(st.integers(0, len(text) - 1))
    if text[cut] == "\n":
        cut -= 1
    return text[:cut]


DETAIL_TYPES = [
    "Security Hub Findings - Imported",
    "Security Hub Findings - Custom Action",
    "Findings Imported V2",
    "Security Hub Insight Results",
]
envelopes = st.fixed_dictionaries(
    {
        "source": st.one_of(st.just("aws.securityhub"), json_scalars),
        "detail-type": st.one_of(st.sampled_from(DETAIL_TYPES), json_values),
        "detail": st.one_of(st.fixed_dictionaries({"findings": st.lists(json_values, max_size=3)}), json_values),
    },
    optional={"region": json_scalars, "actionName": json_scalars},
)
deep_nesting = st.one_of(st.integers(1, 900), st.integers(1_000, 120_000)).map(lambda n: "[" * n + "]" * n)
huge_integer = st.integers(4_301, 20_000).map(lambda n: '{"source": "aws.securityhub", "detail-type": ' + "7" * n + "}")
parser_limits = st.one_of(deep_nesting, huge_integer)


# ---- schema-aware generators: every field the code reads, present or not, plausible or any JSON value at all


def anything(*plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value: mostly a plausible one, otherwise any JSON value, an odd one or an extreme number."""
    return st.one_of(*[st.one_of(*plausible)] * 4, json_values, ODD_VALUES, EXTREME_NUMBERS)


def shaped(required: dict[str, Any], optional: dict[str, Any], *, loose: bool = True) -> st.SearchStrategy[Any]:
    """An object with these fields (each optional one present or not); when loose, now and then not an object."""
    obj = st.fixed_dictionaries(required, optional=optional)
    return st.one_of(*[obj] * 4, json_values) if loose else obj


ids = st.text(min_size=1, max_size=30)
account_ids = st.from_regex(r"[0-9]{12}", fullmatch=True)  # what normalize accepts as an account id
texts = st.text(max_size=30)
numbers = st.one_of(st.integers(), st.floats(), EXTREME_NUMBERS)
stamps = st.sampled_from(
    ["2026-11-21T10:00:00Z", "2026-11-21T10:00:00.000+02:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
)
PRODUCT_FIELD_KEYS = [
    "ControlId",
    "aws/securityhub/ProductName",
    "aws/guardduty/service/additionalInfo/sample",  # GuardDuty's sample flag, flattened
    "aws/guardduty/service/additionalInfo/value",  # the same object as a JSON string
]
PRODUCT_ARNS = [
    "arn:aws:securityhub:eu-central-1::product/aws/guardduty",
    "arn:aws:securityhub:eu-central-1::product/aws/securityhub",
    "arn:aws:securityhub:eu-central-1::product/aws/inspector",
]


def asff_findings(*, loose: bool) -> st.SearchStrategy[Any]:
    """ASFF findings. loose: any field may be wrong; else the required ones are right (normalize accepts them)
    and only the optional ones, and what normalize does not check, hold anything."""

    def req(*plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return anything(*plausible) if loose else st.one_of(*plausible)

    resource = shaped(
        {"Type": req(st.sampled_from(["AwsEc2Instance", "AwsS3Bucket", "AwsAccount"])), "Id": req(ids)},
        {"Region": anything(texts), "Tags": req(st.dictionaries(texts, anything(texts), max_size=3))},
        loose=loose,
    )
    labels = st.sampled_from([s.value for s in Severity])
    score = anything(numbers) if loose else st.one_of(st.integers(-1000, 1000), st.floats())  # floats: inf, nan too
    if loose:
        severity = shaped({}, {"Label": anything(labels), "Normalized": score})
    else:
        severity = shaped({"Label": labels}, {"Normalized": score}, loose=False)
    return shaped(
        {
            "Id": req(ids),
            "ProductArn": req(st.sampled_from(PRODUCT_ARNS)),
            # Accepted: exactly 12 digits (normalize rejects any other account id as malformed).
            "AwsAccountId": req(st.sampled_from(["111122223333", "444455556666"]), ids if loose else account_ids),
            "Title": req(texts.filter(bool)),
            "Severity": req(severity),
            "Resources": req(st.lists(resource, max_size=3)),
        },
        {
            "GeneratorId": anything(st.sampled_from(["security-control/S3.8", "arn:aws:guardduty:generator"])),
            "Types": anything(st.lists(anything(texts), max_size=3)),
            "Region": anything(texts),
            "ProductName": anything(texts),
            "CompanyName": anything(texts),
            "Description": anything(texts),
            "ProductFields": req(st.dictionaries(st.sampled_from(PRODUCT_FIELD_KEYS), texts)),
            # Read only when the top level has no rating / no types, so anything goes even in accepted findings.
            "FindingProviderFields": anything(
                shaped(
                    {},
                    {
                        "Severity": anything(
                            shaped({}, {"Label": anything(labels), "Normalized": score, "Original": anything(texts)})
                        ),
                        "Types": anything(st.lists(anything(texts), max_size=2)),
                    },
                )
            ),
            "Sample": anything(st.booleans()),
            "Compliance": req(
                shaped(
                    {},
                    {"Status": anything(st.sampled_from(["PASSED", "FAILED"])), "SecurityControlId": anything(ids)},
                    loose=loose,
                )
            ),
            "Workflow": req(
                shaped({}, {"Status": anything(st.sampled_from(["NEW", "NOTIFIED", "RESOLVED"]))}, loose=loose)
            ),
            "WorkflowState": anything(texts),
            "RecordState": anything(st.sampled_from(["ACTIVE", "ARCHIVED"])),
            "Vulnerabilities": req(
                st.lists(
                    shaped(
                        {},
                        {
                            "Id": anything(ids),
                            "Cvss": req(st.lists(anything(shaped({}, {"BaseScore": anything(numbers)})), max_size=2)),
                        },
                        loose=loose,
                    ),
                    max_size=2,
                )
            ),
            "Remediation": req(
                shaped(
                    {},
                    {"Recommendation": req(shaped({}, {"Text": anything(texts), "Url": anything(texts)}, loose=loose))},
                    loose=loose,
                )
            ),
            "Note": req(shaped({}, {"Text": anything(texts)}, loose=loose)),
            "FirstObservedAt": anything(stamps),
            "LastObservedAt": anything(stamps),
            "UpdatedAt": anything(stamps),
            "SourceUrl": anything(texts),
        },
        loose=loose,
    )


def ocsf_findings(*, loose: bool) -> st.SearchStrategy[Any]:
    """OCSF findings (new Security Hub), loose or accepted as for `asff_findings`."""

    def req(*plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return anything(*plausible) if loose else st.one_of(*plausible)

    times = ("first_seen_time", "last_seen_time", "modified_time")
    epochs = numbers if loose else st.integers(0, 4_102_444_800_000)  # ms; accepted: within datetime's range
    score = anything(numbers) if loose else st.one_of(st.integers(-1000, 1000), st.floats())
    info = shaped(
        {"uid": req(ids), "title": req(texts.filter(bool))},
        {
            "desc": anything(texts),
            "types": anything(st.lists(anything(texts), max_size=2)),
            "analytic": req(shaped({}, {"uid": anything(ids), "name": anything(texts)}, loose=loose)),
            "src_url": anything(texts),
            **{k: req(epochs) for k in times},  # epoch milliseconds, used when the `_dt` twin is missing
            **{f"{k}_dt": anything(stamps) for k in times},
        },
        loose=loose,
    )
    product = shaped(
        {"uid": req(st.just("arn:aws:securityhub:us-east-1::productv2/aws/guardduty"))},
        {"name": anything(texts), "vendor_name": anything(texts)},
        loose=loose,
    )
    cloud = shaped(
        {"account": req(shaped({"uid": req(st.just("444455556666"), ids if loose else account_ids)}, {}, loose=loose))},
        {"region": anything(texts)},
        loose=loose,
    )
    cvss = anything(shaped({}, {"base_score": score}))
    vulnerability = shaped(
        {},
        {"cve": req(shaped({}, {"uid": anything(ids), "cvss": req(st.lists(cvss, max_size=2))}, loose=loose))},
        loose=loose,
    )
    tags = st.one_of(
        st.lists(anything(shaped({}, {"name": json_values, "value": json_values})), max_size=2),
        st.dictionaries(texts, json_values, max_size=2),
    )
    resource = shaped(
        {"uid": req(ids)},
        {"type": anything(texts), "uid_alt": anything(texts), "region": anything(texts), "tags": anything(tags)},
        loose=loose,
    )
    return shaped(
        {
            "finding_info": req(info),
            "metadata": req(shaped({"product": req(product)}, {"uid": anything(ids)}, loose=loose)),
            "cloud": req(cloud),
            "severity_id": req(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 99])),
        },
        {
            "severity": anything(st.sampled_from(["High", "Critical", "Fatal", "Other"])),
            "status_id": anything(st.integers(0, 6)),
            "activity_id": anything(st.integers(0, 4)),
            "time": req(epochs),
            "compliance": req(
                shaped(
                    {},
                    {
                        "control": anything(ids),
                        "status_id": anything(st.integers(0, 4)),
                        "status": anything(st.sampled_from(["Pass", "Fail"])),
                    },
                    loose=loose,
                )
            ),
            "remediation": req(
                shaped(
                    {},
                    {"desc": anything(texts), "references": anything(st.lists(anything(texts), max_size=2))},
                    loose=loose,
                )
            ),
            "resources": req(st.lists(resource, max_size=3)),
            "resource": req(resource),  # OCSF 1.1/1.2 Compliance and Vulnerability Findings: one resource
            "vulnerabilities": req(st.lists(vulnerability, max_size=2)),
            "comment": anything(texts),
        },
        loose=loose,
    )


def _event_of(detail_type: str, findings: list[Any], region: Any) -> dict[str, Any]:
    return {"source": "aws.securityhub", "detail-type": detail_type, "region": region, "detail": {"findings": findings}}


def shaped_events(*, loose: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(
            _event_of,
            st.sampled_from(DETAIL_TYPES[:2]),
            st.lists(asff_findings(loose=loose), min_size=1, max_size=3),
            anything(st.just("eu-central-1")),
        ),
        st.builds(
            _event_of,
            st.just("Findings Imported V2"),
            st.lists(ocsf_findings(loose=loose), min_size=1, max_size=3),
            anything(texts),
        ),
    )


loose_events = shaped_events(loose=True)  # anything may be wrong, anywhere
accepted_events = shaped_events(loose=False)  # normalize accepts every finding; optional fields hold anything


def webhook_shapes(*, loose: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Webhooks v3 bodies. loose: any field may be wrong; else the fields parse_webhook requires are right."""

    def req(*plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return anything(*plausible) if loose else st.one_of(*plausible)

    data = shaped(
        {"id": req(ids)},
        {
            "incident_key": anything(st.just(TARGET_KEY)),
            "number": anything(st.integers(1, 999)),
            "html_url": anything(texts),
            "status": anything(texts),
            "title": anything(texts),
        },
        loose=loose,
    )
    event = shaped(
        {"event_type": req(st.sampled_from(sorted(ACTED_ON))), "data": req(data)},
        {
            "id": anything(ids),
            "resource_type": anything(st.just("incident")),
            "occurred_at": anything(stamps),
            "agent": anything(shaped({}, {"summary": anything(texts), "id": anything(ids)})),
        },
        loose=loose,
    )
    return st.fixed_dictionaries({"event": req(event)})


def eventbridge_details(*, loose: bool) -> st.SearchStrategy[Any]:
    """`detail` of PagerDuty's V2 messages on the partner bus, loose or with parse_eventbridge_v2's needs met."""

    def req(*plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return anything(*plausible) if loose else st.one_of(*plausible)

    alert = shaped({}, {"alert_key": anything(st.just(TARGET_KEY))})
    incident = shaped(
        {"id": req(ids)},
        {
            "incident_key": anything(st.just(TARGET_KEY)),
            "incident_number": anything(st.integers(1, 999)),
            "alerts": anything(st.lists(alert, max_size=2)),
            "html_url": anything(texts),
            "status": anything(texts),
            "title": anything(texts),
        },
        loose=loose,
    )
    entry = shaped(
        {},
        {
            "agent": anything(shaped({"type": st.just("user_reference")}, {"summary": anything(texts)})),
            "created_at": anything(stamps),
        },
    )
    return shaped(
        {"event": req(st.sampled_from(sorted(V2_EVENT_TYPES))), "incident": req(incident)},
        {"id": anything(ids), "created_on": anything(stamps), "log_entries": anything(st.lists(entry, max_size=2))},
        loose=loose,
    )


webhooks = st.one_of(webhook_shapes(loose=True), webhook_shapes(loose=False))
eventbridge_v2_details = st.one_of(eventbridge_details(loose=True), eventbridge_details(loose=False))
# What the ack receiver's EventBridge path is given: shaped details, mutations of the real one, any JSON value.
eventbridge_v2_inputs = st.one_of(eventbridge_v2_details, mutated({"eventbridge": EB_EVENT["detail"]}), json_values)


def dumps(value: Any) -> str:
    return json.dumps(value)  # ASCII, with NaN/Infinity tokens: what json.loads on the other side accepts


# SQS bodies: mostly mutated real events, then truncated ones, garbage text, arbitrary JSON and parser limits.
_common_bad_bodies = st.one_of(
    *[mutated(EVENT_DOCS).map(dumps)] * 4,
    *[loose_events.map(dumps)] * 2,
    accepted_events.map(dumps),
    *[truncated(EVENT_TEXTS)] * 2,
    envelopes.map(dumps),
    json_values.map(dumps),
    st.text(max_size=200),
)
# Parser limits are known to crash the whole batch (json-limits): about one body in 25, so that most examples check
# the rest. (A mid-range pick: hypothesis favours the bounds of an integer range.)
bad_bodies = st.integers(0, 24).flatmap(lambda i: parser_limits if i == 12 else _common_bad_bodies)


def _jsonl(values: list[Any]) -> str:
    return "".join(json.dumps(v) + "\n" for v in values)


# ------------------------------------------------------------------------------------------- shared checks


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, "a secret appears in the log output"


_neighbour_ids = itertools.count()


def neighbour(kind: str) -> tuple[str, str]:
    """A valid event that pages in prod, with a finding id no other example uses: (SQS body, finding id)."""
    n = next(_neighbour_ids)
    if kind == "asff":
        finding = asff(
            id=f"arn:aws:guardduty:eu-central-1:111122223333:detector/d1/finding/neighbour-{n}", severity="CRITICAL"
        )
        return json.dumps(event(finding)), finding["Id"]
    doc = copy.deepcopy(EVENT_DOCS["ocsf_guardduty_detection.json"])
    uid = f"arn:aws:guardduty:us-east-1:444455556666:detector/d2/finding/neighbour-{n}"
    doc["detail"]["findings"][0]["finding_info"]["uid"] = uid
    return json.dumps(doc), uid


def pages_for(local: Any, finding_id: str) -> int:
    return sum(
        1
        for e in local.receiver.accepted
        if e.get("event_action") == "trigger"
        and e.get("payload", {}).get("custom_details", {}).get("finding_id") == finding_id
    )


def fresh_stack(local: Any) -> None:
    """Each example starts clean: no dedup state, storm counters or incidents; no pacing (the runtime is built unpaced)."""
    local.receiver.reset()
    for item in local.dynamodb.scan(TableName=TABLE, ProjectionExpression="pk")["Items"]:
        local.dynamodb.delete_item(TableName=TABLE, Key={"pk": item["pk"]})


def failure_causes() -> dict[str, BaseException]:
    """message id → the exception the batch processor caught for it (in the last invocation)."""
    proc = router_handler.processor
    causes = {}
    for record, info in zip(getattr(proc, "fail_messages", []), getattr(proc, "exceptions", []), strict=False):
        mid = getattr(record, "message_id", None) or (record.get("messageId") if isinstance(record, dict) else None)
        if mid and info and info[1] is not None:
            causes[mid] = info[1]
    return causes


def check_failures(batch: dict[str, Any], response: dict[str, Any], captured: Captured) -> set[str]:
    """Every failed record has an ERROR line naming why; no ERROR line for a record that did not fail."""
    bodies = {r["messageId"]: r["body"] for r in batch["Records"]}
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed <= set(bodies)
    errors: dict[str, list[dict[str, Any]]] = {}
    for line in captured.errors():
        errors.setdefault(line.get("message_id", ""), []).append(line)
    parked = {
        mid
        for mid, lines in errors.items()
        if mid not in failed and all("dead-lettered at once" in line["message"] for line in lines)
    }
    for mid in parked:  # a permanent delivery error: in the DLQ already, so not reported failed
        assert all(line["reason"] == "permanent delivery error" and line["error"] for line in errors[mid])
    assert set(errors) - parked <= failed, "an ERROR line for a record that was not reported failed"
    causes = failure_causes()
    for mid in failed:
        if mid in errors:
            for line in errors[mid]:
                assert isinstance(line.get("reason"), str) and line["reason"], line
                assert isinstance(line.get("error"), str) and line["error"], line
            continue
        cause = causes.get(mid)
        bug = known_bug(cause, bodies[mid])
        assert bug is not None, f"record failed with no ERROR log line: {cause!r}; body starts {bodies[mid][:300]!r}"
        note(f"known bug: {bug}")
    if "--- Logging error ---" in captured.text:  # a log line was lost
        assert any(has_lone_surrogate(b) for b in bodies.values()) and not STRICT, captured.text[-2000:]
        note("known bug: lone-surrogate (log line lost)")
    return failed


def invoke_router(batch: dict[str, Any]) -> dict[str, Any]:
    return router_handler.lambda_handler(batch, FakeLambdaContext())


# ============================================================================= the pure normalizer


def _normalize_only_finding_error(fn: Callable[[Any], Any], value: Any) -> None:
    try:
        result = fn(value)
    except FindingError as exc:
        assert str(exc)
        return
    except Exception as exc:
        tolerate(exc, value)
        return
    for finding in result.findings:
        assert isinstance(finding, Finding)
        assert isinstance(finding.id, str) and finding.id
        assert isinstance(finding.severity, Severity)
    for error in result.errors:
        assert isinstance(error, FindingError) and str(error)


@PURE
@given(value=json_values)
def test_normalizers_raise_only_finding_error_on_arbitrary_json(value):
    _normalize_only_finding_error(normalize_event, value)
    _normalize_only_finding_error(normalize_document, value)


@PURE
@given(envelope=envelopes)
def test_normalize_event_raises_only_finding_error_on_envelopes_of_arbitrary_findings(envelope):
    _normalize_only_finding_error(normalize_event, envelope)


@PURE
@given(doc=mutated(FIXTURE_DOCS))
def test_normalizers_raise_only_finding_error_on_mutated_fixtures(doc):
    _normalize_only_finding_error(normalize_document, doc)
    if isinstance(doc, dict) and "detail-type" in doc:
        _normalize_only_finding_error(normalize_event, doc)


@PURE
@given(doc=loose_events)
def test_normalize_event_raises_only_finding_error_on_findings_with_any_field_values(doc):
    _normalize_only_finding_error(normalize_event, doc)
    _normalize_only_finding_error(normalize_document, doc["detail"]["findings"])


@PURE
@given(doc=st.lists(st.one_of(mutated(FIXTURE_DOCS), json_values), min_size=2, max_size=4))
def test_normalize_document_raises_only_finding_error_on_lists_of_documents(doc):
    _normalize_only_finding_error(normalize_document, doc)


# ======================================================================= policy and dedup decisions

POLICIES = {env: load_policy(policy_path(CONFIG_DIR, env)) for env in ("dev", "stg", "prod")}
COMPILED = {env: CompiledPolicy(p) for env, p in POLICIES.items()}


def _accepted(doc: Any) -> list[Finding]:
    try:
        return normalize_document(doc).findings
    except Exception as exc:  # the normalizer's own properties are above
        if isinstance(exc, FindingError) or known_bug(exc, doc):
            return []
        raise


@PURE
@given(doc=st.one_of(accepted_events, mutated(FIXTURE_DOCS)))
def test_policy_and_dedup_never_crash_on_a_finding_normalize_accepted(doc):
    findings = _accepted(doc)
    note(f"{min(len(findings), 3)} accepted finding(s)")
    for finding in findings:
        try:
            for compiled in COMPILED.values():
                decision = compiled.evaluate(finding, NOW)
                assert decision.action in ("page", "notify", "drop")
            assert dedup_key(finding, True).startswith("fr1-")
            assert dedup_key(finding, False).startswith("fr1-")
            assert dedup_key(finding, True, "cve_account").startswith("fr1-")
            assert dedup_key(finding, True, "cve_resource").startswith("fr1-")
            replay = Replayer(POLICIES["prod"], now=NOW)
            # Every branch of the decision: new, duplicate, escalated, resolved, reopened, and after the TTL.
            steps = [
                (finding, NOW),
                (finding, NOW),
                (dataclasses.replace(finding, severity=Severity.CRITICAL), NOW),
                (dataclasses.replace(finding, record_state="ARCHIVED"), NOW),
                (finding, NOW),
                (finding, NOW + dt.timedelta(days=90)),
            ]
            for step, now in steps:
                routed = replay.router.route(step, now)
                assert routed.decision.outcome in ("page", "notify", "drop", "resolve", "duplicate")
        except Exception as exc:
            tolerate(exc, doc)


@PURE
@given(doc=st.one_of(accepted_events, mutated(FIXTURE_DOCS)))
def test_the_pagerduty_body_for_an_accepted_finding_is_strict_json(doc):
    """requests serialises with allow_nan=False: inf/NaN anywhere in the body is an exception at send time."""
    for finding in _accepted(doc):
        replay = Replayer(POLICIES["prod"], now=NOW)
        try:
            replay.router.route(dataclasses.replace(finding, severity=Severity.CRITICAL), NOW)
        except Exception as exc:
            tolerate(exc, doc)
            continue
        for body in replay.notifier.events:
            try:
                json.dumps(body, allow_nan=False)
            except ValueError as exc:
                assert finding.max_cvss is not None and not STRICT, exc
                note("known bug: non-finite-number")


# ==================================================================== the router Lambda, end to end


@STACK
@given(
    bad=st.lists(bad_bodies, min_size=1, max_size=4),
    good=st.lists(st.sampled_from(["asff", "ocsf"]), min_size=1, max_size=2),
    data=st.data(),
)
def test_bad_records_fail_alone_and_valid_neighbours_page_once(local, logs, bad, good, data):
    fresh_stack(local)
    logs()
    neighbours = [neighbour(kind) for kind in good]
    bodies = data.draw(st.permutations([*bad, *(body for body, _ in neighbours)]), label="batch order")
    batch = sqs_event(*bodies)
    try:
        response = invoke_router(batch)
    except Exception as exc:
        assert_no_secrets(logs().text)
        tolerate(exc, "\n".join(bodies))
        return
    captured = logs()
    assert_no_secrets(captured.text)
    failed = check_failures(batch, response, captured)
    good_ids = {r["messageId"] for r in batch["Records"] if r["body"] in {b for b, _ in neighbours}}
    assert not good_ids & failed, "a valid neighbour was failed"
    for _, finding_id in neighbours:
        assert pages_for(local, finding_id) == 1, f"neighbour {finding_id} paged {pages_for(local, finding_id)}x"
    note(f"{len(failed)} of {len(bad)} bad record(s) failed")


FAULTS = st.sampled_from(
    [
        Fault(status=400),
        Fault(status=403),
        Fault(status=404),
        Fault(status=413),
        Fault(status=429, retry_after="0"),
        Fault(status=500),
        Fault(status=502),
        Fault(status=503),
        Fault(status=502, close=True),
    ]
)


@settings(STACK, max_examples=12)
@given(
    bad=st.lists(bad_bodies, max_size=2),
    good=st.lists(st.sampled_from(["asff", "ocsf"]), min_size=1, max_size=3),
    faults=st.lists(FAULTS, min_size=1, max_size=8),
)
def test_no_secret_in_any_log_output_when_pagerduty_fails(local, logs, bad, good, faults):
    fresh_stack(local)
    logs()
    local.receiver.fail_next(*faults)
    batch = sqs_event(*bad, *(body for body, _ in (neighbour(kind) for kind in good)))
    try:
        response = invoke_router(batch)
    except Exception as exc:
        assert_no_secrets(logs().text)
        tolerate(exc, "\n".join(r["body"] for r in batch["Records"]))
        return
    captured = logs()
    assert_no_secrets(captured.text)
    check_failures(batch, response, captured)
    note(f"{len(captured.errors())} ERROR line(s)")


# ======================================================================================= the ack receiver


@pytest.fixture
def paged_target(local):
    """An open episode for TARGET_FINDING, for the webhooks to aim at."""
    fresh_stack(local)
    assert invoke_router(sqs_event(event(TARGET_FINDING))) == {"batchItemFailures": []}
    return TARGET_KEY


def state_snapshot(local: Any) -> tuple[list[str], int]:
    items = local.dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return sorted(json.dumps(i, sort_keys=True) for i in items), len(local.securityhub.updates)


def call_webhook(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    request = function_url_event("POST", ack_handler.WEBHOOK_PATH, headers, body, "203.0.113.7")
    return ack_handler.function_url_handler(request, FakeLambdaContext())


def validly_signed(body: bytes, headers: dict[str, str]) -> bool:
    """The oracle: some comma-separated part of the (case-insensitive) signature header is v1=<HMAC of the body>."""
    header = {k.lower(): v for k, v in headers.items()}.get("x-pagerduty-signature") or ""
    expected = "v1=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return any(part.strip() == expected for part in header.split(","))


webhook_bodies = st.one_of(
    st.sampled_from(sorted(WEBHOOK_TEXTS.values())).map(str.encode),  # intact: only the signature decides
    *[webhooks.map(lambda d: dumps(d).encode())] * 2,
    *[mutated(WEBHOOK_DOCS).map(lambda d: dumps(d).encode())] * 3,
    truncated(WEBHOOK_TEXTS).map(str.encode),
    json_values.map(lambda v: dumps(v).encode()),
    st.text(max_size=300).map(str.encode),
    st.integers(1, 5_000).map(lambda n: b'{"event": "' + b"x" * (MAX_BODY_BYTES + n) + b'"}'),
    parser_limits.map(str.encode),
    st.binary(max_size=300),
)
header_names = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=24)
SIGNATURE_KINDS = ("valid", "none", "other-secret", "valid-in-list", "empty", "text", "v1-hex", "other-body", "v1-text")


@st.composite
def webhook_requests(draw: Callable[[Any], Any]) -> tuple[bytes, dict[str, str]]:
    body = draw(webhook_bodies)
    headers = draw(st.dictionaries(header_names, st.text(max_size=40), max_size=4))
    kind = draw(st.sampled_from(SIGNATURE_KINDS))
    hexes = st.text(alphabet="0123456789abcdef", min_size=0, max_size=64)
    signature = {
        "none": None,
        "empty": "",
        "text": draw(st.text(max_size=80)),
        "v1-text": "v1=" + draw(st.text(max_size=64)),
        "v1-hex": "v1=" + draw(hexes),
        "other-secret": sign(body, b"not-the-secret"),
        "other-body": sign(body + b" ", WEBHOOK_SECRET.encode()),
        "valid": sign(body, WEBHOOK_SECRET.encode()),
        "valid-in-list": f"v0=abc, v1={draw(hexes)} ,{sign(body, WEBHOOK_SECRET.encode())}",
    }[kind]
    if signature is not None:
        headers[draw(st.sampled_from(["X-PagerDuty-Signature", "x-pagerduty-signature"]))] = signature
    if draw(st.booleans()):
        headers["X-Webhook-Id"] = draw(st.text(max_size=30))
    return body, headers


@settings(STACK, max_examples=25)
@given(req=webhook_requests())
def test_webhook_receiver_answers_4xx_and_changes_nothing_without_a_valid_signature(local, logs, paged_target, req):
    body, headers = req
    logs()
    before = state_snapshot(local)
    try:
        response = call_webhook(body, headers)
    except Exception as exc:
        assert_no_secrets(logs().text)
        assert state_snapshot(local) == before
        tolerate(exc, body.decode("utf-8", "replace"))
        return
    status = response["statusCode"]
    assert_no_secrets(logs().text + json.dumps(response))
    if len(body) > MAX_BODY_BYTES:
        assert status == 413
    elif not validly_signed(body, headers):
        assert status == 401
    else:
        assert status in (200, 400)
    if status != 200:
        assert state_snapshot(local) == before, f"state changed on a {status}"
    note(f"HTTP {status}")


@settings(STACK, max_examples=15)
@given(
    detail=eventbridge_v2_inputs,
    event_id=st.text(max_size=20),
)
def test_eventbridge_ack_path_never_crashes(local, logs, paged_target, detail, event_id):
    logs()
    incoming = {**EB_EVENT, "id": event_id, "detail": detail}
    try:
        result = ack_handler.eventbridge_handler(incoming, FakeLambdaContext())
    except Exception as exc:
        assert_no_secrets(logs().text)
        tolerate(exc, detail)
        return
    assert_no_secrets(logs().text)
    assert isinstance(result, dict) and result.get("outcome")
    note(f"outcome {result['outcome']}")


@PURE
@given(
    body=st.one_of(webhooks, mutated(WEBHOOK_DOCS), json_values),
    header_id=st.one_of(st.none(), st.text(max_size=20)),
)
def test_parse_webhook_raises_only_webhook_error(body, header_id):
    try:
        parsed = parse_webhook(body, header_id)
    except WebhookError as exc:
        assert str(exc)
        return
    except Exception as exc:
        tolerate(exc, body)
        return
    assert isinstance(parsed, IncidentEvent)
    assert isinstance(parsed.webhook_id, str) and isinstance(parsed.incident_id, str) and parsed.incident_id
    assert parsed.dedup_key is None or parsed.dedup_key.startswith("fr1-")
    dataclasses.asdict(parsed)  # what the idempotency layer hashes


@settings(PURE, max_examples=300)
@given(
    detail=eventbridge_v2_inputs,
    event_id=st.text(max_size=20),
)
def test_parse_eventbridge_v2_raises_only_webhook_error(detail, event_id):
    try:
        parsed = parse_eventbridge_v2(detail, event_id)
    except WebhookError as exc:
        assert str(exc)
        return
    except Exception as exc:
        tolerate(exc, detail)
        return
    assert isinstance(parsed, IncidentEvent) and parsed.incident_id
    assert all(isinstance(k, str) for k in parsed.alert_keys)
    dataclasses.asdict(parsed)


@PURE
@given(
    body=st.binary(max_size=200),
    header=st.one_of(st.none(), st.text(max_size=120), st.text(alphabet="v1=,0123456789abcdef ", max_size=200)),
    secrets=st.lists(st.binary(min_size=1, max_size=40), max_size=3),
)
def test_signature_check_is_total_and_accepts_only_the_right_hmac(body, header, secrets):
    try:
        ok = verify_signature(body, header, secrets)
    except Exception as exc:
        tolerate(exc)
        return
    expected = {"v1=" + hmac.new(s, body, hashlib.sha256).hexdigest() for s in secrets}
    assert ok is any(part.strip() in expected for part in (header or "").split(","))
    for secret in secrets:
        assert verify_signature(body, f"v0=x, {sign(body, secret)}", [b"other", secret])


# =========================================================================================== replay

REPLAY_TEXTS = {
    **FIXTURE_TEXTS,
    "events.jsonl": _jsonl([EVENT_DOCS[n] for n in sorted(EVENT_DOCS)[:4]]),
}


def run_replay(path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli_main(["replay", "--env", "prod", "--config-dir", str(CONFIG_DIR), "--format", fmt, str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_problems_name_the_file(err: str, path: Path) -> None:
    # The summary line (`N findings: …`) goes to stderr too with json output: it is not a problem line.
    lines = [line for line in err.splitlines() if line.strip() and not re.match(r"^\d+ findings: ", line)]
    assert lines, "exit 2 without a message"
    for line in lines:
        assert line.startswith(f"error: {path}"), line
    assert "Traceback" not in err


def parses_as_json_or_json_lines(data: bytes) -> bool:
    """Clean input by json's standards (nesting beyond json's own limit counts as clean: either answer is fine)."""
    try:
        text = data.decode("utf-8")
        json.loads(text)
    except UnicodeDecodeError:
        return False
    except RecursionError:
        return True
    except ValueError:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) <= 1:
            return False
        try:
            for line in lines:
                json.loads(line)
        except RecursionError:
            return True
        except ValueError:
            return False
    return True


@REPLAY
@given(text=truncated(REPLAY_TEXTS), fmt=st.sampled_from(["table", "json"]))
def test_replay_of_a_truncated_file_exits_2_naming_the_file(tmp_path, capsys, text, fmt):
    path = tmp_path / "truncated.json"
    path.write_text(text, encoding="utf-8")
    try:
        code, _, err = run_replay(path, fmt, capsys)
        err = re.sub(r"(?m)^\d+ findings: .*\n", "", err)  # the summary line (stderr with json output)
    except Exception as exc:
        capsys.readouterr()
        tolerate(exc, text)
        return
    assert code == 2
    assert_problems_name_the_file(err, path)


garbage_files = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(str.encode),
    json_values.map(lambda v: dumps(v).encode()),
    mutated(FIXTURE_DOCS).map(lambda d: dumps(d).encode()),
    loose_events.map(lambda d: dumps(d).encode()),
    accepted_events.map(lambda d: dumps(d).encode()),
    st.lists(asff_findings(loose=False), min_size=1, max_size=3).map(lambda fs: dumps(fs).encode()),
    st.lists(st.one_of(mutated(EVENT_DOCS), accepted_events, json_values), min_size=2, max_size=4).map(
        lambda vs: _jsonl(vs).encode()
    ),
    parser_limits.map(str.encode),
)


@REPLAY
@given(data=garbage_files, fmt=st.sampled_from(["table", "json"]))
def test_replay_of_a_garbage_file_exits_2_naming_the_file(tmp_path, capsys, data, fmt):
    path = tmp_path / "garbage.json"
    path.write_bytes(data)
    try:
        code, _, err = run_replay(path, fmt, capsys)
        err = re.sub(r"(?m)^\d+ findings: .*\n", "", err)  # the summary line (stderr with json output)
    except Exception as exc:
        capsys.readouterr()
        tolerate(exc, data.decode("utf-8", "replace"))
        return
    assert code in (0, 2)
    if code == 2:
        assert_problems_name_the_file(err, path)
    else:
        assert not err.strip()
        assert parses_as_json_or_json_lines(data), "garbage replayed as if it were clean"
    note(f"exit {code}")


# ============================================================ reproducers of the bugs found (now regression tests)


def _bug(bug_id: str, raises: type[BaseException] | tuple[type[BaseException], ...]) -> pytest.MarkDecorator:
    """Marks the reproducer of a fixed bug; `raises` is what it raised before the fix."""
    assert bug_id in KNOWN_BUGS and raises
    return pytest.mark.regression(bug_id)


def _ocsf_event_with_first_seen(epoch: Any) -> dict[str, Any]:
    doc = copy.deepcopy(EVENT_DOCS["ocsf_guardduty_detection.json"])
    info = doc["detail"]["findings"][0]["finding_info"]
    del info["first_seen_time_dt"]
    info["first_seen_time"] = epoch
    return doc


def _normalizes_or_raises_finding_error(doc: Any) -> None:
    with contextlib.suppress(FindingError):
        normalize_event(doc)


@_bug("detail-type-unhashable", TypeError)
@pytest.mark.parametrize("detail_type", [["Security Hub Findings - Imported"], {"name": "x"}])
def test_bug_a_list_or_object_detail_type_is_a_finding_error(detail_type):
    _normalizes_or_raises_finding_error({"source": "aws.securityhub", "detail-type": detail_type, "detail": {}})


@_bug("number-overflow", OverflowError)
@pytest.mark.parametrize(
    "finding",
    [
        asff(Severity={"Label": "HIGH", "Normalized": 10**400}),
        asff(Vulnerabilities=[{"Id": "CVE-2021-44228", "Cvss": [{"BaseScore": 10**400}]}]),
    ],
    ids=["Severity.Normalized", "Cvss.BaseScore"],
)
def test_bug_an_integer_beyond_float_range_is_a_finding_error(finding):
    _normalizes_or_raises_finding_error(json.loads(json.dumps(event(finding))))


@_bug("ocsf-epoch-range", (ValueError, OverflowError, OSError))
@pytest.mark.parametrize("epoch", [1e20, -1e20, 10**30, float("nan"), float("inf")])
def test_bug_an_ocsf_epoch_outside_datetime_range_is_a_finding_error(epoch):
    _normalizes_or_raises_finding_error(_ocsf_event_with_first_seen(epoch))


@_bug("lone-surrogate", UnicodeEncodeError)
def test_bug_a_lone_surrogate_in_a_finding_id_does_not_crash_the_dedup_key():
    doc = json.loads(json.dumps(event(asff(id="finding-\ud800"))))  # the JSON text holds the escape \\ud800
    for finding in normalize_event(doc).findings:  # accepted today: then the key must work
        dedup_key(finding)


@_bug("non-finite-number", ValueError)
def test_bug_a_cvss_of_1e400_still_gives_a_strict_json_pagerduty_body():
    text = json.dumps(
        event(asff(severity="CRITICAL", Vulnerabilities=[{"Id": "CVE-1", "Cvss": [{"BaseScore": 9.75}]}]))
    )
    [finding] = normalize_event(json.loads(text.replace("9.75", "1e400"))).findings
    replay = Replayer(POLICIES["prod"], now=NOW)
    replay.router.route(finding, NOW)  # CRITICAL: pages in prod
    assert replay.notifier.events
    for body in replay.notifier.events:
        json.dumps(body, allow_nan=False)  # what requests does before sending


@_bug("signature-non-ascii", TypeError)
def test_bug_a_non_ascii_signature_header_is_just_invalid():
    assert verify_signature(b"{}", "v1=\u00e9", [WEBHOOK_SECRET.encode()]) is False


@_bug("eventbridge-alerts-not-iterable", TypeError)
@pytest.mark.parametrize("alerts", [1, True, 2.5])
def test_bug_a_non_list_alerts_field_is_ignored_or_a_webhook_error(alerts):
    detail = {"event": "incident.acknowledge", "incident": {"id": "PABC123", "alerts": alerts}}
    with contextlib.suppress(WebhookError):
        parse_eventbridge_v2(detail, "evt-1")


# --- replay


def _replay_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    """The replay property for one file: no traceback; exit 0, or 2 with errors naming the file."""
    path = tmp_path / "input.json"
    path.write_text(text, encoding="utf-8")
    code, _, err = run_replay(path, "json", capsys)
    assert code in (0, 2)
    if code == 2:
        assert_problems_name_the_file(err, path)


@_bug("json-limits", RecursionError)
def test_bug_replay_of_a_deeply_nested_file_does_not_crash(tmp_path, capsys):
    _replay_file(tmp_path, capsys, "[" * 100_000 + "]" * 100_000)


@_bug("number-overflow", OverflowError)
def test_bug_replay_of_a_finding_with_an_overflowing_number_does_not_crash(tmp_path, capsys):
    _replay_file(tmp_path, capsys, json.dumps(asff(Severity={"Label": "HIGH", "Normalized": 10**400})))


@_bug("lone-surrogate", UnicodeEncodeError)
def test_bug_replay_of_a_finding_id_with_a_lone_surrogate_does_not_crash(tmp_path, capsys):
    _replay_file(tmp_path, capsys, json.dumps(asff(id="finding-\ud800")))


@_bug("replay-timeline-overflow", OverflowError)
@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_bug_replay_of_a_finding_updated_at_the_edge_of_time_does_not_crash(tmp_path, capsys, stamp):
    path = tmp_path / "input.json"
    path.write_text(json.dumps(asff(UpdatedAt=stamp)))
    code, _, err = run_replay(path, "json", capsys)
    assert code in (0, 2), err


# --- the router Lambda: one bad record takes the whole batch down


def _route_between_neighbours(local: Any, logs: Callable[[], Captured], bad_body: str) -> None:
    """The property for one bad record: no crash; if it fails, an ERROR line says why; its neighbours page once."""
    fresh_stack(local)
    logs()
    (first, first_id), (last, last_id) = neighbour("asff"), neighbour("ocsf")
    batch = sqs_event(first, bad_body, last)
    response = invoke_router(batch)
    captured = logs()
    bad_id = batch["Records"][1]["messageId"]
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} <= {bad_id}
    if response["batchItemFailures"]:
        [line] = [line for line in captured.errors() if line["message_id"] == bad_id]
        assert line["reason"] and line["error"]
    assert "--- Logging error ---" not in captured.text
    assert pages_for(local, first_id) == 1
    assert pages_for(local, last_id) == 1
    assert_no_secrets(captured.text)


def _asff_body(**fields: Any) -> str:
    return json.dumps(event(asff(severity="CRITICAL", **fields)))


BATCH_CRASHES = [
    pytest.param(
        json.dumps({**event(asff()), "detail-type": ["Security Hub Findings - Imported"]}),
        marks=_bug("detail-type-unhashable", TypeError),
        id="detail-type-is-a-list",
    ),
    pytest.param(
        _asff_body(Severity={"Label": "HIGH", "Normalized": 10**400}),
        marks=_bug("number-overflow", OverflowError),
        id="normalized-10e400",
    ),
    pytest.param(
        json.dumps(_ocsf_event_with_first_seen(1e20)),
        marks=_bug("ocsf-epoch-range", (ValueError, OverflowError, OSError)),
        id="ocsf-epoch-1e20",
    ),
    pytest.param(
        '{"source": "aws.securityhub", "detail-type": ' + "1" * 5000 + "}",
        marks=_bug("json-limits", ValueError),
        id="integer-of-5000-digits",
    ),
    pytest.param("[" * 100_000 + "]" * 100_000, marks=_bug("json-limits", RecursionError), id="nested-100000-deep"),
    pytest.param(
        _asff_body(id="arn:aws:guardduty:eu-central-1:111122223333:detector/d1/finding/\ud800"),
        marks=_bug("lone-surrogate", UnicodeEncodeError),
        id="lone-surrogate-in-id",
    ),
]


@pytest.mark.parametrize("bad_body", BATCH_CRASHES)
def test_bug_one_bad_record_crashes_the_whole_batch(local, logs, bad_body):
    _route_between_neighbours(local, logs, bad_body)


# Records that failed with no ERROR line before abde6d1 ("unexpected errors logged per message"); regression tests.
# Whether such a record pages or is dead-lettered depends on the fixes for non-finite-number and lone-surrogate;
# either way it must not fail silently.
NEVER_SILENT = [
    pytest.param(
        _asff_body(Vulnerabilities=[{"Id": "CVE-1", "Cvss": [{"BaseScore": 9.75}]}]).replace("9.75", "1e400"),
        id="cvss-1e400",
    ),
    pytest.param(_asff_body(Title="SSH brute force \ud800"), id="lone-surrogate-in-title"),
]


@pytest.mark.parametrize("bad_body", NEVER_SILENT)
def test_a_record_never_fails_without_an_error_log_line(local, logs, bad_body):
    fresh_stack(local)
    logs()
    batch = sqs_event(bad_body)
    response = invoke_router(batch)
    captured = logs()
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    logged = {line["message_id"] for line in captured.errors() if line.get("reason") and line.get("error")}
    assert failed <= logged
    assert "--- Logging error ---" not in captured.text
    assert_no_secrets(captured.text)


# --- the ack receiver: unauthenticated requests that crash it


ACK_CRASHES = [
    pytest.param(
        b"\xff\xfe\x00garbage", {}, 401, marks=_bug("webhook-body-not-utf8", UnicodeDecodeError), id="non-utf8-body"
    ),
    pytest.param(
        b"{}",
        {"X-PagerDuty-Signature": "v1=\u00e9"},
        401,
        marks=_bug("signature-non-ascii", TypeError),
        id="non-ascii-signature",
    ),
    pytest.param(
        b"[" * 100_000 + b"]" * 100_000,
        "sign",
        400,
        marks=_bug("json-limits", RecursionError),
        id="signed-deep-nesting",
    ),
    pytest.param(
        b'{"event": ' + b"1" * 5000 + b"}", "sign", 400, marks=_bug("json-limits", ValueError), id="signed-huge-integer"
    ),
]


@pytest.mark.parametrize(("body", "headers", "status"), ACK_CRASHES)
def test_bug_the_webhook_receiver_crashes_on(local, logs, body, headers, status):
    if headers == "sign":
        headers = {"X-PagerDuty-Signature": sign(body, WEBHOOK_SECRET.encode()), "X-Webhook-Id": "01BAD"}
    before = state_snapshot(local)
    assert call_webhook(body, headers)["statusCode"] == status
    assert state_snapshot(local) == before
    assert_no_secrets(logs().text)
