"""Chat presets of the webhook notifier (pure): a Slack incoming webhook and a Microsoft Teams Workflows webhook.

* Slack incoming webhooks take `{"text": …}` (mrkdwn; `&`, `<`, `>` escaped; links as `<url|text>`) and answer
  200 `ok`, or a plain-text error (`invalid_payload` 400, `action_prohibited` 403, `channel_not_found` 404,
  `channel_is_archived` 410) and 429 past about one message a second (api.slack.com/messaging/webhooks,
  /docs/rate-limits).
* Teams: Microsoft 365 connectors are retired; a Workflows flow "When a Teams webhook request is received" takes only
  Adaptive Cards, in the envelope `{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": {AdaptiveCard}}]}`, and answers 202 (learn.microsoft.com,
  "Create incoming webhooks with Workflows for Microsoft Teams"). A Teams message holds at most about 28 KB.

Neither is signed: the URL itself is the secret (keep it in Secrets Manager). Both are for people, so the message is
short: the summary, where, why, and a link to the finding in Security Hub.
"""

from __future__ import annotations

from typing import Any

from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.notify.links import console_url
from findings_router.notify.webhook.payload import summary

SLACK_DESCRIPTION_MAX = 1200
# A digest's lines are its content (25 at most, then "and N more"): Slack's text holds far more (40,000 characters).
SLACK_DIGEST_MAX = 8000
SLACK_MAX_BYTES = 16 * 1024  # this preset's own ceiling; Slack truncates `text` past 40,000 characters
TEAMS_MAX_BYTES = 24 * 1024  # under Teams' ~28 KB message limit
TEAMS_TEXT_MAX = 2000
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _icon(n: Notification) -> str:
    if n.kind == "resolve":
        return ":white_check_mark:"
    if n.meta is not None and n.meta.kind == "digest":
        return ":clipboard:"
    if n.meta is not None:
        return ":fire:"
    if n.storm is not None:
        return ":ocean:"
    return ":rotating_light:" if n.urgency == "high" else ":warning:"


def _what(n: Notification) -> str:
    if n.kind == "resolve":
        return "Resolved"
    if n.meta is not None and n.meta.kind == "digest":
        return "PSIRT digest"
    if n.meta is not None:
        return "findings-router meta-alert"
    return "Page" if n.urgency == "high" else "Notification"


def slack_body(n: Notification, context: NotifyContext) -> dict[str, Any]:
    """A Slack incoming-webhook message for one notification."""
    lines = [f"{_icon(n)} *{_cut(_slack_escape(summary(n, context)), 600)}*"]
    finding = context.finding
    facts = [_what(n), f"incident `{_cut(_slack_escape(n.key), 255)}`"]
    if context.reason:
        facts.append(f"decision: {_cut(_slack_escape(context.reason), 300)}")
    lines.append(" · ".join(facts))
    if context.folded is not None and n.kind == "trigger" and n.storm is None:
        lines.append(_slack_escape(_affected(context)))
    if finding is not None and n.kind == "trigger" and n.storm is None:
        lines.append(_cut(_slack_escape(finding.description), SLACK_DESCRIPTION_MAX))
    if n.meta is not None and n.meta.kind == "digest":
        lines.append(_cut(_slack_escape(n.meta.description), SLACK_DIGEST_MAX))
    if finding is not None:  # percent-encoded throughout: no `|` or `>` to break the link
        lines.append(f"<{console_url(finding)}|Open in Security Hub>")
    return {"text": "\n".join(lines)}


def _affected(context: NotifyContext) -> str:
    """A folded vulnerability episode in one line: how many resources, a few of them, and the command for all."""
    folded = context.folded
    assert folded is not None
    shown, more = folded.listed(3)
    listed = ", ".join(_cut(r, 200) for r in shown) + (f" and {more} more" if more else "")
    return f"{folded.vulnerability}: {folded.count} affected resource(s): {listed}. All of them: {folded.command}"


def _color(n: Notification) -> str:
    if n.kind == "resolve":
        return "Good"
    return "Attention" if n.urgency == "high" else "Warning"


def teams_body(n: Notification, context: NotifyContext) -> dict[str, Any]:
    """A Teams Workflows message: one Adaptive Card (version 1.4) for one notification."""
    finding = context.finding
    facts = [
        {"title": "Environment", "value": context.environment},
        {"title": "What", "value": _what(n)},
        {"title": "Severity", "value": n.severity.value},
        {"title": "Incident", "value": _cut(n.key, 255)},
    ]
    if context.reason:
        facts.append({"title": "Decision", "value": _cut(context.reason, 300)})
    if finding is not None:
        facts += [
            {"title": "Product", "value": _cut(finding.product_name, 200)},
            {"title": "Account / region", "value": f"{finding.account} / {finding.region}"},
            {"title": "Resource", "value": _cut(finding.primary_resource_id, 300)},
        ]
    if n.storm is not None:
        facts.append({"title": "Storm", "value": _cut(f"{n.storm.count}+ in {n.storm.window_minutes} min", 100)})
    elif context.folded is not None and n.kind == "trigger":
        facts.append({"title": "Affected", "value": _cut(_affected(context), 600)})
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": _cut(summary(n, context), 600),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": _color(n),
        },
        {"type": "FactSet", "facts": facts},
    ]
    if finding is not None and n.kind == "trigger" and n.storm is None:
        body.append({"type": "TextBlock", "text": _cut(finding.description, TEAMS_TEXT_MAX), "wrap": True})
    if n.meta is not None and n.meta.kind == "digest":
        body.append({"type": "TextBlock", "text": _cut(n.meta.description, SLACK_DIGEST_MAX), "wrap": True})
    card: dict[str, Any] = {"$schema": ADAPTIVE_SCHEMA, "type": "AdaptiveCard", "version": "1.4", "body": body}
    if finding is not None:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in Security Hub", "url": console_url(finding)}]
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}
