"""PagerDuty Events v2: the events we build meet the contract and carry what an operator needs."""

from __future__ import annotations

import json

import pytest
import requests

from findings_router.domain.model import Severity
from findings_router.domain.normalize import normalize_asff, normalize_event
from findings_router.domain.notifications import Notification, NotifyContext, resolve
from findings_router.notify.pagerduty.events import MAX_EVENT_BYTES, build_event, console_url, event_bytes
from findings_router_local.fakes.pagerduty import validate_event
from tests.builders import asff, load_fixture

KEY = "R0UT1NGKEY0000000000000000000001"


def _context(finding):
    return NotifyContext("prod", finding, "fr1-abc", "rule high-and-critical", 1)


def _trigger(finding, severity=None, urgency="high", escalated_from=None):
    notification = Notification("trigger", "fr1-abc", severity or finding.severity, urgency, escalated_from)
    return build_event(notification, _context(finding), KEY)


@pytest.mark.parametrize(
    "fixture",
    [
        "asff_guardduty_ssh_bruteforce.json",
        "asff_inspector_log4j.json",
        "asff_control_s3_failed.json",
        "asff_macie_sensitive_data.json",
        "asff_third_party_prowler.json",
        "ocsf_guardduty_detection.json",
        "ocsf_inspector_vulnerability.json",
    ],
)
def test_built_events_meet_the_events_v2_contract(fixture):
    for finding in normalize_event(load_fixture(fixture)).findings:
        body = _trigger(finding)
        assert validate_event(body) == []
        assert validate_event(build_event(resolve("fr1-abc", finding.severity), _context(finding), KEY)) == []


def test_page_has_what_an_operator_needs_at_night():
    [finding] = normalize_event(load_fixture("asff_inspector_log4j.json")).findings
    body = _trigger(finding)
    payload = body["payload"]
    details = payload["custom_details"]
    assert body["dedup_key"] == "fr1-abc"
    assert payload["severity"] == "critical"
    assert "CVE-2021-44228" in payload["summary"] or "log4j" in payload["summary"]
    assert "10.0 CVSS" in payload["summary"]
    assert details["account"] == "111122223333" and details["region"] == "eu-central-1"
    assert details["cve_ids"] == ["CVE-2021-44228"]
    assert details["max_cvss"] == 10.0
    assert details["remediation"]
    assert details["resources"][0]["id"] == finding.resources[0].id
    assert details["security_hub_console"] == console_url(finding)
    assert body["links"][0]["href"] == console_url(finding)


def test_console_link_points_at_the_finding_itself():
    [finding] = normalize_event(load_fixture("asff_control_s3_failed.json")).findings
    url = console_url(finding)
    assert url.startswith(
        "https://eu-central-1.console.aws.amazon.com/securityhub/home?region=eu-central-1#/findings?search="
    )
    # The finding id, percent-encoded twice as the console expects inside its search parameter.
    assert requests.utils.unquote(requests.utils.unquote(url)).endswith(f"EQUALS\\:{finding.id}")
    body = _trigger(finding)
    texts = [link["text"] for link in body["links"]]
    assert texts[:2] == ["This finding in Security Hub", "Control S3.8"]


def test_summary_is_cut_to_pagerdutys_limit():
    finding = normalize_asff(asff(Title="x" * 5000, Description="y" * 10_000))
    body = _trigger(finding)
    assert len(body["payload"]["summary"]) == 1024
    assert validate_event(body) == []
    assert len(json.dumps(body)) < 512 * 1024


@pytest.mark.parametrize(
    ("severity", "urgency", "expected"),
    [
        (Severity.CRITICAL, "high", "critical"),
        (Severity.HIGH, "high", "error"),
        (Severity.LOW, "high", "error"),
        (Severity.CRITICAL, "low", "warning"),
        (Severity.MEDIUM, "low", "warning"),
        (Severity.LOW, "low", "info"),
        (Severity.INFORMATIONAL, "low", "info"),
    ],
)
def test_severity_mapping_keeps_pages_high_and_notifications_low(severity, urgency, expected):
    body = _trigger(normalize_asff(asff(severity=severity.value)), urgency=urgency)
    assert body["payload"]["severity"] == expected


def test_escalation_is_visible_in_the_summary():
    body = _trigger(normalize_asff(asff(severity="CRITICAL")), escalated_from=Severity.HIGH)
    assert body["payload"]["summary"].startswith("[prod] [ESCALATED HIGH→CRITICAL] CRITICAL")


def test_an_event_past_pagerdutys_size_limit_is_cut_to_fit_and_still_pages():
    """PagerDuty refuses an event above 512 KB (a 400: the page would be lost); tags and lists go first. Values past
    ASFF's own limits, as a custom provider's import or an OCSF finding may carry."""
    tags = {f"tag{i}": "v" * 2000 for i in range(50)}
    resources = [
        {"Type": "AwsEc2Instance", "Id": f"arn:aws:ec2:eu-central-1:111122223333:instance/i-{i:05d}", "Tags": tags}
        for i in range(40)
    ]
    finding = normalize_asff(asff(Resources=resources, Types=[f"TTPs/{'t' * 250}/{i}" for i in range(50)]))
    body = _trigger(finding)
    assert event_bytes(body) <= MAX_EVENT_BYTES
    assert validate_event(body) == []
    assert body["payload"]["custom_details"]["truncated"].startswith("details cut to fit")
    assert body["payload"]["custom_details"]["finding_id"] == finding.id
