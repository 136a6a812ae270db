"""Security Hub write-back: workflow status and notes on the findings behind an incident.

`BatchUpdateFindings` (ASFF, CSPM) and `BatchUpdateFindingsV2` (OCSF, new Security Hub) take at most 100 findings
per call and answer 200 with `UnprocessedFindings` for partial failures, which are retried when transient.
Throttling (10 rps, burst 30) is retried by botocore's `standard` retry mode on the client.

moto does not implement either call: this adapter stays small and is tested with botocore's Stubber; the demo and
unit tests use `RecordingSecurityHub`, its in-memory twin (docs/testing.md).

Every update makes Security Hub emit another `Findings - Imported` event for the finding: the router sees it as a
duplicate of the open (or operator-resolved) episode, so a write-back never pages.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from findings_router.domain.model import Workflow

logger = logging.getLogger(__name__)


CHUNK = 100


NOTE_MAX = 512  # ASFF Note.Text and OCSF Comment are both limited to 512 characters


UPDATED_BY = "findings-router"


# UnprocessedFindings error codes worth another round: BatchUpdateFindings (ASFF) and BatchUpdateFindingsV2 (OCSF,
# whose model lists ResourceNotFoundException | ValidationException | InternalServerException | ConflictException).
TRANSIENT_ERRORS = frozenset(
    {"ConcurrentUpdateError", "InternalFailure", "ThrottlingException", "ConflictException", "InternalServerException"}
)


# OCSF status_id for BatchUpdateFindingsV2: 2 In Progress (≈ NOTIFIED), 4 Resolved.
OCSF_STATUS = {"NOTIFIED": 2, "RESOLVED": 4}


@dataclass(frozen=True, slots=True)
class FindingRef:
    """What Security Hub needs to find a finding again."""

    format: str  # "asff" | "ocsf"
    id: str
    product_arn: str  # identity spelling (…:product/…); V2 calls need …:productv2/…
    account: str


@dataclass
class WritebackResult:
    updated: int = 0
    failed: list[tuple[FindingRef, str]] = field(default_factory=list)


class SecurityHubWriteback(Protocol):
    def update(self, refs: Sequence[FindingRef], note: str, workflow: Workflow | None = None) -> WritebackResult: ...


def _chunks(items: Sequence[FindingRef]) -> Iterable[Sequence[FindingRef]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _note(text: str) -> str:
    return text if len(text) <= NOTE_MAX else text[: NOTE_MAX - 1] + "…"


class BotoSecurityHub:
    """The real adapter, over a boto3 `securityhub` client (created with `standard` retries)."""

    def __init__(
        self,
        client: Any,
        *,
        max_rounds: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`client`: a boto3 `securityhub` client, or a callable that makes one when first needed."""
        self._client = client
        self.max_rounds = max_rounds
        self._sleep = sleep

    @property
    def client(self) -> Any:
        if callable(self._client) and not hasattr(self._client, "batch_update_findings"):
            self._client = self._client()
        return self._client

    def update(self, refs: Sequence[FindingRef], note: str, workflow: Workflow | None = None) -> WritebackResult:
        result = WritebackResult()
        unique = list(dict.fromkeys(refs))
        for chunk in _chunks([r for r in unique if r.format != "ocsf"]):
            self._run(chunk, lambda c: self._asff_call(c, note, workflow), result)
        for chunk in _chunks([r for r in unique if r.format == "ocsf"]):
            self._run(chunk, lambda c: self._ocsf_call(c, note, workflow), result)
        for ref, error in result.failed:
            logger.warning("security hub write-back failed", extra={"finding_id": ref.id, "error": error})
        return result

    def _run(
        self,
        chunk: Sequence[FindingRef],
        call: Callable[[Sequence[FindingRef]], list[tuple[FindingRef, str]]],
        result: WritebackResult,
    ) -> None:
        pending = list(chunk)
        for attempt in range(self.max_rounds):
            unprocessed = call(pending)
            result.updated += len(pending) - len(unprocessed)
            retry = [(ref, code) for ref, code in unprocessed if code in TRANSIENT_ERRORS]
            result.failed.extend((ref, code) for ref, code in unprocessed if code not in TRANSIENT_ERRORS)
            if not retry:
                return
            pending = [ref for ref, _ in retry]
            if attempt + 1 == self.max_rounds:
                result.failed.extend(retry)
                return
            self._sleep(0.2 * 2**attempt * random.uniform(0.5, 1.0))

    def _asff_call(
        self, refs: Sequence[FindingRef], note: str, workflow: Workflow | None
    ) -> list[tuple[FindingRef, str]]:
        kwargs: dict[str, Any] = {
            "FindingIdentifiers": [{"Id": r.id, "ProductArn": r.product_arn} for r in refs],
            "Note": {"Text": _note(note), "UpdatedBy": UPDATED_BY},
        }
        if workflow:
            kwargs["Workflow"] = {"Status": workflow}
        response = self.client.batch_update_findings(**kwargs)
        by_key = {(r.id, r.product_arn): r for r in refs}
        out = []
        for item in response.get("UnprocessedFindings", []):
            ident = item.get("FindingIdentifier", {})
            ref = by_key.get((ident.get("Id"), ident.get("ProductArn")))
            if ref is not None:
                out.append((ref, item.get("ErrorCode", "Unknown")))
        return out

    def _ocsf_call(
        self, refs: Sequence[FindingRef], note: str, workflow: Workflow | None
    ) -> list[tuple[FindingRef, str]]:
        kwargs: dict[str, Any] = {
            "FindingIdentifiers": [
                {
                    "CloudAccountUid": r.account,
                    "FindingInfoUid": r.id,
                    "MetadataProductUid": r.product_arn.replace(":product/", ":productv2/", 1),
                }
                for r in refs
            ],
            "Comment": _note(note),
        }
        if workflow:
            kwargs["StatusId"] = OCSF_STATUS[workflow]
        response = self.client.batch_update_findings_v2(**kwargs)
        by_key = {r.id: r for r in refs}
        out = []
        for item in response.get("UnprocessedFindings", []):
            ref = by_key.get(item.get("FindingIdentifier", {}).get("FindingInfoUid"))
            if ref is not None:
                out.append((ref, item.get("ErrorCode", "Unknown")))
        return out


class ImportFailedError(RuntimeError):
    """Security Hub refused an imported finding (`FailedFindings`): `InvalidAccess` when Security Hub or the
    account's own product integration is not enabled, else a finding it could not accept."""


def import_findings(client: Any, findings: Sequence[dict[str, Any]]) -> int:
    """`BatchImportFindings` (up to 100 findings, HTTP 200 even when some failed): how many were accepted; raises
    `ImportFailedError` naming each refused finding's error."""
    response = client.batch_import_findings(Findings=list(findings))
    failed = response.get("FailedFindings") or []
    if failed or response.get("FailedCount"):
        reasons = "; ".join(f"{f.get('Id')}: {f.get('ErrorCode')} {f.get('ErrorMessage', '')}".strip() for f in failed)
        raise ImportFailedError(
            f"Security Hub refused {len(failed) or response.get('FailedCount')} finding(s): {reasons}"
        )
    return int(response.get("SuccessCount", len(findings)))
