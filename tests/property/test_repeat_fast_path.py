"""The router's fast path of repeats (`episodes.repeat_decision`, issue 19) is `decide` itself: for any stored state,
any copy of the finding, any policy decision and any silence, it either declines (None) or returns exactly the
decision `decide` makes (a duplicate that writes and sends nothing), and it does not decline a plain repeat."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from findings_router.domain.episodes import DedupState, decide, dropped_unseen, repeat_decision
from findings_router.domain.model import Severity
from findings_router.domain.normalize import normalize_asff
from findings_router.domain.policy import PolicyDecision
from findings_router.domain.silences import Silence
from findings_router.settings.schema import Dedup
from tests.builders import NOW, asff

KEY = "fr1-test"
FINDING_ID = "arn:aws:guardduty:eu-central-1:111122223333:detector/d1/finding/f1"
BASE = normalize_asff(asff(id=FINDING_ID))
TIMES = [
    None,
    "not a time",
    "2026-11-21T09:00:00.000Z",
    "2026-11-21T10:00:00.000Z",
    "2026-11-21T10:00:00Z",
    "2026-11-21T10:00:00+00:00",
    "2026-11-21T10:00:00.001Z",
    "2026-11-21T11:00:00.000Z",
]
SEVERITIES = [Severity.LOW, Severity.HIGH, Severity.CRITICAL]

states = st.builds(
    lambda status, episode, incident_keys, member, pending, silenced, observed, expires, resolved_by, agrees, sev: (
        DedupState(
            key=KEY,
            status=status,
            episode=episode,
            action="page",
            severity=sev,
            incident_keys=incident_keys,
            members=(FINDING_ID,) if member else ("other",),
            finding_id=FINDING_ID,
            product_arn=BASE.product_arn,
            title="t",
            first_seen="2026-11-20T10:00:00Z",
            last_seen=(NOW - dt.timedelta(hours=1)).isoformat(timespec="seconds").replace("+00:00", "Z"),
            last_notified_at="2026-11-20T10:00:00Z",
            seen_count=1,
            notify_count=1,
            version=3,
            expires_at=int(NOW.timestamp()) + expires,
            account=BASE.account,
            observed_at=observed,
            pending=pending,
            pending_since=None if not pending else "2026-11-21T11:59:00Z",
            silenced=silenced,
            silenced_by="s1" if silenced else None,
            resolved_by=resolved_by if status == "resolved" else None,
            securityhub_agrees=agrees,
            opened_at="2026-11-20T10:00:00Z",
        )
    ),
    st.sampled_from(["open", "acknowledged", "resolved"]),
    st.sampled_from([0, 1, 2]),
    st.sampled_from([(), (KEY,)]),
    st.booleans(),
    st.sampled_from([(), (KEY,)]),
    st.sampled_from([(), (KEY,)]),
    st.sampled_from(TIMES),
    st.sampled_from([-1, 0, 86400]),
    st.sampled_from(["securityhub", "operator", "pagerduty"]),
    st.booleans(),
    st.sampled_from(SEVERITIES),
)

findings = st.builds(
    lambda updated, sev, resolved, custom: dataclasses.replace(
        BASE,
        updated_at=updated,
        severity=sev,
        workflow_status="RESOLVED" if resolved else "NEW",
        custom_action="PageOnCall" if custom else None,
    ),
    st.sampled_from(TIMES),
    st.sampled_from(SEVERITIES),
    st.booleans(),
    st.booleans(),
)

policies = st.sampled_from(
    [
        PolicyDecision("drop", "low", "default_action", (), "default_action"),
        PolicyDecision("page", "high", "rule high", (), "high"),
        PolicyDecision("notify", "low", "rule notify", ("chat",), "notify"),
    ]
)

SILENCE = Silence(
    id="s2",
    environment="prod",
    match=None,
    all_findings=True,
    starts_at=NOW - dt.timedelta(hours=1),
    ends_at=NOW + dt.timedelta(hours=1),
    created_by="me",
    comment="",
    created_at=NOW - dt.timedelta(hours=1),
)


@settings(max_examples=600, deadline=None)
@given(states, findings, policies, st.booleans())
def test_the_fast_path_is_decides_duplicate_or_declines(
    state: DedupState, finding, policy: PolicyDecision, silenced: bool
) -> None:
    fast = repeat_decision(finding, state, KEY, NOW)
    if fast is None:
        return
    assert fast.new_state is None and not fast.notifications and fast.outcome == "duplicate"
    assert fast == decide(finding, policy, state, KEY, NOW, Dedup(), silence=SILENCE if silenced else None)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), states), findings, policies, st.booleans(), st.booleans())
def test_a_drop_with_nothing_stored_is_decides_drop(
    state: DedupState | None, finding, policy: PolicyDecision, silenced: bool, folded: bool
) -> None:
    quick = dropped_unseen(finding, policy, state, KEY)
    if quick is None:
        assert state is not None or policy.action != "drop" or finding.is_resolved
        return
    silence = SILENCE if silenced else None
    assert quick == decide(finding, policy, state, KEY, NOW, Dedup(), folded=folded, silence=silence)


def test_a_plain_repeat_takes_the_fast_path() -> None:
    state = DedupState(
        key=KEY,
        status="open",
        episode=1,
        action="page",
        severity=Severity.HIGH,
        incident_keys=(KEY,),
        members=(FINDING_ID,),
        finding_id=FINDING_ID,
        product_arn=BASE.product_arn,
        title="t",
        first_seen="2026-11-21T10:00:00Z",
        last_seen="2026-11-21T10:00:00Z",
        last_notified_at="2026-11-21T10:00:00Z",
        seen_count=1,
        notify_count=1,
        version=2,
        expires_at=int(NOW.timestamp()) + 86400,
        observed_at="2026-11-21T10:00:00.000Z",
    )
    repeat = dataclasses.replace(BASE, updated_at="2026-11-21T10:00:00.000Z")
    assert repeat_decision(repeat, state, KEY, NOW) is not None
    resolved = dataclasses.replace(state, status="resolved", members=())
    assert repeat_decision(repeat, resolved, KEY, NOW) is not None
    newer = dataclasses.replace(BASE, updated_at="2026-11-21T10:00:01.000Z")
    assert repeat_decision(newer, state, KEY, NOW) is None
