"""AWS Batch on Fargate: the network, compute environment, job queue and job definition of the processing container.

Network: a VPC with public subnets only and **no NAT gateway** (a NAT gateway costs ~32 USD/month per AZ even when
no job runs). Fargate tasks get a public IP (`assign_public_ip`) so they can reach ECR, CloudWatch Logs and SQS over
the internet gateway; their security group allows no inbound traffic, so the public IP only serves egress. S3 traffic
(the bulk of it: input data and results) goes through a free S3 gateway endpoint instead of the internet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stratus import resources
from stratus_infra import access, constants
from stratus_infra.functions import settings_environment


@dataclass(frozen=True)
class ProcessingProps:
    """Props of `Processing`.

    :param targets: What the jobs (`resources.PROCESSING_ACCESS`) and the synchronous function
        (`resources.FUNCTIONS["sync_processing"].access`) touch: buckets and event queues.
    :param environment: Container environment (`settings_environment(...)` output). @default {}
    :param spot: Use Fargate Spot capacity (about 70% cheaper; an interrupted job is retried, see
        `infrastructure_retries`).
        @default False
    :param max_vcpus: vCPUs the compute environment runs at once. @default 16
    :param vcpu: vCPUs per job. @default `resources.PROCESSING_VCPU`
    :param memory_mb: Memory per job in MiB (must be a Fargate combination with `vcpu`).
        @default `resources.PROCESSING_MEMORY_MB`
    :param timeout_s: Seconds after which Batch kills a running job. @default `resources.PROCESSING_TIMEOUT_S`
    :param command: Container command. @default `resources.PROCESSING_COMMAND`
    :param build_context: Docker build context of the image. @default the repository root
    :param dockerfile: Dockerfile path relative to `build_context`. @default `resources.PROCESSING_DOCKERFILE`
    :param image_exclude: Paths of the build context the image build must not see.
        @default `constants.PROCESSING_IMAGE_EXCLUDE`
    :param ephemeral_storage_gib: Task scratch space in GiB (21-200), or None for Fargate's 20 GiB. @default None
    :param log_retention: Retention of the jobs' log group. @default one month
    """

    targets: access.Targets
    environment: Mapping[str, str] = field(default_factory=dict)
    spot: bool = False
    max_vcpus: int = constants.BATCH_MAX_VCPUS
    vcpu: float = resources.PROCESSING_VCPU
    memory_mb: int = resources.PROCESSING_MEMORY_MB
    timeout_s: int = resources.PROCESSING_TIMEOUT_S
    command: Sequence[str] = tuple(resources.PROCESSING_COMMAND)
    build_context: Path = constants.REPO_ROOT
    dockerfile: str = resources.PROCESSING_DOCKERFILE
    image_exclude: Sequence[str] = constants.PROCESSING_IMAGE_EXCLUDE
    ephemeral_storage_gib: int | None = None
    log_retention: logs.RetentionDays = constants.DEFAULT_LOG_RETENTION


class Processing(Construct):
    """`vpc`, `compute_environment`, `job_queue`, `job_definition`, `job_role`, `results_roles` (by
    `resources.RESULTS_ROLES` key), `log_group`, `sync_function` and `plan_function`."""

    def __init__(self, scope: Construct, construct_id: str, props: ProcessingProps) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=constants.VPC_MAX_AZS,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)
            ],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
        )
        security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="Stratus processing tasks: no inbound traffic, outbound to AWS APIs",
            allow_all_outbound=True,
        )
        self.compute_environment = batch.FargateComputeEnvironment(
            self,
            "ComputeEnvironment",
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[security_group],
            spot=props.spot,
            maxv_cpus=props.max_vcpus,
        )
        self.job_queue = batch.JobQueue(
            self,
            "JobQueue",
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.compute_environment, order=1)
            ],
            priority=1,
        )

        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Stratus processing job: reads input data, sends status and log events, assumes its results "
                        "role for the run's folder",
        )
        # The results bucket only through a results role, assumed per run with a session policy naming the run's
        # folder (`stratus_processing.run_credentials`, docs/operations.md §5); each role trusts one principal.
        sync_role = iam.Role(self, "SyncProcessingRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                                 "service-role/AWSLambdaBasicExecutionRole")])
        self.results_roles = {
            "job_results": self._results_role("JobResultsRole", "job_results", self.job_role, props,
                                              "Stratus processing job: a run's session reads/writes its own folder"),
            "sync_results": self._results_role("SyncResultsRole", "sync_results", sync_role, props,
                                               "Stratus synchronous processing: a request's session reads/writes "
                                               "its own folder"),
        }
        targets = props.targets.with_(roles=self.results_roles)
        access.grant(self.job_role, resources.PROCESSING_ACCESS, targets)

        self.log_group = logs.LogGroup(
            self, "JobLogs", retention=props.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        image = ecs.ContainerImage.from_asset(
            str(props.build_context),
            file=props.dockerfile,
            exclude=list(props.image_exclude),
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        container = batch.EcsFargateContainerDefinition(
            self,
            "Container",
            image=image,
            cpu=props.vcpu,
            memory=Size.mebibytes(props.memory_mb),
            command=list(props.command),
            environment={**props.environment,
                         **settings_environment(**access.environment(resources.PROCESSING_ACCESS, targets))},
            job_role=self.job_role,
            assign_public_ip=True,  # no NAT gateway: see the module docstring
            fargate_cpu_architecture=ecs.CpuArchitecture.X86_64,
            fargate_operating_system_family=ecs.OperatingSystemFamily.LINUX,
            fargate_platform_version=ecs.FargatePlatformVersion.LATEST,
            ephemeral_storage_size=Size.gibibytes(props.ephemeral_storage_gib) if props.ephemeral_storage_gib else None,
            logging=ecs.LogDriver.aws_logs(stream_prefix="processing", log_group=self.log_group),
        )
        self.job_definition = batch.EcsJobDefinition(
            self,
            "JobDefinition",
            container=container,
            timeout=Duration.seconds(props.timeout_s),
            retry_attempts=constants.BATCH_RETRY_ATTEMPTS,
            retry_strategies=infrastructure_retries(),
            propagate_tags=True,
        )

        # The same image answers synchronous requests (POST /result) as a Lambda function, and plans runs
        # (PlanRun: the engine plans the loads, so the tiles are windows of the grid they compute on): same
        # code, same asset (CDK builds it once), started through the Lambda runtime interface client.
        self.sync_function = self._image_function(props, targets, "sync_processing", "SyncLogs", role=sync_role)
        self.plan_function = self._image_function(props, targets, "plan_run", "PlanRunLogs")

    def _results_role(self, construct_id: str, key: str, trusted: iam.IRole, props: ProcessingProps,
                      description: str) -> iam.Role:
        role = iam.Role(self, construct_id, assumed_by=trusted, description=description,
                        max_session_duration=Duration.hours(1))  # role chaining allows no more
        access.grant(role, resources.RESULTS_ROLES[key], props.targets)
        return role

    def _image_function(self, props: ProcessingProps, targets: access.Targets, key: str, log_group_id: str,
                        role: iam.IRole | None = None) -> lambda_.DockerImageFunction:
        spec = resources.FUNCTIONS[key]
        function = lambda_.DockerImageFunction(
            self,
            spec.logical_name,
            role=role,
            description=spec.description,
            code=lambda_.DockerImageCode.from_image_asset(
                str(props.build_context),
                file=props.dockerfile,
                exclude=list(props.image_exclude),
                platform=ecr_assets.Platform.LINUX_AMD64,
                entrypoint=["python", "-m", "awslambdaric"],
                cmd=[spec.handler],
            ),
            architecture=lambda_.Architecture.X86_64,
            timeout=Duration.seconds(spec.timeout_s),
            memory_size=spec.memory_mb,
            environment={**props.environment, **settings_environment(**access.environment(spec.access, targets))},
            tracing=lambda_.Tracing.ACTIVE,
            log_group=logs.LogGroup(
                self, log_group_id, retention=props.log_retention, removal_policy=RemovalPolicy.DESTROY
            ),
        )
        access.grant(function, spec.access, targets)
        return function


def infrastructure_retries() -> list[batch.RetryStrategy]:
    """Retry a job whose host went away (EC2 host, Spot reclaim) or whose image could not be pulled; exit on
    anything else (Batch evaluates the conditions in order, the first match decides)."""
    retry = [batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.custom(on_status_reason=pattern))
             for pattern in constants.BATCH_RETRY_ON_STATUS_REASONS]
    retry += [batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.custom(on_reason=pattern))
              for pattern in constants.BATCH_RETRY_ON_REASONS]
    return [*retry, batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_reason="*"))]
