"""A Security Hub provider for localstack-core, which has none ("not included in your current license plan").

Requests are parsed and answered by LocalStack's own `Skeleton` from botocore's securityhub service model (unknown
operations answer 501). Implemented:

* `CreateActionTarget`, `DescribeActionTargets`, `UpdateActionTarget`, `DeleteActionTarget`: custom actions, with
  the ARN Security Hub gives them (`arn:aws:securityhub:<region>:<account>:action/custom/<Id>`); the
  CloudFormation resource AWS::SecurityHub::ActionTarget (`actiontarget.py`) creates them through these.
* `BatchUpdateFindings`, `BatchUpdateFindingsV2`: recorded, every finding processed. For a finding imported here,
  the update is applied and, as Security Hub does, the finding is emitted again (`Security Hub Findings - Imported`,
  the same `UpdatedAt`): the echo the router must treat as a duplicate.
* `BatchImportFindings`: recorded, `{FailedCount: 0, SuccessCount: n, FailedFindings: []}`, and each finding is
  emitted onto the account's default event bus as Security Hub emits it (source `aws.securityhub`, detail-type
  `Security Hub Findings - Imported`, detail `{"findings": [finding]}`), with `RecordState` ACTIVE and `Workflow`
  NEW when the finding has none.

`GET /_securityhub_stub/updates` returns `{"updates": [...], "imports": [...]}`, in order; each entry has the
operation, the account and region, and the request.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
from typing import Any

from localstack.services.plugins import aws_provider

SOURCE = "aws.securityhub"
DETAIL_TYPE_IMPORTED = "Security Hub Findings - Imported"
_UPDATES: list[dict[str, Any]] = []
_IMPORTS: list[dict[str, Any]] = []
_FINDINGS: dict[tuple[str, str, str, str], dict[str, Any]] = {}  # (account, region, ProductArn, Id) -> finding
_TARGETS: dict[str, dict[str, str]] = {}  # ActionTargetArn -> {ActionTargetArn, Name, Description}
_lock = threading.Lock()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _emit(context: Any, findings: list[dict[str, Any]]) -> None:
    """Each finding as its own event on the default bus of the caller's account and region."""
    if not findings:
        return
    from localstack.aws.connect import connect_to

    events = connect_to(aws_access_key_id=context.account_id, region_name=context.region).events
    entries = [
        {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE_IMPORTED,
            "Detail": json.dumps({"findings": [finding]}),
            "Resources": [finding["Id"]] if finding.get("Id") else [],
        }
        for finding in findings
    ]
    for start in range(0, len(entries), 10):  # PutEvents takes at most 10 entries
        events.put_events(Entries=entries[start : start + 10])


def _apply_update(finding: dict[str, Any], request: dict[str, Any]) -> None:
    """What BatchUpdateFindings changes in a stored finding (the fields findings-router writes)."""
    if "Note" in request:
        finding["Note"] = {**request["Note"], "UpdatedAt": _now()}
    if "Workflow" in request:
        finding["Workflow"] = {"Status": request["Workflow"]["Status"]}
    for field in ("VerificationState", "Confidence", "Criticality", "Types", "UserDefinedFields"):
        if field in request:
            finding[field] = request[field]
    if "Severity" in request:
        finding["Severity"] = {**finding.get("Severity", {}), **request["Severity"]}


@aws_provider(api="securityhub")
def securityhub() -> Any:
    from localstack.aws.api import CommonServiceException
    from localstack.aws.skeleton import Skeleton
    from localstack.aws.spec import load_service
    from localstack.http import Response, route
    from localstack.services.edge import ROUTER
    from localstack.services.plugins import Service

    def not_found(arn: str) -> Exception:
        return CommonServiceException("ResourceNotFoundException", f"action target {arn} not found", status_code=404)

    def create_action_target(context: Any, request: dict[str, Any]) -> dict[str, Any]:
        arn = f"arn:aws:securityhub:{context.region}:{context.account_id}:action/custom/{request['Id']}"
        with _lock:
            if arn in _TARGETS:
                raise CommonServiceException("ResourceConflictException", f"{arn} already exists", status_code=409)
            _TARGETS[arn] = {"ActionTargetArn": arn, "Name": request["Name"], "Description": request["Description"]}
        return {"ActionTargetArn": arn}

    def describe_action_targets(context: Any, request: dict[str, Any]) -> dict[str, Any]:
        prefix = f"arn:aws:securityhub:{context.region}:{context.account_id}:"
        wanted = request.get("ActionTargetArns")
        with _lock:
            found = [dict(t) for arn, t in _TARGETS.items() if arn.startswith(prefix) and (not wanted or arn in wanted)]
        if wanted and len(found) < len(wanted):
            raise not_found(", ".join(sorted(set(wanted) - {t["ActionTargetArn"] for t in found})))
        return {"ActionTargets": found}

    def update_action_target(context: Any, request: dict[str, Any]) -> dict[str, Any]:
        with _lock:
            target = _TARGETS.get(request["ActionTargetArn"])
            if target is None:
                raise not_found(request["ActionTargetArn"])
            target.update({k: request[k] for k in ("Name", "Description") if k in request})
        return {}

    def delete_action_target(context: Any, request: dict[str, Any]) -> dict[str, Any]:
        with _lock:
            if _TARGETS.pop(request["ActionTargetArn"], None) is None:
                raise not_found(request["ActionTargetArn"])
        return {"ActionTargetArn": request["ActionTargetArn"]}

    def batch_update_findings(context: Any, request: dict[str, Any]) -> dict[str, Any]:
        identifiers = request.get("FindingIdentifiers") or []
        echoes = []
        with _lock:
            _UPDATES.append(
                {"operation": "BatchUpdateFindings", "account": context.account_id, "region": context.region, **request}
            )
            for ref in identifiers:
                stored = _FINDINGS.get((context.account_id, context.region, ref.get("ProductArn"), ref.get("Id")))
                if stored is not None:
                    _apply_update(stored, request)
                    echoes.append(copy.deepcopy(stored))
        _emit(context, echoes)
        return {"ProcessedFindings": identifiers, "UnprocessedFindings": []}

    def batch_update_findings_v2(context: Any, request: dict[str, Any]) -> dict[str, Any]:
        with _lock:
            _UPDATES.append(
                {
                    "operation": "BatchUpdateFindingsV2",
                    "account": context.account_id,
                    "region": context.region,
                    **request,
                }
            )
        processed = [{"FindingIdentifier": i} for i in request.get("FindingIdentifiers") or []]
        processed += [{"MetadataUid": uid} for uid in request.get("MetadataUids") or []]
        return {"ProcessedFindings": processed, "UnprocessedFindings": []}

    def batch_import_findings(context: Any, request: dict[str, Any]) -> dict[str, Any]:
        findings = [copy.deepcopy(f) for f in request.get("Findings") or []]
        for finding in findings:
            finding.setdefault("RecordState", "ACTIVE")
            finding.setdefault("Workflow", {"Status": "NEW"})
            finding.setdefault("ProcessedAt", _now())
        with _lock:
            _IMPORTS.append(
                {"operation": "BatchImportFindings", "account": context.account_id, "region": context.region, **request}
            )
            for finding in findings:
                key = (context.account_id, context.region, finding.get("ProductArn"), finding.get("Id"))
                _FINDINGS[key] = copy.deepcopy(finding)  # type: ignore[index]
        _emit(context, findings)
        return {"FailedCount": 0, "SuccessCount": len(findings), "FailedFindings": []}

    class StubApi:
        @route("/_securityhub_stub/updates", methods=["GET"])
        def updates(self, request: Any) -> Any:
            with _lock:
                return Response.for_json({"updates": list(_UPDATES), "imports": list(_IMPORTS)})

    ROUTER.add(StubApi())
    dispatch = {
        "CreateActionTarget": create_action_target,
        "DescribeActionTargets": describe_action_targets,
        "UpdateActionTarget": update_action_target,
        "DeleteActionTarget": delete_action_target,
        "BatchUpdateFindings": batch_update_findings,
        "BatchUpdateFindingsV2": batch_update_findings_v2,
        "BatchImportFindings": batch_import_findings,
    }
    return Service(name="securityhub", skeleton=Skeleton(load_service("securityhub"), dispatch))
