"""IAM grants as data: a wildcard resource needs its reason, and service-wide actions are refused."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam

from infra.errors import InfraError
from infra.grants import Grant, attach


def _policy() -> iam.Policy:
    return iam.Policy(Stack(App(), "S"), "P")


def test_wildcard_resource_without_a_reason_is_refused() -> None:
    with pytest.raises(
        InfraError, match=r"grant ReadAll: wildcard resource 'arn:aws:s3:::b/\*' needs a 'why'"
    ):
        attach(_policy(), [Grant("ReadAll", ("s3:GetObject",), ("arn:aws:s3:::b/*",))])


@pytest.mark.parametrize("action", ["s3:*", "*"])
def test_service_wildcard_actions_are_refused(action: str) -> None:
    with pytest.raises(InfraError, match="uses a service wildcard"):
        attach(_policy(), [Grant("Everything", (action,), ("arn:aws:s3:::b",))])


def test_statements_keep_sid_conditions_and_exact_resources() -> None:
    policy = attach(
        _policy(),
        [
            Grant(
                "Read",
                ("s3:GetObject",),
                ("arn:aws:s3:::b/*",),
                "objects of our own bucket b, keyed per tenant and per run",
            ),
            Grant(
                "Metric",
                ("cloudwatch:PutMetricData",),
                ("*",),
                "PutMetricData has no resource-level permissions in IAM",
                conditions={"StringEquals": {"cloudwatch:namespace": "OrderNimbus"}},
            ),
        ],
    )
    document = Stack.of(policy).resolve(policy.document.to_json())
    assert document["Statement"] == [
        {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
        {
            "Sid": "Metric",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "OrderNimbus"}},
        },
    ]
