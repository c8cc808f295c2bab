"""cdk-nag (AwsSolutions) wiring and the one way to acknowledge a finding, with a real reason.

cdk-nag v3 reports through CDK's policy-validation plugins: a finding that is not acknowledged
fails synthesis, and acknowledged ones are written to the templates' ``cdk_nag`` metadata so an
auditor can read every exception and its reason next to the resource. Reasons are checked here so
that nobody can silence a rule with "ok" or "todo".
"""

from __future__ import annotations

import re

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from infra.errors import InfraError

MIN_REASON_CHARS = 40
_RULE = re.compile(r"^AwsSolutions-[A-Z]+\d+(\[.+\])?$")
_LAZY_REASON = re.compile(r"\b(todo|tbd|fixme|temporary|ignore)\b", re.IGNORECASE)


def enable_checks(app: App) -> None:
    """Run the AwsSolutions pack at synth; acknowledged findings go to template metadata."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one finding (``AwsSolutions-IAM5[Resource::...]`` for one wildcard) on ``scope``."""
    if not _RULE.fullmatch(rule):
        raise InfraError(f"acknowledge({scope.node.path}): {rule!r} is not an AwsSolutions rule id")
    if len(reason.strip()) < MIN_REASON_CHARS or _LAZY_REASON.search(reason):
        raise InfraError(
            f"acknowledge({scope.node.path}, {rule}): the reason must explain in at least "
            f"{MIN_REASON_CHARS} characters why the finding is acceptable, got {reason!r}"
        )
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_wildcards(scope: IConstruct, findings: dict[str, str]) -> None:
    """Acknowledge IAM5 findings, ``{"Resource::arn:...*" or "Action::svc:Verb*": reason}``."""
    for finding, reason in findings.items():
        acknowledge(scope, f"AwsSolutions-IAM5[{finding}]", reason)
