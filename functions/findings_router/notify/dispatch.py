"""The policy's notifiers by name, as one `Notifier`: each notification goes to the targets its context names (the
deciding rule's `notify`, or the episode's for its escalations and resolve), () meaning the primary `notifier`.

Delivery is in order, target by target; a failure raises at once and the message is retried as a whole, so targets
that already accepted get the same notification again: PagerDuty and JSM fold it into the open incident or alert by
key or alias, and a signed webhook carries the same `webhook-id` for receivers to deduplicate on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.notify import DeliveryResult, Notifier


class RetryCounts:
    """The counts of several `Retrier`s as one (what the router's metrics read, and reset per invocation)."""

    def __init__(self, retriers: list[Any]) -> None:
        self._retriers = retriers

    @property
    def retries(self) -> int:
        return sum(int(r.retries) for r in self._retriers)

    @property
    def calls(self) -> int:
        return sum(int(r.calls) for r in self._retriers)

    def reset_counts(self) -> None:
        for r in self._retriers:
            r.reset_counts()


class NotifierSet:
    def __init__(self, notifiers: Mapping[str, Notifier], primary: str) -> None:
        if primary not in notifiers:
            raise ValueError(f"no primary notifier {primary!r} among {sorted(notifiers)}")
        self.notifiers = dict(notifiers)
        self.primary = primary
        self.channel = notifiers[primary].channel

    @property
    def retrier(self) -> RetryCounts:
        """Every target's retries together (their counts feed the DeliveryRetries metric)."""
        return RetryCounts([r for n in self.notifiers.values() if (r := getattr(n, "retrier", None)) is not None])

    def targets(self, context: NotifyContext) -> tuple[str, ...]:
        return context.targets or (self.primary,)

    def describe(self, targets: tuple[str, ...]) -> str:
        """The channels of `targets` for people: "PagerDuty", "Jira Service Management and webhook"."""
        names = [self.notifiers[t].channel for t in targets or (self.primary,) if t in self.notifiers]
        return " and ".join(dict.fromkeys(names)) or self.channel

    def send(self, notification: Notification, context: NotifyContext) -> DeliveryResult:
        result: DeliveryResult | None = None
        for name in self.targets(context):
            notifier = self.notifiers.get(name)
            if notifier is None:  # a target of an episode recorded under an older policy: the primary stands in
                notifier = self.notifiers[self.primary]
            result = notifier.send(notification, context)
        assert result is not None
        return result
