"""IAM grants declared as data, each wildcard resource carrying the reason it is acceptable.

Writing the reason next to the statement (instead of in a separate suppression list) keeps the two
from drifting apart: a wildcard without a reason fails at synth, and the cdk-nag acknowledgment
is generated from exactly the resources the statement grants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import aws_iam as iam

from infra.errors import InfraError
from infra.nag import acknowledge_wildcards


@dataclass(frozen=True)
class Grant:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    why: str = ""  # required when any resource contains "*"
    conditions: Mapping[str, Any] = field(default_factory=dict)

    def statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=self.sid,
            actions=list(self.actions),
            resources=list(self.resources),
            conditions=dict(self.conditions) or None,
        )


def attach(policy: iam.Policy, grants: Sequence[Grant]) -> iam.Policy:
    """Add ``grants`` to ``policy`` and acknowledge each wildcard resource with its grants' reasons."""
    reasons: dict[str, list[str]] = {}
    for grant in grants:
        if any(action == "*" or action.endswith(":*") for action in grant.actions):
            raise InfraError(
                f"grant {grant.sid}: name the actions, {list(grant.actions)} uses a service wildcard"
            )
        policy.add_statements(grant.statement())
        for resource in grant.resources:
            if "*" in resource:
                if not grant.why:
                    raise InfraError(f"grant {grant.sid}: wildcard resource {resource!r} needs a 'why'")
                reasons.setdefault(resource, []).append(grant.why)
    acknowledge_wildcards(
        policy,
        {f"Resource::{resource}": "; ".join(dict.fromkeys(whys)) for resource, whys in reasons.items()},
    )
    return policy
