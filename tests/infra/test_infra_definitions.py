"""Compiled pipeline definitions: shape, parameters and placeholders are checked before deploying."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from infra.app import build_app
from infra.errors import InfraConfigError, PipelineDefinitionError
from infra.pipeline_definitions import PLACEHOLDERS, load_definition, load_definitions

PIPELINE_FIXTURES = Path(__file__).parent / "fixtures" / "pipelines"


def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PIPELINE_FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def _write(tmp_path: Path, document: object, name: str = "build.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_fixtures_load_with_their_parameters_and_steps() -> None:
    definitions = load_definitions(PIPELINE_FIXTURES)
    assert definitions["build"].parameters[:3] == ("TenantId", "InputDataUri", "ModelApprovalStatus")
    assert definitions["forecast"].parameters[:2] == ("TenantId", "InputDataUri")
    assert definitions["build"].steps == ("ValidateSales",)
    assert definitions["forecast"].steps == ("BatchForecast",)


def test_render_replaces_every_placeholder() -> None:
    definition = load_definitions(PIPELINE_FIXTURES)["build"]
    values = {name: f"<{name.lower()}>" for name in PLACEHOLDERS}
    rendered = json.loads(definition.render(values))
    step = rendered["Steps"][0]["Arguments"]
    assert "${OrderNimbus:" not in json.dumps(rendered)
    assert step["RoleArn"] == "<sagemakerrolearn>"
    assert (
        step["AppSpecification"]["ImageUri"] == "<account>.dkr.ecr.<region>.amazonaws.com/ordernimbus:latest"
    )
    with pytest.raises(PipelineDefinitionError, match="no value for"):
        definition.render({"Region": "eu-west-1"})


def test_missing_file_names_path_and_how_to_produce_it(tmp_path: Path) -> None:
    with pytest.raises(
        PipelineDefinitionError, match=r"build\.json: pipeline definition not found.*--target sagemaker"
    ):
        load_definitions(tmp_path)


def test_forecast_definition_cannot_serve_as_build(tmp_path: Path) -> None:
    _write(tmp_path, _fixture("forecast"))
    with pytest.raises(PipelineDefinitionError, match=r"Parameters lack \['ModelApprovalStatus'\]"):
        load_definitions(tmp_path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(Version="2019-01-01"), "field 'Version' is '2019-01-01'"),
        (lambda d: d.update(Steps=[]), "field 'Steps' must be a non-empty list"),
        (lambda d: d.update(Parameters={"TenantId": "x"}), "field 'Parameters' must be a list"),
        (lambda d: d["Steps"][0].pop("Type"), r"Steps\[0\] \('ValidateSales'\) has no string 'Type'"),
        (
            lambda d: d["Parameters"].append({"Name": "TenantId"}),
            r"Parameters\[4\] repeats the name 'TenantId'",
        ),
        (lambda d: d["Steps"][0].update(RoleArn="${OrderNimbus:RoleArn}"), r"unknown placeholders.*RoleArn"),
    ],
)
def test_malformed_definitions_are_named(tmp_path: Path, mutate: Any, message: str) -> None:
    document = _fixture("build")
    mutate(document)
    with pytest.raises(PipelineDefinitionError, match=message):
        load_definition(_write(tmp_path, document))


def test_invalid_json_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "build.json"
    path.write_text('{\n  "Version": "2020-12-01",\n  oops\n}', encoding="utf-8")
    with pytest.raises(PipelineDefinitionError, match=r"build\.json: not JSON .* line 3"):
        load_definition(path)


def test_oversized_body_is_refused(tmp_path: Path) -> None:
    document = _fixture("build")
    document["Metadata"] = {"padding": "x" * 1_000_001}
    with pytest.raises(PipelineDefinitionError, match="exceeds the 1000000-byte"):
        load_definition(_write(tmp_path, document))


def test_app_refuses_an_api_asset_without_its_handler(tmp_path: Path) -> None:
    """An empty or half-built package is named with the missing module and how to build it."""
    asset = tmp_path / "lambda"
    (asset / "serving").mkdir(parents=True)
    (asset / "serving" / "__init__.py").write_text("", encoding="utf-8")
    context = {"pipelineDefinitionsDir": str(PIPELINE_FIXTURES), "lambdaAssetDir": str(asset)}
    with pytest.raises(InfraConfigError) as refused:
        build_app(context=context, outdir=str(tmp_path / "out"))
    message = str(refused.value)
    assert (
        f"Lambda asset {asset} (context key 'lambdaAssetDir') lacks ['serving/lambda_handler.py']" in message
    )
    assert "make lambda-package" in message


def test_app_needs_no_monitoring_in_the_api_asset(tmp_path: Path, lambda_asset: Path) -> None:
    """The API package excludes monitoring/ (pandas, Evidently): the monitor is an image of its own."""
    assert not (lambda_asset / "monitoring").exists()
    context = {"pipelineDefinitionsDir": str(PIPELINE_FIXTURES), "lambdaAssetDir": str(lambda_asset)}
    built = build_app(context=context, outdir=str(tmp_path / "out"))
    assert set(built.stacks) == {"storage", "data", "ml", "api", "events", "observability"}


def test_app_refuses_missing_directories(tmp_path: Path, lambda_asset: Path) -> None:
    with pytest.raises(
        InfraConfigError, match=r"'pipelineDefinitionsDir': directory .*nowhere does not exist"
    ):
        build_app(
            context={"pipelineDefinitionsDir": str(tmp_path / "nowhere"), "lambdaAssetDir": str(lambda_asset)}
        )
    shutil.copytree(PIPELINE_FIXTURES, tmp_path / "defs")
    with pytest.raises(InfraConfigError, match=r"unknown environment 'qa'"):
        build_app(context={"env": "qa", "pipelineDefinitionsDir": str(tmp_path / "defs")})
