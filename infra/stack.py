"""One findings-router deployment: an environment (config/<env>.yaml) in one account and region.

The stack is the one place that reads the `Policy`: it computes each construct's narrow settings from it
(`FunctionSpec`, `IngestionSettings`, `AlarmSettings`, …) and composes the constructs of infra/constructs/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from findings_router import __version__
from findings_router.settings.load import policy_path, validate_policy_file
from findings_router.settings.schema import PRIMARY_NOTIFIER, Policy
from infra.constructs.ack_receiver import (
    AckReceiver,
    AckReceiverSettings,
    PartnerBusFrontDoorSettings,
    WebhookFrontDoorSettings,
)
from infra.constructs.alarms import Alarms, AlarmSettings
from infra.constructs.canary import Canary, CanarySettings
from infra.constructs.dashboard import DashboardSettings, add_dashboard
from infra.constructs.function import FunctionSpec, function_code
from infra.constructs.ingestion import Ingestion, IngestionSettings
from infra.constructs.meta_alerts import MetaAlerts
from infra.constructs.psirt_digest import PsirtDigest, PsirtDigestSettings
from infra.constructs.router import RouterFunction
from infra.constructs.secrets import ReferencedSecret, RoutingKeySecret
from infra.constructs.silence_sweep import SilenceSweep, SilenceSweepSettings
from infra.constructs.state_table import StateTable
from infra.contract import (
    APP_NAME,
    CANARY_HANDLER,
    FUNCTION_HANDLER,
    META_ALERT_HANDLER,
    PSIRT_DIGEST_HANDLER,
    SILENCE_SWEEP_HANDLER,
    ResourceNames,
    ack_function_environment,
    ack_handler,
    ack_idempotency_key_pattern,
    ack_workflow_status,
    canary_environment,
    function_environment,
    meta_alert_environment,
    notifier_secrets,
    packaged_policy_path,
    psirt_digest_environment,
    resource_names,
    silence_sweep_environment,
)
from infra.derived import (
    ACK_MEMORY_MB,
    ACK_TIMEOUT_SECONDS,
    CANARY_TIMEOUT_SECONDS,
    META_ALERT_MAX_EVENT_AGE_HOURS,
    META_ALERT_MEMORY_MB,
    PSIRT_DIGEST_MEMORY_MB,
    PSIRT_DIGEST_TIMEOUT_SECONDS,
    deployment_checks,
    deployment_problems,
    meta_alert_timeout_seconds,
    queue_settings,
)
from infra.event_patterns import action_target_properties, detail_types, event_pattern
from infra.packaging import CONFIG_DIR, FunctionPackage


class InvalidDeploymentSettingsError(ValueError):
    """The policy file is valid, but AWS would reject some of its infrastructure settings."""


# ------------------------------------------------------------------------------------------ settings from the policy


def ingestion_settings(policy: Policy, names: ResourceNames) -> IngestionSettings:
    return IngestionSettings(
        queue_name=names.queue,
        dead_letter_queue_name=names.dead_letter_queue,
        rule_name=names.rule,
        rule_description=f"Security Hub finding events for findings-router ({policy.environment})",
        queue=queue_settings(policy),
        action_target=action_target_properties(policy),
        detail_types=tuple(detail_types(policy)),
        event_pattern=lambda arn: event_pattern(policy, action_target_arn=arn),
    )


def _function_logs(policy: Policy) -> dict[str, Any]:
    """Every function's log group: function.log_retention_days, retained in production."""
    return {"log_retention_days": policy.function.log_retention_days, "retain_logs": policy.production}


def router_spec(policy: Policy, names: ResourceNames, *, table_name: str, dead_letter_queue_url: str) -> FunctionSpec:
    settings = policy.function
    return FunctionSpec(
        function_name=names.function,
        log_group_name=names.log_group,
        description=f"Routes Security Hub findings to on-call ({policy.environment})",
        role_description=f"findings-router {policy.environment}: route Security Hub findings",
        handler=FUNCTION_HANDLER,
        memory_mb=settings.memory_mb,
        timeout_seconds=settings.timeout_seconds,
        environment=function_environment(policy, table_name, dead_letter_queue_url=dead_letter_queue_url),
        # Caps concurrent invocations, and with them the rate of calls to PagerDuty.
        reserved_concurrency=settings.reserved_concurrency,
        **_function_logs(policy),
    )


def ack_receiver_spec(policy: Policy, names: ResourceNames, *, table_name: str) -> FunctionSpec:
    settings = policy.acknowledgements
    handler = ack_handler(policy)
    if handler is None:
        raise ValueError("acknowledgements.mode is none: there is no ack receiver to build")
    return FunctionSpec(
        function_name=names.ack_function,
        log_group_name=names.ack_log_group,
        description=f"PagerDuty incident events to findings-router state and Security Hub ({policy.environment})",
        role_description=f"findings-router {policy.environment}: PagerDuty acknowledgements to state and Security Hub",
        handler=handler,
        memory_mb=ACK_MEMORY_MB,
        timeout_seconds=ACK_TIMEOUT_SECONDS,
        environment=ack_function_environment(policy, table_name),
        # Caps what a flood of (even unsigned) requests can cost; PagerDuty retries throttled deliveries.
        reserved_concurrency=settings.reserved_concurrency,
        # Only EventBridge invokes asynchronously: events it could not deliver (EventBridge's retries) and events
        # whose processing failed after Lambda's retries both end in the dead-letter queue, where an alarm
        # watches them.
        dead_letter_queue_name=names.ack_dead_letter_queue if settings.mode == "eventbridge" else None,
        **_function_logs(policy),
    )


def ack_receiver_settings(policy: Policy, names: ResourceNames) -> AckReceiverSettings:
    settings = policy.acknowledgements
    front_door: WebhookFrontDoorSettings | PartnerBusFrontDoorSettings
    if settings.mode == "function_url":
        front_door = WebhookFrontDoorSettings(signing_secret=settings.signing_secret)
    else:
        assert settings.partner_event_source is not None  # the config model requires it for this mode
        front_door = PartnerBusFrontDoorSettings(
            partner_event_source=settings.partner_event_source,
            rule_name=names.ack_rule,
            rule_description=f"PagerDuty incident events for findings-router ({policy.environment})",
        )
    return AckReceiverSettings(
        front_door=front_door,
        idempotency_key_pattern=ack_idempotency_key_pattern(names),
        rest_api_token_secret=settings.rest_api_token_secret,
        securityhub_writeback=policy.securityhub.writeback,
        workflow_status=ack_workflow_status(policy),
        jsm_token_secret=settings.jsm_token_secret,
    )


def meta_alert_spec(policy: Policy, names: ResourceNames) -> FunctionSpec:
    return FunctionSpec(
        function_name=names.meta_alert_function,
        log_group_name=names.meta_alert_log_group,
        description=f"findings-router's own CloudWatch alarms to PagerDuty ({policy.environment})",
        role_description=f"findings-router {policy.environment}: page on-call about findings-router's own alarms",
        handler=META_ALERT_HANDLER,
        memory_mb=META_ALERT_MEMORY_MB,
        timeout_seconds=meta_alert_timeout_seconds(policy),
        environment=meta_alert_environment(policy),
        # SNS invokes asynchronously: a failed run (PagerDuty unreachable) is retried by Lambda, then
        # dead-lettered. A change older than an hour is not sent late and out of order. The dead-letter queue is
        # the one place for every alarm change that paged nobody: SNS could not invoke the function (the
        # subscription's redrive policy, infra/constructs/meta_alerts.py), or the function failed on every attempt.
        dead_letter_queue_name=names.meta_alert_dead_letter_queue,
        max_event_age_hours=META_ALERT_MAX_EVENT_AGE_HOURS,
        **_function_logs(policy),
    )


def canary_spec(policy: Policy, names: ResourceNames) -> FunctionSpec:
    return FunctionSpec(
        function_name=names.canary_function,
        log_group_name=names.canary_log_group,
        description=f"Imports findings-router's synthetic finding into Security Hub ({policy.environment})",
        role_description=f"findings-router {policy.environment}: import the canary finding",
        handler=CANARY_HANDLER,
        memory_mb=META_ALERT_MEMORY_MB,
        timeout_seconds=CANARY_TIMEOUT_SECONDS,
        environment=canary_environment(policy),
        # One run at a time is plenty; a stuck run must not pile up executions.
        reserved_concurrency=1,
        **_function_logs(policy),
    )


def canary_settings(policy: Policy, names: ResourceNames) -> CanarySettings:
    return CanarySettings(
        schedule_name=names.canary_schedule,
        schedule_minutes=policy.canary.schedule_minutes,
        description=f"findings-router canary ({policy.environment}): every {policy.canary.schedule_minutes} min",
    )


def psirt_digest_spec(policy: Policy, names: ResourceNames) -> FunctionSpec:
    return FunctionSpec(
        function_name=names.psirt_digest_function,
        log_group_name=names.psirt_digest_log_group,
        description=f"PSIRT digest: new CRITICAL or exploitable CVEs from Inspector ({policy.environment})",
        role_description=f"findings-router {policy.environment}: read Inspector findings for the PSIRT digest",
        handler=PSIRT_DIGEST_HANDLER,
        memory_mb=PSIRT_DIGEST_MEMORY_MB,
        timeout_seconds=PSIRT_DIGEST_TIMEOUT_SECONDS,
        environment=psirt_digest_environment(policy),
        reserved_concurrency=1,
        **_function_logs(policy),
    )


def psirt_digest_settings(policy: Policy, names: ResourceNames) -> PsirtDigestSettings:
    settings = policy.psirt_digest
    return PsirtDigestSettings(
        schedule_name=names.psirt_digest_schedule,
        schedule_hours=settings.schedule_hours,
        description=f"findings-router PSIRT digest ({policy.environment}): every {settings.schedule_hours} h",
        report=settings.report,
        report_retention_days=settings.report_retention_days,
        retain_reports=policy.production,
    )


def silence_sweep_spec(policy: Policy, names: ResourceNames, *, table_name: str) -> FunctionSpec:
    return FunctionSpec(
        function_name=names.silence_sweep_function,
        log_group_name=names.silence_sweep_log_group,
        description=f"Pages what a silence held back once it ended, if still active ({policy.environment})",
        role_description=f"findings-router {policy.environment}: page what silences held back",
        handler=SILENCE_SWEEP_HANDLER,
        memory_mb=policy.function.memory_mb,
        # The router's timeout: a page the sweep records is "in flight" that long for a copy the router routes.
        timeout_seconds=policy.function.timeout_seconds,
        environment=silence_sweep_environment(policy, table_name),
        # One sweep at a time (two would be safe: every write is conditional, and a recorded page is left alone).
        reserved_concurrency=1,
        **_function_logs(policy),
    )


def silence_sweep_settings(policy: Policy, names: ResourceNames) -> SilenceSweepSettings:
    minutes = policy.silences.sweep_minutes
    return SilenceSweepSettings(
        schedule_name=names.silence_sweep_schedule,
        sweep_minutes=minutes,
        description=f"findings-router silence sweep ({policy.environment}): every {minutes} min",
        securityhub_writeback=policy.securityhub.writeback,
    )


def alarm_settings(policy: Policy, names: ResourceNames) -> AlarmSettings:
    monitoring = policy.monitoring
    return AlarmSettings(
        environment=policy.environment,
        alarm_prefix=names.alarm_prefix,
        alarm_topic_name=names.alarm_topic,
        meta_alarm_topic_name=names.meta_alarm_topic,
        alarm_emails=tuple(monitoring.alarm_emails),
        no_alarm_emails_reason=monitoring.no_alarm_emails_reason,
        oldest_message_age_seconds=monitoring.oldest_message_age_seconds,
        retain_key=policy.production,
    )


def function_package(policy: Policy, *, include_dependencies: bool, config_dir: Path = CONFIG_DIR) -> FunctionPackage:
    """The environment's function package: functions/, its validated policy and (unless left out) the dependencies.

    `include_dependencies=False` leaves out the third-party packages (no pip, no network): the stack then
    synthesizes in milliseconds for tests, but such a package cannot run on Lambda.
    """
    return FunctionPackage(
        policy_file=policy_path(config_dir, policy.environment),
        packaged_policy_path=packaged_policy_path(policy),
        include_dependencies=include_dependencies,
    )


# ------------------------------------------------------------------------------------------ the stack


class FindingsRouterStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: Policy,
        include_dependencies: bool = True,
        config_dir: Path = CONFIG_DIR,
        **stack_props: Any,
    ) -> None:
        # `build` reports these already, with the rest of validate-config's checks; this guards a stack built from
        # any `Policy`. The same checks (infra.derived.deployment_checks), with lines when it is the file's policy.
        if deployment_problems(policy):
            source = policy_path(config_dir, policy.environment)
            from_file = validate_policy_file(source, checks=(deployment_checks,))
            problems = (
                [str(p) for p in from_file.errors]
                if from_file.policy == policy
                else [f"{source}: {p}" for p in deployment_problems(policy)]
            )
            raise InvalidDeploymentSettingsError("\n".join(problems))
        super().__init__(
            scope,
            construct_id,
            description=f"findings-router ({policy.environment}): Security Hub findings to on-call",
            # A production stack holds the open-incident state; deleting it takes a deliberate extra step.
            termination_protection=policy.production,
            **stack_props,
        )
        self.policy = policy
        names = resource_names(policy)
        Tags.of(self).add("app", APP_NAME)
        Tags.of(self).add("environment", policy.environment)
        Tags.of(self).add("findings-router-version", __version__)

        self.state = StateTable(self, "State", table_name=names.state_table, retain=policy.production)
        self.routing_key = RoutingKeySecret(self, "RoutingKey", secret_name_or_arn=policy.notifier.routing_key_secret)
        self.ingestion = Ingestion(self, "Ingestion", settings=ingestion_settings(policy, names))
        # One package (one asset, built once) for every function of the stack: the router, the ack receiver and
        # the meta-alert function differ only in their handler.
        package = function_package(policy, include_dependencies=include_dependencies, config_dir=config_dir)
        code = function_code(package, environment=policy.environment)
        table = self.state.table
        self.router = RouterFunction(
            self,
            "Router",
            spec=router_spec(
                policy,
                names,
                table_name=table.table_name,
                dead_letter_queue_url=self.ingestion.dead_letter_queue.queue_url,
            ),
            code=code,
            table=table,
            routing_key=self.routing_key,
            dead_letter_queue=self.ingestion.dead_letter_queue,
            securityhub_writeback=policy.securityhub.writeback,
            time_index_arn=self.state.time_index_arn,
        )
        self.ingestion.connect(self.router.function)
        self.ack_receiver: AckReceiver | None = None
        if policy.acknowledgements.mode != "none":
            self.ack_receiver = AckReceiver(
                self,
                "AckReceiver",
                spec=ack_receiver_spec(policy, names, table_name=table.table_name),
                code=code,
                settings=ack_receiver_settings(policy, names),
                table=table,
                routing_key=self.routing_key,
            )
        # Id "Monitoring": it holds the alarms, their topics and the dashboard, and every alarm's logical id (and the
        # dashboard's) derives from it.
        self.monitoring = Alarms(
            self,
            "Monitoring",
            settings=alarm_settings(policy, names),
            queue=self.ingestion.queue,
            dead_letter_queue=self.ingestion.dead_letter_queue,
            function=self.router.function,
        )
        if self.ack_receiver is not None:
            self.monitoring.watch_ack_receiver(
                self.ack_receiver.function,
                self.ack_receiver.dead_letter_queue,
                public_url=self.ack_receiver.function_url is not None,
            )
        self.meta_alerts = self._add_meta_alerts(policy, names, code)
        self._grant_notifier_secrets(policy)
        if policy.monitoring.no_findings_alarm_minutes is not None:
            self.monitoring.watch_findings_feed(minutes=policy.monitoring.no_findings_alarm_minutes)
        self.canary = self._add_canary(policy, names, code)
        self.psirt_digest = self._add_psirt_digest(policy, names, code)
        self.silence_sweep = self._add_silence_sweep(policy, names, code)
        # Last, once every alarm exists; inside the Monitoring construct, the parent its logical id derives from.
        self.dashboard = add_dashboard(
            self.monitoring,
            "Dashboard",
            settings=DashboardSettings(
                dashboard_name=names.dashboard,
                environment=policy.environment,
                ack_mode=None if self.ack_receiver is None else self.ack_receiver.mode,
            ),
            alarms=self.monitoring.alarms,
            queue=self.ingestion.queue,
            dead_letter_queue=self.ingestion.dead_letter_queue,
            router=self.router.function,
            ack_receiver=None if self.ack_receiver is None else self.ack_receiver.function,
            meta_alerts=self.meta_alerts.function,
        )

        self._add_outputs(names)

    def _add_canary(self, policy: Policy, names: ResourceNames, code: Any) -> Canary | None:
        """The canary's key for the router (which pages its service), its heartbeat URL for whichever function
        completes a run (the ack receiver when there is one), the scheduled importer and its alarms."""
        settings = policy.canary
        if settings.routing_key_secret is not None:
            canary_key = ReferencedSecret(
                self, "CanaryRoutingKey", secret_name_or_arn=settings.routing_key_secret, sid="ReadCanaryRoutingKey"
            )
            canary_key.grant_read(self.router.role)
            if settings.heartbeat_url_secret is not None:
                heartbeat = ReferencedSecret(
                    self,
                    "CanaryHeartbeatUrl",
                    secret_name_or_arn=settings.heartbeat_url_secret,
                    sid="ReadCanaryHeartbeatUrl",
                )
                heartbeat.grant_read(self.router.role if self.ack_receiver is None else self.ack_receiver.role)
        if not policy.canary_enabled:
            return None
        canary = Canary(
            self, "Canary", spec=canary_spec(policy, names), code=code, settings=canary_settings(policy, names)
        )
        self.monitoring.watch_canary(canary.function, alarm_after_minutes=settings.alarm_after_minutes)
        return canary

    def _add_psirt_digest(self, policy: Policy, names: ResourceNames, code: Any) -> PsirtDigest | None:
        """The scheduled digest (psirt_digest.enabled): Inspector read, its report bucket, the secrets of the
        notifiers it sends to, and its errors alarm."""
        if not policy.psirt_digest.enabled:
            return None
        digest = PsirtDigest(
            self,
            "PsirtDigest",
            spec=psirt_digest_spec(policy, names),
            code=code,
            settings=psirt_digest_settings(policy, names),
        )
        for target in policy.psirt_digest.notify or ():
            if target == PRIMARY_NOTIFIER:
                self.routing_key.grant_read(digest.role)
            else:
                for secret in self.notifier_secret_references.get(target, ()):
                    secret.grant_read(digest.role)
        self.monitoring.watch_psirt_digest(digest.function)
        return digest

    def _add_silence_sweep(self, policy: Policy, names: ResourceNames, code: Any) -> SilenceSweep:
        """The sweep paging what silences held back: it sends where the router does (every notifier's secret)."""
        sweep = SilenceSweep(
            self,
            "SilenceSweep",
            spec=silence_sweep_spec(policy, names, table_name=self.state.table.table_name),
            code=code,
            settings=silence_sweep_settings(policy, names),
            table=self.state.table,
            time_index_arn=self.state.time_index_arn,
        )
        self.routing_key.grant_read(sweep.role)
        for references in self.notifier_secret_references.values():
            for secret in references:
                secret.grant_read(sweep.role)
        self.monitoring.watch_silence_sweep(sweep.function)
        return sweep

    def _add_meta_alerts(self, policy: Policy, names: ResourceNames, code: Any) -> MetaAlerts:
        """Meta-alerts through their own service when the policy names one (required in production)."""
        meta_key: ReferencedSecret = self.routing_key
        if policy.monitoring.meta_alert_routing_key_secret is not None:
            meta_key = ReferencedSecret(
                self,
                "MetaAlertRoutingKey",
                secret_name_or_arn=policy.monitoring.meta_alert_routing_key_secret,
                sid="ReadMetaAlertRoutingKey",
            )
        meta_alerts = MetaAlerts(
            self,
            "MetaAlerts",
            spec=meta_alert_spec(policy, names),
            code=code,
            topic=self.monitoring.topic,
            routing_key=meta_key,
        )
        self.monitoring.watch_meta_alerts(meta_alerts.function, meta_alerts.dead_letter_queue)
        return meta_alerts

    def _add_outputs(self, names: ResourceNames) -> None:
        if self.canary is not None:
            CfnOutput(self, "CanaryFunctionName", value=self.canary.function.function_name)
        if self.psirt_digest is not None:
            CfnOutput(self, "PsirtDigestFunctionName", value=self.psirt_digest.function.function_name)
            if self.psirt_digest.bucket is not None:
                CfnOutput(self, "PsirtReportBucket", value=self.psirt_digest.bucket.bucket_name)
        CfnOutput(self, "StateTableName", value=self.state.table.table_name)
        CfnOutput(self, "SilenceSweepFunctionName", value=self.silence_sweep.function.function_name)
        CfnOutput(self, "FindingsQueueUrl", value=self.ingestion.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.ingestion.dead_letter_queue.queue_url)
        CfnOutput(self, "RouterFunctionName", value=self.router.function.function_name)
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        CfnOutput(self, "MetaAlarmTopicArn", value=self.monitoring.meta_topic.topic_arn)
        CfnOutput(self, "MetaAlertFunctionName", value=self.meta_alerts.function.function_name)
        if self.ingestion.action_target_arn is not None:
            CfnOutput(
                self,
                "CustomActionArn",
                value=self.ingestion.action_target_arn,
                description="This environment's Security Hub custom action (console: select findings, Actions)",
            )
        if self.ack_receiver is not None:
            CfnOutput(self, "AckReceiverFunctionName", value=self.ack_receiver.function.function_name)
            if self.ack_receiver.webhook_url is not None:
                CfnOutput(
                    self,
                    "PagerDutyWebhookUrl",
                    value=self.ack_receiver.webhook_url,
                    description="Register as the PagerDuty Webhooks v3 subscription's URL (docs/deploy.md)",
                )
            if self.ack_receiver.jsm_webhook_url is not None:
                CfnOutput(
                    self,
                    "JsmWebhookUrl",
                    value=self.ack_receiver.jsm_webhook_url,
                    description="The JSM outgoing webhook integration's URL (header X-Findings-Router-Token)",
                )
            if self.ack_receiver.rule is not None:
                # The literal name: `Ref` of a rule on a custom event bus is "<bus name>|<rule name>".
                CfnOutput(self, "PagerDutyEventsRuleName", value=names.ack_rule)

    def _grant_notifier_secrets(self, policy: Policy) -> None:
        """The `notifiers`' secrets (routing keys, JSM API keys, webhook URLs and signing secrets), readable by the
        router, which sends, and the ack receiver, which resolves an episode's sibling incidents where it went."""
        self.notifier_secret_references: dict[str, list[ReferencedSecret]] = {}
        for name, field, secret in notifier_secrets(policy):
            label = "".join(part.title() for part in f"{name}-{field}".replace("_", "-").split("-"))
            reference = ReferencedSecret(self, f"Notifier{label}", secret_name_or_arn=secret, sid=f"Read{label}")
            self.notifier_secret_references.setdefault(name, []).append(reference)
            reference.grant_read(self.router.role)
            if self.ack_receiver is not None:
                reference.grant_read(self.ack_receiver.role)
            if name in (policy.monitoring.meta_alert_notify or ()):
                reference.grant_read(self.meta_alerts.role)
