"""Limits from configuration (`Limits`): reserved concurrency per function, usage plans for the order API's
clients (each client's API key throttled by its plan), and an optional WAF web ACL with a per-IP rate rule.

WAF costs about 5 USD a month per web ACL plus 1 USD per rule (so ~6 USD with the one rate rule) and 0.60 USD
per million requests (us-east-1/eu-central-1 list prices, 2026): off by default (`wafRateLimit: 0`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

# the order-service API's path below the stage (`routers.orders.context.ORDER_PREFIX` without the leading "/")
ORDER_API_PATH = ("api", "v1")
KEYED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")  # every method but the CORS preflight


@dataclass(frozen=True)
class LimitsProps:
    """Props of `Limits`.

    :param stage: Deployment name, in the names of the usage plans and the web ACL.
    :param rest_api: The public REST API (its deployment stage gets the plans and the web ACL).
    :param api_function: The API function (the order API's key-requiring routes proxy to it).
    :param functions: `stratus.resources.FUNCTIONS` key -> function, for reserved concurrency.
    :param reserved_concurrency: Function key -> reserved concurrent executions. @default {}
    :param usage_plans: Plan name -> {rateLimit, burstLimit, quotaPerDay?}. @default {}
    :param order_api_key_required: Whether the order API requires an API key. @default False
    :param waf_rate_limit: Requests per 5 minutes per IP above which WAF blocks; 0: no WAF. @default 0
    """

    stage: str
    rest_api: apigw.RestApi
    api_function: lambda_.IFunction
    functions: Mapping[str, lambda_.Function]
    reserved_concurrency: Mapping[str, int] = field(default_factory=dict)
    usage_plans: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    order_api_key_required: bool = False
    waf_rate_limit: int = 0


class Limits(Construct):
    """`usage_plans` (name -> plan) and `web_acl` (None without WAF)."""

    def __init__(self, scope: Construct, construct_id: str, props: LimitsProps) -> None:
        super().__init__(scope, construct_id)
        for key, executions in sorted(props.reserved_concurrency.items()):
            function = props.functions[key]
            function.node.default_child.reserved_concurrent_executions = executions

        api, stage = props.rest_api, props.rest_api.deployment_stage
        self.usage_plans: dict[str, apigw.UsagePlan] = {}
        for name, plan in sorted(props.usage_plans.items()):
            quota = plan.get("quotaPerDay")
            self.usage_plans[name] = api.add_usage_plan(
                f"UsagePlan{name.title().replace('-', '').replace('_', '')}",
                name=f"stratus-{props.stage}-{name}",
                description=f"Stratus {props.stage}: order API clients of plan {name!r} (assign their API keys)",
                throttle=apigw.ThrottleSettings(rate_limit=plan["rateLimit"], burst_limit=plan["burstLimit"]),
                quota=apigw.QuotaSettings(limit=quota, period=apigw.Period.DAY) if quota else None,
                api_stages=[apigw.UsagePlanPerApiStage(api=api, stage=stage)])
        if props.order_api_key_required:
            self._order_api_requires_key(api, props.api_function)

        self.web_acl: wafv2.CfnWebACL | None = None
        if props.waf_rate_limit:
            self.web_acl = self._web_acl(props.stage, props.waf_rate_limit)
            wafv2.CfnWebACLAssociation(self, "WebAclAssociation", resource_arn=stage.stage_arn,
                                       web_acl_arn=self.web_acl.attr_arn)

    def _order_api_requires_key(self, api: apigw.RestApi, function: lambda_.IFunction) -> None:
        """`/api/v1` and below answer only with an API key (API Gateway picks these routes over the root proxy);
        a usage plan then throttles each key on its own. CORS preflights carry no key: OPTIONS stays open."""
        integration = apigw.LambdaIntegration(function)
        parent: apigw.IResource = api.root
        for part in ORDER_API_PATH:
            parent = apigw.Resource(self, f"Path{part.title()}", parent=parent, path_part=part)
        proxy = apigw.Resource(self, "PathProxy", parent=parent, path_part="{proxy+}")
        for name, resource in (("Root", parent), ("Proxy", proxy)):
            for method in (*KEYED_METHODS, "OPTIONS"):
                apigw.Method(self, f"OrderApi{name}{method.title()}", resource=resource, http_method=method,
                             integration=integration,
                             options=apigw.MethodOptions(api_key_required=method != "OPTIONS"))

    def _web_acl(self, stage: str, limit: int) -> wafv2.CfnWebACL:
        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True)

        return wafv2.CfnWebACL(
            self, "WebAcl", name=f"stratus-{stage}", scope="REGIONAL",
            description=f"Stratus {stage}: blocks a client IP above {limit} requests per 5 minutes",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility(f"stratus-{stage}"),
            rules=[wafv2.CfnWebACL.RuleProperty(
                name="RatePerIp", priority=0, action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=limit, aggregate_key_type="IP", evaluation_window_sec=300)),
                visibility_config=visibility(f"stratus-{stage}-rate-per-ip"))])
