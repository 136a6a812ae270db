"""Builds the demo corpus, `corpus/iot-platform-day.jsonl`, from the realistic fixtures in tests/fixtures.

One EventBridge event per line, in the order Security Hub would have sent them during a bad day on an IoT platform:
new threats and vulnerabilities, re-sends, a severity escalation, a control that is fixed (PASSED), an archived
GuardDuty finding, the same finding through the new (OCSF) Security Hub, an operator's custom action, noise, and
one malformed event. Run `python -m findings_router_local.make_corpus` after changing fixtures; the output is committed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
OUT = Path(__file__).resolve().parent / "corpus" / "iot-platform-day.jsonl"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def _uid(seed: str, n: int = 32) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def resent(ev: dict[str, Any], minutes: int) -> dict[str, Any]:
    """The same finding re-emitted later (Security Hub sends every update as a new event)."""
    ev = copy.deepcopy(ev)
    ev["id"] = _uid(f"{ev['id']}-{minutes}", 36)
    for f in ev["detail"]["findings"]:
        if "UpdatedAt" in f:
            f["UpdatedAt"] = f"2026-11-21T{8 + minutes // 60:02d}:{minutes % 60:02d}:00.000Z"
    return ev


def variant(ev: dict[str, Any], seed: str, **changes: Any) -> dict[str, Any]:
    """A different finding of the same kind: new id, and the given top-level ASFF fields changed."""
    ev = copy.deepcopy(ev)
    ev["id"] = _uid(seed, 36)
    f = ev["detail"]["findings"][0]
    f["Id"] = f["Id"].rsplit("/", 1)[0] + "/" + _uid(seed)
    for key, value in changes.items():
        f[key] = value
    return ev


def noise(base: dict[str, Any], n: int, label: str, resource_type: str) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        ev = variant(
            base,
            f"noise-{label}-{resource_type}-{i}",
            Severity={"Label": label},
            Title=f"{base['detail']['findings'][0]['Title'][:60]} (device fleet shard {i})",
        )
        finding = ev["detail"]["findings"][0]
        if "Vulnerabilities" in finding:  # a low-scored CVE, or the CVSS >= 9 rule would page it
            finding["Vulnerabilities"] = [
                {"Id": f"CVE-2026-{4100 + i}", "Cvss": [{"BaseScore": 3.1 + i / 10, "Version": "3.1", "Source": "NVD"}]}
            ]
        res = finding["Resources"][0]
        res["Id"] = res["Id"].rsplit("/", 1)[0] + f"/iot-shard-{i:02d}"
        res["Type"] = resource_type
        out.append(ev)
    return out


def build() -> list[dict[str, Any]]:
    ssh = fixture("asff_guardduty_ssh_bruteforce.json")
    log4j = fixture("asff_inspector_log4j.json")
    lambda_cve = fixture("asff_inspector_cvss_high_label_medium.json")
    config_rule = fixture("asff_config_rule_noncompliant.json")
    s3_failed = fixture("asff_control_s3_failed.json")
    s3_passed = fixture("asff_control_s3_passed.json")
    legacy = fixture("asff_control_legacy_two_standards.json")
    macie = fixture("asff_macie_sensitive_data.json")
    prowler = fixture("asff_third_party_prowler.json")
    custom = fixture("asff_custom_action_two_findings.json")
    ocsf_gd = fixture("ocsf_guardduty_detection.json")
    ocsf_same = fixture("ocsf_guardduty_same_as_asff.json")
    ocsf_ctl = fixture("ocsf_control_compliance_failed.json")
    ocsf_vuln = fixture("ocsf_inspector_vulnerability.json")
    ocsf_resolved = fixture("ocsf_detection_resolved.json")
    archived = fixture("asff_guardduty_archived.json")
    insight = fixture("insight_results.json")
    broken = fixture("asff_missing_required_field.json")

    # A HIGH Inspector finding that is re-scored CRITICAL later in the day (severity escalation).
    openssl = variant(
        log4j,
        "openssl-escalation",
        Severity={"Label": "HIGH", "Normalized": 70},
        Title="CVE-2026-31337 - openssl",
        Vulnerabilities=[{"Id": "CVE-2026-31337", "Cvss": [{"BaseScore": 8.1, "Version": "3.1", "Source": "NVD"}]}],
    )
    openssl_critical = resent(openssl, 300)
    f = openssl_critical["detail"]["findings"][0]
    f["Severity"] = {"Label": "CRITICAL", "Normalized": 90}
    f["Vulnerabilities"][0]["Cvss"][0]["BaseScore"] = 9.8

    events = [
        ssh,
        log4j,
        openssl,
        lambda_cve,
        config_rule,
        s3_failed,
        legacy,
        macie,
        prowler,
        ocsf_gd,
        ocsf_ctl,
        ocsf_vuln,
        *noise(config_rule, 4, "LOW", "AwsS3Bucket"),
        *noise(ssh, 3, "MEDIUM", "AwsEc2Instance"),
        *noise(log4j, 3, "LOW", "AwsEcrContainerImage"),
        insight,
        resent(ssh, 60),
        resent(log4j, 60),
        ocsf_same,  # the GuardDuty finding again, through the new Security Hub
        resent(s3_failed, 120),
        resent(legacy, 120),
        custom,  # an operator sends two findings to on-call by hand
        broken,  # malformed: no AwsAccountId; retried, then dead-lettered
        openssl_critical,  # re-scored: HIGH → CRITICAL
        resent(ssh, 240),
        s3_passed,  # the bucket was fixed: PASSED
        archived,  # GuardDuty finding archived
        ocsf_resolved,
        resent(macie, 360),
        resent(prowler, 360),
    ]
    return events


def main() -> None:
    events = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(ev, separators=(",", ":")) + "\n" for ev in events))
    findings = sum(len(ev.get("detail", {}).get("findings", [])) for ev in events)
    print(f"{OUT.relative_to(ROOT)}: {len(events)} events, {findings} findings")


if __name__ == "__main__":
    main()
