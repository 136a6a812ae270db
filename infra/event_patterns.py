"""The EventBridge event patterns of the ingestion rule and the ack receiver's rule, as plain data: no `aws_cdk` here.

Also the environment's Security Hub custom action (its ARN and `AWS::SecurityHub::ActionTarget` properties), which the
ingestion rule admits, and the tables the patterns are built from: the finding event detail-types, OCSF severities
and the conditions that make a finding a resolution. The constructs put these patterns into the rules as they are,
and the tests check the same patterns against real events, so what is tested is what deploys.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from findings_router.domain import canary
from findings_router.domain.model import Severity
from findings_router.domain.normalize import SECURITYHUB_SOURCE
from findings_router.settings.schema import Match, Policy, Rule

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

# `ingestion.resolutions: noted`: a PASSED compliance result passes only with a note (findings-router notes every
# finding it pages or notifies: adapters/securityhub.py); every other resolution passes as above.
_NOT_PASSED: list[Any] = [{"anything-but": ["PASSED"]}, {"exists": False}]
ASFF_NOTED_RESOLUTION_CONDITIONS: tuple[dict[str, Any], ...] = (
    {"RecordState": ["ARCHIVED"], "Compliance": {"Status": _NOT_PASSED}},
    {"Workflow": {"Status": ["RESOLVED", "SUPPRESSED"]}, "Compliance": {"Status": _NOT_PASSED}},
    {"WorkflowState": ["RESOLVED"], "Compliance": {"Status": _NOT_PASSED}},
    # Any noted finding (PASSED or not: wider, and shorter, than "PASSED and noted").
    {"Note": {"Text": [{"exists": True}]}},
)
# OCSF: a compliance status_id 1 (Pass) is PASSED to normalize (without a status_id, the status name decides: such a
# finding passes).
_OCSF_NOT_PASSED: dict[str, Any] = {"status_id": [{"anything-but": [1]}, {"exists": False}]}
OCSF_NOTED_RESOLUTION_CONDITIONS: tuple[dict[str, Any], ...] = (
    {"status_id": [3, 4, 5], "compliance": _OCSF_NOT_PASSED},
    {"activity_id": [3], "compliance": _OCSF_NOT_PASSED},
    {"comment": [{"exists": True}]},
)

# EventBridge's default quota for the size of an event pattern, in characters (adjustable to 4096 on request).
EVENT_PATTERN_MAX_CHARS = 2048
# Sub-patterns of one rule (each path through the `$or`s, as Event Ruler compiles them). EventBridge documents no limit
# on `$or` combinations (only the 2048 characters above, and a complexity limit for `wildcard`, which these patterns
# never use): this is our own budget, so that a rich policy coarsens its filter instead of growing without bound.
EVENT_PATTERN_MAX_SUB_PATTERNS = 64
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


def _within_labels(match: Match, labels: Sequence[Severity]) -> bool:
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
    for field in ("exploit_available", "fix_available", "min_epss", "min_cvss", "cve_id"):
        if getattr(match, field) is not None:
            asff, ocsf = _VULNERABILITY_FIELDS[field](getattr(match, field))
            return asff, ocsf
    return [], []


def _exploit(yes: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (
        [{"Vulnerabilities": {"ExploitAvailable": ["YES" if yes else "NO"]}}],
        [{"vulnerabilities": {"is_exploit_available": [yes]}}],
    )


def _fix(wanted_words: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    wanted = set(wanted_words) | ({"YES", "NO"} if "PARTIAL" in wanted_words else set())
    asff = sorted(wanted)
    coverage = sorted({"YES": "COMPLETE", "NO": "NONE", "PARTIAL": "PARTIAL"}[w] for w in wanted)
    fixable = sorted({w == "YES" for w in wanted if w != "PARTIAL"})
    ocsf: list[dict[str, Any]] = [{"vulnerabilities": {"fix_coverage": [{"equals-ignore-case": c} for c in coverage]}}]
    if fixable:
        ocsf.append({"vulnerabilities": {"is_fix_available": fixable}})
    return [{"Vulnerabilities": {"FixAvailable": asff}}], ocsf


def _epss(floor: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (
        [{"Vulnerabilities": {"EpssScore": [{"numeric": [">=", floor]}]}}],
        [{"vulnerabilities": {"cve": {"epss": {"score": [{"exists": True}]}}}}],
    )


def _cvss(floor: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (
        [{"Vulnerabilities": {"Cvss": {"BaseScore": [{"numeric": [">=", floor]}]}}}],
        [{"vulnerabilities": {"cve": {"cvss": {"base_score": [{"numeric": [">=", floor]}]}}}}],
    )


def _any_cve(_: object) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (
        [{"Vulnerabilities": {"Id": [{"exists": True}]}}],
        [{"vulnerabilities": {"cve": {"uid": [{"exists": True}]}}}],
    )


_VULNERABILITY_FIELDS: dict[str, Any] = {
    "exploit_available": _exploit,
    "fix_available": _fix,
    "min_epss": _epss,
    "min_cvss": _cvss,
    "cve_id": _any_cve,
}


def _admitting_rules(policy: Policy) -> list[Rule]:
    """The rules whose decisions reach someone: page or notify, live or shadow (a shadow rule's decision is recorded
    and reported apart: its findings must arrive too). A drop rule, or a suppression, only keeps findings from
    others: leaving them out admits more, never less."""
    return [rule for rule in policy.rules if rule.action != "drop"]


def vulnerability_admissions(
    policy: Policy, labels: Sequence[Severity] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What the label pre-filter must also admit so that no page or notify rule loses a finding it would match:
    vulnerability conditions (exploit, fix, EPSS, CVSS, CVE) hold whatever a finding's label, so a rule that has one
    and no severity condition within the labels (`ingestion.severity_labels`, or `labels`) needs its findings of
    every label. (ASFF, OCSF) conditions, each once, in rule order; empty without a pre-filter."""
    labels = policy.ingestion.severity_labels if labels is None else labels
    asff: list[dict[str, Any]] = []
    ocsf: list[dict[str, Any]] = []
    if not labels:
        return asff, ocsf
    for rule in _admitting_rules(policy):
        if rule.match is None or _within_labels(rule.match, labels):
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


# ------------------------------------------------------------------------------------------ the policy's filter
#
# `ingestion.filter: policy` compiles the rules into the pattern: an active finding passes when some page or notify
# rule (live or shadow) could match it. Each rule becomes one or more "fragments" (patterns on one element of
# `detail.findings`), from the conditions EventBridge can test as normalize reads them; a condition it cannot test
# exactly is widened or left out, never narrowed, so the pattern admits a superset of what the rules match.
# Resolutions, the environment's custom action and its canary always pass.

Fragment = dict[str, Any]


@dataclass(frozen=True)
class _Atom:
    """One condition of a rule, as the OR of `alternatives` (fragments on one finding). `root`: the array of objects
    the condition looks into; a fragment can hold one condition per such array, because EventBridge matches an
    object pattern against one element (normalize folds over all of them, so two conditions may hold on two)."""

    field: str
    alternatives: tuple[Fragment, ...]
    root: str | None = None


_Builder = Callable[[Any], "_Atom | None"]


# One condition per array-of-objects root and rule: the most selective is kept (left first).
_ROOT_PREFERENCE = (
    "cve_id",
    "resource_id",
    "exploit_available",
    "resource_tag",
    "min_cvss",
    "min_epss",
    "fix_available",
    "resource_type",
)


_WILDCARD_CHARACTERS = "*?["


def _pattern_value(pattern: str) -> Any | None:
    """A policy string condition (shell-style wildcards, case-sensitive) as one EventBridge matcher: the string itself,
    a prefix (`TTPs/*`) or a suffix (`*/guardduty`); None when it is neither (`a*b`, `?`, `[…]`, a bare `*`)."""
    if not any(c in pattern for c in _WILDCARD_CHARACTERS):
        return pattern
    body = pattern[:-1] if pattern.endswith("*") else None
    if body and not any(c in body for c in _WILDCARD_CHARACTERS):
        return {"prefix": body}
    tail = pattern[1:] if pattern.startswith("*") else None
    if tail and not any(c in tail for c in _WILDCARD_CHARACTERS):
        return {"suffix": tail}
    return None


def _pattern_values(patterns: Iterable[str]) -> list[Any] | None:
    """Each pattern as a matcher (`_pattern_value`), each once; None when one of them cannot be (the condition is
    then left out: it would admit anything anyway)."""
    out: list[Any] = []
    for pattern in patterns:
        value = _pattern_value(pattern)
        if value is None:
            return None
        if value not in out:
            out.append(value)
    return out


def _may_be_arn(value: Any) -> bool:
    """Whether a matcher can match an ARN (`arn:…`): the product condition then also looks at the product's ARN."""
    if isinstance(value, str):
        return value.startswith("arn:")
    if "prefix" in value:
        prefix = value["prefix"]
        return bool(prefix.startswith("arn:") or "arn:".startswith(prefix))
    return True  # a suffix


def _may_be_name(value: Any) -> bool:
    return not (isinstance(value, str) and value.startswith("arn:")) and not (
        isinstance(value, dict) and "prefix" in value and value["prefix"].startswith("arn:")
    )


def _productv2(values: list[Any]) -> list[Any]:
    """The new Security Hub spells a product `…:productv2/…` where CSPM (and the policy) say `…:product/…`."""
    out = list(values)
    for value in values:
        text = value if isinstance(value, str) else next(iter(value.values()))
        if ":product/" in text:
            v2 = text.replace(":product/", ":productv2/", 1)
            twin = v2 if isinstance(value, str) else {next(iter(value)): v2}
            if twin not in out:
                out.append(twin)
    return out


def _labels(match: Match) -> set[Severity] | None:
    """The labels a rule's severity conditions allow; None without any."""
    allowed: set[Severity] | None = None
    if match.severity is not None:
        allowed = set(match.severity)
    if match.min_severity is not None:
        floor = {s for s in Severity if s.rank >= match.min_severity.rank}
        allowed = floor if allowed is None else allowed & floor
    return allowed


def _resource_type_values(values: list[str]) -> list[str]:
    # As domain/policy.py: AWS::EC2::Instance also matches ASFF's AwsEc2Instance.
    out = list(values)
    for value in values:
        parts = value.split("::")
        if len(parts) == 3 and parts[0] == "AWS":
            out.append("Aws" + parts[1].capitalize() + parts[2])
    return list(dict.fromkeys(out))


def _tag_key_usable(key: str) -> bool:
    """A tag key EventBridge can address as a field name (Event Ruler joins field paths with dots)."""
    return bool(key) and "." not in key and not key.startswith("$")


def _strings(field: str, build: Callable[[list[Any]], tuple[Fragment, ...]], root: str | None = None) -> _Builder:
    """A condition on policy strings (wildcards allowed): left out when one cannot be a matcher."""

    def atom(patterns: list[str]) -> _Atom | None:
        values = _pattern_values(patterns)
        return None if values is None else _Atom(field, build(values), root)

    return atom


def _vulnerability(field: str, index: int, root: str) -> _Builder:
    def atom(value: Any) -> _Atom:
        return _Atom(field, tuple(_VULNERABILITY_FIELDS[field](value)[index]), root)

    return atom


def _split_products(values: list[Any]) -> tuple[list[Any], list[Any]]:
    """(names, ARNs): the matchers that can match a product name, and those that can match its ARN."""
    return [v for v in values if _may_be_name(v)], [v for v in values if _may_be_arn(v)]


def _asff_product(values: list[Any]) -> tuple[Fragment, ...]:
    # ProductName, else (missing or empty) ProductFields' name or the ARN's last part; or the ProductArn itself.
    names, arns = _split_products(values)
    named: tuple[Fragment, ...] = ({"ProductName": [*names, "", {"exists": False}]},) if names else ()
    return named + (({"ProductArn": arns},) if arns else ())


def _asff_control(values: list[Any]) -> tuple[Fragment, ...]:
    # Compliance.SecurityControlId, else ProductFields.ControlId, else GeneratorId security-control/<id>.
    absent = ["", {"exists": False}]
    generated = [_prefixed("security-control/", v) for v in values]
    return (
        {"Compliance": {"SecurityControlId": values}},
        {"Compliance": {"SecurityControlId": absent}, "ProductFields": {"ControlId": values}},
        {"Compliance": {"SecurityControlId": absent}, "GeneratorId": generated},
    )


def _asff_resource_tag(tags: dict[str, str]) -> _Atom | None:
    # Resources[].Tags is an object: one resource has every tag; '*' (or a wildcard) is any value.
    conditions = {
        key: [{"exists": True}] if (value := _pattern_value(pattern)) is None else [value]
        for key, pattern in tags.items()
        if _tag_key_usable(key)
    }
    return _Atom("resource_tag", ({"Resources": {"Tags": conditions}},), "Resources") if conditions else None


def _resource_types(build: Callable[[list[Any]], tuple[Fragment, ...]], root: str, *, ocsf: bool) -> _Builder:
    def atom(patterns: list[str]) -> _Atom | None:
        values = _pattern_values(_resource_type_values(patterns))
        if values is None or (ocsf and _policy_patterns_match(patterns, "Other")):
            return None  # OCSF: a resource without a type is "Other" to normalize
        return _Atom("resource_type", build(values), root)

    return atom


# Each `Match` field on an ASFF finding (domain/normalize/asff.py reads them). Not here: severity (with min_severity,
# `_severity_atom`), account (the environment's scope), sample (a sample finding is admitted; the rules gate it).
_ASFF_ATOMS: dict[str, _Builder] = {
    "product": _strings("product", _asff_product),
    "generator_id": _strings("generator_id", lambda v: ({"GeneratorId": v},)),
    "control_id": _strings("control_id", _asff_control),
    # Types, else FindingProviderFields.Types.
    "finding_type": _strings("finding_type", lambda v: ({"Types": v}, {"FindingProviderFields": {"Types": v}})),
    # Region, else the event's region or the product ARN's: a finding without one passes.
    "region": _strings("region", lambda v: ({"Region": [*v, "", {"exists": False}]},)),
    "resource_type": _resource_types(lambda v: ({"Resources": {"Type": v}},), "Resources", ocsf=False),
    "resource_id": _strings("resource_id", lambda v: ({"Resources": {"Id": v}},), "Resources"),
    "resource_tag": _asff_resource_tag,
    "min_cvss": _vulnerability("min_cvss", 0, "Vulnerabilities"),
    "cve_id": _strings("cve_id", lambda v: ({"Vulnerabilities": {"Id": v}},), "Vulnerabilities"),
    "exploit_available": _vulnerability("exploit_available", 0, "Vulnerabilities"),
    "fix_available": _vulnerability("fix_available", 0, "Vulnerabilities"),
    "min_epss": _vulnerability("min_epss", 0, "Vulnerabilities"),
    "title": _strings("title", lambda v: ({"Title": v},)),
}


def _ocsf_product(values: list[Any]) -> tuple[Fragment, ...]:
    # metadata.product.name, else the uid's last part; or the uid (…:productv2/… for CSPM's …:product/…).
    names, arns = _split_products(values)
    named: tuple[Fragment, ...] = (
        ({"metadata": {"product": {"name": [*names, "", {"exists": False}]}}},) if names else ()
    )
    return named + (({"metadata": {"product": {"uid": _productv2(arns)}}},) if arns else ())


def _ocsf_generator(patterns: list[str]) -> _Atom | None:
    # security-control/<compliance.control>, else finding_info.analytic uid or name.
    if any(_pattern_value(p) != p for p in patterns):
        return None
    controls = [p.removeprefix("security-control/") for p in patterns if p.startswith("security-control/")]
    others = [p for p in patterns if not p.startswith("security-control/")]
    alternatives: tuple[Fragment, ...] = ({"compliance": {"control": controls}},) if controls else ()
    if others:
        alternatives += (
            {"finding_info": {"analytic": {"uid": others}}},
            {"finding_info": {"analytic": {"name": others}}},
        )
    return _Atom("generator_id", alternatives)


def _ocsf_resource_id(values: list[Any]) -> tuple[Fragment, ...]:
    # The ARN in uid_alt, else uid (an account as its bare id); in `resources` or the singular `resource`.
    uids = list(values)
    uids += [
        v.removeprefix("AWS::::Account:") for v in values if isinstance(v, str) and v.startswith("AWS::::Account:")
    ]
    return tuple(
        {where: {key: found}}
        for where in ("resources", "resource")
        for key, found in (("uid_alt", values), ("uid", uids))
    )


def _ocsf_resource_tag(tags: dict[str, str]) -> _Atom | None:
    # tags are a list of {name, value} (or an object): the first usable tag only (one resource has every tag).
    tag = next(((k, v) for k, v in tags.items() if _tag_key_usable(k)), None)
    if tag is None:
        return None
    key, pattern = tag
    value = _pattern_value(pattern)
    listed: dict[str, Any] = {"name": [key]} if value is None else {"name": [key], "value": [value]}
    mapped = {key: [{"exists": True}] if value is None else [value]}
    return _Atom(
        "resource_tag",
        tuple({where: {"tags": tags}} for where in ("resources", "resource") for tags in (listed, mapped)),
        "resources",
    )


# Each `Match` field on an OCSF finding (domain/normalize/ocsf.py reads them); as _ASFF_ATOMS.
_OCSF_ATOMS: dict[str, _Builder] = {
    "product": _strings("product", _ocsf_product),
    "generator_id": _ocsf_generator,
    "control_id": _strings("control_id", lambda v: ({"compliance": {"control": v}},)),
    "finding_type": _strings("finding_type", lambda v: ({"finding_info": {"types": v}},)),
    "region": _strings("region", lambda v: ({"cloud": {"region": [*v, "", {"exists": False}]}},)),
    "resource_type": _resource_types(
        lambda v: ({"resources": {"type": v}}, {"resource": {"type": v}}), "resources", ocsf=True
    ),
    "resource_id": _strings("resource_id", _ocsf_resource_id, "resources"),
    "resource_tag": _ocsf_resource_tag,
    "min_cvss": _vulnerability("min_cvss", 1, "vulnerabilities"),
    "cve_id": _strings("cve_id", lambda v: ({"vulnerabilities": {"cve": {"uid": v}}},), "vulnerabilities"),
    "exploit_available": _vulnerability("exploit_available", 1, "vulnerabilities"),
    "fix_available": _vulnerability("fix_available", 1, "vulnerabilities"),
    "min_epss": _vulnerability("min_epss", 1, "vulnerabilities"),
    "title": _strings("title", lambda v: ({"finding_info": {"title": v}},)),
}


def _severity_atom(match: Match, *, ocsf: bool) -> _Atom | None:
    labels = _labels(match)
    if labels is None or labels == set(Severity):
        return None
    ordered = sorted(labels, key=lambda s: s.rank)
    if not ocsf:
        # Severity.Label as Security Hub spells it (ASFF's enum, upper case); without a Label normalize falls back on
        # Normalized or FindingProviderFields, so a finding without one passes.
        return _Atom("severity", ({"Severity": {"Label": [*(s.value for s in ordered), {"exists": False}]}},))
    if Severity.INFORMATIONAL in labels:
        return None  # severity_id 0, 99, unknown ids and names: INFORMATIONAL to normalize
    # severity_id (OCSF requires it; Security Hub's are 0-6 and 99); where it is 0 (Unknown), 99 (Other) or missing,
    # normalize reads the `severity` name instead: such a finding passes.
    ids = sorted({i for label in ordered for i in OCSF_SEVERITY_IDS[label]})
    return _Atom("severity", ({"severity_id": [*ids, 0, 99, {"exists": False}]},))


def _atoms(match: Match, *, ocsf: bool) -> list[_Atom]:
    """The conditions of `match` EventBridge can test on one finding of a format, widened where it cannot test
    them exactly as normalize reads them (each builder says how)."""
    atoms = [a for a in (_severity_atom(match, ocsf=ocsf),) if a is not None]
    for field, build in (_OCSF_ATOMS if ocsf else _ASFF_ATOMS).items():
        value = getattr(match, field, None)
        if value is not None and (atom := build(value)) is not None and atom.alternatives:
            atoms.append(atom)
    return atoms


def _prefixed(prefix: str, value: Any) -> Any:
    if isinstance(value, str):
        return prefix + value
    if "prefix" in value:
        return {"prefix": prefix + value["prefix"]}
    return value  # a suffix stays a suffix


def _policy_patterns_match(patterns: list[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _one_per_root(atoms: list[_Atom]) -> list[_Atom]:
    """At most one condition per array-of-objects root (the most selective, `_ROOT_PREFERENCE`)."""
    kept: dict[str, _Atom] = {}
    for atom in atoms:
        if atom.root is None:
            continue
        current = kept.get(atom.root)
        if current is None or _ROOT_PREFERENCE.index(atom.field) < _ROOT_PREFERENCE.index(current.field):
            kept[atom.root] = atom
    return [a for a in atoms if a.root is None or kept[a.root] is a]


_IMPOSSIBLE = object()


def _merge_fragments(left: Fragment, right: Fragment) -> Fragment | None:
    """Both fragments on one finding (AND). A field both constrain: the common values when both list plain values
    (None when there are none: the combination cannot match), else `left`'s condition alone (wider, never
    narrower)."""
    merged = dict(left)
    for key, value in right.items():
        if key not in merged:
            merged[key] = value
            continue
        current = merged[key]
        if isinstance(current, dict) and isinstance(value, dict):
            inner = _merge_fragments(current, value)
            if inner is None:
                return None
            merged[key] = inner
        elif (
            isinstance(current, list)
            and isinstance(value, list)
            and current != value
            and all(isinstance(v, str | int | float | bool) for v in (*current, *value))
        ):
            common = [v for v in current if v in value]
            if not common:
                return None
            merged[key] = common
    return merged


def _fragments(atoms: Sequence[_Atom]) -> list[Fragment]:
    """The fragments of one rule: every combination of its conditions' alternatives."""
    out: list[Fragment] = []
    for combination in itertools.product(*(atom.alternatives for atom in atoms)):
        fragment: Fragment | None = {}
        for part in combination:
            assert fragment is not None
            fragment = _merge_fragments(fragment, part)
            if fragment is None:
                break
        if fragment is not None and fragment not in out:
            out.append(fragment)
    return out


def _covers(wide: Any, narrow: Any) -> bool:
    """Whether pattern `wide` admits everything `narrow` does (conservatively: False when unsure)."""
    if isinstance(wide, dict) and isinstance(narrow, dict):
        return all(key in narrow and _covers(value, narrow[key]) for key, value in wide.items())
    if isinstance(wide, list) and isinstance(narrow, list):
        return all(v in wide for v in narrow)
    return False


def _pruned(fragments: list[Fragment]) -> list[Fragment]:
    """Without the fragments another one already admits (it has a subset of their conditions)."""
    kept: list[Fragment] = []
    for i, fragment in enumerate(fragments):
        if any(
            j != i and _covers(other, fragment) and (other != fragment or j < i) for j, other in enumerate(fragments)
        ):
            continue
        kept.append(fragment)
    return kept


FilterLevel = Literal["policy", "severity", "none"]


@dataclass(frozen=True)
class IngestionFilter:
    """What the ingestion rule filters on, as `event_pattern` builds it for a policy.

    `requested` is the policy's `ingestion.filter` (its default resolved); `level` is what the pattern does, coarser
    when the requested one does not fit EventBridge's quota (`reason` says why). A `policy` level may have left
    some rules' conditions out to fit (`widened`, as "rule <name>: <field>")."""

    requested: FilterLevel
    level: FilterLevel
    labels: tuple[Severity, ...] = ()  # the `severity` level's labels
    widened: tuple[str, ...] = ()
    reason: str | None = None
    size: int = 0  # characters, with the longest action target ARN
    sub_patterns: int = 0

    @property
    def coarsened(self) -> bool:
        return self.level != self.requested or bool(self.widened)


@dataclass(frozen=True)
class _RuleConditions:
    name: str
    asff: tuple[_Atom, ...]
    ocsf: tuple[_Atom, ...]


def _rule_conditions(policy: Policy) -> list[_RuleConditions] | None:
    """Each admitting rule's conditions per format; None when some admitting rule (or the default action) takes
    every finding, so only the accounts can filter."""
    if policy.default_action != "drop":
        return None
    scope = None if policy.all_accounts else set(policy.accounts)
    out = []
    for rule in _admitting_rules(policy):
        match = rule.match
        if match is None:
            return None
        if match.account is not None and scope is not None and not scope & set(match.account):
            continue  # a rule for accounts outside the environment never decides anything here
        if _labels(match) == set():
            continue  # severity and min_severity that no label satisfies both: the rule never matches
        asff, ocsf = _one_per_root(_atoms(match, ocsf=False)), _one_per_root(_atoms(match, ocsf=True))
        if not asff or not ocsf:
            return None
        out.append(_RuleConditions(rule.name, tuple(asff), tuple(ocsf)))
    return out


def _derived_labels(policy: Policy) -> list[Severity] | None:
    """The `severity` level's labels: those some admitting rule's severity condition allows; None when a rule (or the
    default action) has no severity condition and no vulnerability condition (vulnerability_admissions covers those
    that have one), so no label can be left out."""
    if policy.default_action != "drop":
        return None
    labels: set[Severity] = set()
    for rule in _admitting_rules(policy):
        allowed = _labels(rule.match) if rule.match is not None else None
        if allowed is not None:
            labels |= allowed
        elif rule.match is None or _vulnerability_admissions(rule.match) == ([], []):
            return None
    return sorted(labels, key=lambda s: s.rank) if labels and labels != set(Severity) else None


def _requested(policy: Policy) -> FilterLevel:
    return policy.ingestion.effective_filter


@dataclass(frozen=True)
class _Plan:
    level: FilterLevel
    labels: tuple[Severity, ...] = ()
    rules: tuple[_RuleConditions, ...] | None = None  # policy level; None: the rules filter nothing


def _longest_arn(policy: Policy) -> str | None:
    action = policy.custom_action
    return None if action is None else _LONGEST_ACTION_TARGET_ARN_PREFIX + action.id


def _sub_patterns(pattern: Any) -> int:
    """How many `$or`-free sub-patterns EventBridge compiles `pattern` into (tests/infra/eventbridge_matcher.expand)."""
    if not isinstance(pattern, dict):
        return 1
    count = 1
    for key, value in pattern.items():
        if key == "$or":
            count *= sum(_sub_patterns(branch) for branch in value)
        elif isinstance(value, dict):
            count *= _sub_patterns(value)
    return count


def _measure(policy: Policy, plan: _Plan) -> tuple[int, int]:
    pattern = _render(policy, plan, _longest_arn(policy))
    return len(json.dumps(pattern)), _sub_patterns(pattern)


def _fits(measured: tuple[int, int]) -> bool:
    return measured[0] <= EVENT_PATTERN_MAX_CHARS and measured[1] <= EVENT_PATTERN_MAX_SUB_PATTERNS


def _widen(rules: Sequence[_RuleConditions], policy: Policy) -> tuple[list[_RuleConditions], list[str]]:
    """Leave out conditions with several alternatives, those with the most (then the longest) first, as few as make
    the pattern fit; every rule keeps at least one condition per format. ([], []) when that is not enough."""
    ranked = sorted(
        (
            (len(atom.alternatives), len(json.dumps(atom.alternatives)), -i, kind, atom)
            for i, rule in enumerate(rules)
            for kind, atoms in (("asff", rule.asff), ("ocsf", rule.ocsf))
            for atom in atoms
            if len(atom.alternatives) > 1
        ),
        key=lambda c: (c[0], c[1], c[2]),
        reverse=True,
    )

    def without(count: int) -> tuple[list[_RuleConditions], list[str]]:
        current = list(rules)
        widened: list[str] = []
        for _, _, negative_index, kind, atom in ranked[:count]:
            i = -negative_index
            rule = current[i]
            asff = tuple(a for a in rule.asff if a is not atom) if kind == "asff" else rule.asff
            ocsf = tuple(a for a in rule.ocsf if a is not atom) if kind == "ocsf" else rule.ocsf
            if not asff or not ocsf:
                continue  # its last condition in this format: keep it
            current[i] = _RuleConditions(rule.name, asff, ocsf)
            note = f"rule {rule.name}: {atom.field}"
            if note not in widened:
                widened.append(note)
        return current, widened

    def fits(count: int) -> bool:
        return _fits(_measure(policy, _Plan("policy", rules=tuple(without(count)[0]))))

    if not ranked or not fits(len(ranked)):
        return [], []
    low, high = 0, len(ranked)  # fits(high); find the fewest
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    return without(high)


def ingestion_filter(policy: Policy) -> IngestionFilter:
    """The filter the ingestion rule applies (see `IngestionFilter`): the requested one when it fits EventBridge's
    quota (EVENT_PATTERN_MAX_CHARS characters with the longest action target ARN, EVENT_PATTERN_MAX_SUB_PATTERNS
    sub-patterns), else coarser: the policy's filter with some conditions left out, then a severity filter on the
    labels the rules can page, then the accounts alone."""
    requested = _requested(policy)
    plan, widened, reason = _choose(policy, requested)
    size, subs = _measure(policy, plan)
    return IngestionFilter(requested, plan.level, plan.labels, tuple(widened), reason, size, subs)


def _choose(policy: Policy, requested: FilterLevel) -> tuple[_Plan, list[str], str | None]:
    if requested == "none":
        return _Plan("none"), [], None
    if requested == "severity":
        return _Plan("severity", tuple(policy.ingestion.severity_labels or ())), [], None
    rules = _rule_conditions(policy)
    plan = _Plan("policy", rules=None if rules is None else tuple(rules))
    if rules is None or _fits(_measure(policy, plan)):
        return plan, [], None
    size, subs = _measure(policy, plan)
    why = (
        f"the policy's filter needs {size} characters and {subs} sub-patterns "
        f"(EventBridge allows {EVENT_PATTERN_MAX_CHARS} characters; our budget is {EVENT_PATTERN_MAX_SUB_PATTERNS} "
        "sub-patterns)"
    )
    narrower, widened = _widen(rules, policy)
    if narrower:
        return _Plan("policy", rules=tuple(narrower)), widened, why
    labels = _derived_labels(policy)
    if labels is not None:
        severity = _Plan("severity", tuple(labels))
        if _fits(_measure(policy, severity)):
            return severity, [], why
    return _Plan("none"), [], why


def _policy_findings(
    rules: Sequence[_RuleConditions] | None, kind: Literal["asff", "ocsf"], resolutions: Sequence[Fragment]
) -> list[Fragment] | None:
    """The fragments a finding of one format must match one of (rules, then resolutions); None: any finding."""
    if rules is None:
        return None
    fragments: list[Fragment] = []
    for rule in rules:
        for fragment in _fragments(rule.asff if kind == "asff" else rule.ocsf):
            if not fragment:
                return None
            if fragment not in fragments:
                fragments.append(fragment)
    fragments += [dict(r) for r in resolutions if r not in fragments]
    return _pruned(fragments)


def _with_conditions(base: dict[str, Any], alternatives: list[Fragment] | None) -> dict[str, Any]:
    """`base` (the account condition) AND one of `alternatives` (None or []: no more condition)."""
    if not alternatives:
        return dict(base)
    if len(alternatives) == 1:
        return _merge_fragments(base, alternatives[0]) or dict(base)
    return {**base, "$or": alternatives}


def resolution_conditions(policy: Policy) -> tuple[tuple[Fragment, ...], tuple[Fragment, ...]]:
    """(ASFF, OCSF) alternatives that admit the resolutions `ingestion.resolutions` asks for."""
    if policy.ingestion.resolutions == "noted":
        return ASFF_NOTED_RESOLUTION_CONDITIONS, OCSF_NOTED_RESOLUTION_CONDITIONS
    return ASFF_RESOLUTION_CONDITIONS, OCSF_RESOLUTION_CONDITIONS


def _render(policy: Policy, plan: _Plan, action_target_arn: str | None) -> dict[str, Any]:
    accounts = _accounts(policy)
    asff_resolutions, ocsf_resolutions = resolution_conditions(policy)
    asff_account: dict[str, Any] = {"AwsAccountId": accounts} if accounts else {}
    ocsf_account: dict[str, Any] = {"cloud": {"account": {"uid": accounts}}} if accounts else {}

    if plan.level == "policy":
        imported = _with_conditions(asff_account, _policy_findings(plan.rules, "asff", asff_resolutions))
        imported_v2 = _with_conditions(ocsf_account, _policy_findings(plan.rules, "ocsf", ocsf_resolutions))
    elif plan.level == "severity" and plan.labels:
        ordered = sorted(set(plan.labels), key=lambda s: s.rank)
        vulnerable_asff, vulnerable_ocsf = vulnerability_admissions(policy, ordered)
        imported = dict(asff_account)
        imported["$or"] = [*_severity_conditions_asff(ordered), *asff_resolutions, *vulnerable_asff]
        imported_v2 = dict(ocsf_account)
        imported_v2["$or"] = [*_severity_conditions_ocsf(ordered), *ocsf_resolutions, *vulnerable_ocsf]
    else:
        imported, imported_v2 = dict(asff_account), dict(ocsf_account)

    branches = [_branch(DETAIL_TYPE_IMPORTED, imported)]
    if policy.canary.routing_key_secret is not None:
        # The environment's canary, whatever the filter and from the deploying account, which need not be one of
        # `accounts` (the router checks the rest: domain/canary.py `sighting`).
        canary_finding = {"Id": [canary.finding_id(policy.environment)], "GeneratorId": [canary.GENERATOR_ID]}
        branches.append(_branch(DETAIL_TYPE_IMPORTED, canary_finding))
    if policy.custom_action is not None:
        if action_target_arn is None:
            raise ValueError("the policy has a custom_action: event_pattern needs its action_target_arn")
        branches.append(_branch(DETAIL_TYPE_CUSTOM_ACTION, dict(asff_account), resources=[action_target_arn]))
    if policy.ingestion.include_ocsf:
        branches.append(_branch(DETAIL_TYPE_IMPORTED_V2, imported_v2))

    # Branches that only name a detail-type (no account or other condition) are one branch.
    plain = [b for b in branches if set(b) == {"detail-type"}]
    conditioned = [b for b in branches if set(b) != {"detail-type"}]
    if plain:
        conditioned.insert(0, {"detail-type": [t for b in plain for t in b["detail-type"]]})
    if len(conditioned) == 1:
        return {"source": [SECURITYHUB_SOURCE], **conditioned[0]}
    return {"source": [SECURITYHUB_SOURCE], "$or": conditioned}


def event_pattern(policy: Policy, *, action_target_arn: str | None = None) -> dict[str, Any]:
    """The EventBridge pattern of the ingestion rule (default bus).

    Only findings of the environment's `accounts` pass (and the environment's canary finding, from any account): ASFF
    `AwsAccountId`, OCSF `cloud.account.uid` (no condition for ["*"]). Of those, `ingestion.filter` says which:

    * `policy` (the default without `severity_labels`): a finding some page or notify rule (live or shadow) could
      match, by the conditions EventBridge can test (severity, product, control, type, region, resources, tags,
      vulnerabilities and their CVSS and EPSS scores, title), or a resolution (archived, PASSED, RESOLVED/SUPPRESSED,
      OCSF equivalents), so that whatever the router holds sees its end. A condition EventBridge cannot test as the
      router reads it is widened or left out, never narrowed (see the fragment builders); too rich a policy is
      coarsened to fit (`ingestion_filter`).
    * `severity` (with `severity_labels`): one of those labels, or a resolution, or what a page or notify rule's
      vulnerability condition looks for (`vulnerability_admissions`): a rule paging known exploits or any CVSS >= 9
      must see them whatever their label.
    * `none`: every finding.

    Custom Action events pass only for the environment's own action target (`action_target_arn`, required when the
    policy has `custom_action`) and whatever their severity: an operator sent them by hand. Without `custom_action` no
    Custom Action event passes. Insight Results and other detail-types never match: they carry no findings.

    Matching descends into the `detail.findings` array: an object pattern matches when one element matches all of
    it ("array consistency", Event Ruler's `rulesForJSONEvent`), so the account and the label or resolution must be
    those of the same finding. `$or` compiles into one sub-pattern per branch (nested `$or`s multiply), and needs at
    least two branches: a single remaining branch is written without it.

    The action target is matched by its exact ARN, not by a `suffix` on `:action/custom/<id>`: the rule is on this
    account's and region's default bus, where only this stack's action target has that ARN, while a suffix would
    also admit the same id's events forwarded from another account's or region's bus. The ARN is an argument so
    this stays plain data: the stack passes CloudFormation's value for its action target, tests a literal ARN.
    """
    plan, _, _ = _choose(policy, _requested(policy))
    return _render(policy, plan, action_target_arn)


def event_pattern_size(policy: Policy) -> int:
    """Characters of the deployed pattern at most (JSON with spaces; the action target's ARN at its longest)."""
    return len(json.dumps(event_pattern(policy, action_target_arn=_longest_arn(policy))))


# ------------------------------------------------------------------------------------------ ack receiver pattern


def ack_event_pattern() -> dict[str, Any]:
    """The rule on the PagerDuty partner event bus: PagerDuty's webhook events, nothing else."""
    return {
        "source": [{"prefix": PAGERDUTY_PARTNER_SOURCE_PREFIX}],
        "detail-type": [PAGERDUTY_EVENTBRIDGE_DETAIL_TYPE],
    }
