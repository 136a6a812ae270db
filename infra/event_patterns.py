"""The EventBridge event patterns of the ingestion rule and the ack receiver's rule, as plain data: no `aws_cdk` here.

Also the environment's Security Hub custom action (its ARN and `AWS::SecurityHub::ActionTarget` properties), which the
ingestion rule admits, and the tables the patterns are built from: the finding event detail-types, OCSF severities
and the conditions that make a finding a resolution. The constructs put these patterns into the rules as they are,
and the tests check the same patterns against real events, so what is tested is what deploys.
"""

from __future__ import annotations

import json
from typing import Any

from findings_router.domain import canary
from findings_router.domain.model import Severity
from findings_router.domain.normalize import SECURITYHUB_SOURCE
from findings_router.settings.schema import Match, Policy

# ------------------------------------------------------------------------------------------ ingestion

DETAIL_TYPE_IMPORTED = "Security Hub Findings - Imported"
DETAIL_TYPE_CUSTOM_ACTION = "Security Hub Findings - Custom Action"
DETAIL_TYPE_IMPORTED_V2 = "Findings Imported V2"

# OCSF severity_id → our label, as findings_router.domain.normalize reads it: 0 Unknown and 99 Other count as
# informational (normalize also falls back to the `severity` name, matched below too).
OCSF_SEVERITY_IDS: dict[Severity, tuple[int, ...]] = {
    Severity.INFORMATIONAL: (0, 1, 99),
    Severity.LOW: (2,),
    Severity.MEDIUM: (3,),
    Severity.HIGH: (4,),
    Severity.CRITICAL: (5, 6),
}
OCSF_SEVERITY_NAMES: dict[Severity, tuple[str, ...]] = {
    Severity.INFORMATIONAL: ("informational",),
    Severity.LOW: ("low",),
    Severity.MEDIUM: ("medium",),
    Severity.HIGH: ("high",),
    Severity.CRITICAL: ("critical", "fatal"),
}

# A finding Security Hub considers gone (findings_router.domain.model.Finding.is_resolved). These must pass any severity
# pre-filter: without them a paged incident is never resolved.
ASFF_RESOLUTION_CONDITIONS: tuple[dict[str, Any], ...] = (
    {"RecordState": ["ARCHIVED"]},
    {"Compliance": {"Status": ["PASSED"]}},
    {"Workflow": {"Status": ["RESOLVED", "SUPPRESSED"]}},
    # Retired field that normalize still reads when Workflow.Status is absent.
    {"WorkflowState": ["RESOLVED"]},
)
OCSF_RESOLUTION_CONDITIONS: tuple[dict[str, Any], ...] = (
    {"status_id": [3, 4, 5]},  # Suppressed, Resolved, Archived
    {"activity_id": [3]},  # Close
    {"compliance": {"status_id": [1]}},  # Pass
    {"compliance": {"status": [{"equals-ignore-case": "pass"}, {"equals-ignore-case": "passed"}]}},
)

# EventBridge's default quota for the size of an event pattern, in characters (adjustable to 4096 on request).
EVENT_PATTERN_MAX_CHARS = 2048
# The longest ARN Security Hub can give this stack's action target (partition, region and account at their longest),
# used to size the pattern at synth: the deployed pattern holds the real ARN, resolved by CloudFormation.
_LONGEST_ACTION_TARGET_ARN_PREFIX = "arn:aws-iso-b:securityhub:ap-southeast-5:123456789012:action/custom/"

# ------------------------------------------------------------------------------------------ ack receiver

# PagerDuty's EventBridge integration: events on the partner event bus, sources aws.partner/pagerduty.com/<name>.
PAGERDUTY_PARTNER_SOURCE_PREFIX = "aws.partner/pagerduty.com/"
PAGERDUTY_EVENTBRIDGE_DETAIL_TYPE = "PagerDuty Webhook"


# ------------------------------------------------------------------------------------------ custom action


def action_target_arn(action_id: str, *, region: str, account: str, partition: str = "aws") -> str:
    """The ARN of a Security Hub custom action target (`AWS::SecurityHub::ActionTarget`), the value Security Hub puts
    in `resources` of the action's `Security Hub Findings - Custom Action` events."""
    return f"arn:{partition}:securityhub:{region}:{account}:action/custom/{action_id}"


def action_target_properties(policy: Policy) -> dict[str, str] | None:
    """`AWS::SecurityHub::ActionTarget` properties of the environment's own custom action; None without one.

    The console lists the action by its Name (Security Hub: at most 20 characters) under Actions, with the
    Description next to it: both say what choosing it does, for which environment.
    """
    action = policy.custom_action
    if action is None:
        return None
    env = policy.environment
    verb = {"page": "Page", "notify": "Notify", "policy": "Send to"}[action.mode]
    # "Page on-call prod"; an environment name too long for that keeps its name and drops "on-call".
    name = next(n for n in (f"{verb} on-call {env}", f"{verb} {env}", f"{verb} on-call") if len(n) <= 20)
    effect = {
        "page": f"findings-router: pages the {env} on-call engineer in PagerDuty (high urgency) for each selected "
        "active finding, whatever its severity or the policy rules.",
        "notify": f"findings-router: notifies the {env} on-call engineer in PagerDuty at low urgency (no page) for "
        "each selected active finding, whatever its severity or the policy rules.",
        "policy": f"findings-router: sends the selected findings to the {env} routing policy, whose rules decide "
        "whether on-call is paged, notified or not told.",
    }[action.mode]
    scope = "" if policy.all_accounts else f" Ignores findings of accounts outside {env}."
    return {"Id": action.id, "Name": name, "Description": effect + scope}


# ------------------------------------------------------------------------------------------ ingestion pattern


def _severity_conditions_asff(labels: list[Severity]) -> list[dict[str, Any]]:
    return [{"Severity": {"Label": [label.value for label in labels]}}]


def _severity_conditions_ocsf(labels: list[Severity]) -> list[dict[str, Any]]:
    ids = sorted({i for label in labels for i in OCSF_SEVERITY_IDS[label]})
    names = [name for label in labels for name in OCSF_SEVERITY_NAMES[label]]
    return [
        {"severity_id": ids},
        {"severity": [{"equals-ignore-case": name} for name in names]},
    ]


def _within_labels(match: Match, labels: list[Severity]) -> bool:
    """Whether a rule's own severity condition keeps it to findings the label pre-filter admits anyway."""
    allowed = set(labels)
    if match.severity is not None and set(match.severity) <= allowed:
        return True
    if match.min_severity is not None:
        floor = match.min_severity.rank
        return {s for s in Severity if s.rank >= floor} <= allowed
    return False


def _vulnerability_admissions(match: Match) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(ASFF, OCSF) conditions admitting every finding one vulnerability condition of `match` can hold for, whatever
    its label: the first of exploit_available, fix_available, min_epss, min_cvss, cve_id that `match` has (the rule
    needs all of them, so one suffices), as normalize reads it (domain/normalize/_json.py). ([], []) when it has none.

    Conditions on an array of objects match when one element does, so each says "some vulnerability has …": a
    superset of what normalize folds over all of them (exploit true: any YES; fix YES: some YES, as all are; fix
    PARTIAL: a PARTIAL, or a YES and a NO). EventBridge cannot compare OCSF's EPSS score (a string) as a number: any
    score is admitted."""
    if match.exploit_available is not None:
        yes = match.exploit_available
        return (
            [{"Vulnerabilities": {"ExploitAvailable": ["YES" if yes else "NO"]}}],
            [{"vulnerabilities": {"is_exploit_available": [yes]}}],
        )
    if match.fix_available is not None:
        wanted = set(match.fix_available) | ({"YES", "NO"} if "PARTIAL" in match.fix_available else set())
        asff = sorted(wanted)
        coverage = sorted({"YES": "COMPLETE", "NO": "NONE", "PARTIAL": "PARTIAL"}[w] for w in wanted)
        fixable = sorted({w == "YES" for w in wanted if w != "PARTIAL"})
        ocsf: list[dict[str, Any]] = [
            {"vulnerabilities": {"fix_coverage": [{"equals-ignore-case": c} for c in coverage]}}
        ]
        if fixable:
            ocsf.append({"vulnerabilities": {"is_fix_available": fixable}})
        return [{"Vulnerabilities": {"FixAvailable": asff}}], ocsf
    if match.min_epss is not None:
        return (
            [{"Vulnerabilities": {"EpssScore": [{"numeric": [">=", match.min_epss]}]}}],
            [{"vulnerabilities": {"cve": {"epss": {"score": [{"exists": True}]}}}}],
        )
    if match.min_cvss is not None:
        return (
            [{"Vulnerabilities": {"Cvss": {"BaseScore": [{"numeric": [">=", match.min_cvss]}]}}}],
            [{"vulnerabilities": {"cve": {"cvss": {"base_score": [{"numeric": [">=", match.min_cvss]}]}}}}],
        )
    if match.cve_id is not None:
        return (
            [{"Vulnerabilities": {"Id": [{"exists": True}]}}],
            [{"vulnerabilities": {"cve": {"uid": [{"exists": True}]}}}],
        )
    return [], []


def vulnerability_admissions(policy: Policy) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What the label pre-filter must also admit so that no page or notify rule loses a finding it would match:
    vulnerability conditions (exploit, fix, EPSS, CVSS, CVE) hold whatever a finding's label, so a rule that has one
    and no severity condition within `ingestion.severity_labels` needs its findings of every label. (ASFF, OCSF)
    conditions, each once, in rule order; empty without a pre-filter."""
    labels = policy.ingestion.severity_labels
    asff: list[dict[str, Any]] = []
    ocsf: list[dict[str, Any]] = []
    if not labels:
        return asff, ocsf
    for rule in policy.rules:
        if rule.action == "drop" or rule.match is None or _within_labels(rule.match, labels):
            continue
        more_asff, more_ocsf = _vulnerability_admissions(rule.match)
        asff += [c for c in more_asff if c not in asff]
        ocsf += [c for c in more_ocsf if c not in ocsf]
    return asff, ocsf


def _accounts(policy: Policy) -> list[str] | None:
    # Sorted so the synthesized template does not change with the order of accounts in the YAML file.
    return None if policy.all_accounts else sorted(policy.accounts)


def detail_types(policy: Policy) -> list[str]:
    types = [DETAIL_TYPE_IMPORTED]
    if policy.custom_action is not None:
        types.append(DETAIL_TYPE_CUSTOM_ACTION)
    if policy.ingestion.include_ocsf:
        types.append(DETAIL_TYPE_IMPORTED_V2)
    return types


def _branch(detail_type: str, findings: dict[str, Any], **top_level: list[Any]) -> dict[str, Any]:
    branch: dict[str, Any] = {"detail-type": [detail_type], **top_level}
    if findings:
        branch["detail"] = {"findings": findings}
    return branch


def event_pattern(policy: Policy, *, action_target_arn: str | None = None) -> dict[str, Any]:
    """The EventBridge pattern of the ingestion rule (default bus).

    Only findings of the environment's `accounts` pass (and the environment's canary finding, from any account): ASFF `AwsAccountId`, OCSF `cloud.account.uid` (no condition
    for ["*"]). With `ingestion.severity_labels`, such a finding must also have one of those labels *or* be a
    resolution (archived, PASSED, RESOLVED/SUPPRESSED, OCSF equivalents), so incidents still resolve, *or* have what
    a page or notify rule's vulnerability condition looks for (`vulnerability_admissions`): a rule paging known
    exploits or any CVSS >= 9 must see them whatever their label. Custom Action
    events pass only for the environment's own action target (`action_target_arn`, required when the policy has
    `custom_action`) and whatever their severity: an operator sent them by hand. Without `custom_action` no Custom
    Action event passes. Insight Results and other detail-types never match: they carry no findings.

    Matching descends into the `detail.findings` array: an object pattern matches when one element matches all of
    it ("array consistency", Event Ruler's `rulesForJSONEvent`), so the account and the label or resolution must be
    those of the same finding. `$or` compiles into one sub-pattern per branch (nested `$or`s multiply), and needs at
    least two branches: a single remaining branch is written without it.

    The action target is matched by its exact ARN, not by a `suffix` on `:action/custom/<id>`: the rule is on this
    account's and region's default bus, where only this stack's action target has that ARN, while a suffix would
    also admit the same id's events forwarded from another account's or region's bus. The ARN is an argument so
    this stays plain data: the stack passes CloudFormation's value for its action target, tests a literal ARN.
    """
    accounts = _accounts(policy)
    labels = policy.ingestion.severity_labels
    # Sorted so the synthesized template does not change with the order of labels in the YAML file.
    ordered = sorted(set(labels), key=lambda s: s.rank) if labels else []
    asff_account: dict[str, Any] = {"AwsAccountId": accounts} if accounts else {}
    ocsf_account: dict[str, Any] = {"cloud": {"account": {"uid": accounts}}} if accounts else {}

    vulnerable_asff, vulnerable_ocsf = vulnerability_admissions(policy)
    imported = dict(asff_account)
    if ordered:
        imported["$or"] = [*_severity_conditions_asff(ordered), *ASFF_RESOLUTION_CONDITIONS, *vulnerable_asff]
    branches = [_branch(DETAIL_TYPE_IMPORTED, imported)]
    if policy.canary.routing_key_secret is not None:
        # The environment's canary, whatever the severity pre-filter and from the deploying account, which need
        # not be one of `accounts` (the router checks the rest: domain/canary.py `sighting`).
        canary_finding = {"Id": [canary.finding_id(policy.environment)], "GeneratorId": [canary.GENERATOR_ID]}
        branches.append(_branch(DETAIL_TYPE_IMPORTED, canary_finding))
    if policy.custom_action is not None:
        if action_target_arn is None:
            raise ValueError("the policy has a custom_action: event_pattern needs its action_target_arn")
        branches.append(_branch(DETAIL_TYPE_CUSTOM_ACTION, dict(asff_account), resources=[action_target_arn]))
    if policy.ingestion.include_ocsf:
        imported_v2 = dict(ocsf_account)
        if ordered:
            imported_v2["$or"] = [*_severity_conditions_ocsf(ordered), *OCSF_RESOLUTION_CONDITIONS, *vulnerable_ocsf]
        branches.append(_branch(DETAIL_TYPE_IMPORTED_V2, imported_v2))

    # Branches that only name a detail-type (no account or severity condition) are one branch.
    plain = [b for b in branches if set(b) == {"detail-type"}]
    conditioned = [b for b in branches if set(b) != {"detail-type"}]
    if plain:
        conditioned.insert(0, {"detail-type": [t for b in plain for t in b["detail-type"]]})
    if len(conditioned) == 1:
        return {"source": [SECURITYHUB_SOURCE], **conditioned[0]}
    return {"source": [SECURITYHUB_SOURCE], "$or": conditioned}


def event_pattern_size(policy: Policy) -> int:
    """Characters of the deployed pattern at most (JSON with spaces; the action target's ARN at its longest)."""
    arn = None
    if policy.custom_action is not None:
        arn = _LONGEST_ACTION_TARGET_ARN_PREFIX + policy.custom_action.id
    return len(json.dumps(event_pattern(policy, action_target_arn=arn)))


# ------------------------------------------------------------------------------------------ ack receiver pattern


def ack_event_pattern() -> dict[str, Any]:
    """The rule on the PagerDuty partner event bus: PagerDuty's webhook events, nothing else."""
    return {
        "source": [{"prefix": PAGERDUTY_PARTNER_SOURCE_PREFIX}],
        "detail-type": [PAGERDUTY_EVENTBRIDGE_DETAIL_TYPE],
    }
