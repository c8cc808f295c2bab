"""Golden test: the compiled build pipeline, valid against the SageMaker definition schema and reviewed.

The schema is AWS's published one, vendored unchanged in ``schema/`` (aws-sagemaker-mlops/
sagemaker-model-building-pipeline-definition-JSON-schema at b4012b0; ``schema/README.md`` says why it
lags behind the service). It is used as a structural check
with the patches in :data:`SCHEMA_PATCHES`, each naming the field the service and both SDK lines
emit and the schema does not know yet. Everything else in it is enforced as published.

The compiled JSON must equal ``golden/build.json`` byte for byte, so any change to what SageMaker
would run shows up in review. After an intended change (a new train step, a new parameter, an SDK
upgrade), regenerate with ``UPDATE_GOLDEN=1 .venv/bin/pytest tests/pipelines/test_sagemaker_golden.py``
and review the diff of the golden file.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SCHEMA = Path(__file__).parent / "schema" / "sagemaker-pipeline-definition.schema.json"  # schema/README.md
GOLDEN = Path(__file__).parent / "golden" / "build.json"
STEP_TYPES = {
    "Training": "TrainingStep",
    "Processing": "ProcessingStep",
    "Transform": "TransformStep",
    "Model": "CreateModelStep",
    "RegisterModel": "RegisterModelStep",
    "Condition": "ConditionStep",
    "Fail": "FailStep",
}
ARG = "#/definitions/StringArgumentValue"
_TRAIN_ARGS = "/definitions/TrainingStep/properties/Arguments/properties"
_REGISTER_ARGS = "/definitions/RegisterModelStep/properties/Arguments/properties"

# (JSON pointer into the schema, value to set there, why the service accepts it)
SCHEMA_PATCHES: list[tuple[str, Any, str]] = [
    (
        "/properties/PipelineExperimentConfig",
        {"type": "object"},
        "both SDK lines emit it; CreatePipeline accepts it (execution name/trial)",
    ),
    ("/properties/MlflowConfig", {"type": ["object", "null"]}, "sagemaker 3.x emits `MlflowConfig: null`"),
    (
        "/definitions/JoinFunction",
        {
            "type": "object",
            "required": ["Std:Join"],
            "additionalProperties": False,
            "properties": {
                "Std:Join": {
                    "type": "object",
                    "required": ["On", "Values"],
                    "additionalProperties": False,
                    "properties": {"On": {"type": "string"}, "Values": {"type": "array"}},
                }
            },
        },
        "the vendored definition nests Values without `properties` and omits `On`; Std:Join is a documented "
        "pipeline function (ParameterInteger.to_string() and every S3 path join emit it)",
    ),
    (
        "/definitions/JsonGetFunction",
        {
            "type": "object",
            "required": ["Std:JsonGet"],
            "additionalProperties": False,
            "properties": {
                "Std:JsonGet": {
                    "type": "object",
                    "required": ["PropertyFile", "Path"],
                    "properties": {
                        "PropertyFile": {"$ref": "#/definitions/GetFunction"},
                        "Path": {"type": "string"},
                    },
                }
            },
        },
        "Std:JsonGet (reading a property file) is a documented pipeline function the schema lacks",
    ),
    *[
        (
            f"/definitions/{kind}ArgumentValue/oneOf/-",
            {"$ref": f"#/definitions/{fn}"},
            f"argument values may be pipeline functions ({fn}), not only literals and Get",
        )
        for kind in ("String", "Integer", "Float", "Boolean")
        for fn in ("JoinFunction", "JsonGetFunction")
    ],
    (
        "/definitions/ProcessingStep/properties/PropertyFiles",
        {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["PropertyFileName", "OutputName", "FilePath"],
                "properties": {k: {"type": "string"} for k in ("PropertyFileName", "OutputName", "FilePath")},
                "additionalProperties": False,
            },
        },
        "property files on processing steps are how a ConditionStep reads evaluation.json",
    ),
    (
        "/definitions/RetryPolicy/properties/ExceptionType",
        {
            "type": "array",
            "minItems": 1,
            "items": {
                "enum": [
                    "Step.SERVICE_FAULT",
                    "Step.THROTTLING",
                    "SageMaker.JOB_INTERNAL_ERROR",
                    "SageMaker.CAPACITY_ERROR",
                    "SageMaker.RESOURCE_LIMIT",
                    "Emr.RESOURCE_LIMIT",
                ]
            },
        },
        "the service takes a list of exception types per policy (both SDK lines emit a list)",
    ),
    (
        f"{_TRAIN_ARGS}/AlgorithmSpecification/properties/ContainerEntrypoint",
        {"type": "array", "items": {"$ref": ARG}},
        "CreateTrainingJob AlgorithmSpecification.ContainerEntrypoint (our bootstrap)",
    ),
    (
        f"{_TRAIN_ARGS}/AlgorithmSpecification/properties/ContainerArguments",
        {"type": "array", "items": {"$ref": ARG}},
        "CreateTrainingJob AlgorithmSpecification.ContainerArguments",
    ),
    (
        f"{_TRAIN_ARGS}/Environment",
        {"type": "object", "additionalProperties": {"$ref": ARG}},
        "CreateTrainingJob Environment",
    ),
    (
        f"{_TRAIN_ARGS}/OutputDataConfig/properties/CompressionType",
        {"enum": ["GZIP", "NONE"]},
        "CreateTrainingJob OutputDataConfig.CompressionType (3.x emits GZIP)",
    ),
    (
        f"{_REGISTER_ARGS}/ModelApprovalStatus",
        {"$ref": ARG},
        "CreateModelPackage ModelApprovalStatus: PendingManualApproval is how the gate hands over to a human",
    ),
    (
        f"{_REGISTER_ARGS}/CustomerMetadataProperties",
        {"type": "object", "additionalProperties": {"$ref": ARG}},
        "CreateModelPackage CustomerMetadataProperties (gate result, lineage the registry adapter reads)",
    ),
    (
        f"{_REGISTER_ARGS}/SkipModelValidation",
        {"enum": ["All", "None"]},
        "CreateModelPackage SkipModelValidation",
    ),
    (
        f"{_REGISTER_ARGS}/InferenceSpecification/properties/Containers/items/properties/Environment",
        {"type": "object", "additionalProperties": {"$ref": ARG}},
        "ModelPackageContainerDefinition.Environment (SAGEMAKER_PROGRAM of the inference container)",
    ),
    (
        "/definitions/ContainerDefinition/properties/ModelDataUrl",
        {"$ref": ARG},
        "a CreateModel step takes the model URI from a pipeline parameter (Get), not only a literal",
    ),
]


def patched_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA.read_text())
    for pointer, value, _reason in SCHEMA_PATCHES:
        *parents, last = pointer.strip("/").split("/")
        node = schema
        for part in parents:
            node = node[part]
        if last == "-":
            node.append(copy.deepcopy(value))
        else:
            node[last] = copy.deepcopy(value)
    return schema


def schema_errors(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every violation, each located (step name + JSON path) and checked against the step's own type."""
    validator = jsonschema.Draft7Validator
    top = {**schema, "properties": {**schema["properties"], "Steps": {"type": "array", "minItems": 1}}}
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator(top).iter_errors(document)]
    steps = list(document["Steps"])
    while steps:
        step = steps.pop(0)
        if step["Type"] == "Condition":
            steps += [*step["Arguments"]["IfSteps"], *step["Arguments"]["ElseSteps"]]
        typed = {"$ref": f"#/definitions/{STEP_TYPES[step['Type']]}", "definitions": schema["definitions"]}
        errors += [
            f"step {step['Name']}: {list(e.absolute_path)}: {e.message[:300]}"
            for e in validator(typed).iter_errors(step)
        ]
    return errors


def test_patches_are_needed_and_the_unpatched_schema_still_rejects_known_bad_shapes(
    compiled_build: str,
) -> None:
    document = json.loads(compiled_build)
    raw: dict[str, Any] = json.loads(SCHEMA.read_text())
    assert schema_errors(document, raw), "the published schema accepts the definition: drop the patches"
    schema = patched_schema()
    broken = copy.deepcopy(document)
    broken["Steps"][0]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = "one"
    broken["Steps"][0]["Arguments"]["AppSpecification"]["ImageUri"] = ["not", "a", "string"]
    broken["Steps"][2]["Arguments"]["HyperParameters"]["model"] = 3
    errors = schema_errors(broken, schema)
    assert any("InstanceCount" in e for e in errors), errors
    assert any("'model'" in e for e in errors), errors
    assert any("ImageUri" in e for e in errors), errors


def test_build_definition_is_valid_against_the_patched_schema(
    compiled_build: str, compiled_forecast: str
) -> None:
    schema = patched_schema()
    for body in (compiled_build, compiled_forecast):
        document = json.loads(body)
        assert schema_errors(document, schema) == []
        jsonschema.validate(document, schema, cls=jsonschema.Draft7Validator)  # the oneOf over step types too


def test_build_definition_matches_the_reviewed_golden_file(compiled_build: str) -> None:
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(compiled_build)
    assert GOLDEN.exists(), f"no golden file; create it with UPDATE_GOLDEN=1 .venv/bin/pytest {__file__}"
    expected = GOLDEN.read_text()
    if compiled_build != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True),
                compiled_build.splitlines(True),
                "golden/build.json",
                "compiled",
                n=2,
            )
        )
        lines = diff.splitlines()
        shown = "\n".join(lines[:80]) + (
            f"\n... ({len(lines) - 80} more diff lines)" if len(lines) > 80 else ""
        )
        pytest.fail(
            "the compiled SageMaker build pipeline differs from tests/pipelines/golden/build.json.\n"
            "If the change is intended (new train step, parameter, SDK upgrade), regenerate and review it:\n"
            "    UPDATE_GOLDEN=1 .venv/bin/pytest tests/pipelines/test_sagemaker_golden.py\n"
            f"{shown}"
        )
