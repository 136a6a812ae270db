"""GuardDuty `adopt`: the account's detector exists (one per account and Region); bring its publishing frequency and
features to the policy, never create or delete it.

* Create / Update: ListDetectors; none is an error (adopt never creates: use `manage`, or enable GuardDuty first).
  A member of an administrator account (an organization's delegated administrator) cannot set either: its
  detector is left as it is and the summary says whose settings apply. Otherwise UpdateDetector(Enable,
  FindingPublishingFrequency, Features).
* Delete: nothing (the detector stays, with the settings it has).

Settings (JSON): {"FindingPublishingFrequency": "SIX_HOURS", "Features": [{"Name": …, "Status": …}, …]}.
"""

from __future__ import annotations

from typing import Any

from findings_router.baseline.resource import BOTO_CONFIG, BaselineError, Outcome, Request, aws_call, run

SERVICE = "GuardDuty"


def _detector_ids(client: Any) -> list[str]:
    ids: list[str] = []
    token: str | None = None
    while True:
        page = aws_call(SERVICE, "ListDetectors", client.list_detectors, **({"NextToken": token} if token else {}))
        ids += page.get("DetectorIds", [])
        token = page.get("NextToken")
        if not token:
            return ids


def _administrator(client: Any, detector_id: str) -> str | None:
    answer = aws_call(SERVICE, "GetAdministratorAccount", client.get_administrator_account, DetectorId=detector_id)
    administrator = answer.get("Administrator") or {}
    if administrator.get("RelationshipStatus", "").lower() == "enabled" and administrator.get("AccountId"):
        return str(administrator["AccountId"])
    return None


def handle(request: Request, client: Any) -> Outcome:
    if request.request_type == "Delete":
        # Adopted, so never ours to remove (nor on a rollback of a failed Create).
        return Outcome(request.physical_resource_id or "none")
    ids = _detector_ids(client)
    if not ids:
        raise BaselineError(
            SERVICE,
            "ListDetectors",
            "no detector in this account and Region: adopt never creates one. Set baseline.guardduty.mode to "
            "manage (the stack creates it), or enable GuardDuty here (or from the organization's delegated "
            "administrator) first",
        )
    detector_id = ids[0]
    administrator = _administrator(client, detector_id)
    if administrator is not None:
        return Outcome(
            detector_id,
            {
                "Summary": (
                    f"GuardDuty detector {detector_id} is a member of administrator account {administrator}: its "
                    "publishing frequency and features are the administrator's to set, left as they are"
                ),
                "DetectorId": detector_id,
            },
        )
    frequency = str(request.settings["FindingPublishingFrequency"])
    features = list(request.settings.get("Features", []))
    aws_call(
        SERVICE,
        "UpdateDetector",
        client.update_detector,
        DetectorId=detector_id,
        Enable=True,
        FindingPublishingFrequency=frequency,
        Features=features,
    )
    enabled = [f["Name"] for f in features if f.get("Status") == "ENABLED"]
    return Outcome(
        detector_id,
        {
            "Summary": (
                f"GuardDuty detector {detector_id} adopted: findings every {frequency}, features on: "
                f"{', '.join(enabled) or 'none'}"
            ),
            "DetectorId": detector_id,
        },
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    client = boto3.client("guardduty", config=BOTO_CONFIG)
    return run(event, lambda request: handle(request, client))
