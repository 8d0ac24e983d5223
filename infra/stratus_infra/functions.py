"""A Stratus Lambda function built from a `stratus.resources.FunctionSpec`, and its environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import jsii
from aws_cdk import Duration, IAspect, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from stratus.resources import FunctionSpec
from stratus.settings import ENV
from stratus_infra import access, constants


def settings_environment(**values: str) -> dict[str, str]:
    """Environment variables for the runtime's `Settings`, given by `Settings` field name.

    The variable names come from `stratus.settings.ENV`, so they are never retyped; an unknown field name
    fails the synth.
    """
    unknown = sorted(set(values) - set(ENV))
    if unknown:
        raise KeyError(f"not fields of stratus.settings.Settings: {unknown}")
    return {ENV[name]: value for name, value in values.items()}


@dataclass(frozen=True)
class FunctionRuntime:
    """What every Stratus Lambda function shares.

    :param layer: The runtime layer (`RuntimeLayer.layer`).
    :param extra_layers: Further layers by the names `FunctionSpec.layers` use ("catalogue"). @default {}
    :param environment: Environment variables of every function (`settings_environment(...)` output);
        a function's own variables are added on top. @default {}
    :param log_level: Powertools log level (`POWERTOOLS_LOG_LEVEL`). @default "INFO"
    :param log_retention: Retention of each function's log group. @default one month
    :param log_removal_policy: What happens to the log groups when the stack is deleted. @default DESTROY
    """

    layer: lambda_.ILayerVersion
    environment: Mapping[str, str] = field(default_factory=dict)
    extra_layers: Mapping[str, lambda_.ILayerVersion] = field(default_factory=dict)
    log_level: str = "INFO"
    log_retention: logs.RetentionDays = constants.DEFAULT_LOG_RETENTION
    log_removal_policy: RemovalPolicy = RemovalPolicy.DESTROY


class StratusFunction(lambda_.Function):
    """A Python Lambda function of `spec` with the runtime layer, active tracing and its own log group,
    allowed exactly what `spec.access` declares (found in `targets`) and told where those things are."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        runtime: FunctionRuntime,
        targets: access.Targets,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        log_group = logs.LogGroup(
            scope,
            f"{construct_id}Logs",
            retention=runtime.log_retention,
            removal_policy=runtime.log_removal_policy,
        )
        super().__init__(
            scope,
            construct_id,
            description=spec.description,
            runtime=constants.LAMBDA_RUNTIME,
            architecture=constants.LAMBDA_ARCHITECTURE,
            code=lambda_.Code.from_asset(
                str(constants.REPO_ROOT / spec.code_dir), exclude=list(constants.FUNCTION_ASSET_EXCLUDE)
            ),
            handler=spec.handler,
            timeout=Duration.seconds(spec.timeout_s),
            memory_size=spec.memory_mb,
            layers=[runtime.layer, *(runtime.extra_layers[name] for name in spec.layers)],
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment={
                **runtime.environment,
                constants.LOG_LEVEL_ENV: runtime.log_level,
                **settings_environment(**access.environment(spec.access, targets)),
                **(environment or {}),
            },
        )
        self.spec = spec
        access.grant(self, spec.access, targets)


@jsii.implements(IAspect)
class TracingOff:
    """Switches X-Ray tracing off (`stratus:tracing` false) on every function, API stage and state machine, and
    tells the functions (`POWERTOOLS_TRACE_DISABLED`): they then skip the X-Ray SDK at start
    (`stratus.observability`). An aspect, so constructs need no tracing prop of their own."""

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, lambda_.CfnFunction):
            node.tracing_config = lambda_.CfnFunction.TracingConfigProperty(mode="PassThrough")
            node.add_property_override(f"Environment.Variables.{constants.TRACE_DISABLED_ENV}", "true")
        elif isinstance(node, apigw.CfnStage):
            node.tracing_enabled = False
        elif isinstance(node, sfn.CfnStateMachine):
            node.tracing_configuration = sfn.CfnStateMachine.TracingConfigurationProperty(enabled=False)
