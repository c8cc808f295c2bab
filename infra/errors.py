"""The infra package's exception family: problems found before anything reaches CloudFormation.

Synthesis runs on a laptop or in CI without AWS credentials, so every mistake we can catch here
(a bad tenant id, a missing pipeline definition, a pipeline parameter the events would pass but the
definition does not declare) is raised with the file, context key or field to fix.
"""

from __future__ import annotations

from ordernimbus.errors import OrderNimbusError


class InfraError(OrderNimbusError):
    title = "Infrastructure definition error"


class InfraConfigError(InfraError):
    """An environment configuration or CDK context value is invalid or points at nothing."""

    title = "Invalid infrastructure configuration"


class PipelineDefinitionError(InfraError):
    """A compiled SageMaker pipeline definition file cannot be deployed as it is."""

    title = "Invalid pipeline definition"
