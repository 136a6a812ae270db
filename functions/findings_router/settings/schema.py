"""The per-environment policy file, `config/<env>.yaml`: one pydantic model used at synth, at runtime and by the CLI.

Errors name the file, the line and the field, e.g.
``config/prod.yaml:23: rules[1].match.severity[0]: Input should be 'INFORMATIONAL', 'LOW', ...``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from findings_router.domain.keys import FoldVulnerabilities
from findings_router.domain.model import FixAvailable, Severity
from findings_router.settings.baseline import Baseline

Action = Literal["page", "notify", "drop"]


Urgency = Literal["high", "low"]


_ACCOUNT = r"^\d{12}$"


_REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"


class _Strict(BaseModel):
    # Unknown keys are mistakes in a reviewed policy file (a typo like `severty` would silently match everything).
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Conditions of a rule or suppression. All given conditions must hold; a list matches any of its values.

    String conditions accept shell-style wildcards (`*`, `?`), e.g. ``finding_type: ["TTPs/*"]``.
    """

    severity: list[Severity] | None = None
    min_severity: Severity | None = None
    product: list[str] | None = Field(default=None, description="Product name (GuardDuty) or product ARN.")
    generator_id: list[str] | None = None
    control_id: list[str] | None = Field(default=None, description="Security Hub control id, e.g. S3.8.")
    finding_type: list[str] | None = Field(default=None, description="ASFF Types entry, e.g. TTPs/Initial Access/*.")
    account: list[Annotated[str, Field(pattern=_ACCOUNT)]] | None = None
    region: list[str] | None = None
    resource_type: list[str] | None = Field(default=None, description="e.g. AwsEc2Instance or AWS::EC2::Instance.")
    resource_id: list[str] | None = None
    resource_tag: dict[str, str] | None = Field(default=None, description="Tag key → value ('*' for any value).")
    min_cvss: Annotated[float, Field(ge=0, le=10)] | None = None
    cve_id: list[str] | None = None
    exploit_available: bool | None = Field(
        default=None,
        description="true: a finding with a known exploit in any of its vulnerabilities (ASFF "
        "Vulnerabilities[].ExploitAvailable YES, OCSF is_exploit_available); false: one whose vulnerabilities all "
        "say there is none. A finding that does not say never matches.",
    )
    fix_available: Annotated[list[FixAvailable], Field(min_length=1)] | None = Field(
        default=None,
        description="Whether a fix exists: YES for every vulnerability of the finding, NO for none, PARTIAL for some "
        "(ASFF FixAvailable; OCSF fix_coverage COMPLETE/PARTIAL/NONE, else is_fix_available). A finding that does "
        "not say never matches. Unquoted YES and NO (booleans to YAML) mean YES and NO.",
    )
    min_epss: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None,
        description="The highest EPSS score (the probability of exploitation in the next 30 days, 0-1) of the "
        "finding's vulnerabilities is at least this. A finding without an EPSS score never matches.",
    )
    title: list[str] | None = None
    sample: bool | None = Field(
        default=None,
        description="true: match only sample findings (GuardDuty `create-sample-findings`, ASFF `Sample: true`), "
        "which otherwise never page or notify; false: only real findings.",
    )

    @field_validator("fix_available", mode="before")
    @classmethod
    def _yaml_yes_no(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted YES or NO as a boolean: `fix_available: [NO]` means "NO".
        if isinstance(value, list):
            return [("YES" if v else "NO") if isinstance(v, bool) else v for v in value]
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not self.model_dump(exclude_none=True):
            raise ValueError("match must name at least one condition (omit `match` to match everything)")
        return self


NotifierName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]


# The name of the policy's `notifier` (the primary PagerDuty service) among `notifiers`.
PRIMARY_NOTIFIER = "pagerduty"


class Rule(_Strict):
    """One policy rule."""

    name: Annotated[str, Field(min_length=1, max_length=80, description="Unique; shown as the decision's reason.")]
    match: Match | None = Field(default=None, description="Omit to match every finding.")
    action: Action
    urgency: Urgency | None = Field(default=None, description="For action page: high (default) or low.")
    notify: Annotated[list[NotifierName], Field(min_length=1)] | None = Field(
        default=None,
        description=f"Where this rule's pages and notifications go: names of `notifiers` ({PRIMARY_NOTIFIER!r} is "
        "`notifier`). Omitted: default_notify. An episode's escalations and resolve go to its targets (an escalation adds the deciding rule's).",
    )
    shadow: bool = Field(
        default=False,
        description="Try the rule out on live traffic: the live decision skips it, a shadow decision with it is "
        "recorded apart (state fr1-shadow-…, logs `shadow: true`) and never sent; `findings-router shadow-report` "
        "compares the two (docs/configuration.md, rolling out a policy change).",
    )

    @model_validator(mode="after")
    def _urgency_only_for_page(self) -> Rule:
        if self.urgency is not None and self.action != "page":
            raise ValueError("urgency applies to action 'page' only (notify is always low urgency)")
        return self

    @property
    def effective_urgency(self) -> Urgency:
        if self.action == "page":
            return self.urgency or "high"
        return "low"


class Silences(_Strict):
    """Silences (`findings-router silence add`): temporary, owned and audited quiet for matching findings, or a whole
    environment. A silenced finding is tracked but not sent; it pages when the silence ends if it still would
    (docs/dedup.md, docs/runbook.md)."""

    max_duration_hours: Annotated[
        int,
        Field(ge=1, le=2160, description="The longest silence `silence add` accepts: none is open-ended."),
    ] = 168
    retention_days: Annotated[
        int,
        Field(ge=1, le=365, description="How long an ended or expired silence stays listed (its item's TTL)."),
    ] = 30
    sweep_minutes: Annotated[
        int,
        Field(
            ge=1,
            le=60,
            description="How often the sweep pages what a silence held back once it ended or was expired, if the "
            "finding is still active and the policy still pages it.",
        ),
    ] = 5


class Suppression(_Strict):
    """A reviewed exception: matching findings are dropped until `expires`."""

    name: Annotated[str, Field(min_length=1, max_length=80)]
    match: Match
    owner: Annotated[str, Field(min_length=1)]
    reason: Annotated[str, Field(min_length=10, description="Why this is safe to silence; reviewed in git.")]
    expires: dt.date | None = Field(default=None, description="After this date (UTC) the suppression stops applying.")


class Retry(_Strict):
    """Delivery retries inside one invocation; after them the message goes back to SQS and is retried later."""

    max_attempts: Annotated[int, Field(ge=1, le=10, description="HTTP attempts per event.")] = 4
    base_delay_seconds: Annotated[
        float, Field(gt=0, le=30, description="First backoff cap (full jitter, doubling).")
    ] = 0.5
    max_delay_seconds: Annotated[float, Field(gt=0, le=120, description="Largest backoff between attempts.")] = 8.0
    budget_seconds: Annotated[
        float,
        Field(
            gt=0, le=600, description="Time for all attempts of one event; also capped by the Lambda's remaining time."
        ),
    ] = 30.0
    timeout_seconds: Annotated[float, Field(gt=0, le=30, description="Per-request connect/read timeout.")] = 5.0


class PagerDutyNotifierConfig(_Strict):
    """Where pages go: a PagerDuty Events API v2 integration."""

    type: Literal["pagerduty"] = "pagerduty"
    events_url: str = Field(
        default="https://events.pagerduty.com/v2/enqueue",
        description="EU accounts: https://events.eu.pagerduty.com/v2/enqueue.",
    )
    routing_key_secret: Annotated[
        str,
        Field(min_length=1, description="Name or ARN of the Secrets Manager secret with the routing key."),
    ]
    retry: Retry = Retry()

    @field_validator("events_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)


class JsmNotifierConfig(_Strict):
    """Jira Service Management Ops alerts (the Opsgenie successor): an API integration's key."""

    type: Literal["jsm"]
    api_url: str = Field(
        default="https://api.atlassian.com", description="JSM's integration-events API (a stand-in's URL locally)."
    )
    api_key_secret: Annotated[
        str, Field(min_length=1, description="Secret with the JSM API integration's key (GenieKey).")
    ]
    retry: Retry = Retry()

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)


class WebhookNotifierConfig(_Strict):
    """A signed generic webhook (Standard Webhooks; docs/webhook-schema.md), or a Slack or Microsoft Teams incoming
    webhook (`format`), whose URL is itself the credential."""

    type: Literal["webhook"]
    format: Literal["standard", "slack", "teams"] = "standard"
    url: str | None = Field(default=None, description="The receiver's URL, when it carries no credential.")
    url_secret: str | None = Field(
        default=None, description="Secret holding the URL (Slack and Teams: the URL is the credential)."
    )
    signing_secret: str | None = Field(
        default=None,
        description="Secret with the Standard Webhooks signing secret(s), `whsec_…` (several, space-separated, "
        "while rotating). Required for format standard.",
    )
    retry: Retry = Retry()

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @model_validator(mode="after")
    def _one_url_and_a_signature(self) -> WebhookNotifierConfig:
        if (self.url is None) == (self.url_secret is None):
            raise ValueError("give url or url_secret (one of them)")
        if self.format == "standard" and not self.signing_secret:
            raise ValueError("format standard needs signing_secret: receivers verify every delivery")
        if self.format != "standard" and self.url is not None:
            raise ValueError(f"a {self.format} webhook URL is its credential: put it in url_secret")
        return self


def http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("must be an http(s) URL")
    return value


NotifierConfig = Annotated[
    PagerDutyNotifierConfig | JsmNotifierConfig | WebhookNotifierConfig, Field(discriminator="type")
]


class Dedup(_Strict):
    """Dedup state (docs/dedup.md)."""

    ttl_days: Annotated[
        int, Field(ge=1, le=365, description="State items expire this long after their last write.")
    ] = 30
    touch_interval_hours: Annotated[
        float,
        Field(
            ge=0.1,
            le=720,
            description="A repeat refreshes the item (TTL, last_seen) at most this often. Security Hub re-sends "
            "findings every 12-24 h, so a longer interval saves most repeat writes; at most half of ttl_days.",
        ),
    ] = 72.0
    fold_control_findings: bool = Field(
        default=True,
        description="One problem per (account, region, control id, resource) across standards and finding ids.",
    )
    fold_vulnerabilities: FoldVulnerabilities = Field(
        default="off",
        description="Package-vulnerability findings (a vulnerability id, and the type Software and Configuration "
        "Checks/Vulnerabilities/CVE or product Amazon Inspector; a Windows KB id counts as the vulnerability id): "
        "cve_account = one episode per (vulnerability, account) whatever the resources and regions; cve_resource = "
        "one per (vulnerability, resource) across packages and image updates (an ECR image counts as its "
        "repository); off = one per finding. A folded episode pages once, lists the affected resources, and "
        "resolves when its last finding does (docs/dedup.md).",
    )
    resolution_memory_days: Annotated[
        int,
        Field(
            ge=1,
            le=365,
            description="How long a resolution of a finding that had nothing open is remembered, so that an older "
            "active copy (a late SQS delivery, a crashed attempt's retry, a redrive of a dead letter) does not page. "
            "At least the dead-letter queue's retention (14 days) keeps redrives safe.",
        ),
    ] = 14

    @model_validator(mode="after")
    def _touch_before_expiry(self) -> Dedup:
        if self.touch_interval_hours * 2 > self.ttl_days * 24:
            raise ValueError(
                f"touch_interval_hours ({self.touch_interval_hours:g}) must be at most half of ttl_days "
                f"({self.ttl_days} days): an open episode must be refreshed before its item expires"
            )
        return self


class Ingestion(_Strict):
    """The EventBridge rule and the SQS queues."""

    filter: Literal["policy", "severity", "none"] | None = Field(
        default=None,
        description="Which findings the EventBridge rule lets through to the queue (each one that passes costs SQS, "
        "Lambda and logs): policy = those some page or notify rule (live or shadow) could match, compiled from the "
        "rules; severity = those of `severity_labels`; none = every finding of `accounts`. Resolutions, the "
        "environment's custom action and canary always pass. Omitted: severity with severity_labels, else policy. "
        "A filter too large for EventBridge's quota is coarsened, with a synth warning.",
    )
    severity_labels: list[Severity] | None = Field(
        default=None,
        description="For filter severity: pre-filter the EventBridge rule to these labels (resolutions always pass; "
        "so do findings a rule's vulnerability condition pages whatever their label).",
    )
    resolutions: Literal["all", "noted"] = Field(
        default="all",
        description="Which resolutions pass whatever the filter: all; or noted = a PASSED compliance result only "
        "when it carries a note (ASFF Note, OCSF comment), which findings-router writes on every finding it pages or "
        "notifies, so the daily PASSED re-evaluations of never-paged controls stay out (archived, RESOLVED and "
        "SUPPRESSED findings always pass). Needs securityhub.writeback; a page whose write-back failed, or a finding "
        "that joined an open episode without its own note, is then only resolved by hand (docs/performance.md).",
    )
    include_ocsf: bool = Field(default=True, description="Also route the new Security Hub's OCSF findings.")
    max_receive_count: Annotated[
        int, Field(ge=1, le=100, description="Receives before a message is dead-lettered.")
    ] = 5
    batch_size: Annotated[int, Field(ge=1, le=100, description="SQS messages per invocation.")] = 10

    @model_validator(mode="after")
    def _labels_for_severity(self) -> Ingestion:
        if self.filter == "severity" and not self.severity_labels:
            raise ValueError("filter severity needs severity_labels")
        if self.filter in ("policy", "none") and self.severity_labels:
            raise ValueError(f"severity_labels are for filter severity: remove them, or the filter: {self.filter}")
        return self

    @property
    def effective_filter(self) -> Literal["policy", "severity", "none"]:
        """`filter`, its default resolved."""
        if self.filter is not None:
            return self.filter
        return "severity" if self.severity_labels else "policy"


class RouterFunction(_Strict):
    """The router Lambda."""

    memory_mb: Annotated[int, Field(ge=128, le=10240)] = 256
    timeout_seconds: Annotated[int, Field(ge=10, le=900)] = 120
    reserved_concurrency: Annotated[
        int, Field(ge=1, le=1000, description="Also caps how fast we call the on-call SaaS.")
    ] = 2
    log_retention_days: Annotated[int, Field(ge=1, description="A CloudWatch Logs retention period.")] = 90


GroupField = Literal["product", "account", "region", "control_id", "generator_id", "finding_type", "resource_type"]


class Storm(_Strict):
    """Floods of new findings (a new standard enabled, a mass misconfiguration) page once per group, not per finding.

    Within each `window_minutes`, the first `threshold` new problems of a group page as usual; the next one opens a
    single storm incident for the group (with the count and a sample of resources), and every further one is folded
    into it. Nothing is dropped: each finding still gets its dedup state. Each router container holds up to
    `threshold / function.reserved_concurrency` (at most 5) new problems of a group in memory before writing the
    shared count, so a trickle of new findings costs no write, and when several containers share a flood up to
    2x `threshold` may page before the storm opens (5 more for each container Lambda adds late).
    """

    enabled: bool = True
    group_by: Annotated[list[GroupField], Field(min_length=1)] = Field(
        default=["product", "account"], description="Finding fields that make a group."
    )
    window_minutes: Annotated[int, Field(ge=1, le=1440)] = 5
    threshold: Annotated[
        int,
        Field(
            ge=1,
            # the counter keeps up to ~2x threshold member entries in one DynamoDB item (400 KB limit)
            le=500,
            description="New problems per group and window that page individually.",
        ),
    ] = 10
    sample_size: Annotated[int, Field(ge=1, le=50, description="Resources listed in the storm incident.")] = 10


class Pacing(_Strict):
    """Stay under PagerDuty's Events API rate limit per routing key (about 120 events a minute)."""

    events_per_minute: Annotated[
        int, Field(ge=1, le=10_000, description="For all router invocations together; each gets its share.")
    ] = 100


class Monitoring(_Strict):
    """Alarms and dashboard."""

    alarm_emails: list[str] = Field(default=[], description="Subscribed to the alarm topic.")
    no_alarm_emails_reason: Annotated[str, Field(min_length=10)] | None = Field(
        default=None,
        description="Deploy without alarm_emails on purpose: say why (reviewed in git). Silences the synth warning "
        "that alarms about the meta-alert function itself would reach nobody.",
    )
    meta_alerts: Literal["page", "notify", "off"] = Field(
        default="page",
        description="When findings-router's own alarms fire (dead letters, errors, throttles, queue age, storms): "
        "page on-call (critical), notify (low urgency) or only email alarm_emails.",
    )
    oldest_message_age_seconds: Annotated[
        int, Field(ge=60, description="Alarm when a finding waits longer than this in the queue.")
    ] = 900
    meta_alert_routing_key_secret: Annotated[str, Field(min_length=1)] | None = Field(
        default=None,
        description="Secret with the routing key of a separate PagerDuty service for findings-router's own alarms, "
        "so that a broken finding integration (a revoked key, a disabled service) does not also silence the alarm "
        "about it. Omitted: the notifier's routing key. Required in production.",
    )
    meta_alert_notify: Annotated[list[NotifierName], Field(min_length=1)] | None = Field(
        default=None,
        description="Send meta-alerts to these `notifiers` (e.g. a JSM team's integration) instead of PagerDuty "
        "(meta_alert_routing_key_secret, else the notifier's key). Not the primary `notifier`.",
    )
    no_findings_alarm_minutes: Annotated[int, Field(ge=10, le=1440)] | None = Field(
        default=None,
        description="Alarm when no finding (the canary's aside) reached the router for this long: Security Hub's "
        "integration, the EventBridge rule or the aggregation broke. Security Hub re-sends active findings every "
        "12-24 h, so 1440 suits an environment with any active finding. Omitted: no such alarm.",
    )

    @model_validator(mode="after")
    def _reason_only_without_emails(self) -> Monitoring:
        if self.alarm_emails and self.no_alarm_emails_reason:
            raise ValueError("no_alarm_emails_reason is for a policy without alarm_emails: remove one of them")
        return self


class Canary(_Strict):
    """A synthetic finding imported into Security Hub on a schedule, routed like any finding to a separate on-call
    service that never pages a person: proof, every few minutes, that the whole path still pages (docs/canary.md)."""

    enabled: bool | None = Field(
        default=None, description="Omitted: on in production (`production: true`), off elsewhere."
    )
    schedule_minutes: Annotated[int, Field(ge=1, le=1440, description="How often the canary runs.")] = 15
    routing_key_secret: Annotated[str, Field(min_length=1)] | None = Field(
        default=None,
        description="Secret with the routing key of the canary's own PagerDuty service (low urgency, no one on "
        "call, its webhook subscribed to the ack receiver). Required when the canary is on; never the notifier's.",
    )
    alarm_after_minutes: Annotated[
        int,
        Field(
            ge=10,
            le=1440,
            description="Alarm when no canary completed for this long; at least twice schedule_minutes.",
        ),
    ] = 60
    heartbeat_url_secret: Annotated[str, Field(min_length=1)] | None = Field(
        default=None,
        description="Optional secret with a heartbeat URL (Healthchecks, Dead Man's Snitch, a JSM heartbeat) "
        "requested after each completed canary, so that a dead AWS side is noticed from outside it.",
    )

    @model_validator(mode="after")
    def _alarm_after_two_runs(self) -> Canary:
        if self.alarm_after_minutes < 2 * self.schedule_minutes:
            raise ValueError(
                f"alarm_after_minutes ({self.alarm_after_minutes}) must be at least twice schedule_minutes "
                f"({self.schedule_minutes}): one late run must not alarm"
            )
        return self


class PsirtDigest(_Strict):
    """A scheduled digest of the period's new CRITICAL or exploitable CVEs from Amazon Inspector, one line per CVE
    (not per image or instance): one low-urgency notification and/or a CSV report in S3 (docs/psirt.md)."""

    enabled: bool = Field(default=False, description="Off by default.")
    schedule_hours: Annotated[
        int, Field(ge=1, le=168, description="How often the digest runs; it covers the same period.")
    ] = 24
    min_severity: Severity = Field(
        default=Severity.CRITICAL,
        description="Inspector findings first observed in the period at this severity or above are listed.",
    )
    include_exploitable: bool = Field(
        default=True, description="Also list CVEs with a known exploit (Inspector exploitAvailable), whatever severity."
    )
    notify: Annotated[list[NotifierName], Field(min_length=1)] | None = Field(
        default=None,
        description="Notifiers that get the digest as one low-urgency notification; omitted: none (report only).",
    )
    report: bool = Field(
        default=True, description="Write the digest as a CSV report to an S3 bucket the stack creates."
    )
    report_retention_days: Annotated[int, Field(ge=1, le=3650)] = 400
    regions: list[Annotated[str, Field(pattern=_REGION)]] | None = Field(
        default=None,
        description="Regions to query Inspector in (the Inspector delegated administrator is regional); omitted: "
        "the stack's region.",
    )

    @model_validator(mode="after")
    def _delivers_somewhere(self) -> PsirtDigest:
        if self.enabled and not self.report and not self.notify:
            raise ValueError("an enabled digest needs `report: true` or `notify` (else it goes nowhere)")
        return self


class Acknowledgements(_Strict):
    """How acknowledgements and resolutions come back from PagerDuty (the ack receiver)."""

    mode: Literal["function_url", "eventbridge", "none"] = Field(
        default="none",
        description="function_url: signed Webhooks v3 to a Lambda Function URL; eventbridge: PagerDuty's "
        "EventBridge partner event bus (no public endpoint); none: no ack receiver.",
    )
    signing_secret: str | None = Field(
        default=None, description="Secrets Manager secret with the webhook subscription's signing secret."
    )
    partner_event_source: str | None = Field(
        default=None, description="For eventbridge: the partner event bus, aws.partner/pagerduty.com/…"
    )
    rest_api_token_secret: str | None = Field(
        default=None,
        description="Optional secret with a read-only PagerDuty REST API key, to map incidents without an "
        "incident_key (grouped alerts) through their alerts.",
    )
    rest_api_url: str = "https://api.pagerduty.com"
    jsm_token_secret: str | None = Field(
        default=None,
        description="Secret with the token a Jira Service Management outgoing webhook integration sends in its "
        "`X-Findings-Router-Token` header (JSM does not sign its webhooks): acknowledgements and closes of JSM alerts "
        "come back to `<Function URL>webhooks/jsm` (with mode eventbridge too, through a Function URL of their own).",
    )
    reserved_concurrency: Annotated[int, Field(ge=1, le=100)] = 2

    @model_validator(mode="after")
    def _mode_needs(self) -> Acknowledgements:
        if self.mode == "function_url" and not self.signing_secret:
            raise ValueError("mode function_url needs signing_secret (webhooks must be verified)")
        if self.mode == "eventbridge" and not (self.partner_event_source or "").startswith(
            "aws.partner/pagerduty.com/"
        ):
            raise ValueError("mode eventbridge needs partner_event_source: aws.partner/pagerduty.com/…")
        if self.mode == "none" and self.jsm_token_secret:
            raise ValueError("jsm_token_secret needs an ack receiver: mode function_url or eventbridge")
        return self


class SecurityHubSettings(_Strict):
    """What findings-router writes back to Security Hub (BatchUpdateFindings)."""

    writeback: bool = Field(
        default=True, description="On page: workflow NOTIFIED and a note; on acknowledge/resolve: a note."
    )
    resolve_workflow_on_operator_resolve: bool = Field(
        default=False, description="Set workflow RESOLVED when an operator resolves the incident."
    )


class CustomAction(_Strict):
    """The Security Hub custom action through which an operator sends findings to on-call by hand.

    Each stack creates its own (`AWS::SecurityHub::ActionTarget` with this id) and acts only on events of that
    action (`…:action/custom/<id>`); other tools' custom actions (remediation, ticketing) change nothing.
    """

    id: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z0-9]{1,20}$",
            description="The action target's id: up to 20 letters and digits, unique per account and region, so "
            "name it per environment (e.g. PageOnCallProd).",
        ),
    ]
    mode: Literal["page", "notify", "policy"] = Field(
        default="page",
        description="page or notify whatever the rules say, or apply the rules as to any other finding.",
    )


ACCOUNT_WILDCARD = "*"


class Policy(_Strict):
    """A whole `config/<env>.yaml`."""

    environment: Annotated[
        str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$", description="Must equal the file name (prod for prod.yaml).")
    ]
    account: Annotated[str, Field(pattern=_ACCOUNT)] | None = Field(
        default=None, description="Deploy only to this account (else the CLI's)."
    )
    region: Annotated[str, Field(pattern=_REGION)] | None = Field(
        default=None, description="Deploy only to this region (else the CLI's)."
    )
    description: str = Field(default="", description="Shown in the demo and the dashboard.")
    mode: Literal["live", "shadow"] = Field(
        default="live",
        description="shadow: decide, deduplicate and record every finding as live would, under separate state "
        "(fr1-shadow-…), but send nothing and write nothing back to Security Hub; `findings-router shadow-report` "
        "shows what it would have paged. The canary and the meta-alerts still work.",
    )
    accounts: Annotated[
        list[Annotated[str, Field(pattern=r"^(\d{12}|\*)$")]],
        Field(
            min_length=1,
            description='The AWS accounts whose findings belong to this environment (12-digit ids), or ["*"] for '
            "every account. Findings of other accounts never page, change no state and get no write-back; two "
            "environments of one config directory may not share an account.",
        ),
    ]
    notifier: PagerDutyNotifierConfig
    notifiers: dict[NotifierName, NotifierConfig] = Field(
        default={},
        description=f"More on-call targets by name (pagerduty, jsm, webhook), for rules' `notify`; {PRIMARY_NOTIFIER!r} "
        "names `notifier`.",
    )
    rules: Annotated[list[Rule], Field(min_length=1, description="Ordered; the first match decides.")]
    default_action: Action = Field(default="drop", description="When no rule matches.")
    default_notify: Annotated[list[NotifierName], Field(min_length=1)] = Field(
        default=[PRIMARY_NOTIFIER],
        description="Where decisions of rules without `notify`, the default action and the custom action go.",
    )
    custom_action: CustomAction | None = Field(
        default=None,
        description="This environment's Security Hub custom action (the stack creates it). Omit for none: then "
        "no custom action event reaches on-call.",
    )
    suppressions: list[Suppression] = []
    dedup: Dedup = Dedup()
    ingestion: Ingestion = Ingestion()
    function: RouterFunction = RouterFunction()
    monitoring: Monitoring = Monitoring()
    storm: Storm = Storm()
    pacing: Pacing = Pacing()
    acknowledgements: Acknowledgements = Acknowledgements()
    securityhub: SecurityHubSettings = SecurityHubSettings()
    canary: Canary = Canary()
    psirt_digest: PsirtDigest = PsirtDigest()
    silences: Silences = Silences()
    baseline: Baseline | None = Field(
        default=None,
        description="The environment's security services as code (GuardDuty, Security Hub, Config, Inspector, "
        "CloudTrail): stack FindingsBaseline-<env>, deployed before the router's (docs/baseline.md). Omitted: none.",
    )
    production: bool = Field(
        default=False, description="Stricter infrastructure: deletion protection and RETAIN on the state table."
    )

    @field_validator("custom_action", mode="before")
    @classmethod
    def _custom_action_form(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError(
                f"custom_action is now an object naming this environment's own action: replace "
                f"`custom_action: {value}` with `custom_action: {{id: PageOnCall<Env>, mode: "
                f"{value if value in ('page', 'notify', 'policy') else 'page'}}}` (the stack creates the action; "
                "events of other custom actions no longer page)"
            )
        return value

    @field_validator("accounts")
    @classmethod
    def _accounts_form(cls, value: list[str]) -> list[str]:
        if ACCOUNT_WILDCARD in value and len(value) > 1:
            raise ValueError('use ["*"] alone for every account, or list 12-digit account ids')
        if len(set(value)) != len(value):
            raise ValueError("an account is listed twice")
        return value

    @property
    def all_accounts(self) -> bool:
        return self.accounts == [ACCOUNT_WILDCARD]

    def in_scope(self, account: str) -> bool:
        """Whether findings of `account` belong to this environment."""
        return self.all_accounts or account in self.accounts

    def notifier_config(self, name: str) -> PagerDutyNotifierConfig | JsmNotifierConfig | WebhookNotifierConfig:
        """The target `name` (PRIMARY_NOTIFIER: `notifier`)."""
        return self.notifier if name == PRIMARY_NOTIFIER else self.notifiers[name]

    @property
    def has_shadow(self) -> bool:
        """Shadow decisions are made: `mode: shadow`, or a rule with `shadow: true`."""
        return self.mode == "shadow" or any(rule.shadow for rule in self.rules)

    @property
    def canary_enabled(self) -> bool:
        return self.production if self.canary.enabled is None else self.canary.enabled

    @property
    def meta_alert_routing_key_secret(self) -> str:
        """Where meta-alerts go: their own routing key, else the notifier's."""
        return self.monitoring.meta_alert_routing_key_secret or self.notifier.routing_key_secret

    @model_validator(mode="after")
    def _unique_names(self) -> Policy:
        for kind, items in (("rules", self.rules), ("suppressions", self.suppressions)):
            seen: set[str] = set()
            for item in items:
                if item.name in seen:
                    raise ValueError(f"{kind}: duplicate name {item.name!r}")
                seen.add(item.name)
        return self
