"""`findings-router redrive`: move dead letters back to the findings queue once their cause is fixed.

Each message is sent to the source queue first and deleted from the dead-letter queue only after that succeeded, so
an interruption can duplicate a message (harmless: the router deduplicates) but never lose one. Works against AWS
and against moto (AWS_ENDPOINT_URL). The queue names come from the environment's policy, as the stack names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

from findings_router.config import Policy
from infra.definitions import resource_names

BATCH = 10


@dataclass
class RedriveReport:
    moved: int = 0
    seen: int = 0


def redrive(
    sqs: Any, policy: Policy, *, max_messages: int | None = None, dry_run: bool = False, out: TextIO
) -> RedriveReport:
    names = resource_names(policy)
    dlq_url = sqs.get_queue_url(QueueName=names.dead_letter_queue)["QueueUrl"]
    queue_url = sqs.get_queue_url(QueueName=names.queue)["QueueUrl"]
    report = RedriveReport()
    seen_ids: set[str] = set()
    while max_messages is None or report.seen < max_messages:
        want = BATCH if max_messages is None else min(BATCH, max_messages - report.seen)
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=want,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            # Long enough to move them; a dry run lets them reappear at once.
            VisibilityTimeout=0 if dry_run else 60,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen_ids]
        if not fresh:
            break
        seen_ids.update(m["MessageId"] for m in fresh)
        report.seen += len(fresh)
        if dry_run:
            for m in fresh:
                out.write(
                    f"would move {m['MessageId']} (received {m.get('Attributes', {}).get('ApproximateReceiveCount', '?')}x)\n"
                )
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
        for failure in sent.get("Failed", []):
            out.write(
                f"not moved: {fresh[int(failure['Id'])]['MessageId']}: {failure.get('Message', failure.get('Code'))}\n"
            )
        done = [fresh[i] for i in sorted(ok)]
        if done:
            sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        report.moved += len(done)
    verb = "would move" if dry_run else "moved"
    out.write(
        f"{names.dead_letter_queue} → {names.queue}: {verb} {report.seen if dry_run else report.moved} message(s)\n"
    )
    return report
