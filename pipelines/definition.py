"""The build and forecast pipelines, declared once.

The local runner executes this DAG; the SageMaker compiler turns the same objects into SDK steps.
Nothing here knows about processes, directories or boto3: it is data about steps, parameters,
edges and the quality-gate condition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

StepKind = Literal["processing", "training", "register", "transform", "fail"]


@dataclass(frozen=True)
class Parameter:
    name: str
    type: Literal["String", "Integer", "Float"]
    default: str | int | float
    description: str = ""


@dataclass(frozen=True)
class Input:
    """A step input: a pipeline parameter (``param:Name``) or another step's output (``Step/output``)."""

    name: str
    source: str

    @property
    def upstream(self) -> str | None:
        return None if self.source.startswith("param:") else self.source.split("/", 1)[0]


@dataclass(frozen=True)
class Step:
    name: str
    kind: StepKind
    entrypoint: str  # python module run as `python -m <entrypoint>`
    inputs: tuple[Input, ...] = ()
    outputs: tuple[str, ...] = ()
    arguments: tuple[tuple[str, str], ...] = ()  # (argument, "param:Name" or a literal)
    property_files: tuple[tuple[str, str, str], ...] = ()  # (name, output, path)
    retryable: bool = False
    instance_type_param: str = "ProcessingInstanceType"
    depends_on: tuple[str, ...] = ()
    cache: bool = True  # False for steps with side effects (registration, publishing)

    @property
    def upstream(self) -> set[str]:
        return {i.upstream for i in self.inputs if i.upstream} | set(self.depends_on)


@dataclass(frozen=True)
class Condition:
    """``JsonGet(step.property_file, json_path) <op> param`` choosing between two step lists."""

    name: str
    step: str
    property_file: str
    json_path: str
    op: Literal["<=", ">="]
    right_param: str
    if_true: tuple[str, ...]
    if_false: tuple[str, ...]


@dataclass(frozen=True)
class PipelineDef:
    name: str
    parameters: tuple[Parameter, ...]
    steps: tuple[Step, ...]
    condition: Condition | None = None
    description: str = ""
    defaults: dict[str, str] = field(default_factory=dict)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def parameter(self, name: str) -> Parameter:
        return next(p for p in self.parameters if p.name == name)

    def edges(self) -> set[tuple[str, str]]:
        out = {(u, s.name) for s in self.steps for u in s.upstream}
        if self.condition:
            out |= {(self.condition.step, t) for t in (*self.condition.if_true, *self.condition.if_false)}
        return out

    def order(self) -> list[str]:
        """Topological order (stable: declaration order among ready steps)."""
        done: list[str] = []
        deps = {s.name: {u for u, v in self.edges() if v == s.name} for s in self.steps}
        while len(done) < len(self.steps):
            ready = [s.name for s in self.steps if s.name not in done and deps[s.name] <= set(done)]
            if not ready:
                raise ValueError(f"pipeline {self.name} has a cycle")
            done.extend(ready)
        return done


COMMON = (
    Parameter("TenantId", "String", "demo", "tenant whose data and registry group are used"),
    Parameter("InputDataUri", "String", "", "folder (file:// or s3://) holding the tenant's sales.parquet"),
    Parameter("Horizon", "Integer", 28, "periods to forecast (1-365), in the data's frequency"),
    Parameter("Quantiles", "String", "0.1,0.5,0.9", "comma-separated quantile levels"),
    Parameter("ProcessingInstanceType", "String", "ml.m5.xlarge"),
)


# Blended into the ensemble. AutoETS is also a baseline: where no member beats exponential smoothing
# (demand with no pattern, a shop just shut, months of false zeros) the blend may lean on it, and the
# gate still compares the ensemble with it (benchmarks/dev_windows.py --only blend_autoets).
MEMBERS = ("arima", "xgboost", "deepar", "autoets")
BASELINES = ("autoets",)  # backtested beside the members and scored as the gate's baselines


def build_pipeline() -> PipelineDef:
    """validate -> features -> train x N (parallel) -> evaluate -> gate -> register."""
    train_args = (
        ("tenant", "param:TenantId"),
        ("horizon", "param:Horizon"),
        ("quantiles", "param:Quantiles"),
        ("backtest_windows", "param:BacktestWindows"),
        ("boosting_rounds", "param:BoostingRounds"),
        ("deepar_epochs", "param:DeepAREpochs"),
    )
    trains = tuple(
        Step(
            name=f"Train-{m}",
            kind="training",
            entrypoint="pipelines.steps.train",
            inputs=(Input("sales", "Validate/sales"),),
            outputs=("model", "output"),
            arguments=(("model", m), *train_args),
            instance_type_param="TrainingInstanceType",
            retryable=True,
        )
        for m in dict.fromkeys((*MEMBERS, *BASELINES))
    )
    evaluate_inputs = [Input("sales", "Validate/sales")]
    for m in MEMBERS:
        evaluate_inputs += [
            Input(f"model-{m}", f"Train-{m}/model"),
            Input(f"backtest-{m}", f"Train-{m}/output"),
        ]
    for b in BASELINES:
        evaluate_inputs += [Input(f"baseline-{b}", f"Train-{b}/output")]

    def register(name: str, gate_passed: bool) -> Step:
        """The register step of one branch of the quality gate (the version records which)."""
        return Step(
            name,
            "register",
            "pipelines.steps.register",
            inputs=(Input("model", "Evaluate/model"), Input("evaluation", "Evaluate/evaluation")),
            arguments=(
                ("tenant", "param:TenantId"),
                ("approval_status", "param:ModelApprovalStatus"),
                ("gate_passed", str(gate_passed).lower()),
            ),
            cache=False,
        )

    return PipelineDef(
        name="ordernimbus-build",
        description=(
            "Validate a tenant's sales, build features, train the members, "
            "evaluate the ensemble, register it."
        ),
        parameters=(
            *COMMON,
            Parameter("Until", "String", "", "train only on data up to this date (YYYY-MM-DD); empty = all"),
            Parameter("BacktestWindows", "Integer", 3, "rolling-origin windows of the horizon's length"),
            Parameter("BoostingRounds", "Integer", 100, "boosting rounds of the gradient-boosted member"),
            Parameter(
                "DeepAREpochs",
                "Integer",
                12,
                "maximum training epochs of DeepAR (early stopping may end sooner)",
            ),
            Parameter(
                "GateMaxWapeRatio", "Float", 1.0, "register only if ensemble WAPE <= ratio x best baseline"
            ),
            Parameter("ModelApprovalStatus", "String", "PendingManualApproval"),
            Parameter("TrainingInstanceType", "String", "ml.m5.2xlarge"),
        ),
        steps=(
            Step(
                "Validate",
                "processing",
                "pipelines.steps.validate",
                inputs=(Input("raw", "param:InputDataUri"),),
                outputs=("sales", "report"),
                arguments=(("tenant", "param:TenantId"), ("until", "param:Until")),
            ),
            Step(
                "Features",
                "processing",
                "pipelines.steps.features",
                inputs=(Input("sales", "Validate/sales"),),
                outputs=("features",),
                arguments=(("tenant", "param:TenantId"),),
            ),
            *trains,
            Step(
                "Evaluate",
                "processing",
                "pipelines.steps.evaluate",
                inputs=tuple(evaluate_inputs),
                outputs=("evaluation", "model"),
                arguments=(
                    ("tenant", "param:TenantId"),
                    ("horizon", "param:Horizon"),
                    ("quantiles", "param:Quantiles"),
                    ("gate_max_wape_ratio", "param:GateMaxWapeRatio"),
                ),
                property_files=(("EvaluationReport", "evaluation", "evaluation.json"),),
                depends_on=("Features",),
            ),
            register("Register", gate_passed=True),
            register("RegisterGateFailed", gate_passed=False),
        ),
        condition=Condition(
            name="QualityGate",
            step="Evaluate",
            property_file="EvaluationReport",
            json_path="gate.wape_ratio",
            op="<=",
            right_param="GateMaxWapeRatio",
            if_true=("Register",),
            if_false=("RegisterGateFailed",),
        ),
    )


def forecast_pipeline() -> PipelineDef:
    """prepare -> batch transform with the approved version -> publish an atomic forecast set."""
    return PipelineDef(
        name="ordernimbus-forecast",
        description="Forecast every series of a tenant with its approved model version and publish the set.",
        parameters=(
            *COMMON,
            Parameter("ModelDataUri", "String", "", "model.tar.gz of the approved version"),
            Parameter("ModelVersion", "Integer", 0, "registry version of that model"),
            Parameter("TransformInstanceType", "String", "ml.m5.xlarge"),
        ),
        steps=(
            Step(
                "Prepare",
                "processing",
                "pipelines.steps.prepare",
                inputs=(Input("raw", "param:InputDataUri"),),
                outputs=("batch", "history"),
                arguments=(
                    ("tenant", "param:TenantId"),
                    ("horizon", "param:Horizon"),
                    ("quantiles", "param:Quantiles"),
                ),
            ),
            Step(
                "Transform",
                "transform",
                "pipelines.steps.transform",
                inputs=(Input("model", "param:ModelDataUri"), Input("batch", "Prepare/batch")),
                outputs=("predictions",),
                instance_type_param="TransformInstanceType",
                retryable=True,
            ),
            Step(
                "Publish",
                "processing",
                "pipelines.steps.publish",
                inputs=(Input("predictions", "Transform/predictions"), Input("history", "Prepare/history")),
                outputs=(),
                arguments=(("tenant", "param:TenantId"), ("model_version", "param:ModelVersion")),
                cache=False,
            ),
        ),
    )


PIPELINES = {"build": build_pipeline, "forecast": forecast_pipeline}
