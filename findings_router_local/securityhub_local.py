"""A local stand-in for AWS Security Hub's finding write-back: ``BatchUpdateFindings`` and ``BatchUpdateFindingsV2``.

moto does not implement either call. This serves both over real HTTP on 127.0.0.1 (the standard library's HTTP
server), routed and checked with botocore's own ``securityhub`` service model. A boto3 client pointed at it sends
real signed requests, goes through botocore's real retry logic and parses real error responses:

* ``PATCH /findings/batchupdate`` (ASFF) and ``PATCH /findingsv2/batchupdatev2`` (OCSF), rest-json. The routes come
  from the model's ``http`` traits.
* Every body is checked against the operation's input shape: required members, JSON types, unknown members,
  min/max lengths and ranges, enums and patterns. The constraints that live only in the documentation are checked
  too (`DOCUMENTED_LIMITS`). A violation is answered 400 with the operation's modeled validation error
  (``InvalidInputException`` / ``ValidationException``) in the ``x-amzn-ErrorType`` header and a
  ``{"Code", "Message"}`` body. botocore raises that as a ``ClientError``. The stand-in also remembers the
  violation and raises on exit unless the test took it with `take_rejected` (the router swallows write-back
  errors, so the ``ClientError`` alone would go unnoticed).
* It holds findings that the test or demo feeds in (`put_finding`, `put_event`) and applies updates to them as
  Security Hub documents: ``UpdatedAt`` (ASFF) and ``finding_info.modified_time``/``time`` (OCSF) stay unchanged.
  An unknown finding comes back in ``UnprocessedFindings`` with the documented error code (``FindingNotFound`` /
  ``ResourceNotFoundException``).
* Each finding it updates produces an echo: the ``Security Hub Findings - Imported`` / ``Findings Imported V2``
  EventBridge event that Security Hub emits for an updated finding (`take_echoes`).
* Requests must be SigV4-signed for ``securityhub`` in the stand-in's region (only the credential scope is checked,
  not the signature); otherwise the answer is 403, as AWS answers.
* Faults can be injected: whole-request errors (`Fault`: 429 throttling, 5xx, 403, dropped connections) and
  per-finding ``UnprocessedFindings`` (`fail_findings`).

Sources: botocore ``securityhub/2018-10-26/service-2.json`` (shapes, http traits, error shapes; the operation
docs say that updates leave ``UpdatedAt`` / ``modified_time`` unchanged; the ``ErrorCode`` docs list the
unprocessed codes and messages). The Security Hub event formats pages (EventBridge detail types, one finding per
event). Answers that AWS does not document (unknown members, a missing identifier list, duplicate V2 identifiers,
unknown routes, a malformed JSON body) are this stand-in's own choice and may be stricter than Security Hub.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from findings_router_local.loopback_http import Answer, LoopbackServer, LoopbackService
from findings_router_local.tables import clip, render_table

if TYPE_CHECKING:
    from mypy_boto3_securityhub import SecurityHubClient

__all__ = [
    "ACCESS_DENIED",
    "ASFF_ERROR_MESSAGES",
    "ASFF_IMPORTED",
    "ASFF_OPERATION",
    "BAD_GATEWAY",
    "DOCUMENTED_LIMITS",
    "DROPPED_CONNECTION",
    "INTERNAL_ERROR",
    "OCSF_IMPORTED",
    "OCSF_OPERATION",
    "THROTTLED",
    "AppliedUpdate",
    "DocumentedLimit",
    "Fault",
    "FindingKey",
    "SecurityHubCall",
    "SecurityHubContractError",
    "SecurityHubStandIn",
    "finding_key",
    "render_calls",
    "securityhub_model",
    "validate_request",
]

ASFF_OPERATION = "BatchUpdateFindings"
OCSF_OPERATION = "BatchUpdateFindingsV2"
OPERATIONS = (ASFF_OPERATION, OCSF_OPERATION)
ASFF_IMPORTED = "Security Hub Findings - Imported"
OCSF_IMPORTED = "Findings Imported V2"
DEFAULT_REGION = "eu-central-1"
DEFAULT_ACCOUNT = "111122223333"
DUMMY_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}

# The operations' modeled errors: ASFF (InvalidInputException 400, InvalidAccessException 401,
# LimitExceededException 429, InternalException 500); V2 (ValidationException 400, AccessDeniedException 403,
# ThrottlingException 429, ConflictException 409, InternalServerException 500).
VALIDATION_ERROR = {ASFF_OPERATION: "InvalidInputException", OCSF_OPERATION: "ValidationException"}
NOT_FOUND = {ASFF_OPERATION: "FindingNotFound", OCSF_OPERATION: "ResourceNotFoundException"}
# BatchUpdateFindingsUnprocessedFinding.ErrorCode / .ErrorMessage docs list the codes and their messages in the same
# order.
ASFF_ERROR_MESSAGES = {
    "ConcurrentUpdateError": "Concurrent finding updates detected",
    "DuplicatedFindingIdentifier": "Finding Identifier is duplicated",
    "FindingNotFound": "Finding Not Found",
    "FindingSizeExceeded": "Finding size exceeded 240 KB",
    "InternalFailure": "Internal service failure",
    "InvalidInput": "Invalid Input",
}
# BatchUpdateFindingsV2UnprocessedFindingErrorCode is a modeled enum; the V2 messages are not documented, these are
# this stand-in's.
OCSF_ERROR_MESSAGES = {
    "ResourceNotFoundException": "Finding not found",
    "ValidationException": "Finding identifier is duplicated",
    "InternalServerException": "Internal service failure",
    "ConflictException": "Concurrent finding updates detected",
}
DEFAULT_TRANSIENT = {"asff": "ConcurrentUpdateError", "ocsf": "ConflictException"}
# OCSF 1.x Finding status_id / severity_id captions: Security Hub updates the string sibling with the id.
OCSF_STATUS = {0: "Unknown", 1: "New", 2: "In Progress", 3: "Suppressed", 4: "Resolved", 5: "Archived", 99: "Other"}
OCSF_SEVERITY = {
    0: "Unknown",
    1: "Informational",
    2: "Low",
    3: "Medium",
    4: "High",
    5: "Critical",
    6: "Fatal",
    99: "Other",
}
# ASFF's Normalized→Label bands, written out here rather than taken from findings_router: a stand-in that borrowed
# the code under test would agree with its mistakes.
_LABEL_BANDS = ((0, "INFORMATIONAL"), (39, "LOW"), (69, "MEDIUM"), (89, "HIGH"), (100, "CRITICAL"))
_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")

Format = Literal["asff", "ocsf"]


# --------------------------------------------------------------------------- model


@cache
def securityhub_model() -> ServiceModel:
    """botocore's own ``securityhub`` service model (the ``service-2.json`` that boto3 ships with)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("securityhub")


def _operation(name: str) -> OperationModel:
    return securityhub_model().operation_model(name)


@dataclass(frozen=True)
class DocumentedLimit:
    """A constraint that the service documents but the model's shapes do not carry (the member is a plain
    ``NonEmptyString`` / ``Integer`` / unbounded list)."""

    operation: str
    path: str  # dotted member path from the request root (structures only)
    quote: str  # the documenting words
    doc_shape: str | None  # the botocore shape whose member documentation carries `quote`; None: not in botocore
    doc_member: str | None
    source: str = "botocore securityhub service-2.json"
    max_items: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    values: tuple[int, ...] | None = None


DOCUMENTED_LIMITS: tuple[DocumentedLimit, ...] = (
    DocumentedLimit(
        ASFF_OPERATION,
        "FindingIdentifiers",
        "can be used to update up to 100 findings at a time",
        "BatchUpdateFindingsRequest",
        "FindingIdentifiers",
        max_items=100,
    ),
    DocumentedLimit(
        ASFF_OPERATION,
        "Note.Text",
        "Length Constraints: Minimum of 1. Maximum of 512.",
        "Note",
        "Text",
        min_length=1,
        max_length=512,
    ),
    DocumentedLimit(
        ASFF_OPERATION,
        "Note.UpdatedBy",
        "UpdatedBy: Required: Yes, Type: String, Minimum: 1, Maximum: 512",
        None,
        None,
        source="AWS CloudFormation AWS::SecurityHub::AutomationRule NoteUpdate (the same NoteUpdate shape)",
        min_length=1,
        max_length=512,
    ),
    DocumentedLimit(
        OCSF_OPERATION,
        "Comment",
        "Minimum character length 1. Maximum character length 512.",
        "BatchUpdateFindingsV2Request",
        "Comment",
        min_length=1,
        max_length=512,
    ),
    DocumentedLimit(
        OCSF_OPERATION,
        "StatusId",
        "allowed enum values [0, 1, 2, 3, 4, 5, 99]",
        "BatchUpdateFindingsV2Request",
        "StatusId",
        values=(0, 1, 2, 3, 4, 5, 99),
    ),
    DocumentedLimit(
        OCSF_OPERATION,
        "SeverityId",
        "allowed enum values [0, 1, 2, 3, 4, 5, 6, 99]",
        "BatchUpdateFindingsV2Request",
        "SeverityId",
        values=(0, 1, 2, 3, 4, 5, 6, 99),
    ),
)


# --------------------------------------------------------------------------- request validation


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def _type_error(path: str, value: Any, valid: str, errors: list[str]) -> None:
    errors.append(
        f"Invalid type for parameter {path or 'input'}, value: {clip(repr(value), 60)}, "
        f"type: {type(value).__name__}, valid types: {valid}"
    )


def _check_length(path: str, size: float, shape: Shape, errors: list[str], what: str = "length") -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        errors.append(f"Invalid {what} for parameter {path}, value: {size}, valid min {what}: {low}")
    if high is not None and size > high:
        errors.append(f"Invalid {what} for parameter {path}, value: {size}, valid max {what}: {high}")


def _check_string(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        _type_error(path, value, "str", errors)
        return
    _check_length(path, len(value), shape, errors)
    enum = shape.metadata.get("enum")
    if enum and value not in enum:
        errors.append(f"Invalid value for parameter {path}, value: {value!r}, valid values: {', '.join(enum)}")
    pattern = shape.metadata.get("pattern")
    if pattern and re.search(pattern, value) is None:  # Smithy patterns are not implicitly anchored
        errors.append(f"Invalid value for parameter {path}, value: {clip(repr(value), 60)}, must match {pattern}")


def _check_structure(shape: StructureShape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        _type_error(path, value, "object", errors)
        return
    where = path or "input"
    members = shape.members
    errors.extend(
        f'Missing required parameter in {where}: "{name}"' for name in shape.required_members if name not in value
    )
    for name, item in value.items():
        if name in members:
            _check_shape(members[name], item, _join(path, name), errors)
        else:
            errors.append(f'Unknown parameter in {where}: "{name}", must be one of: {", ".join(members)}')


def _check_shape(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    """One value against one botocore shape (JSON types as rest-json puts them on the wire)."""
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        _check_structure(shape, value, path, errors)
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            _type_error(path, value, "array", errors)
            return
        _check_length(path, len(value), shape, errors)
        for i, item in enumerate(value):
            _check_shape(shape.member, item, f"{path}[{i}]", errors)
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            _type_error(path, value, "object", errors)
            return
        for key, item in value.items():
            _check_shape(shape.key, key, f"{path} (key)", errors)
            _check_shape(shape.value, item, f"{path}.{key}", errors)
    elif kind == "string":
        _check_string(shape, value, path, errors)
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            _type_error(path, value, "integer", errors)
            return
        _check_length(path, value, shape, errors, "range")
    elif kind in ("float", "double"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            _type_error(path, value, "number", errors)
            return
        _check_length(path, value, shape, errors, "range")
    elif kind == "boolean" and not isinstance(value, bool):
        _type_error(path, value, "boolean", errors)


def _at(body: Mapping[str, Any], path: str) -> Any:
    node: Any = body
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _check_documented(operation: str, body: Mapping[str, Any], errors: list[str]) -> None:
    for limit in DOCUMENTED_LIMITS:
        if limit.operation != operation:
            continue
        value = _at(body, limit.path)
        if value is None:
            continue
        if limit.max_items is not None and isinstance(value, list) and len(value) > limit.max_items:
            errors.append(
                f"Invalid length for parameter {limit.path}, value: {len(value)}, valid max length: {limit.max_items}"
            )
        if isinstance(value, str):
            if limit.min_length is not None and len(value) < limit.min_length:
                errors.append(
                    f"Invalid length for parameter {limit.path}, value: {len(value)}, "
                    f"valid min length: {limit.min_length}"
                )
            if limit.max_length is not None and len(value) > limit.max_length:
                errors.append(
                    f"Invalid length for parameter {limit.path}, value: {len(value)}, "
                    f"valid max length: {limit.max_length}"
                )
        if (
            limit.values is not None
            and isinstance(value, int)
            and not isinstance(value, bool)
            and value not in limit.values
        ):
            errors.append(
                f"Invalid value for parameter {limit.path}, value: {value}, "
                f"valid values: {', '.join(map(str, limit.values))}"
            )


def validate_request(operation: str, body: Any) -> list[str]:
    """Every contract error in one decoded request body for `operation` (empty list: valid)."""
    errors: list[str] = []
    shape = _operation(operation).input_shape
    assert shape is not None  # both operations have an input shape
    _check_structure(shape, body, "", errors)
    if not isinstance(body, dict):
        return errors
    _check_documented(operation, body, errors)
    if operation == OCSF_OPERATION:
        # "Customers cannot use MetadataUids together with FindingIdentifiers." (MetadataUids documentation)
        if "MetadataUids" in body and "FindingIdentifiers" in body:
            errors.append("Customers cannot use MetadataUids together with FindingIdentifiers")
        elif "MetadataUids" not in body and "FindingIdentifiers" not in body:
            errors.append("One of MetadataUids or FindingIdentifiers is required")
    return errors


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class FindingKey:
    """How Security Hub identifies a finding: ASFF (Id, ProductArn); OCSF (finding_info.uid, cloud.account.uid,
    metadata.product.uid)."""

    format: Format
    id: str
    product: str
    account: str | None = None  # OCSF only

    def __str__(self) -> str:
        return f"{self.format}:{self.id}"


def finding_key(finding: Mapping[str, Any]) -> FindingKey:
    """The identity of an ASFF or OCSF finding dict; ValueError when it has none."""
    if "finding_info" in finding or "metadata" in finding:
        uid = _at(finding, "finding_info.uid")
        account = _at(finding, "cloud.account.uid")
        product = _at(finding, "metadata.product.uid")
        if not (isinstance(uid, str) and isinstance(account, str) and isinstance(product, str)):
            raise ValueError("an OCSF finding needs finding_info.uid, cloud.account.uid and metadata.product.uid")
        return FindingKey("ocsf", uid, product, account)
    fid, product = finding.get("Id"), finding.get("ProductArn")
    if not (isinstance(fid, str) and isinstance(product, str)):
        raise ValueError("an ASFF finding needs Id and ProductArn (an OCSF finding needs finding_info and metadata)")
    return FindingKey("asff", fid, product)


@dataclass(frozen=True)
class Fault:
    """One injected answer, used instead of normal processing for one request.

    `code` goes in the ``x-amzn-ErrorType`` header and the body's ``Code``, which is where botocore reads the error
    code from and so decides whether its retry mode retries. `operation` limits the fault to one operation (None:
    the next request of any kind)."""

    status: int
    code: str = ""
    message: str = ""
    operation: str | None = None
    drop_connection: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)


THROTTLED = Fault(429, "ThrottlingException", "Rate exceeded")
BAD_GATEWAY = Fault(502, "InternalFailure", "The request processing has failed because of an unknown error.")
INTERNAL_ERROR = Fault(500, "InternalException", "Internal service failure")
ACCESS_DENIED = Fault(
    403,
    "AccessDeniedException",
    "User: arn:aws:sts::111122223333:assumed-role/findings-router/local is not authorized to perform: "
    "securityhub:BatchUpdateFindings because no identity-based policy allows the securityhub:BatchUpdateFindings action",
)
DROPPED_CONNECTION = Fault(0, drop_connection=True)


@dataclass
class SecurityHubCall:
    """One HTTP request as received, and how it was answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    operation: str | None = None  # None: no such route
    request: Any | None = None  # the decoded JSON body
    status: int | None = None  # None: the connection was dropped
    response: dict[str, Any] | None = None
    error_code: str | None = None
    errors: list[str] = field(default_factory=list)  # contract errors (400)
    fault: Fault | None = None
    region: str | None = None  # from the SigV4 credential scope


@dataclass(frozen=True)
class AppliedUpdate:
    """What one call changed on one finding."""

    operation: str
    key: FindingKey
    note: str | None  # Note.Text / Comment
    updated_by: str | None
    workflow: str | None  # Workflow.Status (ASFF)
    status_id: int | None  # StatusId (OCSF)
    at: str


class SecurityHubContractError(AssertionError):
    """Requests broke the Security Hub contract and nobody took the rejections (`take_rejected`)."""


def _json_answer(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps(body).encode(), headers={"x-amzn-RequestId": str(uuid.uuid4()), **(headers or {})})


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Answer:
    """rest-json error: botocore takes the code from ``x-amzn-ErrorType``, the message from the body."""
    return _json_answer(status, {"Code": code, "Message": message}, {"x-amzn-ErrorType": code, **(headers or {})})


def _iso_millis(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _label_for(normalized: int) -> str:
    return next(label for top, label in _LABEL_BANDS if normalized <= top)


# --------------------------------------------------------------------------- the stand-in


class SecurityHubStandIn(LoopbackService):
    """Security Hub's ``BatchUpdateFindings`` / ``BatchUpdateFindingsV2`` served from 127.0.0.1 on a free port.

    Use it as a context manager; point a boto3 client at `url`, or take one from `client`."""

    def __init__(
        self,
        *,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        strict: bool = True,
    ) -> None:
        """`region`: the region requests must be signed for. `account_id`: the account whose event bus gets the
        echo events. `strict`: raise `SecurityHubContractError` on exit if a request broke the contract and the
        test did not take the rejection."""
        self.region = region
        self.account_id = account_id
        self.clock = clock
        self.strict = strict
        self._routes: dict[tuple[str, str], str] = {}
        for name in OPERATIONS:
            http = _operation(name).http
            self._routes[(http["method"], http["requestUri"])] = name
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._http = LoopbackServer(self, name="securityhub-stand-in")
        self._findings: dict[FindingKey, dict[str, Any]] = {}
        self._history: list[AppliedUpdate] = []
        self._calls: list[SecurityHubCall] = []
        self._rejected: list[SecurityHubCall] = []
        self._faults: list[Fault] = []
        self._unprocessed: list[list[Any]] = []  # [target, code, remaining]
        self._echoes: list[dict[str, Any]] = []
        self._pending_echoes: list[dict[str, Any]] = []

    # ---- lifecycle

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on exit; then, when strict and the block raised nothing else, fail on untaken contract violations."""
        super().__exit__(exc_type, exc, tb)
        if self.strict and exc_type is None:
            rejected = self.rejected
            if rejected:
                lines = [f"{c.operation or c.path}: {'; '.join(c.errors)}" for c in rejected]
                raise SecurityHubContractError(
                    f"{len(rejected)} request(s) broke the Security Hub contract:\n" + "\n".join(lines)
                )

    @property
    def url(self) -> str:
        """The endpoint URL for boto3, for example ``http://127.0.0.1:54321``."""
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """Environment that points every boto3 ``securityhub`` client (and so the real handler) here, leaving other
        services where ``AWS_ENDPOINT_URL`` points (moto)."""
        return {"AWS_ENDPOINT_URL_SECURITYHUB": self.url}

    def client(self, *, max_attempts: int = 3, parameter_validation: bool = True, **config: Any) -> SecurityHubClient:
        """A boto3 ``securityhub`` client for this stand-in: dummy credentials, this region, ``standard`` retries.

        `max_attempts` is botocore's ``retries`` setting: retries after the first attempt (3 → up to 4 requests).
        `parameter_validation=False` lets a test send what botocore's client-side validator would stop. Extra
        keyword arguments go to ``botocore.config.Config``."""
        import boto3
        from botocore.config import Config

        settings: dict[str, Any] = {"connect_timeout": 2, "read_timeout": 10, **config}
        return boto3.client(
            "securityhub",
            endpoint_url=self.url,
            region_name=self.region,
            config=Config(
                retries={"mode": "standard", "max_attempts": max_attempts},
                parameter_validation=parameter_validation,
                **settings,
            ),
            aws_access_key_id=DUMMY_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=DUMMY_CREDENTIALS["aws_secret_access_key"],
            aws_session_token=DUMMY_CREDENTIALS["aws_session_token"],
        )

    # ---- findings

    def put_finding(self, finding: Mapping[str, Any]) -> FindingKey:
        """Hold (or replace) one ASFF or OCSF finding, as an import would; returns its key."""
        key = finding_key(finding)
        with self._lock:
            self._findings[key] = copy.deepcopy(dict(finding))
        return key

    def put_event(self, event: Mapping[str, Any]) -> list[FindingKey]:
        """Hold every finding of an EventBridge Security Hub event (or ``get-findings`` output)."""
        detail = event.get("detail")
        findings = detail.get("findings") if isinstance(detail, Mapping) else event.get("Findings")
        return [self.put_finding(f) for f in findings or []]

    def finding(self, finding: str | FindingKey) -> dict[str, Any]:
        """A copy of the finding as it is now (by key, or by ASFF Id / OCSF finding_info.uid when unambiguous)."""
        key = self._resolve(finding)
        with self._lock:
            return copy.deepcopy(self._findings[key])

    @property
    def findings(self) -> dict[FindingKey, dict[str, Any]]:
        """Copies of every finding held."""
        with self._lock:
            return copy.deepcopy(self._findings)

    def workflow(self, finding: str | FindingKey) -> str | None:
        """The ASFF finding's current ``Workflow.Status``."""
        status: str | None = _at(self.finding(self._resolve(finding, "asff")), "Workflow.Status")
        return status

    def status_id(self, finding: str | FindingKey) -> int | None:
        """The OCSF finding's current ``status_id``."""
        value = self.finding(self._resolve(finding, "ocsf")).get("status_id")
        return value if isinstance(value, int) else None

    def notes(self, finding: str | FindingKey) -> list[str]:
        """Every note (ASFF ``Note.Text``) or comment (OCSF) written to the finding, oldest first."""
        key = self._resolve(finding)
        with self._lock:
            return [u.note for u in self._history if u.key == key and u.note is not None]

    @property
    def updates(self) -> list[AppliedUpdate]:
        """Every change applied to a finding, in order."""
        with self._lock:
            return list(self._history)

    def _resolve(self, finding: str | FindingKey, fmt: Format | None = None) -> FindingKey:
        with self._lock:
            if isinstance(finding, FindingKey):
                if finding not in self._findings:
                    raise KeyError(f"no such finding: {finding}")
                return finding
            keys = [k for k in self._findings if k.id == finding and (fmt is None or k.format == fmt)]
        if not keys:
            raise KeyError(f"no {fmt + ' ' if fmt else ''}finding with id {finding!r}")
        if len(keys) > 1:
            raise ValueError(f"{len(keys)} findings have id {finding!r}: pass the FindingKey from put_finding")
        return keys[0]

    # ---- echoes

    @property
    def echoes(self) -> list[dict[str, Any]]:
        """Every echo event emitted so far (copies), in order."""
        with self._lock:
            return copy.deepcopy(self._echoes)

    def take_echoes(self) -> list[dict[str, Any]]:
        """The echo events emitted since the last call, ready to feed back into the router."""
        with self._lock:
            taken, self._pending_echoes = self._pending_echoes, []
        return taken

    # ---- faults

    def fail_next(self, *faults: Fault) -> None:
        """Queue faults; each answers one later request (of its operation, if it names one)."""
        with self._lock:
            self._faults.extend(faults)

    def fail_for(self, n: int, fault: Fault) -> None:
        """Answer the next `n` requests (of the fault's operation) with `fault`."""
        self.fail_next(*([fault] * n))

    def clear_faults(self) -> None:
        """Security Hub is well again: drop the faults not yet answered."""
        with self._lock:
            self._faults.clear()

    def fail_findings(self, *findings: str | FindingKey, error_code: str | None = None, times: int = 1) -> None:
        """Return these findings in ``UnprocessedFindings`` for their next `times` updates. `error_code` defaults to
        the format's transient code (``ConcurrentUpdateError`` / ``ConflictException``); it must be a documented
        code (`ASFF_ERROR_MESSAGES`, the V2 ``ErrorCode`` enum)."""
        if error_code is not None and error_code not in ASFF_ERROR_MESSAGES and error_code not in OCSF_ERROR_MESSAGES:
            raise ValueError(f"{error_code!r} is not a documented UnprocessedFindings ErrorCode")
        with self._lock:
            self._unprocessed.extend([target, error_code, times] for target in findings)

    # ---- observed calls

    @property
    def calls(self) -> list[SecurityHubCall]:
        """Every request received, in order."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, operation: str) -> list[SecurityHubCall]:
        """The requests to one operation."""
        return [c for c in self.calls if c.operation == operation]

    @property
    def rejected(self) -> list[SecurityHubCall]:
        """Requests answered 400 for breaking the contract, not yet taken."""
        with self._lock:
            return list(self._rejected)

    def take_rejected(self) -> list[SecurityHubCall]:
        """Take (and so accept) the contract violations seen so far."""
        with self._lock:
            taken, self._rejected = self._rejected, []
        return taken

    def wait_for_calls(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` requests were received; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._calls) >= count, timeout)

    def reset(self, *, findings: bool = True) -> None:
        """Forget calls, echoes, faults and rejections (and the findings, unless `findings` is False)."""
        with self._lock:
            self._calls.clear()
            self._rejected.clear()
            self._faults.clear()
            self._unprocessed.clear()
            self._echoes.clear()
            self._pending_echoes.clear()
            self._history.clear()
            if findings:
                self._findings.clear()

    # ---- request handling (handler threads; everything below runs under the lock)

    def handle_request(
        self, method: str, path: str, headers: dict[str, str], body: bytes, problem: str | None
    ) -> Answer | None:
        with self._cond:
            call = SecurityHubCall(method, path, headers, body)
            call.operation = self._routes.get((method, urlsplit(path).path))
            self._calls.append(call)
            self._cond.notify_all()
            fault = self._take_fault(call.operation)
            if fault is not None:
                call.fault = fault
                if fault.drop_connection:
                    return None
                answer = _error(fault.status, fault.code, fault.message, fault.headers)
            else:
                answer = self._process(call, problem)
            call.status = answer.status
            call.response = json.loads(answer.body)
            call.error_code = answer.headers.get("x-amzn-ErrorType")
            return answer

    def _take_fault(self, operation: str | None) -> Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.operation is None or fault.operation == operation:
                return self._faults.pop(i)
        return None

    def _process(self, call: SecurityHubCall, problem: str | None) -> Answer:
        if call.operation is None:
            return _error(404, "UnknownOperationException", f"No operation for {call.method} {call.path}")
        denied = self._check_signature(call)
        if denied is not None:
            return denied
        if problem is not None:
            return _error(400, "SerializationException", problem)
        try:
            request = json.loads(call.body or b"{}")
        except ValueError:
            return _error(400, "SerializationException", "The request body is not valid JSON")
        call.request = request
        errors = validate_request(call.operation, request)
        if errors:
            call.errors = errors
            self._rejected.append(call)
            message = f"{len(errors)} validation error(s) detected: " + "; ".join(errors)
            return _error(400, VALIDATION_ERROR[call.operation], message)
        if call.operation == ASFF_OPERATION:
            return _json_answer(200, self._batch_update_asff(request))
        return _json_answer(200, self._batch_update_ocsf(request))

    def _check_signature(self, call: SecurityHubCall) -> Answer | None:
        """SigV4 scope only (the signature itself is not verified): signed, for securityhub, for this region."""
        authorization = next((v for k, v in call.headers.items() if k.lower() == "authorization"), None)
        if authorization is None:
            return _error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        match = _CREDENTIAL.search(authorization)
        if match is None:
            return _error(403, "IncompleteSignatureException", "Authorization header requires a SigV4 Credential")
        _, region, service = match.groups()
        call.region = region
        if service != "securityhub":
            return _error(
                403, "InvalidSignatureException", "Credential should be scoped to correct service: 'securityhub'."
            )
        if region != self.region:
            return _error(
                403, "InvalidSignatureException", f"Credential should be scoped to a valid region, not '{region}'."
            )
        return None

    def _take_unprocessed(self, key: FindingKey) -> str | None:
        for entry in self._unprocessed:
            target, code, remaining = entry
            if remaining > 0 and target in (key, key.id):
                entry[2] -= 1
                return code or DEFAULT_TRANSIENT[key.format]
        return None

    def _batch_update_asff(self, request: dict[str, Any]) -> dict[str, Any]:
        identifiers = request["FindingIdentifiers"]
        counts = Counter((i["Id"], i["ProductArn"]) for i in identifiers)
        processed: list[dict[str, Any]] = []
        unprocessed: list[dict[str, Any]] = []
        for ident in identifiers:
            out = {"Id": ident["Id"], "ProductArn": ident["ProductArn"]}
            key = FindingKey("asff", ident["Id"], ident["ProductArn"])
            code: str | None
            if counts[(ident["Id"], ident["ProductArn"])] > 1:
                code = "DuplicatedFindingIdentifier"
            else:
                code = self._take_unprocessed(key) or (None if key in self._findings else NOT_FOUND[ASFF_OPERATION])
            if code is not None:
                message = ASFF_ERROR_MESSAGES.get(code) or OCSF_ERROR_MESSAGES.get(code, code)
                unprocessed.append({"FindingIdentifier": out, "ErrorCode": code, "ErrorMessage": message})
                continue
            self._apply_asff(key, request)
            processed.append(out)
        return {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}

    def _apply_asff(self, key: FindingKey, request: dict[str, Any]) -> None:
        """BatchUpdateFindings' fields; ``UpdatedAt`` is left alone, as the operation documents."""
        finding = self._findings[key]
        now = _iso_millis(self.clock())
        note = request.get("Note")
        if note is not None:
            finding["Note"] = {"Text": note["Text"], "UpdatedBy": note["UpdatedBy"], "UpdatedAt": now}
        status = _at(request, "Workflow.Status")
        if status is not None:
            finding["Workflow"] = {**(finding.get("Workflow") or {}), "Status": status}
        severity = request.get("Severity")
        if severity is not None:
            merged = {**(finding.get("Severity") or {}), **severity}
            if "Normalized" in severity and "Label" not in severity:
                merged["Label"] = _label_for(severity["Normalized"])
            finding["Severity"] = merged
        for name in ("VerificationState", "Confidence", "Criticality", "Types", "RelatedFindings"):
            if name in request:
                finding[name] = copy.deepcopy(request[name])
        if "UserDefinedFields" in request:
            finding["UserDefinedFields"] = {**(finding.get("UserDefinedFields") or {}), **request["UserDefinedFields"]}
        self._history.append(
            AppliedUpdate(
                ASFF_OPERATION,
                key,
                note["Text"] if note else None,
                note["UpdatedBy"] if note else None,
                status,
                None,
                now,
            )
        )
        self._emit(
            ASFF_IMPORTED,
            [f"{key.product}/{key.id}"],
            finding,
        )

    def _batch_update_ocsf(self, request: dict[str, Any]) -> dict[str, Any]:
        processed: list[dict[str, Any]] = []
        unprocessed: list[dict[str, Any]] = []
        if "MetadataUids" in request:
            by_uid = {_at(f, "metadata.uid"): k for k, f in self._findings.items() if k.format == "ocsf"}
            targets: list[tuple[dict[str, Any], FindingKey | None]] = [
                ({"MetadataUid": uid}, by_uid.get(uid)) for uid in request["MetadataUids"]
            ]
            counts = Counter(uid for uid in request["MetadataUids"])
            duplicated = [counts[uid] > 1 for uid in request["MetadataUids"]]
        else:
            targets = []
            for ident in request["FindingIdentifiers"]:
                wanted = FindingKey(
                    "ocsf", ident["FindingInfoUid"], ident["MetadataProductUid"], ident["CloudAccountUid"]
                )
                out = {k: ident[k] for k in ("CloudAccountUid", "FindingInfoUid", "MetadataProductUid")}
                targets.append(({"FindingIdentifier": out}, wanted if wanted in self._findings else None))
            idents = [json.dumps(t[0], sort_keys=True) for t in targets]
            counts = Counter(idents)
            duplicated = [counts[i] > 1 for i in idents]
        for (out, key), dup in zip(targets, duplicated, strict=True):
            code: str | None = None
            if dup:
                code = "ValidationException"
            elif key is None:
                code = NOT_FOUND[OCSF_OPERATION]
            else:
                code = self._take_unprocessed(key)
            if code is not None or key is None:
                code = code or NOT_FOUND[OCSF_OPERATION]
                message = OCSF_ERROR_MESSAGES.get(code) or ASFF_ERROR_MESSAGES.get(code, code)
                unprocessed.append({**out, "ErrorCode": code, "ErrorMessage": message})
                continue
            finding = self._apply_ocsf(key, request)
            entry: dict[str, Any] = {
                "FindingIdentifier": {
                    "CloudAccountUid": key.account,
                    "FindingInfoUid": key.id,
                    "MetadataProductUid": key.product,
                }
            }
            metadata_uid = _at(finding, "metadata.uid")
            if isinstance(metadata_uid, str):
                entry["MetadataUid"] = metadata_uid
            processed.append(entry)
        return {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}

    def _apply_ocsf(self, key: FindingKey, request: dict[str, Any]) -> dict[str, Any]:
        """BatchUpdateFindingsV2's fields; ``finding_info.modified_time(_dt)`` and ``time(_dt)`` are left alone, as
        the operation documents. The string siblings of the ids follow them."""
        finding = self._findings[key]
        comment = request.get("Comment")
        if comment is not None:
            finding["comment"] = comment
        status_id = request.get("StatusId")
        if status_id is not None:
            finding["status_id"] = status_id
            finding["status"] = OCSF_STATUS[status_id]
        severity_id = request.get("SeverityId")
        if severity_id is not None:
            finding["severity_id"] = severity_id
            finding["severity"] = OCSF_SEVERITY[severity_id]
        self._history.append(
            AppliedUpdate(OCSF_OPERATION, key, comment, None, None, status_id, _iso_millis(self.clock()))
        )
        metadata_uid = _at(finding, "metadata.uid")
        self._emit(OCSF_IMPORTED, [metadata_uid] if isinstance(metadata_uid, str) else [], finding)
        return finding

    def _emit(self, detail_type: str, resources: list[str], finding: dict[str, Any]) -> None:
        """Security Hub's EventBridge event for an updated finding (one finding per event)."""
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": "aws.securityhub",
            "account": self.account_id,
            "time": self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": resources,
            "detail": {"findings": [copy.deepcopy(finding)]},
        }
        self._echoes.append(event)
        self._pending_echoes.append(copy.deepcopy(event))


# --------------------------------------------------------------------------- rendering


def render_calls(calls: Iterable[SecurityHubCall]) -> str:
    """Plain-text table: operation, status, findings, workflow/status, note."""
    rows = []
    for c in calls:
        request = c.request if isinstance(c.request, dict) else {}
        idents = request.get("FindingIdentifiers") or request.get("MetadataUids") or []
        workflow = _at(request, "Workflow.Status") or request.get("StatusId")
        note = _at(request, "Note.Text") or request.get("Comment") or ""
        rows.append(
            (
                c.operation or f"{c.method} {c.path}",
                str(c.status) if c.status is not None else "dropped",
                c.error_code or str(len(idents)),
                str(workflow) if workflow is not None else "-",
                clip(str(note), 60),
            )
        )
    return render_table(("operation", "status", "findings/error", "workflow", "note"), rows, "(no calls)")
