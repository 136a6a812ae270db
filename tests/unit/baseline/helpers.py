"""Helpers of the baseline handler tests."""

from __future__ import annotations

from typing import Any

from findings_router.baseline.resource import Request

ACCOUNT = "111122223333"
REGION = "eu-central-1"


def make_request(
    request_type: str, settings: dict[str, Any], *, old: dict[str, Any] | None = None, physical: str | None = None
) -> Request:
    return Request(
        request_type=request_type,  # type: ignore[arg-type]
        settings=settings,
        old_settings=old,
        physical_resource_id=physical,
    )
