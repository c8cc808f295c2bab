"""Data: the VPC, the Aurora PostgreSQL Serverless v2 forecast store, RDS Proxy and its secrets.

The subnets are isolated (no NAT, no internet route): Aurora needs none, and the Lambdas reach the
few AWS APIs they call through VPC endpoints, which is cheaper than a NAT gateway per AZ and keeps
tenant data off the internet path. This stack also owns the Lambdas' security group so that every
network rule lives here and no cross-stack reference cycle can form.

Clients connect to the proxy with IAM tokens as ``ordernimbus_app`` (TLS required); the proxy
holds the password secrets. Both secrets rotate single-user: multi-user rotation alternates the
user name, which an IAM-authenticated client with a fixed user name cannot follow.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import EnvConfig
from infra.errors import InfraError
from infra.nag import acknowledge
from infra.stacks.common import aws_env, log_group, removal_policy

DATABASE_NAME = "ordernimbus"
ADMIN_USER = "ordernimbus_admin"
APP_USER = "ordernimbus_app"
POSTGRES_PORT = 5432
VPC_CIDR = "10.40.0.0/16"
ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_16_6
# AWS APIs the Lambdas and the rotation functions call from the isolated subnets.
INTERFACE_ENDPOINTS = {
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "CloudWatch": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
}


class DataStack(Stack):
    """Owns ``vpc``, ``lambda_security_group``, ``cluster``, ``proxy`` and ``app_secret``."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, env=aws_env(config), **kwargs)
        self.config = config
        self.vpc = self._vpc()
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.lambda_security_group = ec2.SecurityGroup(
            self,
            "LambdaSecurityGroup",
            vpc=self.vpc,
            description="OrderNimbus Lambdas: egress to RDS Proxy and VPC endpoints only exists in the VPC",
            allow_all_outbound=True,
        )
        # Closed endpoints: HTTPS only from our Lambdas (and the rotation functions, added by them).
        self.endpoints = {
            name: self.vpc.add_interface_endpoint(
                f"{name}Endpoint", service=service, subnets=isolated, open=False
            )
            for name, service in INTERFACE_ENDPOINTS.items()
        }
        for endpoint in self.endpoints.values():
            endpoint.connections.allow_default_port_from(self.lambda_security_group, "OrderNimbus Lambdas")
        self.secrets_endpoint = self.endpoints["SecretsManager"]
        self.vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3)
        self.cluster = self._cluster(isolated)
        admin_secret = self.cluster.secret
        if admin_secret is None:  # from_generated_secret always creates one; guard the Optional
            raise InfraError("Aurora cluster was created without its admin secret")
        self.app_secret = rds.DatabaseSecret(
            self,
            "AppUserSecret",
            username=APP_USER,
            master_secret=admin_secret,
            secret_name=f"{config.prefix}/aurora/{APP_USER}",
        ).attach(self.cluster)
        self._rotate(isolated)
        self.proxy = self.cluster.add_proxy(
            "Proxy",
            db_proxy_name=f"{config.prefix}-proxy",
            secrets=[admin_secret, self.app_secret],
            vpc=self.vpc,
            vpc_subnets=isolated,
            iam_auth=True,
            require_tls=True,
            debug_logging=False,
        )
        self.proxy.connections.allow_from(
            self.lambda_security_group, ec2.Port.tcp(POSTGRES_PORT), "OrderNimbus Lambdas to RDS Proxy"
        )

    @property
    def availability_zones(self) -> list[str]:
        """The account's first ``max_azs`` zones, resolved by CloudFormation (Fn::GetAZs).

        An environment-bound stack would otherwise look the zones up at synth time (a context
        provider needing credentials); literal names would pin zones that differ per account.
        """
        return [Fn.select(index, Fn.get_azs()) for index in range(self.config.max_azs)]

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL for the app user through the proxy; the password is an IAM auth token."""
        return (
            f"postgresql+psycopg://{APP_USER}@{self.proxy.endpoint}:{POSTGRES_PORT}/{DATABASE_NAME}"
            "?sslmode=require"
        )

    def _vpc(self) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            availability_zones=self.availability_zones,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22
                )
            ],
        )
        vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                log_group(self, "FlowLogs", self.config, f"/ordernimbus/{self.config.name}/vpc-flow-logs")
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        return vpc

    def _cluster(self, isolated: ec2.SubnetSelection) -> rds.DatabaseCluster:
        config = self.config
        cluster_id = f"{config.prefix}-aurora"
        # Created up front so retention is ours, not an unbounded log group made by RDS.
        postgres_logs = log_group(self, "PostgresLogs", config, f"/aws/rds/cluster/{cluster_id}/postgresql")
        cluster = rds.DatabaseCluster(
            self,
            "Aurora",
            cluster_identifier=cluster_id,
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=ENGINE_VERSION),
            credentials=rds.Credentials.from_generated_secret(
                ADMIN_USER, secret_name=f"{config.prefix}/aurora/{ADMIN_USER}"
            ),
            default_database_name=DATABASE_NAME,
            writer=rds.ClusterInstance.serverless_v2("Writer"),
            readers=[rds.ClusterInstance.serverless_v2("Reader", scale_with_writer=True)],
            serverless_v2_min_capacity=config.aurora.min_acu,
            serverless_v2_max_capacity=config.aurora.max_acu,
            vpc=self.vpc,
            vpc_subnets=isolated,
            storage_encrypted=True,
            storage_encryption_key=kms.Key(
                self,
                "DatabaseKey",
                alias=f"alias/{config.prefix}-aurora",
                enable_key_rotation=True,
                removal_policy=removal_policy(config),
            ),
            iam_authentication=True,
            backup=rds.BackupProps(retention=Duration.days(config.backup_retention_days)),
            deletion_protection=config.deletion_protection,
            removal_policy=RemovalPolicy.SNAPSHOT if config.retain_data else RemovalPolicy.DESTROY,
            cloudwatch_logs_exports=["postgresql"],
        )
        cluster.node.add_dependency(postgres_logs)
        cfn_cluster = cluster.node.default_child
        if cfn_cluster is None:  # every L2 cluster has its CfnDBCluster; guard the Optional
            raise InfraError("Aurora cluster has no CfnDBCluster child")
        acknowledge(
            cfn_cluster,
            "AwsSolutions-RDS11",
            "The default PostgreSQL port is kept: the cluster is reachable only from the RDS Proxy "
            "security group in isolated subnets, with TLS and IAM auth; a non-standard port adds no control",
        )
        if not config.deletion_protection:
            acknowledge(
                cfn_cluster,
                "AwsSolutions-RDS10",
                f"Deletion protection is on in prod only; the {config.name} cluster is rebuilt from "
                "migrations and snapshots and must be removable by a stack teardown",
            )
        return cluster

    def _rotate(self, isolated: ec2.SubnetSelection) -> None:
        every = Duration.days(self.config.secret_rotation_days)
        self.cluster.add_rotation_single_user(
            automatically_after=every, vpc_subnets=isolated, endpoint=self.secrets_endpoint
        )
        secretsmanager.SecretRotation(
            self,
            "AppUserRotation",
            application=secretsmanager.SecretRotationApplication.POSTGRES_ROTATION_SINGLE_USER,
            secret=self.app_secret,
            target=self.cluster,
            vpc=self.vpc,
            vpc_subnets=isolated,
            endpoint=self.secrets_endpoint,
            automatically_after=every,
            # The first migration creates ordernimbus_app with this secret's password; rotating
            # before the user exists would fail, so the first rotation waits for the schedule.
            rotate_immediately_on_update=False,
        )
