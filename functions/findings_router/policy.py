"""Per-environment policy: which findings page, which notify, which are dropped. Pure: `now` is passed in.

Order: an active suppression wins, then the first matching rule, then `default_action`.
Rules are compiled once (wildcards → regexes) because they run for every finding.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from findings_router.config import Action, Match, Policy, Urgency
from findings_router.model import SEVERITY_RANK, Finding

Predicate = Callable[[Finding], bool]


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    action: Action
    urgency: Urgency
    reason: str


def _patterns(values: Sequence[str]) -> Callable[[str], bool]:
    """Exact strings go in a set; wildcards become one case-sensitive regex."""
    exact = {v for v in values if not any(c in v for c in "*?[")}
    wild = [fnmatch.translate(v) for v in values if v not in exact]
    regex = re.compile("|".join(wild)) if wild else None

    def matches(value: str) -> bool:
        return value in exact or (regex is not None and regex.match(value) is not None)

    return matches


def _resource_type_aliases(values: Sequence[str]) -> list[str]:
    # Accept both spellings (ASFF AwsEc2Instance and CloudFormation/OCSF AWS::EC2::Instance) in one condition.
    out = list(values)
    for v in values:
        parts = v.split("::")
        if len(parts) == 3 and parts[0] == "AWS":  # AWS::EC2::Instance → AwsEc2Instance
            out.append("Aws" + parts[1].capitalize() + parts[2])
    return out


def compile_match(match: Match) -> Predicate:
    """`Match` → one predicate that ANDs the given conditions."""
    checks: list[Predicate] = []
    if match.severity is not None:
        wanted = frozenset(match.severity)
        checks.append(lambda f: f.severity in wanted)
    if match.min_severity is not None:
        floor = SEVERITY_RANK[match.min_severity]
        checks.append(lambda f: SEVERITY_RANK[f.severity] >= floor)
    if match.product is not None:
        product = _patterns(match.product)
        checks.append(lambda f: product(f.product_name) or product(f.product_arn))
    if match.generator_id is not None:
        gen = _patterns(match.generator_id)
        checks.append(lambda f: gen(f.generator_id))
    if match.control_id is not None:
        ctl = _patterns(match.control_id)
        checks.append(lambda f: f.control_id is not None and ctl(f.control_id))
    if match.finding_type is not None:
        ftype = _patterns(match.finding_type)
        checks.append(lambda f: any(ftype(t) for t in f.types))
    if match.account is not None:
        accounts = frozenset(match.account)
        checks.append(lambda f: f.account in accounts)
    if match.region is not None:
        region = _patterns(match.region)
        checks.append(lambda f: region(f.region))
    if match.resource_type is not None:
        rtype = _patterns(_resource_type_aliases(match.resource_type))
        checks.append(lambda f: any(rtype(r.type) for r in f.resources))
    if match.resource_id is not None:
        rid = _patterns(match.resource_id)
        checks.append(lambda f: any(rid(r.id) for r in f.resources))
    if match.resource_tag is not None:
        tag_checks = [(k, _patterns([v])) for k, v in match.resource_tag.items()]

        def has_tags(f: Finding) -> bool:
            return any(all((value := r.tag(k)) is not None and ok(value) for k, ok in tag_checks) for r in f.resources)

        checks.append(has_tags)
    if match.min_cvss is not None:
        floor_cvss = match.min_cvss
        checks.append(lambda f: f.max_cvss is not None and f.max_cvss >= floor_cvss)
    if match.cve_id is not None:
        cve = _patterns(match.cve_id)
        checks.append(lambda f: any(cve(c) for c in f.cve_ids))
    if match.title is not None:
        title = _patterns(match.title)
        checks.append(lambda f: title(f.title))
    if match.sample is not None:
        sample = match.sample
        checks.append(lambda f: f.sample is sample)

    if len(checks) == 1:
        return checks[0]
    return lambda f: all(check(f) for check in checks)


def _always(_: Finding) -> bool:
    return True


@dataclass(frozen=True)
class _CompiledRule:
    name: str
    predicate: Predicate
    action: Action
    urgency: Urgency
    takes_samples: bool  # only a rule that says `sample: true` may page or notify a sample finding


@dataclass(frozen=True)
class _CompiledSuppression:
    name: str
    predicate: Predicate
    owner: str
    expires: dt.date | None


class CompiledPolicy:
    """A `Policy` ready to evaluate findings fast."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.environment = policy.environment
        self._rules = [
            _CompiledRule(
                r.name,
                compile_match(r.match) if r.match else _always,
                r.action,
                r.effective_urgency,
                r.match is not None and r.match.sample is True,
            )
            for r in policy.rules
        ]
        self._suppressions = [
            _CompiledSuppression(s.name, compile_match(s.match), s.owner, s.expires) for s in policy.suppressions
        ]
        default = policy.default_action
        self._default = PolicyDecision(default, "high" if default == "page" else "low", "default_action")

    def evaluate(self, finding: Finding, now: dt.datetime) -> PolicyDecision:
        today = now.date()
        for s in self._suppressions:
            if (s.expires is None or today <= s.expires) and s.predicate(finding):
                return PolicyDecision("drop", "low", f"suppression {s.name} (owner {s.owner})")
        skipped: _CompiledRule | None = None
        for r in self._rules:
            if r.predicate(finding):
                if finding.sample and r.action != "drop" and not r.takes_samples:
                    # `create-sample-findings` is run to test integrations: it must not wake anyone unless a rule
                    # asks for samples explicitly.
                    skipped = skipped or r
                    continue
                return PolicyDecision(r.action, r.urgency, f"rule {r.name}")
        if finding.sample and (skipped is not None or self._default.action != "drop"):
            would = (
                f"rule {skipped.name} would {skipped.action}" if skipped else f"default_action {self._default.action}"
            )
            return PolicyDecision("drop", "low", f"sample finding: {would}, but no rule with `sample: true` matched")
        return self._default

    def expired_suppressions(self, now: dt.datetime) -> list[str]:
        today = now.date()
        return [s.name for s in self._suppressions if s.expires is not None and today > s.expires]
