"""Per-environment policy: which findings page, which notify, which are dropped. Pure: `now` is passed in.

Order: an active suppression wins, then the first matching rule, then `default_action`. A suppression past its
`expires` date no longer applies; when it would still have matched, the decision's reason says so.
Rules are compiled once (wildcards → regexes) because they run for every finding.

Each condition of a `Match` is one `_Condition`: the test that `compile_match` ANDs into a rule's predicate, and the
words that `explain_match` (`findings-router explain`) puts next to that very test's result, so an explanation
can never disagree with the decision.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal

from findings_router.domain.model import SEVERITY_RANK, Finding, Resource, Severity
from findings_router.settings.schema import PRIMARY_NOTIFIER, Action, Match, Policy, Urgency

Predicate = Callable[[Finding], bool]


Describe = Callable[[Finding, bool], str]  # (finding, whether the test held) → what it had, for people


SAMPLE_GATE = "a sample finding needs a rule with sample: true"


_SHOWN = 120  # characters of a finding's value quoted in an explanation


_LISTED = 5  # values of a finding (types, resources, CVEs) quoted in an explanation


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    action: Action
    urgency: Urgency
    reason: str
    # Where a page or notification goes (the rule's `notify`, else `default_notify`); () is the primary `notifier`.
    notify: tuple[str, ...] = ()
    # What decided, as episodes record it (shadow-report counts per rule): a rule's name, `default_action`,
    # `custom_action`; "" for a suppression, a sample finding's drop or a finding out of scope.
    rule: str = ""


@dataclass(frozen=True, slots=True)
class ConditionResult:
    """One condition of a rule or suppression against one finding: `severity: MEDIUM not in [HIGH, CRITICAL]`."""

    field: str  # the `Match` field (or `sample` for the sample-finding gate)
    matched: bool
    detail: str

    @property
    def text(self) -> str:
        return f"{self.field}: {self.detail}"


StepStatus = Literal["decided", "no match", "expired"]


@dataclass(frozen=True, slots=True)
class Step:
    """One suppression or rule that `CompiledPolicy.explain` looked at, in evaluation order."""

    kind: Literal["suppression", "rule"]
    name: str
    action: Action  # what it does when it applies (a suppression drops)
    urgency: Urgency
    status: StepStatus  # decided: made the decision; expired: a suppression past `expires` (conditions still shown)
    conditions: tuple[ConditionResult, ...]  # every condition, not only up to the first that failed; () = any finding
    expires: dt.date | None = None

    @property
    def matched(self) -> bool:
        """All conditions held (for an expired suppression: it would have matched)."""
        return all(c.matched for c in self.conditions)


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why `CompiledPolicy.evaluate` decides what it decides; `decision` is exactly what `evaluate` returns."""

    steps: tuple[Step, ...]
    decision: PolicyDecision
    not_reached: tuple[str, ...]  # "rule <name>" / "suppression <name>" after the deciding one (the first match wins)

    @property
    def decided_by(self) -> Step | None:
        """The suppression or rule that decided; None when `default_action` (or the sample-finding drop) did."""
        return next((s for s in self.steps if s.status == "decided"), None)


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


def _q(value: str) -> str:
    """A finding's value, quoted and clipped."""
    value = value.replace("\n", " ")
    return repr(value if len(value) <= _SHOWN else value[: _SHOWN - 1] + "…")


def _listed(values: Iterable[object]) -> str:
    """A condition's values as written in the policy: [HIGH, CRITICAL]."""
    return "[" + ", ".join(str(v) for v in values) + "]"


def _some(values: Sequence[str]) -> str:
    shown = ", ".join(_q(v) for v in values[:_LISTED])
    return shown + (f" and {len(values) - _LISTED} more" if len(values) > _LISTED else "")


Built = tuple[Predicate, Describe]


def _verb(matched: bool) -> str:
    return "matches" if matched else "does not match"


Extract = Callable[[Finding], Any]  # the value of a finding a condition looks at


def _one_of(
    get: Extract, show: Callable[[Finding], str], missing: str | None = None
) -> Callable[[Sequence[Any]], Built]:
    """A condition that holds when the finding's value (`get`) is one of the listed values, exactly. `missing`: the
    words for a finding without the value (`get` gives None), which never matches; None: every finding has it."""

    def build(values: Sequence[Any]) -> Built:
        wanted = frozenset(values)
        shown = _listed(values)

        def describe(f: Finding, ok: bool) -> str:
            if missing is not None and get(f) is None:
                return missing
            return f"{show(f)} {'in' if ok else 'not in'} {shown}"

        return (lambda f: get(f) in wanted), describe

    return build


def _pattern(get: Extract, missing: str | None = None) -> Callable[[Sequence[str]], Built]:
    """A condition that holds when the finding's string (`get`) matches one of the listed patterns. `missing`: the
    words for a finding without the value (`get` gives None), which never matches; None: every finding has it."""

    def build(values: Sequence[str]) -> Built:
        matches = _patterns(values)
        shown = _listed(values)

        def describe(f: Finding, ok: bool) -> str:
            value = get(f)
            if value is None and missing is not None:
                return missing
            return f"{_q(value)} {_verb(ok)} {shown}"

        if missing is None:
            return (lambda f: matches(get(f))), describe
        return (lambda f: (value := get(f)) is not None and matches(value)), describe

    return build


def _any_pattern(
    what: str, get: Callable[[Finding], Iterable[str]], aliases: Callable[[Sequence[str]], list[str]] | None = None
) -> Callable[[Sequence[str]], Built]:
    """A condition that holds when any of the finding's values (`get`: types, resources, CVEs), called `what` in
    words, matches one of the listed patterns (or of their `aliases`, which the words do not show)."""

    def build(values: Sequence[str]) -> Built:
        matches = _patterns(aliases(values) if aliases is not None else values)
        shown = _listed(values)

        def describe(f: Finding, matched: bool) -> str:
            found = tuple(get(f))
            if not found:
                return f"no {what}"
            if matched:
                return f"{_q(next(v for v in found if matches(v)))} matches {shown}"
            return f"{what} {_some(found)} {'does' if len(found) == 1 else 'do'} not match {shown}"

        return (lambda f: any(matches(v) for v in get(f))), describe

    return build


def _min_severity(least: Severity) -> Built:
    floor = SEVERITY_RANK[least]
    return (
        (lambda f: SEVERITY_RANK[f.severity] >= floor),
        (lambda f, ok: f"{f.severity.value} {'is at least' if ok else 'is below'} {least.value}"),
    )


def _product(values: list[str]) -> Built:
    product = _patterns(values)
    shown = _listed(values)

    def describe(f: Finding, ok: bool) -> str:
        if ok:
            return f"{_q(f.product_name if product(f.product_name) else f.product_arn)} matches {shown}"
        return f"{_q(f.product_name)} ({f.product_arn}) does not match {shown}"

    return (lambda f: product(f.product_name) or product(f.product_arn)), describe


def _resource_tag(tags: dict[str, str]) -> Built:
    tag_checks = [(k, _patterns([v])) for k, v in tags.items()]

    def has_tags(r: Resource) -> bool:  # one resource carries every tag
        return all((value := r.tag(k)) is not None and ok(value) for k, ok in tag_checks)

    def on(r: Resource) -> str:
        parts = []
        for k, ok in tag_checks:
            value = r.tag(k)
            parts.append(f"no tag {k}" if value is None else f"{k} {_q(value)} {_verb(ok(value))} {tags[k]!r}")
        return ", ".join(parts)

    def describe(f: Finding, matched: bool) -> str:
        if not f.resources:
            return "no resources"
        if matched:
            r = next(r for r in f.resources if has_tags(r))
            return on(r) if len(f.resources) == 1 else f"{r.id}: {on(r)}"
        if len(f.resources) == 1:
            return on(f.resources[0])
        shown = "; ".join(f"{r.id}: {on(r)}" for r in f.resources[:_LISTED])
        more = f"; and {len(f.resources) - _LISTED} more" if len(f.resources) > _LISTED else ""
        return f"no resource has all the tags ({shown}{more})"

    return (lambda f: any(has_tags(r) for r in f.resources)), describe


def _min_cvss(floor: float) -> Built:
    def describe(f: Finding, ok: bool) -> str:
        if f.max_cvss is None:
            return "no CVSS score"
        return f"{f.max_cvss} {'>=' if ok else '<'} {floor}"

    return (lambda f: f.max_cvss is not None and f.max_cvss >= floor), describe


def _exploit_available(wanted: bool) -> Built:
    def describe(f: Finding, ok: bool) -> str:
        if f.exploit_available is None:
            return "exploit availability unknown"
        known = "exploit available" if f.exploit_available else "no known exploit"
        return f"{known} ({'matches' if ok else 'does not match'} {str(wanted).lower()})"

    return (lambda f: f.exploit_available is wanted), describe


def _min_epss(floor: float) -> Built:
    def describe(f: Finding, ok: bool) -> str:
        if f.max_epss is None:
            return "no EPSS score"
        return f"{f.max_epss:g} {'>=' if ok else '<'} {floor:g}"

    return (lambda f: f.max_epss is not None and f.max_epss >= floor), describe


def _sample(sample: bool) -> Built:
    def describe(f: Finding, ok: bool) -> str:
        kind = "a sample finding" if f.sample else "not a sample finding"
        if ok:
            return kind
        return f"{kind} (sample: {str(sample).lower()} matches only {'sample' if sample else 'real'} findings)"

    return (lambda f: f.sample is sample), describe


# Each `Match` field: the value of the finding it looks at and how it compares it (`_one_of`, `_pattern`,
# `_any_pattern`), or its own builder where neither fits. Every builder takes the field's value from the policy.
_FIELDS: dict[str, Callable[[Any], Built]] = {
    "severity": _one_of(attrgetter("severity"), lambda f: f.severity.value),
    "min_severity": _min_severity,
    "product": _product,
    "generator_id": _pattern(attrgetter("generator_id")),
    "control_id": _pattern(attrgetter("control_id"), missing="no control id (not a Security Hub control finding)"),
    "finding_type": _any_pattern("types", attrgetter("types")),
    "account": _one_of(attrgetter("account"), attrgetter("account")),
    "region": _pattern(attrgetter("region")),
    "resource_type": _any_pattern(
        "resource types", lambda f: (r.type for r in f.resources), aliases=_resource_type_aliases
    ),
    "resource_id": _any_pattern("resource ids", lambda f: (r.id for r in f.resources)),
    "resource_tag": _resource_tag,
    "min_cvss": _min_cvss,
    "cve_id": _any_pattern("CVE ids", attrgetter("cve_ids")),
    "exploit_available": _exploit_available,
    "fix_available": _one_of(
        attrgetter("fix_available"), lambda f: str(f.fix_available), missing="fix availability unknown"
    ),
    "min_epss": _min_epss,
    "title": _pattern(attrgetter("title")),
    "sample": _sample,
}


@dataclass(frozen=True, slots=True)
class _Condition:
    field: str
    test: Predicate
    describe: Describe

    def explain(self, finding: Finding) -> ConditionResult:
        matched = bool(self.test(finding))
        return ConditionResult(self.field, matched, self.describe(finding, matched))


def _conditions(match: Match) -> list[_Condition]:
    """Every condition `match` gives, in `Match` field order: the one implementation of matching. A `Match` field
    without a builder fails here, when the policy is compiled, rather than silently matching everything."""
    out = []
    for name in Match.model_fields:
        value = getattr(match, name)
        if value is not None:
            test, describe = _FIELDS[name](value)
            out.append(_Condition(name, test, describe))
    return out


def _all_of(checks: Sequence[Predicate]) -> Predicate:
    """AND of `checks`, without a generator for the common one to three conditions (this runs for every finding)."""
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda f: a(f) and b(f)
    if len(checks) == 3:
        a, b, c = checks
        return lambda f: a(f) and b(f) and c(f)
    return lambda f: all(check(f) for check in checks)


def _predicate(conditions: Sequence[_Condition]) -> Predicate:
    """One predicate that ANDs `conditions` (none: matches everything)."""
    return _all_of([c.test for c in conditions]) if conditions else _always


def compile_match(match: Match) -> Predicate:
    """`Match` → one predicate that ANDs the given conditions."""
    return _predicate(_conditions(match))


def explain_match(match: Match, finding: Finding) -> list[ConditionResult]:
    """Each condition of `match` against `finding`, with the same tests `compile_match` uses: the finding matches
    exactly when every result has `matched`. Every condition is evaluated (the predicate stops at the first miss)."""
    return [c.explain(finding) for c in _conditions(match)]


def _always(_: Finding) -> bool:
    return True


@dataclass(frozen=True)
class _CompiledRule:
    name: str
    predicate: Predicate
    conditions: tuple[_Condition, ...]
    action: Action
    urgency: Urgency
    # A rule that would page or notify but does not say `sample: true`: a sample finding passes it by.
    gates_samples: bool
    decision: PolicyDecision


@dataclass(frozen=True)
class _CompiledSuppression:
    name: str
    predicate: Predicate
    conditions: tuple[_Condition, ...]
    owner: str
    expires: dt.date | None
    decision: PolicyDecision


def _note_expired(decision: PolicyDecision, expired: Sequence[_CompiledSuppression]) -> PolicyDecision:
    """The decision made because suppressions that would have matched are past their `expires` date."""
    names = ", ".join(f"{s.name} expired {s.expires}" for s in expired)
    note = f"suppression {names}, no longer applies" if len(expired) == 1 else f"suppressions {names}, no longer apply"
    return PolicyDecision(
        decision.action, decision.urgency, f"{decision.reason} ({note})", decision.notify, decision.rule
    )


def targets(names: Sequence[str]) -> tuple[str, ...]:
    """A decision's notifiers as states record them: () for the primary `notifier` alone (what every item written
    before routing per rule means)."""
    return () if list(names) == [PRIMARY_NOTIFIER] else tuple(names)


def merge_targets(*groups: tuple[str, ...]) -> tuple[str, ...]:
    """The notifiers of several decisions together (an episode escalated under another rule), in order, once each."""
    merged = dict.fromkeys(name for group in groups for name in (group or (PRIMARY_NOTIFIER,)))
    return targets(list(merged))


class CompiledPolicy:
    """A `Policy` ready to evaluate findings fast.

    `shadow`: the shadow view, every rule active; the live view (the default) passes the rules with `shadow: true`
    by, as if they were not there (docs/configuration.md, shadow mode)."""

    def __init__(self, policy: Policy, *, shadow: bool = False) -> None:
        self.policy = policy
        self.environment = policy.environment
        self.shadow = shadow
        self._default_notify = targets(policy.default_notify)
        self._rules: list[_CompiledRule] = []
        for r in policy.rules:
            if r.shadow and not shadow:
                continue
            conditions = tuple(_conditions(r.match)) if r.match else ()
            takes_samples = r.match is not None and r.match.sample is True
            self._rules.append(
                _CompiledRule(
                    r.name,
                    _predicate(conditions),
                    conditions,
                    r.action,
                    r.effective_urgency,
                    r.action != "drop" and not takes_samples,
                    PolicyDecision(
                        r.action,
                        r.effective_urgency,
                        f"rule {r.name}",
                        targets(r.notify) if r.notify else self._default_notify,
                        r.name,
                    ),
                )
            )
        self._suppressions: list[_CompiledSuppression] = []
        for s in policy.suppressions:
            conditions = tuple(_conditions(s.match))
            self._suppressions.append(
                _CompiledSuppression(
                    s.name,
                    _predicate(conditions),
                    conditions,
                    s.owner,
                    s.expires,
                    PolicyDecision("drop", "low", f"suppression {s.name} (owner {s.owner})"),
                )
            )
        default = policy.default_action
        self._default = PolicyDecision(
            default, "high" if default == "page" else "low", "default_action", self._default_notify, "default_action"
        )
        # Checked twice per finding (the batched read skips other accounts' keys, then route): a set, built once.
        self._accounts = None if policy.all_accounts else frozenset(policy.accounts)

    def out_of_scope(self, finding: Finding) -> str | None:
        """Why this environment must leave `finding` alone entirely (no state, no page, no write-back), or None."""
        policy = self.policy
        if self._accounts is not None and finding.account not in self._accounts:
            listed = ", ".join(policy.accounts[:5]) + (", …" if len(policy.accounts) > 5 else "")
            return f"account {finding.account} is outside {policy.environment}'s account scope (accounts: {listed})"
        if finding.custom_action is not None:
            ours = policy.custom_action
            arn = finding.custom_action_arn or ""
            if ours is None or not arn.endswith(f":action/custom/{ours.id}"):
                mine = f"action/custom/{ours.id}" if ours else "none configured"
                return (
                    f"custom action {arn or repr(finding.custom_action)} is not {policy.environment}'s "
                    f"({mine}): another tool's action changes nothing"
                )
        return None

    def decision_for(self, finding: Finding, now: dt.datetime) -> PolicyDecision:
        """`evaluate`, unless the finding came through this environment's own custom action with mode page or
        notify: an operator explicitly asked for it to reach on-call."""
        ours = self.policy.custom_action
        if finding.custom_action and ours is not None and ours.mode != "policy" and not finding.is_resolved:
            urgency: Urgency = "high" if ours.mode == "page" else "low"
            return PolicyDecision(ours.mode, urgency, f"custom action {ours.id}", self._default_notify, "custom_action")
        return self.evaluate(finding, now)

    def evaluate(self, finding: Finding, now: dt.datetime) -> PolicyDecision:
        expired: list[_CompiledSuppression] | None = None
        for s in self._suppressions:
            if s.predicate(finding):  # expiry only for a match: most findings match no suppression
                if s.expires is None or now.date() <= s.expires:
                    return s.decision
                expired = [*expired, s] if expired else [s]
        skipped: _CompiledRule | None = None
        for r in self._rules:
            if r.predicate(finding):
                if finding.sample and r.gates_samples:
                    # `create-sample-findings` is run to test integrations: it must not wake anyone unless a rule
                    # asks for samples explicitly.
                    skipped = skipped or r
                    continue
                return r.decision if expired is None else _note_expired(r.decision, expired)
        decision = self._no_rule(finding, skipped)
        return decision if expired is None else _note_expired(decision, expired)

    def _no_rule(self, finding: Finding, skipped: _CompiledRule | None) -> PolicyDecision:
        """No rule decided: `default_action`, or for a sample finding nothing (only a `sample: true` rule may)."""
        if finding.sample and (skipped is not None or self._default.action != "drop"):
            would = (
                f"rule {skipped.name} would {skipped.action}" if skipped else f"default_action {self._default.action}"
            )
            return PolicyDecision("drop", "low", f"sample finding: {would}, but no rule with `sample: true` matched")
        return self._default

    def explain(self, finding: Finding, now: dt.datetime) -> Explanation:
        """What `evaluate` does with `finding`, step by step: each suppression and rule up to the one that decides,
        every condition of each with its result. `Explanation.decision` equals `evaluate(finding, now)`."""
        today = now.date()
        steps: list[Step] = []
        expired: list[_CompiledSuppression] = []

        def rest(kind: str, names: Iterable[str]) -> tuple[str, ...]:
            return tuple(f"{kind} {n}" for n in names)

        for i, s in enumerate(self._suppressions):
            results = tuple(c.explain(finding) for c in s.conditions)
            matched = all(r.matched for r in results)
            if s.expires is not None and today > s.expires:
                steps.append(Step("suppression", s.name, "drop", "low", "expired", results, s.expires))
                if matched:
                    expired.append(s)
                continue
            steps.append(
                Step("suppression", s.name, "drop", "low", "decided" if matched else "no match", results, s.expires)
            )
            if matched:
                later = rest("suppression", (x.name for x in self._suppressions[i + 1 :]))
                return Explanation(tuple(steps), s.decision, later + rest("rule", (r.name for r in self._rules)))

        skipped: _CompiledRule | None = None
        for i, r in enumerate(self._rules):
            results = tuple(c.explain(finding) for c in r.conditions)
            if all(c.matched for c in results) and finding.sample and r.gates_samples:
                results = (*results, ConditionResult("sample", False, SAMPLE_GATE))
                skipped = skipped or r
            decided = all(c.matched for c in results)
            steps.append(Step("rule", r.name, r.action, r.urgency, "decided" if decided else "no match", results))
            if decided:
                decision = r.decision if not expired else _note_expired(r.decision, expired)
                return Explanation(tuple(steps), decision, rest("rule", (x.name for x in self._rules[i + 1 :])))
        decision = self._no_rule(finding, skipped)
        return Explanation(tuple(steps), _note_expired(decision, expired) if expired else decision, ())

    def expired_suppressions(self, now: dt.datetime) -> list[str]:
        today = now.date()
        return [s.name for s in self._suppressions if s.expires is not None and today > s.expires]
