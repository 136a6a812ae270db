"""The synthesized stacks, construct by construct, for every config/*.yaml; plus cdk-nag, cfn-lint and IAM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from findings_router.settings.load import load_policy
from infra.constructs.ingestion import ACTION_TARGET_TYPE, ACTION_TARGET_UNKNOWN_TYPE
from infra.constructs.router import STATE_TABLE_ACTIONS
from infra.contract import (
    FUNCTION_HANDLER,
    ROUTER_WORKFLOW_STATUS,
    STATE_TABLE_PARTITION_KEY,
    STATE_TABLE_TTL_ATTRIBUTE,
    function_environment,
    notifier_secrets,
    resource_names,
    securityhub_writeback_condition,
    state_table_definition,
)
from infra.derived import DEAD_LETTER_RETENTION_DAYS, SECONDS_PER_DAY, queue_settings
from infra.event_patterns import action_target_properties, event_pattern
from tests.infra.conftest import REPO_ROOT, Synthesis, SynthesizedStack

pytestmark = pytest.mark.infra


def _logical_id(stack: SynthesizedStack, resource_type: str) -> str:
    ids = list(stack.resources(resource_type))
    assert len(ids) == 1, f"expected one {resource_type}, found {ids}"
    return ids[0]


def _queue_ids(stack: SynthesizedStack) -> tuple[str, str]:
    """(findings queue, dead-letter queue) logical ids."""
    names = resource_names(stack.policy)
    return (
        stack.named("AWS::SQS::Queue", "QueueName", names.queue),
        stack.named("AWS::SQS::Queue", "QueueName", names.dead_letter_queue),
    )


def _router_ids(stack: SynthesizedStack) -> dict[str, str]:
    """Logical ids of the router function, its role, its log group."""
    names = resource_names(stack.policy)
    function = stack.named("AWS::Lambda::Function", "FunctionName", names.function)
    return {
        "function": function,
        "role": stack.properties(function)["Role"]["Fn::GetAtt"][0],
        "log_group": stack.named("AWS::Logs::LogGroup", "LogGroupName", names.log_group),
    }


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def stack_arn(stack: SynthesizedStack | None, service: str, resource: str) -> Any:
    """An ARN in the stack's own partition, region and account, as CDK's format_arn writes it: literal when the
    config pins account and region (CDK then also knows the partition), else with pseudo parameters."""
    policy = stack.policy if stack is not None else None
    if policy is not None and policy.account and policy.region:
        return f"arn:aws:{service}:{policy.region}:{policy.account}:{resource}"
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                f":{service}:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":{resource}",
            ],
        ]
    }


def hub_arns(stack: SynthesizedStack | None = None) -> list[Any]:
    """What BatchUpdateFindings is granted on: the CSPM hub and the account's (one) Security Hub V2 hub."""
    return [stack_arn(stack, "securityhub", "hub/default"), stack_arn(stack, "securityhub", "hubv2/*")]


def action_target_id(stack: SynthesizedStack) -> str | None:
    """Logical id of the stack's custom action (AWS::SecurityHub::ActionTarget), None without one."""
    ids = list(stack.resources(ACTION_TARGET_TYPE))
    assert len(ids) <= 1
    return ids[0] if ids else None


def deployed_event_pattern(stack: SynthesizedStack) -> dict[str, Any]:
    """event_patterns.event_pattern as the stack deploys it: the action target's ARN from CloudFormation."""
    target = action_target_id(stack)
    arn = {"Fn::GetAtt": [target, "ActionTargetArn"]} if target else None
    return event_pattern(stack.policy, action_target_arn=arn)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ whole app


def test_every_config_file_becomes_one_stack(synthesis: Synthesis, environments: list[str]):
    assert sorted(synthesis.stacks) == environments
    for environment, stack in synthesis.stacks.items():
        assert stack.stack.stack_name == f"FindingsRouter-{environment}"


def _warnings(report: dict[str, Any], rule: str) -> set[str]:
    """Stacks with our own synth warning `rule` (`Annotations.add_warning_v2`), from the validation report."""
    return {
        construct["constructPath"].split("/")[0]
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
        if violation["severity"] == "warning" and violation["ruleName"].endswith(rule)
        for construct in violation["violatingConstructs"]
    }


def expected_acknowledgements(stack: SynthesizedStack) -> set[tuple[str, str]]:
    """Every cdk-nag acknowledgement a stack may carry, and where: nothing broader than one resource."""
    root = f"/{stack.stack.stack_name}"
    functions = ["Router", "MetaAlerts", "SilenceSweep"]
    functions += ["AckReceiver"] if stack.policy.acknowledgements.mode != "none" else []
    functions += ["Canary"] if stack.policy.canary_enabled else []
    functions += ["PsirtDigest"] if stack.policy.psirt_digest.enabled else []
    expected = {(f"{root}/{f}/Function/Resource", "Annotation::AwsSolutions-L1") for f in functions}
    if stack.policy.psirt_digest.enabled:
        # inspector2:ListFindings has no resource type; reports go to the digest's own prefix, unlogged bucket.
        digest_policy = f"{root}/PsirtDigest/Role/DefaultPolicy/Resource"
        expected.add((digest_policy, "Annotation::AwsSolutions-IAM5[Resource::*]"))
        if stack.policy.psirt_digest.report:
            bucket = stack.stack.psirt_digest.bucket.node.default_child.logical_id
            arn = f"<{stack.stack.resolve(bucket)}.Arn>/psirt-digest/*"
            expected.add((digest_policy, f"Annotation::AwsSolutions-IAM5[Resource::{arn}]"))
            expected.add((f"{root}/PsirtDigest/Reports/Resource", "Annotation::AwsSolutions-S1"))
    if stack.policy.custom_action is not None:
        # aws-cdk-lib 2.275.0's own template validation has no schema for AWS::SecurityHub::ActionTarget.
        expected.add((f"{root}/Ingestion/CustomAction", ACTION_TARGET_UNKNOWN_TYPE))
    if stack.policy.securityhub.writeback:
        pinned = stack.policy.account and stack.policy.region
        hub_v2 = (
            f"arn:aws:securityhub:{stack.policy.region}:{stack.policy.account}:hubv2/*"
            if pinned
            else "arn:<AWS::Partition>:securityhub:<AWS::Region>:<AWS::AccountId>:hubv2/*"
        )
        expected |= {
            (f"{root}/{f}/Role/DefaultPolicy/Resource", f"Annotation::AwsSolutions-IAM5[Resource::{hub_v2}]")
            for f in functions
            if f not in ("MetaAlerts", "Canary", "PsirtDigest")
        }
    return expected


def acknowledgements(outdir: Path, stack: SynthesizedStack) -> dict[tuple[str, str], str]:
    metadata = json.loads((outdir / f"{stack.stack.stack_name}.metadata.json").read_text())
    return {
        (path, rule): reason
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for rule, reason in entry["data"].items()
    }


def test_cdk_nag_ran_and_only_the_reasoned_acknowledgements_remain(synthesis: Synthesis):
    # app.synth() in the fixture raises on any unacknowledged AwsSolutions finding; the report must be clean.
    report = json.loads((synthesis.outdir / "validation-report.json").read_text())
    assert all(plugin["conclusion"] == "success" for plugin in report["pluginReports"])
    assert not [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions" and p.get("violations")]
    # The only other findings are our own warnings.
    all_violations = [v for p in report["pluginReports"] for v in p.get("violations", [])]
    assert all(v["severity"] == "warning" and "findings-router:" in v["ruleName"] for v in all_violations)
    assert _warnings(report, "findings-router:reserved-concurrency-below-event-source-minimum") == {
        f"FindingsRouter-{env}" for env, s in synthesis.stacks.items() if s.policy.function.reserved_concurrency < 2
    }
    assert _warnings(report, "findings-router:no-alarm-emails") == {
        f"FindingsRouter-{env}" for env, s in synthesis.stacks.items() if not s.policy.monitoring.alarm_emails
    }
    for stack in synthesis.stacks.values():
        acknowledged = acknowledgements(synthesis.outdir, stack)
        assert set(acknowledged) == expected_acknowledgements(stack)
        assert all(len(reason) > 40 for reason in acknowledged.values())


def test_cdk_nag_fails_the_synth_of_an_unacceptable_resource(tmp_path: Path):
    # Proves the plugin is wired as app.py wires it: a plain queue (no DLQ, no SSL enforcement) breaks synth.
    from aws_cdk import App, Stack, Validations
    from aws_cdk import aws_sqs as sqs
    from cdk_nag import AwsSolutionsChecks

    app = App(outdir=str(tmp_path))
    sqs.Queue(Stack(app, "Bad"), "Queue")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= rules


def test_cfn_lint_is_clean(synthesis: Synthesis):
    from cfnlint.api import ManualArgs, lint

    for environment in synthesis.stacks:
        path = synthesis.outdir / f"FindingsRouter-{environment}.template.json"
        matches = lint(
            path.read_text(),
            config=ManualArgs(
                regions=["us-east-1", "eu-central-1"],
                # W3005 (DependsOn already implied by a GetAtt) is generated by CDK itself: lambda.Function adds
                # an explicit DependsOn on its role and the role's default policy.
                ignore_checks=["W3005"],
            ),
        )
        assert [str(m) for m in matches] == [], environment


def test_stack_environment_and_protection(synthesized: SynthesizedStack):
    stack = synthesized.stack
    # No account/region in the shipped config files and none in the test environment: environment-agnostic.
    assert synthesized.policy.account is None
    assert stack.termination_protection is synthesized.policy.production
    assert synthesized.template["Description"].startswith(f"findings-router ({synthesized.environment})")
    outputs = set(synthesized.template["Outputs"])
    assert {
        "StateTableName",
        "FindingsQueueUrl",
        "DeadLetterQueueUrl",
        "RouterFunctionName",
        "AlarmTopicArn",
        "MetaAlarmTopicArn",
        "MetaAlertFunctionName",
    } <= outputs
    mode = synthesized.policy.acknowledgements.mode
    assert ("AckReceiverFunctionName" in outputs) is (mode != "none")
    assert ("PagerDutyWebhookUrl" in outputs) is (mode == "function_url")
    assert ("PagerDutyEventsRuleName" in outputs) is (mode == "eventbridge")
    assert ("CustomActionArn" in outputs) is (synthesized.policy.custom_action is not None)


# ------------------------------------------------------------------------------------------ custom action


def test_each_stack_creates_its_own_custom_action(synthesized: SynthesizedStack):
    from aws_cdk.assertions import Match

    policy = synthesized.policy
    assert policy.custom_action is not None  # every shipped environment has one
    expected = action_target_properties(policy)
    assert expected is not None
    synthesized.assertions.resource_count_is(ACTION_TARGET_TYPE, 1)
    synthesized.assertions.has_resource_properties(
        ACTION_TARGET_TYPE,
        {
            "Id": policy.custom_action.id,
            # e.g. "Page on-call prod", and a description saying who is paged (or notified) for which environment.
            "Name": Match.string_like_regexp(rf"^(Page|Notify) on-call {policy.environment}$"),
            "Description": Match.string_like_regexp(rf"(pages|notifies) the {policy.environment} on-call engineer"),
        },
    )
    properties = synthesized.properties(action_target_id(synthesized))  # type: ignore[arg-type]
    assert properties == expected
    assert len(properties["Name"]) <= 20 and len(properties["Description"]) <= 256
    verb = {"page": "pages", "notify": "notifies"}[policy.custom_action.mode]
    assert verb in properties["Description"]
    synthesized.assertions.has_output(
        "CustomActionArn", {"Value": {"Fn::GetAtt": [action_target_id(synthesized), "ActionTargetArn"]}}
    )


def test_the_rule_admits_only_the_stacks_own_custom_action(synthesized: SynthesizedStack):
    from aws_cdk.assertions import Match

    target = action_target_id(synthesized)
    synthesized.assertions.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": resource_names(synthesized.policy).rule,
            "EventPattern": Match.object_like(
                {
                    "$or": Match.array_with(
                        [
                            {
                                "detail-type": ["Security Hub Findings - Custom Action"],
                                "resources": [{"Fn::GetAtt": [target, "ActionTargetArn"]}],
                                "detail": {"findings": {"AwsAccountId": sorted(synthesized.policy.accounts)}},
                            }
                        ]
                    )
                }
            ),
        },
    )


# ------------------------------------------------------------------------------------------ state table


def test_state_table(synthesized: SynthesizedStack):
    policy = synthesized.policy
    names = resource_names(policy)
    definition = state_table_definition(names.state_table)
    synthesized.assertions.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": {
                "TableName": names.state_table,
                "KeySchema": definition["KeySchema"],
                "AttributeDefinitions": definition["AttributeDefinitions"],
                "GlobalSecondaryIndexes": definition["GlobalSecondaryIndexes"],
                "BillingMode": definition["BillingMode"],
                "TimeToLiveSpecification": {"AttributeName": STATE_TABLE_TTL_ATTRIBUTE, "Enabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
                "DeletionProtectionEnabled": policy.production,
            },
            "DeletionPolicy": "Retain" if policy.production else "Delete",
            "UpdateReplacePolicy": "Retain" if policy.production else "Delete",
        },
    )
    assert definition["KeySchema"] == [{"AttributeName": STATE_TABLE_PARTITION_KEY, "KeyType": "HASH"}]


# ------------------------------------------------------------------------------------------ ingestion


def test_rule_pattern_is_the_event_patterns_one_on_the_default_bus(synthesized: SynthesizedStack):
    rule_id = synthesized.named("AWS::Events::Rule", "Name", resource_names(synthesized.policy).rule)
    rule = synthesized.properties(rule_id)
    assert rule["EventPattern"] == deployed_event_pattern(synthesized)
    assert "EventBusName" not in rule  # the default bus, where Security Hub publishes
    assert rule["State"] == "ENABLED"
    main, dlq = _queue_ids(synthesized)
    (target,) = rule["Targets"]
    assert target["Arn"] == _arn(main)
    assert target["DeadLetterConfig"] == {"Arn": _arn(dlq)}


def test_queues(synthesized: SynthesizedStack):
    policy = synthesized.policy
    names = resource_names(policy)
    settings = queue_settings(policy)
    main, dlq = _queue_ids(synthesized)
    queues = synthesized.resources("AWS::SQS::Queue")
    main_properties = {k: v for k, v in queues[main]["Properties"].items() if k != "Tags"}
    assert main_properties == {
        "QueueName": names.queue,
        "SqsManagedSseEnabled": True,
        "VisibilityTimeout": settings.visibility_timeout_seconds,
        "MessageRetentionPeriod": settings.retention_seconds,
        "RedrivePolicy": {"deadLetterTargetArn": _arn(dlq), "maxReceiveCount": policy.ingestion.max_receive_count},
    }
    assert settings.visibility_timeout_seconds >= 6 * policy.function.timeout_seconds
    assert queues[dlq]["Properties"]["QueueName"] == names.dead_letter_queue
    assert queues[dlq]["Properties"]["SqsManagedSseEnabled"] is True
    assert queues[dlq]["Properties"]["MessageRetentionPeriod"] == DEAD_LETTER_RETENTION_DAYS * SECONDS_PER_DAY


def test_queue_policies_enforce_tls_and_admit_only_the_rule(synthesized: SynthesizedStack):
    main, dlq = _queue_ids(synthesized)
    rule_id = synthesized.named("AWS::Events::Rule", "Name", resource_names(synthesized.policy).rule)
    # The ingestion queues' policies (the ack and meta-alert DLQs' are checked with their constructs).
    ingestion = [
        p
        for p in synthesized.resources("AWS::SQS::QueuePolicy").values()
        if {q["Ref"] for q in p["Properties"]["Queues"]} <= {main, dlq}
    ]
    for policy in ingestion:
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        deny = [s for s in statements if s["Effect"] == "Deny"]
        assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for allow in (s for s in statements if s["Effect"] == "Allow"):
            assert allow["Principal"] == {"Service": "events.amazonaws.com"}
            assert set(allow["Action"] if isinstance(allow["Action"], list) else [allow["Action"]]) <= {
                "sqs:SendMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
            }
            assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": _arn(rule_id)}}
    assert {ref["Ref"] for p in ingestion for ref in p["Properties"]["Queues"]} == {main, dlq}
    # Every queue of the stack enforces TLS.
    for policy in synthesized.resources("AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )
    assert len(synthesized.resources("AWS::SQS::QueuePolicy")) == len(synthesized.resources("AWS::SQS::Queue"))


def test_event_source_mapping(synthesized: SynthesizedStack):
    settings = queue_settings(synthesized.policy)
    main, _ = _queue_ids(synthesized)
    expected: dict[str, Any] = {
        "EventSourceArn": _arn(main),
        "FunctionName": {"Ref": _router_ids(synthesized)["function"]},
        "BatchSize": settings.batch_size,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }
    if settings.max_concurrency is not None:
        expected["ScalingConfig"] = {"MaximumConcurrency": settings.max_concurrency}
    synthesized.assertions.has_resource_properties("AWS::Lambda::EventSourceMapping", expected)


# ------------------------------------------------------------------------------------------ router function


def test_router_function(synthesized: SynthesizedStack):
    policy = synthesized.policy
    names = resource_names(policy)
    table_ref = {"Ref": _logical_id(synthesized, "AWS::DynamoDB::Table")}
    ids = _router_ids(synthesized)
    function = synthesized.properties(ids["function"])
    assert function["FunctionName"] == names.function
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == FUNCTION_HANDLER
    assert function["MemorySize"] == policy.function.memory_mb
    assert function["Timeout"] == policy.function.timeout_seconds
    assert function["ReservedConcurrentExecutions"] == policy.function.reserved_concurrency
    _, dlq = _queue_ids(synthesized)
    assert function["Environment"]["Variables"] == function_environment(
        policy,
        table_ref,  # type: ignore[arg-type]
        dead_letter_queue_url={"Ref": dlq},  # type: ignore[arg-type]
    )
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": ids["log_group"]}}
    assert function["Role"] == _arn(ids["role"])


def test_environment_variables_hold_no_secret(synthesized: SynthesizedStack):
    functions = synthesized.resources("AWS::Lambda::Function")
    policy = synthesized.policy
    # The router, the meta-alerts, the silence sweep, and what the policy turns on.
    expected = 3 + (policy.acknowledgements.mode != "none") + policy.canary_enabled + policy.psirt_digest.enabled
    assert len(functions) == expected
    for function in functions.values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert set(variables) <= {
            "POLICY_FILE",
            "STATE_TABLE_NAME",
            "POWERTOOLS_SERVICE_NAME",
            "POWERTOOLS_METRICS_NAMESPACE",
            "DEAD_LETTER_QUEUE_URL",
            "REPORT_BUCKET",
        }
        assert "POLICY_FILE" in variables
        assert not any("KEY" in name or "SECRET" in name or "TOKEN" in name for name in variables)


def test_log_groups(synthesized: SynthesizedStack):
    policy = synthesized.policy
    names = resource_names(policy)
    expected = [names.log_group, names.meta_alert_log_group, names.silence_sweep_log_group]
    if policy.acknowledgements.mode != "none":
        expected.append(names.ack_log_group)
    if policy.canary_enabled:
        expected.append(names.canary_log_group)
    if policy.psirt_digest.enabled:
        expected.append(names.psirt_digest_log_group)
    log_groups = synthesized.resources("AWS::Logs::LogGroup")
    assert sorted(g["Properties"]["LogGroupName"] for g in log_groups.values()) == sorted(expected)
    for log_group in log_groups.values():
        assert log_group["Properties"]["RetentionInDays"] == policy.function.log_retention_days
        assert log_group["DeletionPolicy"] == ("Retain" if policy.production else "Delete")
    # Every function writes to its own, explicit log group.
    for function in synthesized.resources("AWS::Lambda::Function").values():
        (group,) = [
            k
            for k, g in log_groups.items()
            if g["Properties"]["LogGroupName"].endswith("/" + function["Properties"]["FunctionName"])
        ]
        assert function["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": group}}


def test_function_package_holds_code_and_policy_file(synthesized: SynthesizedStack):
    # Bundled without dependencies in tests (no pip); app.py includes them (see test_function_package.py).
    asset = synthesized.asset_dir
    for module in ("entrypoints/route_findings.py", "entrypoints/receive_acks.py", "entrypoints/page_alarms.py"):
        assert (asset / "findings_router" / module).is_file(), module
    # The reviewed YAML, validated at synth and shipped as JSON: the very same policy, read without a YAML parser.
    packaged_policy = asset / "config" / f"{synthesized.environment}.json"
    assert load_policy(packaged_policy) == load_policy(REPO_ROOT / "config" / f"{synthesized.environment}.yaml")
    assert not (asset / "config" / f"{synthesized.environment}.yaml").exists()
    # One package for every function of the stack: one asset, built once.
    functions = synthesized.resources("AWS::Lambda::Function").values()
    assert len({json.dumps(f["Properties"]["Code"], sort_keys=True) for f in functions}) == 1
    for function in functions:
        policy_file = function["Properties"]["Environment"]["Variables"]["POLICY_FILE"]
        assert policy_file == f"/var/task/config/{synthesized.environment}.json"
    assert not list(asset.rglob("__pycache__"))
    assert not (asset / "pydantic").exists()


# ------------------------------------------------------------------------------------------ IAM


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_identity_policy_grants_wildcards(synthesized: SynthesizedStack):
    """No `*` in any action and no `*` in any resource of any role or identity policy of the stack, with these
    exceptions: the account's hubv2 (Security Hub V2), whose id is generated when it is enabled (one per account and
    region; acknowledged for cdk-nag with that reason), and the PSIRT digest's two: inspector2:ListFindings, which
    has no resource type, and PutObject under the digest's own prefix of its own bucket.

    (KMS key policies are resource policies: CDK's default "kms:*" for the account root there is how key
    administration stays with the account's own IAM, and is checked separately below.)
    """
    documents = [p["Properties"]["PolicyDocument"] for p in synthesized.resources("AWS::IAM::Policy").values()]
    for role in synthesized.resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"], "no managed policies: they are never least privilege"
        documents += [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
    assert documents
    for document in documents:
        for statement in _statements(document):
            assert statement["Effect"] == "Allow"
            for action in _as_list(statement["Action"]):
                assert "*" not in action, action
            for resource in _as_list(statement["Resource"]):
                if statement["Action"] == "inspector2:ListFindings" or statement["Action"] == "s3:PutObject":
                    assert statement["Sid"] in ("ListInspectorFindings", "WriteReports")
                    assert resource == "*" or json.dumps(resource).endswith('"/psirt-digest/*"]]}'), resource
                    continue
                assert resource != "*"
                if resource == hub_arns(synthesized)[1]:
                    assert statement["Action"] == "securityhub:BatchUpdateFindings"
                    continue
                assert "*" not in json.dumps(resource), resource


def granted(
    stack: SynthesizedStack, role: str, conditions: dict[str, dict[str, Any]] | None = None
) -> dict[str, list[Any]]:
    """Action → resources of the one identity policy attached to `role` (and no inline policies).

    `conditions`: the exact Condition of each statement (by Sid) that has one; every other statement has none.
    """
    (policy,) = [p for p in stack.resources("AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"]]
    assert "Policies" not in stack.properties(role)
    expected_conditions = conditions or {}
    seen: set[str] = set()
    result: dict[str, list[Any]] = {}
    for statement in _statements(policy["Properties"]["PolicyDocument"]):
        assert statement["Effect"] == "Allow"
        sid = statement.get("Sid", "")
        assert statement.get("Condition") == expected_conditions.get(sid), sid
        seen.add(sid)
        for action in _as_list(statement["Action"]):
            result.setdefault(action, []).extend(_as_list(statement["Resource"]))
    assert set(expected_conditions) <= seen
    return result


def secret_arn(stack: SynthesizedStack, name_or_arn: str) -> Any:
    """How a secret is granted: its complete ARN as given, or by name with exactly six suffix characters."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return stack_arn(stack, "secretsmanager", f"secret:{name_or_arn}-??????")


def test_router_role_is_least_privilege(synthesized: SynthesizedStack):
    table = _logical_id(synthesized, "AWS::DynamoDB::Table")
    ids = _router_ids(synthesized)
    log_group = ids["log_group"]
    main, dlq = _queue_ids(synthesized)
    expected = {
        "logs:CreateLogStream": [_arn(log_group)],
        "logs:PutLogEvents": [_arn(log_group)],
        **{action: [_arn(table)] for action in STATE_TABLE_ACTIONS},
        # The silences in effect: a Query of the time index, nothing else of it.
        "dynamodb:Query": [{"Fn::Join": ["", [_arn(table), "/index/time-index"]]}],
        # The findings' routing key and, with a canary, the canary service's key (it pages that service).
        "secretsmanager:GetSecretValue": [
            secret_arn(synthesized, secret)
            for secret in (synthesized.policy.notifier.routing_key_secret, synthesized.policy.canary.routing_key_secret)
            if secret
        ]
        # The other notifiers' secrets (routing per rule: JSM API keys, webhook signing secrets and URLs).
        + [secret_arn(synthesized, secret) for _, _, secret in notifier_secrets(synthesized.policy)],
        "securityhub:BatchUpdateFindings": hub_arns(synthesized),
        **{
            action: [_arn(main)]
            for action in (
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
            )
        },
        # Only SendMessage on the DLQ: the router parks undeliverable messages there at once.
        "sqs:SendMessage": [_arn(dlq)],
    }
    conditions = {"UpdateFindingWorkflow": securityhub_writeback_condition(ROUTER_WORKFLOW_STATUS)}
    if not synthesized.policy.securityhub.writeback:
        del expected["securityhub:BatchUpdateFindings"]
        conditions = {}
    assert granted(synthesized, ids["role"], conditions) == expected
    assert set(STATE_TABLE_ACTIONS) == {
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    }


def test_every_role_is_a_lambda_role_of_its_own(synthesized: SynthesizedStack):
    roles = synthesized.resources("AWS::IAM::Role")
    functions = synthesized.resources("AWS::Lambda::Function").values()
    # One role per function, none shared: each can do only what its own code needs.
    assert sorted(f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions) == sorted(roles)
    for role in roles.values():
        trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
        assert "ManagedPolicyArns" not in role["Properties"]


# ------------------------------------------------------------------------------------------ secrets


def test_routing_key_secret_is_referenced_never_created(synthesized: SynthesizedStack):
    assert not synthesized.resources("AWS::SecretsManager::Secret")
    assert synthesized.policy.notifier.routing_key_secret in json.dumps(synthesized.template)


# ------------------------------------------------------------------------------------------ monitoring


def _alarm(stack: SynthesizedStack, suffix: str) -> dict[str, Any]:
    name = f"{resource_names(stack.policy).alarm_prefix}-{suffix}"
    return stack.properties(stack.named("AWS::CloudWatch::Alarm", "AlarmName", name))


def _topics(stack: SynthesizedStack) -> tuple[dict[str, str], dict[str, str]]:
    """({"Ref": alarm topic}, {"Ref": meta-alarm topic})."""
    names = resource_names(stack.policy)
    return (
        {"Ref": stack.named("AWS::SNS::Topic", "TopicName", names.alarm_topic)},
        {"Ref": stack.named("AWS::SNS::Topic", "TopicName", names.meta_alarm_topic)},
    )


def test_router_alarms_notify_the_alarm_topic(synthesized: SynthesizedStack):
    policy = synthesized.policy
    prefix = resource_names(policy).alarm_prefix
    topic, _ = _topics(synthesized)
    function = {"Ref": _router_ids(synthesized)["function"]}
    main, dlq = _queue_ids(synthesized)
    for alarm in synthesized.resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmName"].startswith(f"{prefix}-")
        assert alarm["Properties"]["EvaluationPeriods"] == 1

    router_alarms = ("dead-letters", "function-errors", "function-throttles", "oldest-message-age")
    for suffix in router_alarms:
        props = _alarm(synthesized, suffix)
        assert props["AlarmActions"] == [topic]
        assert props["OKActions"] == [topic]

    dead_letters = _alarm(synthesized, "dead-letters")
    assert dead_letters["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert dead_letters["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]
    assert (dead_letters["Threshold"], dead_letters["ComparisonOperator"]) == (0, "GreaterThanThreshold")

    for suffix, metric in (("function-errors", "Errors"), ("function-throttles", "Throttles")):
        alarm = _alarm(synthesized, suffix)
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": function}]
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")

    age = _alarm(synthesized, "oldest-message-age")
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [main, "QueueName"]}}]
    assert age["Threshold"] == policy.monitoring.oldest_message_age_seconds


def test_alarm_topics_are_encrypted_tls_only_and_emailed(synthesized: SynthesizedStack):
    key = _logical_id(synthesized, "AWS::KMS::Key")
    topics = synthesized.resources("AWS::SNS::Topic")
    assert len(topics) == 2
    for topic in topics.values():
        assert topic["Properties"]["KmsMasterKeyId"] == _arn(key)
    assert synthesized.only("AWS::KMS::Key")["Properties"]["EnableKeyRotation"] is True
    topic_policies = synthesized.resources("AWS::SNS::TopicPolicy").values()
    assert sorted(json.dumps(p["Properties"]["Topics"]) for p in topic_policies) == sorted(
        json.dumps([{"Ref": t}]) for t in topics
    )
    for topic_policy in topic_policies:
        statements = topic_policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )
        (publish,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
        assert publish["Action"] == "sns:Publish"
        assert publish["Resource"] == topic_policy["Properties"]["Topics"][0]
    key_statements = synthesized.only("AWS::KMS::Key")["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [s for s in key_statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert [sorted(s["Action"]) for s in cloudwatch] == [["kms:Decrypt", "kms:GenerateDataKey*"]]
    emails = synthesized.policy.monitoring.alarm_emails
    subscriptions = [s["Properties"] for s in synthesized.resources("AWS::SNS::Subscription").values()]
    # Each address on both topics, plus the meta-alert function on the alarm topic (test_meta_alerts.py).
    assert sorted(s["Endpoint"] for s in subscriptions if s["Protocol"] == "email") == sorted(emails * 2)
    assert [s["Protocol"] for s in subscriptions if s["Protocol"] != "email"] == ["lambda"]


def test_dashboard(synthesized: SynthesizedStack):
    dashboard = synthesized.only("AWS::CloudWatch::Dashboard")["Properties"]
    assert dashboard["DashboardName"] == resource_names(synthesized.policy).dashboard
    body = json.dumps(dashboard["DashboardBody"])
    for metric in ("ApproximateAgeOfOldestMessage", "Invocations", "Pages", "Resolves"):
        assert metric in body
    # Every alarm of the stack is on the dashboard's alarm widget.
    for alarm in synthesized.resources("AWS::CloudWatch::Alarm"):
        assert alarm in body
    assert ("AcksRejected" in body) is (synthesized.policy.acknowledgements.mode != "none")


def test_router_may_write_only_notes_and_notified_back(synthesized: SynthesizedStack):
    from aws_cdk.assertions import Match

    asff, ocsf = "securityhub:ASFFSyntaxPath/", "securityhub:OCSFSyntaxPath/"
    synthesized.assertions.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": _router_ids(synthesized)["role"]}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "UpdateFindingWorkflow",
                                "Action": "securityhub:BatchUpdateFindings",
                                "Condition": {
                                    "Null": Match.object_like(
                                        {f"{asff}Severity.Label": "true", f"{ocsf}SeverityId": "true"}
                                    ),
                                    "StringEqualsIfExists": {
                                        f"{asff}Workflow.Status": "NOTIFIED",
                                        f"{ocsf}StatusId": "2",
                                    },
                                },
                            }
                        )
                    ]
                )
            },
        },
    )


def test_router_knows_its_dead_letter_queue_and_may_only_send_to_it(synthesized: SynthesizedStack):
    from aws_cdk.assertions import Match

    _, dlq = _queue_ids(synthesized)
    ids = _router_ids(synthesized)
    synthesized.assertions.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": resource_names(synthesized.policy).function,
            "Environment": {"Variables": Match.object_like({"DEAD_LETTER_QUEUE_URL": {"Ref": dlq}})},
        },
    )
    synthesized.assertions.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": ids["role"]}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Sid": "ParkInDeadLetterQueue",
                            "Action": "sqs:SendMessage",
                            "Effect": "Allow",
                            "Resource": _arn(dlq),
                        }
                    ]
                )
            },
        },
    )
    # No other function may write to the ingestion DLQ (EventBridge's own delivery goes through the queue policy).
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        if {"Ref": ids["role"]} in policy["Properties"]["Roles"]:
            continue
        assert _arn(dlq) not in [
            r for s in _statements(policy["Properties"]["PolicyDocument"]) for r in _as_list(s["Resource"])
        ]
