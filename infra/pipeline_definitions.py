"""Load the compiled SageMaker pipeline definitions and check them before CloudFormation sees them.

``ordernimbus pipeline definition --target sagemaker`` writes ``build.json`` and ``forecast.json``;
the ML stack embeds them in ``AWS::SageMaker::Pipeline``. A malformed or mismatched definition would
otherwise surface as a failed deployment or, worse, as a schedule that starts executions which
fail at 2 a.m., so the shape and the parameters the EventBridge targets pass are checked here.

A definition may contain ``${OrderNimbus:<Name>}`` placeholders for values that only the stack
knows (see :data:`PLACEHOLDERS`); they are replaced with the deployed values at synth time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from infra.errors import PipelineDefinitionError

DEFINITION_VERSION: Final = "2020-12-01"
# CloudFormation accepts an inline PipelineDefinitionBody of at most 1 MB.
MAX_BODY_BYTES: Final = 1_000_000
PLACEHOLDERS: Final = (
    "SageMakerRoleArn",
    "LakeBucket",
    "ArtifactsBucket",
    "KmsKeyArn",
    "Region",
    "Account",
    "Environment",
)
_PLACEHOLDER = re.compile(r"\$\{OrderNimbus:([^}]*)\}")
# Pipeline parameters the EventBridge targets pass; every definition must declare them.
TENANT_PARAMETER: Final = "TenantId"
INPUT_PARAMETER: Final = "InputDataUri"
APPROVAL_PARAMETER: Final = "ModelApprovalStatus"
REQUIRED_PARAMETERS: Final = {
    "build": (TENANT_PARAMETER, INPUT_PARAMETER, APPROVAL_PARAMETER),
    "forecast": (TENANT_PARAMETER, INPUT_PARAMETER),
}


@dataclass(frozen=True)
class PipelineDefinition:
    path: Path
    body: str
    parameters: tuple[str, ...]
    steps: tuple[str, ...]

    def render(self, values: Mapping[str, str]) -> str:
        """The body with every placeholder replaced; ``values`` must cover :data:`PLACEHOLDERS`."""
        missing = set(PLACEHOLDERS) - set(values)
        if missing:
            raise PipelineDefinitionError(f"render({self.path.name}): no value for {sorted(missing)}")
        return _PLACEHOLDER.sub(lambda match: values[match.group(1)], self.body)


def load_definitions(directory: Path) -> dict[str, PipelineDefinition]:
    """``build.json`` and ``forecast.json`` from ``directory``, each checked for its parameters."""
    return {
        name: load_definition(directory / f"{name}.json", required)
        for name, required in REQUIRED_PARAMETERS.items()
    }


def load_definition(path: Path, required_parameters: tuple[str, ...] = ()) -> PipelineDefinition:
    """Read and check one definition file; errors name the file and what to fix."""
    if not path.is_file():
        raise PipelineDefinitionError(
            f"{path}: pipeline definition not found; produce it with "
            "`ordernimbus pipeline definition --target sagemaker` or set the CDK context key "
            "'pipelineDefinitionsDir' to the directory that holds build.json and forecast.json"
        )
    body = path.read_text(encoding="utf-8")
    if len(body.encode("utf-8")) > MAX_BODY_BYTES:
        raise PipelineDefinitionError(
            f"{path}: {len(body.encode('utf-8'))} bytes exceeds the {MAX_BODY_BYTES}-byte inline "
            "PipelineDefinitionBody limit"
        )
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise PipelineDefinitionError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise PipelineDefinitionError(f"{path}: expected a JSON object at the top level")
    if document.get("Version") != DEFINITION_VERSION:
        raise PipelineDefinitionError(
            f"{path}: field 'Version' is {document.get('Version')!r}, expected {DEFINITION_VERSION!r}"
        )
    parameters = _names(path, document, "Parameters", allow_empty=True)
    steps = _names(path, document, "Steps", allow_empty=False)
    for index, step in enumerate(document["Steps"]):
        if not isinstance(step.get("Type"), str):
            raise PipelineDefinitionError(f"{path}: Steps[{index}] ({step['Name']!r}) has no string 'Type'")
    missing = [name for name in required_parameters if name not in parameters]
    if missing:
        raise PipelineDefinitionError(
            f"{path}: Parameters lack {missing}, which the EventBridge targets pass; declared: "
            f"{list(parameters)}"
        )
    unknown = sorted({name for name in _PLACEHOLDER.findall(body) if name not in PLACEHOLDERS})
    if unknown:
        raise PipelineDefinitionError(
            f"{path}: unknown placeholders {['${OrderNimbus:' + n + '}' for n in unknown]}; "
            f"known: {list(PLACEHOLDERS)}"
        )
    return PipelineDefinition(path=path, body=body, parameters=parameters, steps=steps)


def _names(path: Path, document: dict[str, Any], field: str, *, allow_empty: bool) -> tuple[str, ...]:
    items = document.get(field)
    if not isinstance(items, list) or (not items and not allow_empty):
        expected = "a list" if allow_empty else "a non-empty list"
        raise PipelineDefinitionError(f"{path}: field {field!r} must be {expected} of objects")
    names: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str) or not item["Name"]:
            raise PipelineDefinitionError(f"{path}: {field}[{index}] has no string 'Name'")
        if item["Name"] in names:
            raise PipelineDefinitionError(f"{path}: {field}[{index}] repeats the name {item['Name']!r}")
        names.append(item["Name"])
    return tuple(names)
