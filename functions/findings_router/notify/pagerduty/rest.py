"""PagerDuty REST API, read-only: the alert keys (our dedup keys) of an incident, for incidents that carry no
`incident_key` (alerts grouped into one incident). `GET /incidents/{id}/alerts` with an API token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from findings_router.notify.http import new_session


class IncidentAlertKeys:
    def __init__(self, base_url: str, token: Callable[[], str], *, session: Any = None, timeout: float = 3) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._session = session or new_session()
        self._timeout = timeout

    def __call__(self, incident_id: str) -> list[str]:
        response = self._session.get(
            f"{self.base_url}/incidents/{incident_id}/alerts",
            headers={"Authorization": f"Token token={self._token().strip()}", "Accept": "application/json"},
            timeout=self._timeout,
        )
        response.raise_for_status()
        return [a["alert_key"] for a in response.json().get("alerts", []) if isinstance(a.get("alert_key"), str)]
