"""`WebhookReceiver`: a team's own webhook endpoint served from 127.0.0.1 (standard library only), in one of three
formats: `standard` (a signed findings-router webhook: Standard Webhooks signature within a 5-minute tolerance, body
per docs/webhook-schema.md), `slack` (an incoming webhook) or `teams` (a Workflows webhook).

It verifies and validates every delivery (`contract`), keeps what a receiver would make of them (incidents by
`data.incident_key`, deliveries deduplicated by `webhook-id`; chat messages in order), and can inject faults: 429 with
`Retry-After`, 5xx, 410 (endpoint gone), redirects, hangs and dropped connections.
"""

from __future__ import annotations

import json
import secrets as _random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from findings_router_local.fakes.service import ReceivedRequest, StandIn, header, media_type
from findings_router_local.fakes.webhook.contract import (
    MAX_BODY_BYTES,
    TEAMS_MAX_BYTES,
    validate_body,
    validate_slack,
    validate_teams,
    verify_signature,
)
from findings_router_local.loopback_http import Answer

Format = Literal["standard", "slack", "teams"]


@dataclass
class Incident:
    """What a receiver keeps per `data.incident_key`: opened by a trigger, refreshed by more, closed by a resolve."""

    number: int
    incident_key: str
    type: str
    status: str  # open | resolved
    severity: str
    urgency: str
    summary: str
    trigger_count: int
    data: dict[str, Any]
    log: list[str] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status == "open"


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps(body).encode(), headers=dict(headers or {}))


class WebhookReceiver(StandIn[Any, tuple[Any, list[str]]]):
    """A webhook endpoint on 127.0.0.1 (a free port). `secret`: the receiver's `whsec_` secret(s), space-separated
    (standard format only). The URL's path carries a random token, as Slack's and Teams' URLs do. `accepted`: the
    bodies delivered and applied (a repeated `webhook-id` is acknowledged but not applied again); `rejected`: the
    deliveries refused (signature, timestamp, schema), with why. A `Fault`'s `location` makes a redirect."""

    def __init__(
        self,
        secret: str | None = None,
        *,
        format: Format = "standard",
        tolerance_seconds: float = 300,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if format == "standard" and not secret:
            raise ValueError("a standard webhook receiver verifies signatures: give it the whsec_ secret")
        super().__init__(name=f"{format}-webhook-receiver")
        self.format: Format = format
        self.secrets = (secret or "").split()
        self.tolerance_seconds = tolerance_seconds
        self.wall_clock = wall_clock
        self.path = {
            "standard": "/hooks/findings-router",
            "slack": f"/services/T0LOCAL/B0LOCAL/{_random.token_urlsafe(18)}",
            "teams": f"/workflows/{_random.token_hex(16)}/triggers/manual/paths/invoke",
        }[format]
        self.query = f"api-version=1&sig={_random.token_urlsafe(32)}" if format == "teams" else ""
        self._seen_ids: set[str] = set()
        self._duplicates = 0
        self._by_key: dict[str, Incident] = {}
        self._all: list[Incident] = []

    @property
    def url(self) -> str:
        """The URL to configure (for `slack` and `teams` it is the secret, as theirs are)."""
        query = f"?{self.query}" if self.query else ""
        return f"{self.base_url}{self.path}{query}"

    # ---- what the receiver made of the deliveries (snapshots taken under the lock)

    @property
    def duplicates(self) -> int:
        """Deliveries whose `webhook-id` was already applied."""
        with self._lock:
            return self._duplicates

    @property
    def incidents(self) -> dict[str, Incident]:
        """The current incident of each incident key (standard format)."""
        with self._lock:
            return dict(self._by_key)

    @property
    def all_incidents(self) -> list[Incident]:
        """Every incident ever opened, in order (standard format)."""
        with self._lock:
            return list(self._all)

    def _forget(self) -> None:
        self._seen_ids.clear()
        self._duplicates = 0
        self._by_key.clear()
        self._all.clear()

    # ---- request handling (the lock is held)

    def _fault_answer(self, status: int, headers: dict[str, str]) -> Answer | None:
        if status == 410:
            return _json(410, {"error": "endpoint gone: this webhook was disabled"}, headers)
        if status == 429:
            return _json(429, {"error": "rate limited"}, headers)
        return None

    def _refuse(self, record: ReceivedRequest, status: int, body: Any, problems: list[str]) -> Answer:
        record.problems = problems
        self._rejected.append((body, problems))
        if self.format == "slack":
            return Answer(status, problems[0].split(":", 1)[0].encode(), content_type="text/plain")
        if self.format == "teams":
            error = {"code": "TriggerInputSchemaMismatch", "message": "; ".join(problems)}
            return _json(status, {"error": error})
        return _json(status, {"error": "; ".join(problems)})

    def _process(self, record: ReceivedRequest, problem: str | None) -> Answer:
        parts = urlsplit(record.path)
        if record.method != "POST" or parts.path != self.path or parts.query != self.query:
            return self._refuse(record, 404, None, ["no_service: no webhook at this URL"])
        if problem is not None:
            return self._refuse(record, 413, None, [f"invalid_payload: {problem}"])
        content_type = media_type(record.headers)
        if content_type != "application/json":
            return self._refuse(record, 415, None, [f"invalid_payload: Content-Type {content_type!r}, not JSON"])
        if self.format == "standard":
            problems = verify_signature(
                record.headers, record.body, self.secrets, self.wall_clock(), self.tolerance_seconds
            )
            if problems:
                return self._refuse(record, 401, None, problems)
        try:
            body = json.loads(record.body)
        except ValueError:
            return self._refuse(record, 400, None, ["invalid_payload: not JSON"])
        record.json = body
        if self.format == "standard":
            return self._standard(record, body)
        return self._chat(record, body)

    def _chat(self, record: ReceivedRequest, body: Any) -> Answer:
        """A Slack message (answered 200 "ok") or a Teams one (202, empty; at most `TEAMS_MAX_BYTES`)."""
        if self.format == "slack":
            problems, answer = validate_slack(body), Answer(200, b"ok", content_type="text/plain")
        else:
            problems, answer = validate_teams(body), Answer(202, b"", content_type="text/plain")
            if len(record.body) > TEAMS_MAX_BYTES:
                problems.append(f"the message is larger than {TEAMS_MAX_BYTES // 1024} KB")
        if problems:
            return self._refuse(record, 400, body, problems)
        self._accepted.append(body)
        return answer

    def _standard(self, record: ReceivedRequest, body: Any) -> Answer:
        problems = validate_body(body)
        if len(record.body) > MAX_BODY_BYTES:
            problems.append(f"body: larger than {MAX_BODY_BYTES // 1024} KB ({len(record.body)} bytes)")
        if problems:
            return self._refuse(record, 400, body, problems)
        msg_id = header(record.headers, "webhook-id") or ""
        if msg_id in self._seen_ids:
            self._duplicates += 1
            return _json(200, {"accepted": msg_id, "duplicate": True})
        self._seen_ids.add(msg_id)
        self._accepted.append(body)
        self._apply(body)
        return _json(200, {"accepted": msg_id})

    def _apply(self, body: dict[str, Any]) -> None:
        data = body["data"]
        key = data["incident_key"]
        current = self._by_key.get(key)
        if body["type"] == "incident.resolved":
            if current is not None and current.is_open:
                current.status = "resolved"
                current.log.append("resolved")
            return
        if current is not None and current.is_open:
            current.trigger_count += 1
            current.data = data
            current.log.append(f"{body['type']} (deduplicated)")
            return
        incident = Incident(
            number=len(self._all) + 1,
            incident_key=key,
            type=body["type"],
            status="open",
            severity=data["severity"],
            urgency=data["urgency"],
            summary=data["summary"],
            trigger_count=1,
            data=data,
            log=[body["type"]],
        )
        self._by_key[key] = incident
        self._all.append(incident)
