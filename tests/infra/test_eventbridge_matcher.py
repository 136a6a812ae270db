"""The test matcher itself, against the behaviour the EventBridge documentation describes."""

from __future__ import annotations

import pytest

from tests.builders import load_fixture
from tests.infra.eventbridge_matcher import PatternError, expand, matches, validate

pytestmark = pytest.mark.infra

EC2_EVENT = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "111122223333",
    "time": "2017-12-22T18:43:48Z",
    "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {
        "instance-id": "i-1234567890abcdef0",
        "state": "terminated",
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.123",
        "flag": True,
        "nothing": None,
        "tags": ["prod", "iot"],
        "nested": {"inner": "value"},
        "employees": [
            {"firstName": "John", "lastName": "Doe"},
            {"firstName": "Anna", "lastName": "Smith"},
        ],
    },
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # Exact values, OR within a list, AND across keys.
        ({"source": ["aws.ec2"]}, True),
        ({"source": ["aws.ec2"], "region": ["eu-west-1"]}, False),
        ({"source": ["aws.s3", "aws.ec2"], "detail": {"state": ["terminated"]}}, True),
        ({"source": ["AWS.EC2"]}, False),
        # Types do not mix.
        ({"detail": {"c-count": [5]}}, True),
        ({"detail": {"c-count": ["5"]}}, False),
        ({"detail": {"x-limit": [301.8]}}, True),
        ({"detail": {"flag": [True]}}, True),
        ({"detail": {"flag": [1]}}, False),
        ({"detail": {"nothing": [None]}}, True),
        ({"detail": {"state": [None]}}, False),
        # Arrays of values: any element.
        ({"resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"]}, True),
        ({"detail": {"tags": ["iot"]}}, True),
        ({"detail": {"tags": ["dev"]}}, False),
        # Arrays of objects: one element must match the whole sub-pattern.
        ({"detail": {"employees": {"firstName": ["Anna"]}}}, True),
        ({"detail": {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}}, True),
        ({"detail": {"employees": {"firstName": ["Anna"], "lastName": ["Doe"]}}}, False),
        # prefix / suffix / equals-ignore-case / wildcard.
        ({"detail": {"instance-id": [{"prefix": "i-12"}]}}, True),
        ({"detail": {"instance-id": [{"prefix": {"equals-ignore-case": "I-12"}}]}}, True),
        ({"detail": {"instance-id": [{"prefix": "I-12"}]}}, False),
        ({"detail": {"source-ip": [{"suffix": ".123"}]}}, True),
        ({"detail": {"state": [{"equals-ignore-case": "TERMINATED"}]}}, True),
        ({"detail": {"instance-id": [{"wildcard": "i-*ef0"}]}}, True),
        ({"detail": {"c-count": [{"prefix": "5"}]}}, False),
        # anything-but: never matches a missing field.
        ({"detail": {"state": [{"anything-but": ["running", "pending"]}]}}, True),
        ({"detail": {"state": [{"anything-but": "terminated"}]}}, False),
        ({"detail": {"state": [{"anything-but": {"prefix": "term"}}]}}, False),
        ({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["RUNNING"]}}]}}, True),
        ({"detail": {"c-count": [{"anything-but": [1, 2]}]}}, True),
        ({"detail": {"missing": [{"anything-but": ["x"]}]}}, False),
        # numeric.
        ({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}, True),
        ({"detail": {"d-count": [{"numeric": ["<", 3]}]}}, False),
        ({"detail": {"x-limit": [{"numeric": ["=", 3.018e2]}]}}, True),
        ({"detail": {"state": [{"numeric": [">", 0]}]}}, False),
        # exists: leaf values only.
        ({"detail": {"state": [{"exists": True}]}}, True),
        ({"detail": {"missing": [{"exists": False}]}}, True),
        ({"detail": {"state": [{"exists": False}]}}, False),
        ({"detail": {"nested": [{"exists": True}]}}, False),
        ({"absent": {"deeper": [{"exists": False}]}}, True),
        ({"absent": {"deeper": [{"exists": True}]}}, False),
        # $or at the top level and nested, combined with AND'ed siblings.
        ({"source": ["aws.ec2"], "$or": [{"region": ["eu-west-1"]}, {"detail": {"c-count": [5]}}]}, True),
        ({"source": ["aws.s3"], "$or": [{"region": ["us-west-1"]}, {"detail": {"c-count": [5]}}]}, False),
        (
            {"detail": {"$or": [{"c-count": [{"numeric": [">", 10]}]}, {"d-count": [{"numeric": ["<", 10]}]}]}},
            True,
        ),
        (
            {"detail": {"employees": {"$or": [{"firstName": ["Nobody"]}, {"lastName": ["Smith"]}]}}},
            True,
        ),
        (
            {"$or": [{"source": ["x"]}, {"$or": [{"source": ["y"]}, {"detail": {"tags": ["prod"]}}]}]},
            True,
        ),
        # $or beside a field inside an array of objects: each compiled branch is matched against one element, so
        # the sibling and the branch must hold for the same element (Anna Smith yes; Anna with Jones's name no).
        (
            {"detail": {"employees": {"firstName": ["Anna"], "$or": [{"lastName": ["Smith"]}, {"lastName": ["X"]}]}}},
            True,
        ),
        (
            {"detail": {"employees": {"firstName": ["Anna"], "$or": [{"lastName": ["Doe"]}, {"lastName": ["X"]}]}}},
            False,
        ),
        # A top-level array of strings and a field of an array of objects are independent of each other.
        (
            {
                "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
                "detail": {"employees": {"lastName": ["Smith"]}},
            },
            True,
        ),
    ],
)
def test_documented_semantics(pattern, expected):
    assert matches(pattern, EC2_EVENT) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        {},
        {"source": "aws.ec2"},
        {"source": []},
        {"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}},
        {"detail": {"state": [{"prefix": "a", "suffix": "b"}]}},
        {"detail": {"state": [{"exists": "yes"}]}},
        {"detail": {"c-count": [{"numeric": [">", "5"]}]}},
        {"detail": {"c-count": [{"numeric": ["<", 5, ">", 1]}]}},
        {"detail": {"c-count": [{"numeric": [">", 5, "<"]}]}},
        {"detail": {"state": [{"anything-but": ["a", 1]}]}},
        {"$or": [{"source": ["aws.ec2"]}]},
        {"$or": {"source": ["aws.ec2"]}},
    ],
)
def test_invalid_patterns_are_rejected(pattern):
    with pytest.raises(PatternError):
        validate(pattern)


def test_security_hub_documentation_example_descends_into_findings():
    # The pattern from "EventBridge event formats for Security Hub CSPM", against a real-shaped Inspector finding.
    event = load_fixture("asff_inspector_log4j.json")
    finding = event["detail"]["findings"][0]

    def pattern(labels: list[str]) -> dict:
        return {
            "source": ["aws.securityhub"],
            "detail-type": ["Security Hub Findings - Imported"],
            "detail": {"findings": {"ProductArn": [finding["ProductArn"]], "Severity": {"Label": labels}}},
        }

    assert matches(pattern(["CRITICAL", "HIGH"]), event)
    assert not matches(pattern(["INFORMATIONAL", "LOW"]), event)


@pytest.mark.parametrize(
    ("pattern", "branches"),
    [
        ({"source": ["aws.ec2"]}, [{"source": ["aws.ec2"]}]),
        # Event Ruler's JsonRuleCompiler example: source && (metricName || (metricType && namespace) || scope).
        (
            {
                "source": ["aws.cloudwatch"],
                "$or": [
                    {"metricName": ["CPUUtilization"]},
                    {"metricType": ["MetricType"], "namespace": ["AWS/EC2"]},
                    {"scope": ["Service"]},
                ],
            },
            [
                {"source": ["aws.cloudwatch"], "metricName": ["CPUUtilization"]},
                {"source": ["aws.cloudwatch"], "metricType": ["MetricType"], "namespace": ["AWS/EC2"]},
                {"source": ["aws.cloudwatch"], "scope": ["Service"]},
            ],
        ),
        # Nested: the inner $or's branches keep the outer branch's fields; parallel $ors multiply.
        (
            {
                "$or": [{"a": [1]}, {"b": [2], "detail": {"$or": [{"c": [3]}, {"d": [4]}]}}],
                "detail": {"$or": [{"e": [5]}, {"f": [6]}]},
            },
            [
                {"a": [1], "detail": {"e": [5]}},
                {"a": [1], "detail": {"f": [6]}},
                {"b": [2], "detail": {"c": [3], "e": [5]}},
                {"b": [2], "detail": {"c": [3], "f": [6]}},
                {"b": [2], "detail": {"d": [4], "e": [5]}},
                {"b": [2], "detail": {"d": [4], "f": [6]}},
            ],
        ),
    ],
)
def test_expand_compiles_or_into_branches(pattern, branches):
    assert expand(pattern) == branches
    for branch in branches:
        assert "$or" not in str(branch)


def test_expand_refuses_a_field_given_beside_and_inside_an_or():
    with pytest.raises(PatternError):
        expand({"source": ["a"], "$or": [{"source": ["b"]}, {"region": ["c"]}]})


@pytest.mark.parametrize(
    "pattern",
    [
        {"source": ["aws.ec2"], "$or": [{"region": ["eu-west-1"]}, {"detail": {"c-count": [5]}}]},
        {"detail": {"employees": {"firstName": ["Anna"], "$or": [{"lastName": ["Doe"]}, {"lastName": ["Smith"]}]}}},
        {"detail": {"employees": {"firstName": ["John"], "$or": [{"lastName": ["Smith"]}, {"lastName": ["X"]}]}}},
        {"$or": [{"source": ["x"]}, {"$or": [{"source": ["y"]}, {"detail": {"tags": ["prod"]}}]}]},
    ],
)
def test_expanded_branches_match_exactly_when_the_pattern_does(pattern):
    assert matches(pattern, EC2_EVENT) is any(matches(branch, EC2_EVENT) for branch in expand(pattern))
