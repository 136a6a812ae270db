"""The demo's input: a bundled day of Security Hub events on an IoT platform (`load_corpus`), moved into each
environment's own account (`rehome`), and the field scenarios the day does not hold (`field_scenarios`): another
tool's custom action, a sample finding, a finding of an account no environment owns, late and stale copies."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from findings_router.settings.schema import Policy

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "iot-platform-day.jsonl"


def load_corpus(path: Path = CORPUS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


CORPUS_ACCOUNT = "111122223333"  # the platform account the bundled day was recorded in
SANDBOX_ACCOUNT = "999988887777"  # belongs to no environment: its findings page nobody
FOREIGN_ACTION_ID = "RemediateWithASR"  # another tool's custom action (e.g. Automated Security Response)


def rehome(corpus: list[dict[str, Any]], policy: Policy) -> list[dict[str, Any]]:
    """The bundled day, as it happens in this environment's own (first) account."""
    if policy.all_accounts or policy.accounts[0] == CORPUS_ACCOUNT:
        return corpus
    return [json.loads(json.dumps(ev).replace(CORPUS_ACCOUNT, policy.accounts[0])) for ev in corpus]


@dataclass(frozen=True)
class FieldScenario:
    """What real organizations send that the day's corpus does not: delivered in order, one wave after another."""

    name: str
    expectation: str
    waves: tuple[tuple[dict[str, Any], ...], ...]
    finding_id: str
    ignored_as: str | None = None  # the one-screen summary's phrase, when the scenario should wake nobody


def field_scenarios(policy: Policy, corpus: list[dict[str, Any]]) -> list[FieldScenario]:
    base = next(
        f
        for ev in corpus
        if ev.get("detail-type") == "Security Hub Findings - Imported"
        for f in ev["detail"]["findings"]
        if f.get("ProductName") == "GuardDuty" and f.get("RecordState") == "ACTIVE"
    )
    account = CORPUS_ACCOUNT if policy.all_accounts else policy.accounts[0]

    def finding(name: str, severity: str, *, in_account: str = account, **changes: Any) -> dict[str, Any]:
        f: dict[str, Any] = json.loads(json.dumps(base).replace(str(base["AwsAccountId"]), in_account))
        f["Id"] = f["Id"].rsplit("/", 1)[0] + f"/field-{name}"
        f.update(Severity={"Label": severity}, Workflow={"Status": "NEW"}, RecordState="ACTIVE", **changes)
        return f

    def later(f: dict[str, Any], minutes: int, **changes: Any) -> dict[str, Any]:
        at = dt.datetime.fromisoformat(f["UpdatedAt"].replace("Z", "+00:00")) + dt.timedelta(minutes=minutes)
        return {**f, "UpdatedAt": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"), **changes}

    def action(f: dict[str, Any], action_id: str, name: str) -> dict[str, Any]:
        arn = f"arn:aws:securityhub:{f['Region']}:{account}:action/custom/{action_id}"
        ev = imported_event(f)
        ev.update({"detail-type": "Security Hub Findings - Custom Action", "resources": [arn]})
        ev["detail"].update(actionName=name, actionDescription=f"{name} (custom action)")
        return ev

    foreign = finding("foreign-action", "CRITICAL")
    ours = finding("our-action", "LOW")
    sample = finding(
        "sample",
        "HIGH",
        Sample=True,
        ProductFields={**base.get("ProductFields", {}), "aws/guardduty/service/additionalInfo/sample": "true"},
    )
    sandbox = finding("sandbox-account", "CRITICAL", in_account=SANDBOX_ACCOUNT)
    fixed = finding("resolved-first", "HIGH")
    archived = finding("archived-then-stale-copy", "CRITICAL")
    scenarios = [
        FieldScenario(
            "another tool's custom action",
            "ignored: only this environment's own action reaches on-call",
            ((action(foreign, FOREIGN_ACTION_ID, "Remediate with ASR"),),),
            foreign["Id"],
            "another tool's custom action",
        ),
        FieldScenario(
            "a sample finding (create-sample-findings)",
            "ignored unless a rule asks for samples",
            ((imported_event(sample),),),
            sample["Id"],
            "a sample finding",
        ),
        FieldScenario(
            f"a CRITICAL finding of account {SANDBOX_ACCOUNT}",
            "dropped: outside this environment's accounts",
            ((imported_event(sandbox),),),
            sandbox["Id"],
            f"account {SANDBOX_ACCOUNT}",
        ),
        FieldScenario(
            "RESOLVED by a person, then the older active copy",
            "pages nobody: the resolution is remembered",
            ((imported_event(later(fixed, 0, Workflow={"Status": "RESOLVED"})),), (imported_event(fixed),)),
            fixed["Id"],
            "an older copy after a resolution",
        ),
        FieldScenario(
            "paged, archived, then a stale copy redelivered",
            "one page, one resolve, no second episode",
            (
                (imported_event(archived),),
                (imported_event(later(archived, 5, RecordState="ARCHIVED")),),
                (imported_event(archived),),
            ),
            archived["Id"],
        ),
    ]
    if policy.custom_action is not None:
        scenarios.insert(
            1,
            FieldScenario(
                f"this environment's own custom action ({policy.custom_action.id}) on a LOW finding",
                f"{policy.custom_action.mode}: an operator asked for it",
                ((action(ours, policy.custom_action.id, policy.custom_action.id),),),
                ours["Id"],
            ),
        )
    return scenarios


def imported_event(finding: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"echo-{abs(hash((finding['Id'], finding.get('Note', {}).get('Text')))):x}",
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "account": finding.get("AwsAccountId", "111122223333"),
        "time": "2026-11-21T18:00:00Z",
        "region": finding.get("Region", "eu-central-1"),
        "resources": [],
        "detail": {"findings": [finding]},
    }


@dataclass(frozen=True)
class SilenceFindings:
    """The silence scenario's findings (production only): one paged before the silence and archived during it (its
    resolve must still go out), and one new during the silence (held back, paged by the sweep once it is expired)."""

    paged_before: dict[str, Any]
    archived_during: dict[str, Any]
    new_during: dict[str, Any]


def silence_findings(policy: Policy, corpus: list[dict[str, Any]]) -> SilenceFindings:
    base = next(
        f
        for ev in corpus
        if ev.get("detail-type") == "Security Hub Findings - Imported"
        for f in ev["detail"]["findings"]
        if f.get("ProductName") == "GuardDuty" and f.get("RecordState") == "ACTIVE"
    )
    account = CORPUS_ACCOUNT if policy.all_accounts else policy.accounts[0]

    def finding(name: str, severity: str) -> dict[str, Any]:
        f: dict[str, Any] = json.loads(json.dumps(base).replace(str(base["AwsAccountId"]), account))
        f["Id"] = f["Id"].rsplit("/", 1)[0] + f"/silence-{name}"
        f.update(Severity={"Label": severity}, Workflow={"Status": "NEW"}, RecordState="ACTIVE")
        return f

    before = finding("paged-before", "HIGH")
    at = dt.datetime.fromisoformat(before["UpdatedAt"].replace("Z", "+00:00")) + dt.timedelta(minutes=30)
    archived = {**before, "UpdatedAt": at.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    archived["RecordState"] = "ARCHIVED"
    return SilenceFindings(before, archived, finding("new-during", "CRITICAL"))
