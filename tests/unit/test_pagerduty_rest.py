"""PagerDuty REST: the alert keys of an incident (for alerts grouped into one incident without an incident_key)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from findings_router.notify.pagerduty.rest import IncidentAlertKeys
from tests.support.http_fakes import FakeResponse


class GetSession:
    def __init__(self, response: FakeResponse) -> None:
        self.response = response
        self.calls: list[tuple[str, dict[str, str], float]] = []

    def get(self, url: str, headers: dict[str, str], timeout: float) -> Any:
        self.calls.append((url, headers, timeout))
        return self.response


class Raising(FakeResponse):
    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise requests.HTTPError(f"{self.status_code}")


def test_the_alert_keys_of_an_incident_are_read_with_the_token_from_secrets_manager():
    body = {"alerts": [{"alert_key": "fr1-aaa"}, {"alert_key": None}, {"id": "PX"}, {"alert_key": "fr1-bbb~4"}]}
    session = GetSession(Raising(200, body))
    lookup = IncidentAlertKeys("https://api.pagerduty.com/", lambda: " tok-123\n", session=session)
    assert lookup("Q1INCIDENT") == ["fr1-aaa", "fr1-bbb~4"]
    [(url, headers, timeout)] = session.calls
    assert url == "https://api.pagerduty.com/incidents/Q1INCIDENT/alerts"
    assert headers["Authorization"] == "Token token=tok-123" and headers["Accept"] == "application/json"
    assert timeout <= 3


def test_a_refusal_is_an_error_not_an_empty_list():
    """An empty answer would mean "none of ours"; a 401 must say the lookup failed (the event is retried)."""
    lookup = IncidentAlertKeys("https://api.pagerduty.com", lambda: "bad", session=GetSession(Raising(401)))
    with pytest.raises(requests.HTTPError):
        lookup("Q1INCIDENT")
