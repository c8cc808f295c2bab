"""Read a compiled SageMaker definition back as a DAG: steps, edges, parameters, the gate, the inputs.

It is the inverse view of :func:`pipelines.local.runner_view`, so a test (or a reviewer of a diff)
can check that what SageMaker will run is what the local runner runs. Edges are recovered the way
SageMaker itself orders steps: from ``DependsOn`` and from every ``{"Get": "Steps.<name>...."}``
reference in a step's arguments. Two compiler artefacts are folded back: the ConditionStep (its
branches hang off the step whose property file it reads) and the ``<step>Model`` helper a
transform step needs (it belongs to its transform step).
"""

from __future__ import annotations

import json
import re
from typing import Any

_STEP_REF = re.compile(r"^Steps\.([^.\[]+)")
_OPS = {"LessThanOrEqualTo": "<=", "GreaterThanOrEqualTo": ">="}


def compiled_view(body: str | dict[str, Any]) -> dict[str, Any]:
    document = json.loads(body) if isinstance(body, str) else body
    steps, condition = _flatten(document["Steps"])
    helpers = {f"{s['Name']}Model": s["Name"] for s in steps.values() if s["Type"] == "Transform"}
    owner = {name: helpers.get(name, name) for name in steps}
    edges: set[tuple[str, str]] = set()
    for name, step in steps.items():
        refs = set(step.get("DependsOn") or []) | _refs(step.get("Arguments", {}))
        if step["Type"] == "Condition":
            continue
        edges |= {(owner[r], owner[name]) for r in refs if owner.get(r, r) != owner[name]}
    if condition is not None:
        gate = steps[condition["name"]]
        sources = _refs(gate["Arguments"]["Conditions"]) | set(gate.get("DependsOn") or [])
        edges |= {(s, b) for s in sources for b in (*condition["if_true"], *condition["if_false"])}
        edges = {(u, v) for u, v in edges if condition["name"] not in (u, v)}
    return {
        "parameters": [
            {"name": p["Name"], "type": p["Type"], "default": p.get("DefaultValue")}
            for p in document["Parameters"]
        ],
        "steps": sorted(n for n in steps if n not in helpers and n != (condition or {}).get("name")),
        "edges": sorted([u, v] for u, v in edges),
        "condition": condition,
        "inputs": {
            name: _inputs(step, steps)
            for name, step in steps.items()
            if step["Type"] in ("Processing", "Training")
        },
        "property_files": {
            name: [
                [f["PropertyFileName"], f["OutputName"], f["FilePath"]] for f in step.get("PropertyFiles", [])
            ]
            for name, step in steps.items()
            if step.get("PropertyFiles")
        },
        "cached": sorted(n for n, s in steps.items() if (s.get("CacheConfig") or {}).get("Enabled")),
        "retried": sorted(n for n, s in steps.items() if s.get("RetryPolicies")),
    }


def _flatten(top: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    steps: dict[str, dict[str, Any]] = {}
    condition = None
    for step in top:
        steps[step["Name"]] = step
        if step["Type"] == "Condition":
            args = step["Arguments"]
            (test,) = args["Conditions"]
            left = test["LeftValue"]["Std:JsonGet"]
            condition = {
                "name": step["Name"],
                "step": _STEP_REF.match(left["PropertyFile"]["Get"]).group(1),  # type: ignore[union-attr]
                "property_file": left["PropertyFile"]["Get"].rsplit(".", 1)[-1],
                "json_path": left["Path"],
                "op": _OPS[test["Type"]],
                "right_param": test["RightValue"]["Get"].removeprefix("Parameters."),
                "if_true": [s["Name"] for s in args["IfSteps"]],
                "if_false": [s["Name"] for s in args["ElseSteps"]],
            }
            for branch in (*args["IfSteps"], *args["ElseSteps"]):
                steps[branch["Name"]] = branch
    return steps, condition


def _refs(value: Any) -> set[str]:
    """Names of the steps whose properties ``value`` reads."""
    if isinstance(value, dict):
        if isinstance(value.get("Get"), str) and (match := _STEP_REF.match(value["Get"])):
            return {match.group(1)}
        return set().union(*(_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    return set()


def _gets(value: Any) -> list[str]:
    if isinstance(value, dict):
        return (
            [value["Get"]]
            if isinstance(value.get("Get"), str)
            else [g for v in value.values() for g in _gets(v)]
        )
    return [g for v in value for g in _gets(v)] if isinstance(value, list) else []


def _source(value: Any, steps: dict[str, dict[str, Any]]) -> str:
    """The ``Step/output`` (or ``param:Name``) an input URI reads, in the definition's own terms."""
    for get in _gets(value):
        if get.startswith("Parameters."):
            return "param:" + get.removeprefix("Parameters.")
        step = _STEP_REF.match(get).group(1)  # type: ignore[union-attr]
        if match := re.search(r"Outputs\['([^']+)'\]", get):
            return f"{step}/{match.group(1)}"
        if get.endswith("ModelArtifacts.S3ModelArtifacts"):
            return f"{step}/model"
        if get.endswith("OutputDataConfig.S3OutputPath"):
            return f"{step}/output"
        if get.endswith("TransformOutput.S3OutputPath"):  # .../<step>/<output> by the compiler's layout
            values = steps[step]["Arguments"]["TransformOutput"]["S3OutputPath"]["Std:Join"]["Values"]
            return f"{step}/{values[-1]}"
    return "?"


def _inputs(step: dict[str, Any], steps: dict[str, dict[str, Any]]) -> dict[str, str]:
    args = step["Arguments"]
    if step["Type"] == "Processing":
        items = {i["InputName"]: i["S3Input"]["S3Uri"] for i in args.get("ProcessingInputs", [])}
    else:
        items = {
            c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
            for c in args.get("InputDataConfig", [])
        }
    return {name: _source(uri, steps) for name, uri in items.items() if name != "code"}
