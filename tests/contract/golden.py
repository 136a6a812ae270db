"""What must not change when code moves: dedup keys, the state item codec and every on-call payload.

`golden_outputs()` routes the fixture corpus (the demo's day of findings, every fixture under tests/fixtures, a
storm, an escalation and a wave of resolutions) through each shipped environment's policy with the in-memory twins
and a fixed clock, applies every PagerDuty webhook fixture to a paged episode, and turns every CloudWatch alarm
state into its meta-alert. The result is compared with tests/golden/*.json (test_golden.py); regenerate those files
with `python -m tests.contract.golden` only for a change that is meant to alter keys, items or payloads.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = ROOT / "findings_router_local" / "corpus" / "iot-platform-day.jsonl"
CONFIG_DIR = ROOT / "config"
NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
ROUTING_KEY = "R" * 32


def _documents() -> list[tuple[str, Any]]:
    docs: list[tuple[str, Any]] = []
    for number, line in enumerate(CORPUS.read_text().splitlines(), 1):
        if line.strip():
            docs.append((f"corpus:{number}", json.loads(line)))
    for path in sorted(FIXTURES.glob("*.json")):
        docs.append((f"fixture:{path.name}", json.loads(path.read_text())))
    return docs


def _generated(label: str, *, severity: str, index: int, updated: str, **fields: Any) -> tuple[str, Any]:
    from tests.builders import asff, event

    finding = asff(
        id=f"arn:aws:guardduty:eu-central-1:111122223333:detector/d1/finding/golden{index:04d}",
        severity=severity,
        UpdatedAt=updated,
        **fields,
    )
    finding["Resources"][0]["Id"] = f"arn:aws:ec2:eu-central-1:111122223333:instance/i-golden{index:04d}"
    return label, event(finding)


def _scenario() -> list[tuple[str, Any]]:
    """The corpus, then a storm (15 new problems of one group), an escalation and resolutions of what paged."""
    docs = _documents()
    docs += [_generated(f"storm:{i}", severity="HIGH", index=i, updated="2026-11-21T11:00:00.000Z") for i in range(15)]
    docs.append(_generated("escalation:low", severity="MEDIUM", index=900, updated="2026-11-21T11:00:00.000Z"))
    docs.append(_generated("escalation:critical", severity="CRITICAL", index=900, updated="2026-11-21T11:30:00.000Z"))
    for i in (0, 1, 2, 900):
        docs.append(
            _generated(
                f"resolution:{i}",
                severity="HIGH",
                index=i,
                updated="2026-11-21T11:45:00.000Z",
                RecordState="ARCHIVED",
            )
        )
    return docs


def _findings(doc: Any) -> tuple[list[Any], str | None]:
    from findings_router.domain.model import FindingError
    from findings_router.domain.normalize import normalize_document

    try:
        return list(normalize_document(doc).findings), None
    except (FindingError, ValueError) as exc:
        return [], f"{type(exc).__name__}: {exc}"


def _keys(docs: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    from findings_router.domain.keys import dedup_key

    rows = []
    for label, doc in docs:
        findings, error = _findings(doc)
        if error:
            rows.append({"source": label, "error": error})
        for f in findings:
            rows.append(
                {
                    "source": label,
                    "finding_id": f.id,
                    "folded": dedup_key(f, True),
                    "unfolded": dedup_key(f, False),
                }
            )
    return rows


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, set):
        return sorted(_jsonable(v) for v in value)
    return value


def _route_environment(environment: str, docs: list[tuple[str, Any]]) -> dict[str, Any]:
    from findings_router.adapters.memory import InMemoryDedupStore, InMemoryStormCounter, RecordingSecurityHub
    from findings_router.adapters.state_table import state_to_item
    from findings_router.domain.policy import CompiledPolicy
    from findings_router.notify.recording import RecordingNotifier
    from findings_router.service.route import FindingsRouter
    from findings_router.settings.load import load_policy

    policy = load_policy(CONFIG_DIR / f"{environment}.yaml")
    # Every account in scope, so that the corpus (homed in the prod accounts) exercises each policy's rules.
    policy = policy.model_copy(update={"accounts": ["*"]})
    store, notifier, securityhub = InMemoryDedupStore(), RecordingNotifier(ROUTING_KEY), RecordingSecurityHub()
    router = FindingsRouter(CompiledPolicy(policy), store, notifier, securityhub, InMemoryStormCounter())
    decisions = []
    for minute, (label, doc) in enumerate(docs):
        findings, _ = _findings(doc)
        now = NOW + dt.timedelta(minutes=minute // 10, seconds=minute % 10)
        for finding in findings:
            before = len(notifier.events)
            routed = router.route(finding, now)
            decisions.append(
                {
                    "source": label,
                    "finding_id": finding.id,
                    "key": routed.decision.key,
                    "outcome": routed.decision.outcome,
                    "reason": routed.decision.reason,
                    "events": notifier.events[before:],
                }
            )
    return {
        "decisions": decisions,
        "writeback": [_jsonable(u) for u in securityhub.updates],
        "items": [state_to_item(store.items[k]) for k in sorted(store.items)],
    }


def _acks() -> list[dict[str, Any]]:
    from findings_router.adapters.memory import InMemoryDedupStore, RecordingSecurityHub
    from findings_router.adapters.state_table import state_to_item
    from findings_router.domain.acks import parse_webhook
    from findings_router.domain.policy import CompiledPolicy
    from findings_router.notify.recording import RecordingNotifier
    from findings_router.service.acknowledge import AckProcessor, RetryLater
    from findings_router.service.route import FindingsRouter
    from findings_router.settings.load import load_policy

    policy = load_policy(CONFIG_DIR / "prod.yaml")
    _, doc = _generated("ack", severity="HIGH", index=500, updated="2026-11-21T11:00:00.000Z")
    [finding], _ = _findings(doc)
    rows = []
    for path in sorted((FIXTURES / "pagerduty").glob("webhook_*.json")):
        store = InMemoryDedupStore()
        router = FindingsRouter(CompiledPolicy(policy), store, RecordingNotifier(ROUTING_KEY), None, None)
        routed = router.route(finding, NOW)
        body = copy.deepcopy(json.loads(path.read_text()))
        if body["event"]["data"].get("incident_key") is not None:
            body["event"]["data"]["incident_key"] = routed.decision.key
        body["event"]["occurred_at"] = "2026-11-21T12:05:00.000Z"
        securityhub, resolver = RecordingSecurityHub(), RecordingNotifier(ROUTING_KEY)
        keys = [routed.decision.key]
        processor = AckProcessor(store, securityhub, notifier=resolver, alert_keys=lambda _id, keys=keys: keys)
        try:
            result: Any = _jsonable(processor.process(parse_webhook(body), NOW + dt.timedelta(minutes=6)))
        except RetryLater as exc:
            result = {"retry_later": str(exc)}
        rows.append(
            {
                "webhook": path.name,
                "result": result,
                "resolves": resolver.events,
                "writeback": [_jsonable(u) for u in securityhub.updates],
                "items": [state_to_item(store.items[k]) for k in sorted(store.items)],
            }
        )
    return rows


def _meta_alerts() -> list[dict[str, Any]]:
    from findings_router.domain.alarms import alarm_notification, parse_alarm
    from findings_router.domain.notifications import NotifyContext
    from findings_router.notify.pagerduty.events import build_event

    rows = []
    for state in ("ALARM", "OK", "INSUFFICIENT_DATA"):
        message = {
            "AlarmName": "findings-router-prod-dlq-not-empty",
            "AlarmArn": "arn:aws:cloudwatch:eu-central-1:111122223333:alarm:findings-router-prod-dlq-not-empty",
            "AlarmDescription": "Findings in the dead-letter queue",
            "NewStateValue": state,
            "NewStateReason": "Threshold Crossed: 1 datapoint [3.0] was greater than the threshold (0.0).",
            "AWSAccountId": "111122223333",
            "Region": "EU (Frankfurt)",
            "StateChangeTime": "2026-11-21T12:00:00.000+0000",
        }
        change = parse_alarm(json.dumps(message))
        for mode in ("page", "notify", "off"):
            notification = alarm_notification(change, mode)
            event = None if notification is None else build_event(notification, NotifyContext("prod"), ROUTING_KEY)
            rows.append({"state": state, "mode": mode, "event": event})
    return rows


def golden_outputs() -> dict[str, Any]:
    docs = _scenario()
    outputs: dict[str, Any] = {"keys.json": _keys(docs)}
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        outputs[f"routing-{path.stem}.json"] = _route_environment(path.stem, docs)
    outputs["acks.json"] = _acks()
    outputs["meta-alerts.json"] = _meta_alerts()
    return outputs


def render(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    GOLDEN_DIR.mkdir(exist_ok=True)
    for name, value in golden_outputs().items():
        (GOLDEN_DIR / name).write_text(render(value))
        print(f"wrote tests/golden/{name}")
