"""Compile a :class:`~pipelines.definition.PipelineDef` into a SageMaker Pipeline (sagemaker 3.x), offline.

The definition is walked once, in topological order, and each step becomes its SDK counterpart:

* ``processing`` -> ProcessingStep (a ``Processor`` running our bootstrap; a ``PySparkProcessor`` for
  the features step when the target asks for Spark), property files -> ``PropertyFile``;
* ``training``   -> TrainingStep (``ModelTrainer``; arguments become hyperparameters, which the step
  reads from ``hyperparameters.json`` exactly as locally);
* ``register``   -> ModelStep from ``ModelBuilder.register()`` into ``ordernimbus-<TenantId>``, status
  from ``ModelApprovalStatus`` (a gate-failed version is always PendingManualApproval), model metrics
  = the evaluation report;
* ``transform``  -> a helper ModelStep ``<name>Model`` (CreateModel) and a TransformStep;
* the condition   -> ConditionStep with ``JsonGet`` over the property file.

Step code is not uploaded by the SDK (3.x would use a timestamped key and defeat step caching): every
job receives the content-addressed :mod:`pipelines.sagemaker_code` archive as an input and the
:data:`BOOTSTRAP` unpacks it and runs :mod:`pipelines.sagemaker_container`. Building a definition makes
no AWS call: :func:`offline_sdk` disables the SDK's role validation, bucket discovery and telemetry.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from pipelines.definition import Input, PipelineDef, Step
from pipelines.sagemaker_code import CodeBundle, current_bundle
from pipelines.sagemaker_sdk import (
    CONTENT_TYPES,
    ENTRYPOINT,
    PENDING,
    QUIET,
    SERVE_ENV,
    container_training_step,
    offline_sdk,
    retries,
    sdk_parameter,
)
from pipelines.sagemaker_target import SageMakerTarget, apply_placeholders


def definition(
    pipeline: PipelineDef, target: SageMakerTarget, code: CodeBundle | None = None, name: str | None = None
) -> str:
    """The pipeline definition JSON (indented, stable), placeholders applied for the stack form."""
    with offline_sdk(target.region):
        sdk = compile_pipeline(pipeline, target, code, name)
        body = json.dumps(json.loads(sdk.definition()), indent=2) + "\n"
    return apply_placeholders(body) if target.placeholders else body


def compile_pipeline(
    pipeline: PipelineDef, target: SageMakerTarget, code: CodeBundle | None = None, name: str | None = None
) -> Any:
    """The SDK ``Pipeline`` object; call inside :func:`offline_sdk` (as :func:`definition` does)."""
    return _Compiler(pipeline, target, code or current_bundle()).pipeline(name or pipeline.name)


def with_defaults(pipeline: PipelineDef, **defaults: str | int | float) -> PipelineDef:
    """The same pipeline with other parameter defaults (e.g. ``TenantId`` for ``--tenant``)."""
    unknown = set(defaults) - {p.name for p in pipeline.parameters}
    if unknown:
        raise ValueError(f"unknown parameters for {pipeline.name}: {sorted(unknown)}")
    params = tuple(replace(p, default=defaults.get(p.name, p.default)) for p in pipeline.parameters)
    return replace(pipeline, parameters=params)


class _Compiler:
    def __init__(self, pipeline: PipelineDef, target: SageMakerTarget, code: CodeBundle) -> None:
        import boto3
        from sagemaker.core.workflow.pipeline_context import PipelineSession

        self.pdef, self.target = pipeline, target
        self.code_uri = code.uri(target.bucket, target.prefix)
        boto = boto3.Session(
            region_name=target.region, aws_access_key_id="offline", aws_secret_access_key="offline"
        )  # never sent: nothing is called
        self.session = PipelineSession(boto_session=boto, default_bucket=target.bucket)
        self.session._default_bucket = target.bucket  # skips HeadBucket/CreateBucket (SDK notes §2.2)
        self.params = {p.name: sdk_parameter(p.type, p.name, p.default) for p in pipeline.parameters}
        self.refs: dict[tuple[str, str], Any] = {}
        self.steps: dict[str, Any] = {}
        self.property_files: dict[tuple[str, str], Any] = {}

    # --- the walk ------------------------------------------------------------------------------
    def pipeline(self, name: str) -> Any:
        from sagemaker.mlops.workflow.pipeline import Pipeline

        builders = {
            "processing": self._processing,
            "training": self._training,
            "register": self._register,
            "transform": self._transform,
            "fail": self._fail,
        }
        for step_name in self.pdef.order():
            step = self.pdef.step(step_name)
            builders[step.kind](step)
        branch = set()
        top: list[Any] = []
        if self.pdef.condition:
            cond = self.pdef.condition
            branch = {*cond.if_true, *cond.if_false}
        for step_name in self.pdef.order():
            if step_name not in branch:
                top.extend(self._sdk_steps(step_name))
            if self.pdef.condition and step_name == self.pdef.condition.step:
                top.append(self._condition())
        return Pipeline(
            name=name, parameters=list(self.params.values()), steps=top, sagemaker_session=self.session
        )

    def _sdk_steps(self, name: str) -> list[Any]:
        helper = self.steps.get(f"{name}Model") if self.pdef.step(name).kind == "transform" else None
        return [*([helper] if helper is not None else []), self.steps[name]]

    # --- step kinds ----------------------------------------------------------------------------
    def _processing(self, step: Step) -> None:
        from sagemaker.core.processing import Processor
        from sagemaker.core.workflow.properties import PropertyFile
        from sagemaker.mlops.workflow.steps import ProcessingStep

        if self.target.spark_features and step.entrypoint == "pipelines.steps.features":
            from pipelines.sagemaker_spark import spark_step_args

            args = spark_step_args(self, step)
        else:
            processor = Processor(
                role=self.target.role_arn,
                image_uri=self.target.step_image(),
                instance_count=1,
                instance_type=self.params[step.instance_type_param],
                entrypoint=ENTRYPOINT,
                volume_size_in_gb=self.target.volume_gb,
                volume_kms_key=self.target.kms_key_id,
                output_kms_key=self.target.kms_key_id,
                max_runtime_in_seconds=self.target.max_runtime_seconds,
                base_job_name=_job_name(step.name),
                sagemaker_session=self.session,
                env=self._env(step),
            )
            args = processor.run(
                inputs=[*self._processing_inputs(step), self._code_input()],
                outputs=self._processing_outputs(step),
                arguments=[step.entrypoint, *self._adapter_flags(step), "--", *self._arguments(step)],
            )
        files = [PropertyFile(name=n, output_name=o, path=p) for n, o, p in step.property_files]
        for pf in files:
            self.property_files[(step.name, pf.name)] = pf
        sdk = ProcessingStep(
            step.name,
            step_args=args,
            property_files=files,
            cache_config=self._cache(step),
            depends_on=list(step.depends_on) or None,
            retry_policies=retries(step),
        )
        self.steps[step.name] = sdk
        outputs = sdk.properties.ProcessingOutputConfig.Outputs
        for output in step.outputs:
            self.refs[(step.name, output)] = outputs[output].S3Output.S3Uri

    def _training(self, step: Step) -> None:
        from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig, StoppingCondition
        from sagemaker.core.workflow.functions import Join
        from sagemaker.train.model_trainer import ModelTrainer

        trainer = ModelTrainer(
            training_image=self.target.step_image(),
            role=self.target.role_arn,
            sagemaker_session=self.session,
            base_job_name=_job_name(step.name),
            compute=Compute(
                instance_type=self.params[step.instance_type_param],
                instance_count=1,
                volume_size_in_gb=self.target.volume_gb,
                volume_kms_key_id=self.target.kms_key_id,
            ),
            output_data_config=OutputDataConfig(
                s3_output_path=self._output_uri(step.name), kms_key_id=self.target.kms_key_id
            ),
            hyperparameters=dict(zip(*self._argument_pairs(step), strict=True)),
            environment=self._env(step),
            stopping_condition=StoppingCondition(max_runtime_in_seconds=self.target.max_runtime_seconds),
        )
        channels = [InputData(channel_name=i.name, data_source=self._source(i)) for i in step.inputs]
        channels.append(InputData(channel_name="code", data_source=self.code_uri))
        sdk = container_training_step()(
            step.name,
            step_args=trainer.train(input_data_config=channels),
            cache_config=self._cache(step),
            depends_on=list(step.depends_on) or None,
            retry_policies=retries(step),
        )
        sdk.container_arguments = [step.entrypoint]
        self.steps[step.name] = sdk
        props = sdk.properties
        self.refs[(step.name, "model")] = props.ModelArtifacts.S3ModelArtifacts
        self.refs[(step.name, "output")] = Join(
            on="/",
            values=[props.OutputDataConfig.S3OutputPath, props.TrainingJobName, "output", "output.tar.gz"],
        )

    def _register(self, step: Step) -> None:
        from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join
        from sagemaker.mlops.workflow.model_step import ModelStep
        from sagemaker.serve.model_builder import ModelBuilder

        inputs = {i.name: self._source(i) for i in step.inputs}
        args = dict(step.arguments)
        gate_passed = args.get("gate_passed", "true") == "true"
        approval = self._value(args["approval_status"]) if gate_passed else PENDING
        evaluation = inputs["evaluation"]
        builder = ModelBuilder(
            image_uri=self.target.inference_image(),
            role_arn=self.target.role_arn,
            s3_model_data_url=Join(on="/", values=[inputs["model"], "model.tar.gz"]),
            sagemaker_session=self.session,
            env_vars=dict(SERVE_ENV),
            log_level=QUIET,
        )
        run_id = ExecutionVariables.PIPELINE_EXECUTION_ID
        step_args = builder.register(
            model_package_group_name=Join(on="", values=["ordernimbus-", self._value(args["tenant"])]),
            approval_status=approval,
            content_types=CONTENT_TYPES,
            response_types=["application/jsonlines"],
            inference_instances=["ml.m5.large"],
            transform_instances=["ml.m5.xlarge"],
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(
                    content_type="application/json",
                    s3_uri=Join(on="/", values=[evaluation, "evaluation.json"]),
                )
            ),
            customer_metadata_properties={
                "ordernimbus:tenant": self._value(args["tenant"]),
                "ordernimbus:gate_passed": "true" if gate_passed else "false",
                "ordernimbus:created_by": Join(on="", values=["pipeline:", run_id]),
                "ordernimbus:override": "false",
                "ordernimbus:document": Join(on="/", values=[evaluation, "document.json"]),
                "lineage:pipeline_run_id": run_id,
            },
        )
        depends = list(step.depends_on) or None
        self.steps[step.name] = ModelStep(step.name, step_args=step_args, depends_on=depends)

    def _transform(self, step: Step) -> None:
        from sagemaker.core.transformer import Transformer
        from sagemaker.core.workflow.functions import Join
        from sagemaker.mlops.workflow.model_step import ModelStep
        from sagemaker.mlops.workflow.steps import TransformStep
        from sagemaker.serve.model_builder import ModelBuilder

        inputs = {i.name: self._source(i) for i in step.inputs}
        data = next(v for k, v in inputs.items() if k != "model")
        env = {
            **SERVE_ENV,
            "ORDERNIMBUS_HORIZON": self._value("param:Horizon"),
            "ORDERNIMBUS_QUANTILES": self._value("param:Quantiles"),
        }
        model = ModelStep(
            f"{step.name}Model",
            step_args=ModelBuilder(
                image_uri=self.target.inference_image(),
                role_arn=self.target.role_arn,
                s3_model_data_url=inputs["model"],
                sagemaker_session=self.session,
                env_vars=env,
                log_level=QUIET,
            ).build(),
        )
        transformer = Transformer(
            model_name=model.properties.ModelName,
            instance_count=1,
            instance_type=self.params[step.instance_type_param],
            strategy="MultiRecord",
            assemble_with="Line",
            output_path=self._output_uri(step.name, step.outputs[0]),
            output_kms_key=self.target.kms_key_id,
            accept="application/jsonlines",
            max_payload=6,
            base_transform_job_name=_job_name(step.name),
            sagemaker_session=self.session,
            volume_kms_key=self.target.kms_key_id,
        )
        args = transformer.transform(
            data=Join(on="/", values=[data, "part-"]), content_type="application/jsonlines", split_type="Line"
        )
        sdk = TransformStep(
            step.name,
            step_args=args,
            cache_config=self._cache(step),
            depends_on=list(step.depends_on) or None,
            retry_policies=retries(step),
        )
        self.steps[model.name], self.steps[step.name] = model, sdk
        self.refs[(step.name, step.outputs[0])] = sdk.properties.TransformOutput.S3OutputPath

    def _fail(self, step: Step) -> None:
        from sagemaker.mlops.workflow.fail_step import FailStep

        message = dict(step.arguments).get("message", f"{self.pdef.name} stopped at {step.name}")
        self.steps[step.name] = FailStep(step.name, error_message=message)

    def _condition(self) -> Any:
        from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo as AtLeast
        from sagemaker.core.workflow.conditions import ConditionLessThanOrEqualTo as AtMost
        from sagemaker.core.workflow.functions import JsonGet
        from sagemaker.mlops.workflow.condition_step import ConditionStep

        cond = self.pdef.condition
        assert cond is not None
        left = JsonGet(
            step_name=cond.step,
            property_file=self.property_files[(cond.step, cond.property_file)],
            json_path=cond.json_path,
        )
        kind = AtMost if cond.op == "<=" else AtLeast
        return ConditionStep(
            cond.name,
            conditions=[kind(left=left, right=self.params[cond.right_param])],
            if_steps=[s for n in cond.if_true for s in self._sdk_steps(n)],
            else_steps=[s for n in cond.if_false for s in self._sdk_steps(n)],
        )

    # --- pieces --------------------------------------------------------------------------------
    def _value(self, value: str) -> Any:
        """``param:Name`` as a string-valued pipeline variable, or the literal."""
        if not value.startswith("param:"):
            return value
        param = self.params[value[6:]]
        return param if self.pdef.parameter(value[6:]).type == "String" else param.to_string()

    def _argument_pairs(self, step: Step) -> tuple[list[str], list[Any]]:
        return [n for n, _ in step.arguments], [self._value(v) for _, v in step.arguments]

    def _arguments(self, step: Step) -> list[Any]:
        return [x for n, v in step.arguments for x in (f"--{n}", self._value(v))]

    def _source(self, item: Input) -> Any:
        if item.source.startswith("param:"):
            return self.params[item.source[6:]]
        upstream, _, output = item.source.partition("/")
        return self.refs[(upstream, output)]

    def _output_uri(self, step: str, output: str | None = None) -> Any:
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join

        run = ExecutionVariables.PIPELINE_EXECUTION_ID
        parts = [self.target.output_root(), self.params["TenantId"], run, step, *([output] if output else [])]
        return Join(on="/", values=parts)

    def _processing_inputs(self, step: Step) -> list[Any]:
        from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

        return [
            ProcessingInput(
                input_name=i.name,
                s3_input=ProcessingS3Input(
                    s3_uri=self._source(i),
                    local_path=f"/opt/ml/processing/input/{i.name}",
                    s3_data_type="S3Prefix",
                    s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                ),
            )
            for i in step.inputs
        ]

    def _code_input(self) -> Any:
        from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

        return ProcessingInput(
            input_name="code",
            s3_input=ProcessingS3Input(
                s3_uri=self.code_uri,
                local_path="/opt/ml/processing/input/code",
                s3_data_type="S3Prefix",
                s3_input_mode="File",
                s3_data_distribution_type="FullyReplicated",
            ),
        )

    def _processing_outputs(self, step: Step) -> list[Any]:
        from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

        return [
            ProcessingOutput(
                output_name=o,
                s3_output=ProcessingS3Output(
                    s3_uri=self._output_uri(step.name, o),
                    local_path=f"/opt/ml/processing/output/{o}",
                    s3_upload_mode="EndOfJob",
                ),
            )
            for o in step.outputs
        ]

    def _adapter_flags(self, step: Step) -> list[str]:
        """``--pack``/``--document`` for outputs that a registration or a transform consumes as a model."""
        flags: list[str] = []
        for consumer in self.pdef.steps:
            if consumer.kind not in ("register", "transform"):
                continue
            sources = {i.name: i.source for i in consumer.inputs}
            model = sources.get("model", "")
            if model.startswith(f"{step.name}/") and f"--pack={model.split('/', 1)[1]}" not in flags:
                flags.append(f"--pack={model.split('/', 1)[1]}")
            evaluation = sources.get("evaluation", "")
            if evaluation.startswith(f"{step.name}/") and model.startswith(f"{step.name}/"):
                document = f"--document={evaluation.split('/', 1)[1]}:{model.split('/', 1)[1]}"
                if document not in flags:
                    flags.append(document)
        return flags

    def _env(self, step: Step) -> dict[str, str]:
        env = {"PYTHONUNBUFFERED": "1", **({"ORDERNIMBUS_SKIP_PIP": "1"} if self.target.image_uri else {})}
        return env if step.cache else {**env, **dict(self.target.side_effect_env)}

    def _cache(self, step: Step) -> Any:
        from sagemaker.mlops.workflow.steps import CacheConfig

        if not step.cache:
            return None
        return CacheConfig(enable_caching=True, expire_after=self.target.cache_expire_after)


def _job_name(step: str) -> str:
    return f"ordernimbus-{step.lower()}"[:32]
