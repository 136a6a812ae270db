"""`findings-router redrive`: move dead letters back to the findings queue once their cause is fixed.

Each message is sent to the source queue first and deleted from the dead-letter queue only after that succeeded, so
an interruption can duplicate a message (harmless: the router deduplicates) but never lose one. Works against AWS
and against moto (AWS_ENDPOINT_URL). The queue names come from the environment's policy, as the stack names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

from findings_router.settings.schema import Policy
from findings_router_local.aws_access import AwsAccessError, AwsClients, aws_error
from infra.contract import resource_names

BATCH = 10
EMPTY_POLLS = 3  # SQS short polling samples a subset of its servers: an empty answer does not prove an empty queue
HIDE_SECONDS = 120  # long enough to count or move what was received without receiving it twice


@dataclass
class RedriveReport:
    moved: int = 0
    seen: int = 0
    failed: int = 0  # sent back neither moved nor deleted: still in the dead-letter queue


RedriveError = AwsAccessError  # what `redrive` raises: one line, no traceback


def sqs_client(*, region: str | None, profile: str | None, endpoint_url: str | None) -> Any:
    """An SQS client as the AWS CLI would make it (profile, region, endpoint), or an error saying what is missing."""
    return AwsClients(profile=profile, region=region, endpoint_url=endpoint_url).client("sqs")


def _queue_url(sqs: Any, name: str) -> str:
    try:
        return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except Exception as exc:
        region = getattr(sqs.meta, "region_name", "?")
        missing = f"no queue {name!r} in {region}: is the stack deployed there (and is this the right account)?"
        raise aws_error(exc, f"queue {name!r}", missing=missing) from None


def _receive(sqs: Any, url: str, want: int) -> list[dict[str, Any]]:
    for _ in range(EMPTY_POLLS):
        messages: list[dict[str, Any]] = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=want,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            # Hidden while we count or move them, so the next receive returns others.
            VisibilityTimeout=HIDE_SECONDS,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if messages:
            return messages
    return []


def _show_again(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    """A dry run leaves the dead letters as they were: visible again at once."""
    for start in range(0, len(messages), BATCH):
        chunk = messages[start : start + BATCH]
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(chunk)
            ],
        )


def _reason(message: dict[str, Any]) -> str:
    attributes = message.get("MessageAttributes") or {}
    reason = attributes.get("reason", {}).get("StringValue")
    return f"; {reason}" if reason else ""


def redrive(
    sqs: Any, policy: Policy, *, max_messages: int | None = None, dry_run: bool = False, out: TextIO
) -> RedriveReport:
    if max_messages is not None and max_messages < 1:
        raise RedriveError(f"--max must be a positive number, not {max_messages}")
    names = resource_names(policy)
    dlq_url = _queue_url(sqs, names.dead_letter_queue)
    queue_url = _queue_url(sqs, names.queue)
    report = RedriveReport()
    seen_ids: set[str] = set()
    held: list[dict[str, Any]] = []  # a dry run's messages, shown again at the end
    try:
        while max_messages is None or report.seen < max_messages:
            want = BATCH if max_messages is None else min(BATCH, max_messages - report.seen)
            fresh = [m for m in _receive(sqs, dlq_url, want) if m["MessageId"] not in seen_ids]
            if not fresh:
                break
            seen_ids.update(m["MessageId"] for m in fresh)
            report.seen += len(fresh)
            if dry_run:
                held.extend(fresh)
                for m in fresh:
                    received = m.get("Attributes", {}).get("ApproximateReceiveCount", "?")
                    out.write(f"would move {m['MessageId']} (received {received}x{_reason(m)})\n")
                continue
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": m["Body"],
                    **({"MessageAttributes": m["MessageAttributes"]} if m.get("MessageAttributes") else {}),
                }
                for i, m in enumerate(fresh)
            ]
            sent = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            ok = {int(s["Id"]) for s in sent.get("Successful", [])}
            report.failed += len(sent.get("Failed", []))
            for failure in sent.get("Failed", []):
                out.write(
                    f"not moved: {fresh[int(failure['Id'])]['MessageId']}: "
                    f"{failure.get('Message', failure.get('Code'))}\n"
                )
            done = [fresh[i] for i in sorted(ok)]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=dlq_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            report.moved += len(done)
    finally:
        if held:
            _show_again(sqs, dlq_url, held)
    verb = "would move" if dry_run else "moved"
    out.write(
        f"{names.dead_letter_queue} → {names.queue}: {verb} {report.seen if dry_run else report.moved} message(s)\n"
    )
    return report
