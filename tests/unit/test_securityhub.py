"""The Security Hub write-back adapter against botocore's Stubber (moto does not implement these calls)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from findings_router.adapters.memory import RecordingSecurityHub
from findings_router.adapters.securityhub import BotoSecurityHub, FindingRef

PRODUCT = "arn:aws:securityhub:eu-central-1::product/aws/guardduty"


def refs(n: int, fmt: str = "asff") -> list[FindingRef]:
    return [
        FindingRef(fmt, f"arn:aws:guardduty:eu-central-1:111122223333:detector/d/finding/{i}", PRODUCT, "111122223333")
        for i in range(n)
    ]


@pytest.fixture
def client():
    return boto3.client("securityhub", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")


def _ids(rs):
    return [{"Id": r.id, "ProductArn": r.product_arn} for r in rs]


def test_chunks_of_100_with_note_and_workflow(client):
    rs = refs(150)
    with Stubber(client) as stub:
        for chunk in (rs[:100], rs[100:]):
            stub.add_response(
                "batch_update_findings",
                {"ProcessedFindings": _ids(chunk), "UnprocessedFindings": []},
                {
                    "FindingIdentifiers": _ids(chunk),
                    "Note": {"Text": "paged", "UpdatedBy": "findings-router"},
                    "Workflow": {"Status": "NOTIFIED"},
                },
            )
        result = BotoSecurityHub(client).update(rs, "paged", "NOTIFIED")
        stub.assert_no_pending_responses()
    assert result.updated == 150 and result.failed == []


def test_transient_unprocessed_findings_are_retried_permanent_ones_reported(client):
    rs = refs(3)
    slept = []
    with Stubber(client) as stub:
        stub.add_response(
            "batch_update_findings",
            {
                "ProcessedFindings": _ids(rs[:1]),
                "UnprocessedFindings": [
                    {"FindingIdentifier": _ids(rs[1:2])[0], "ErrorCode": "ConcurrentUpdateError", "ErrorMessage": "x"},
                    {"FindingIdentifier": _ids(rs[2:3])[0], "ErrorCode": "FindingNotFound", "ErrorMessage": "gone"},
                ],
            },
            {"FindingIdentifiers": _ids(rs), "Note": {"Text": "n", "UpdatedBy": "findings-router"}},
        )
        stub.add_response(
            "batch_update_findings",
            {"ProcessedFindings": _ids(rs[1:2]), "UnprocessedFindings": []},
            {"FindingIdentifiers": _ids(rs[1:2]), "Note": {"Text": "n", "UpdatedBy": "findings-router"}},
        )
        result = BotoSecurityHub(client, sleep=slept.append).update(rs, "n")
        stub.assert_no_pending_responses()
    assert result.updated == 2
    assert [(r.id, code) for r, code in result.failed] == [(rs[2].id, "FindingNotFound")]
    assert len(slept) == 1


def test_ocsf_findings_go_through_batch_update_findings_v2(client):
    [ref] = refs(1, "ocsf")
    with Stubber(client) as stub:
        stub.add_response(
            "batch_update_findings_v2",
            {"ProcessedFindings": [], "UnprocessedFindings": []},
            {
                "FindingIdentifiers": [
                    {
                        "CloudAccountUid": "111122223333",
                        "FindingInfoUid": ref.id,
                        "MetadataProductUid": "arn:aws:securityhub:eu-central-1::productv2/aws/guardduty",
                    }
                ],
                "Comment": "resolved by Ada",
                "StatusId": 4,
            },
        )
        BotoSecurityHub(client).update([ref], "resolved by Ada", "RESOLVED")
        stub.assert_no_pending_responses()


def test_notes_are_cut_to_512_characters(client):
    [ref] = refs(1)
    with Stubber(client) as stub:
        stub.add_response(
            "batch_update_findings",
            {"ProcessedFindings": [], "UnprocessedFindings": []},
            {"FindingIdentifiers": _ids([ref]), "Note": {"Text": "x" * 511 + "…", "UpdatedBy": "findings-router"}},
        )
        BotoSecurityHub(client).update([ref], "x" * 2000)
        stub.assert_no_pending_responses()


def test_recording_twin_behaves_like_the_adapter():
    hub = RecordingSecurityHub()
    result = hub.update(refs(150) + refs(1), "note", "NOTIFIED")
    assert result.updated == 150
    assert [len(u.refs) for u in hub.updates] == [100, 50]
