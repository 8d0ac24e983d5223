"""cdk-nag's AwsSolutions and Serverless packs over a stack, with every finding Stratus accepts and why.

`tests/infra` runs `check` on every synth: an unaccepted finding is an error annotation, which fails the synth
(`@aws-cdk/core:annotationsInValidationReport`). IAM wildcards are accepted only for the patterns listed here
(`applies_to`), so a new wildcard fails until it is reasoned about. cdk-nag is a development dependency:
`infra/app.py` does not import this module, deploying does not need it.
"""

from __future__ import annotations

from aws_cdk import Aspects, Stack
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions, RegexAppliesTo, ServerlessChecks


def _regex(pattern: str) -> RegexAppliesTo:
    return RegexAppliesTo(regex=f"/{pattern}/")


# IAM wildcards (AwsSolutions-IAM5), each a pattern of what `stratus_infra.access` grants on purpose
_WILDCARDS = (
    ("Resource::*", "Actions AWS offers no resource-level permission for: X-Ray PutTraceSegments/"
                    "PutTelemetryRecords/GetSampling*, CloudWatch Logs vended delivery (state machine logging), "
                    "batch:DescribeJobs, ecr:GetAuthorizationToken; tests/infra/test_synth.py pins the list"),
    (_regex(r"^Action::s3:(List|GetObject|GetBucket|Abort|DeleteObject)\*$"),
     "The action groups of CDK's grant_read/grant_put/grant_delete, always on one bucket and one key prefix"),
    (_regex(r"^Resource::<Storage\w+\.Arn>/.*\*$"),
     "Object key prefixes of stratus.catalog_layout (jobs/, sync/, users/, config/, cache/...): each role gets "
     "only the prefixes its Access declares (tests/infra/test_access.py)"),
    (_regex(r"^Resource::<Tables\w+\.Arn>/index/\*$"), "The secondary indexes of Stratus' own tables"),
    (_regex(r"^Resource::<\w+\.Arn>:\*$"), "Versions and aliases of a Stratus function it may invoke"),
    (_regex(r"^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:.*:\*$"),
     "Executions of the job state machine (execution names are job run ids)"),
    (_regex(r"^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:mapRun:.*/\*$"),
     "Map runs of the job state machine's own Distributed Map (their ids are made by Step Functions)"),
    (_regex(r"^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:.*/\*$"),
     "Child executions of the job state machine's Distributed Map (one per tile; names made by Step Functions)"),
    (_regex(r"^Resource::arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:job/\*$"),
     "batch:TerminateJob and batch:TagResource: job ids are random and Batch job ARNs hold no queue; both are "
     "conditioned on the stage's tag (stratus:stage), which the state machine sets at SubmitJob"),
    (_regex(r"^Resource::<Portal\w+\.Arn>/\*$"),
     "CDK's BucketDeployment replaces the portal's built files in the portal's own bucket"),
    (_regex(r"^Resource::arn:<AWS::Partition>:s3:::cdk-[a-z0-9]+-assets-<AWS::AccountId>-<AWS::Region>/\*$"),
     "CDK's BucketDeployment reads the built portal from the CDK bootstrap's assets bucket"),
    (_regex(r"^Resource::arn:<AWS::Partition>:s3:::[a-z0-9.-]+/\*$"),
     "Read-only access to the assets of configured collection sources (infra/collections/*.json)"),
)

_ACCEPTED = (
    ("AwsSolutions-IAM4", "AWS-managed policies CDK attaches: AWSLambdaBasicExecutionRole (log writes only) and "
                          "API Gateway's account-level AmazonAPIGatewayPushToCloudWatchLogs role",
     ["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
      "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"]),
    ("AwsSolutions-L1", "Stratus' functions run the newest Python runtime (constants.LAMBDA_RUNTIME); CDK's own "
                        "custom-resource handlers (deploy-time calls) run the runtime CDK chooses", None),
    ("Serverless-LambdaLatestVersion", "Only CDK's own custom-resource handlers (deploy-time calls) run an older "
                                       "runtime; Stratus' functions run constants.LAMBDA_RUNTIME", None),
    ("AwsSolutions-APIG2", "Every request reaches the API function, which validates bodies and parameters and "
                           "answers in the API's own error format (openEO, order service)", None),
    ("AwsSolutions-APIG4", "The API function authorizes each request itself: openEO basic-auth tokens, Cognito "
                           "OIDC access tokens and order-service tokens; public routes (capabilities, "
                           "collections) need none", None),
    ("AwsSolutions-COG4", "As AwsSolutions-APIG4: Cognito access tokens are verified by the API function against "
                          "the pool's JWKS, next to the other credentials it accepts", None),
    ("AwsSolutions-APIG6", "Access logs are on (JSON, every request); execution logs would copy request bodies "
                           "(credentials, process graphs) into CloudWatch", None),
    ("AwsSolutions-APIG3", "WAF is optional (`wafRateLimit`, ~6 USD a month); API Gateway throttling and usage "
                           "plans limit clients without it", None),
    ("AwsSolutions-COG1", "Passwords need 12 characters without symbol rules (NIST SP 800-63B: length over "
                          "composition)", None),
    ("AwsSolutions-COG2", "MFA (TOTP) is optional: machine clients use the client-credentials grant, openEO "
                          "tools and users choose", None),
    ("AwsSolutions-COG8", "Cognito's Plus feature plan (threat protection) is billed per user; off by default",
     None),
    ("AwsSolutions-SMG4", "The token key is rotated by the operator (docs/operations.md): the API verifies tokens "
                          "of the current and the previous key, so a rotation logs nobody out", None),
    ("AwsSolutions-CFR3", "The portal's distribution serves static files; its API calls are logged by API Gateway. "
                          "CloudFront standard logs need an ACL-enabled bucket, which the stage's log bucket "
                          "(bucket-owner-enforced) is not", None),
    ("AwsSolutions-CFR1", "The portal is for customers wherever they are; the order API decides who may order",
     None),
    ("AwsSolutions-CFR2", "As AwsSolutions-APIG3: WAF is optional (`wafRateLimit`); the portal serves static files",
     None),
    ("AwsSolutions-CFR4", "The distribution asks for TLS 1.2 (TLS_V1_2_2021); it applies with a custom domain's "
                          "certificate, CloudFront's default *.cloudfront.net certificate cannot be restricted",
     None),
    ("AwsSolutions-SF1", "The state machine logs errors; `logLevel: DEBUG` logs all events (cost)", None),
    ("AwsSolutions-VPC7", "The VPC only gives Batch tasks outbound access (no inbound rules, no NAT); flow logs "
                          "would cost more than the processing logs they add to", None),
    ("Serverless-LambdaDLQ", "No function is invoked asynchronously by users: queue consumers have their queue's "
                             "DLQ, the API and PrepareJob are synchronous, scheduled functions run again on "
                             "schedule", None),
    ("Serverless-EventBusDLQ", "The schedule rules (reaper, collections refresh) run again on their next tick", None),
    ("Serverless-LambdaEventSourceMappingDestination", "SQS event sources have no on-failure destination: a "
                                                       "failed record returns to its queue and parks in the "
                                                       "queue's DLQ (alarmed)", None),
    ("Serverless-SQSRedrivePolicy", "Only the dead-letter queues have no redrive policy: they are the end", None),
    ("Serverless-LambdaDefaultMemorySize", "CDK's custom-resource handlers (one-off deploy-time calls)", None),
    ("Serverless-LambdaTracing", "CDK's custom-resource handlers; Stratus' functions trace unless `tracing` is "
                                 "off", None),
    ("Serverless-SNSRedrivePolicy", "The alarm topic's e-mail subscription: an alarm that cannot be mailed stays "
                                    "in the alarm's state and history, and SNS retries e-mail delivery itself",
     None),
)
# accepted only when the stage's configuration turns tracing off (`tracing: false`: cold start, X-Ray charges)
_TRACING_OFF = ("AwsSolutions-SF2", "Serverless-StepFunctionStateMachineXray", "Serverless-APIGWXrayEnabled")


def check(stack: Stack) -> None:
    """Add the AwsSolutions and Serverless packs to `stack` with the accepted findings; call before synthesis."""
    Aspects.of(stack).add(AwsSolutionsChecks())
    Aspects.of(stack).add(ServerlessChecks())
    suppressions = [NagPackSuppression(id="AwsSolutions-IAM5", reason=reason, applies_to=[pattern])
                    for pattern, reason in _WILDCARDS]
    suppressions += [NagPackSuppression(id=rule, reason=reason, applies_to=applies_to)
                     for rule, reason, applies_to in _ACCEPTED]
    config = getattr(stack, "config", None)
    if config is not None and not config.tracing:
        suppressions += [NagPackSuppression(id=rule, reason="The stage's configuration turns X-Ray tracing off "
                                                             "(`tracing: false`: faster cold starts, no X-Ray cost)")
                         for rule in _TRACING_OFF]
    NagSuppressions.add_stack_suppressions(stack, suppressions)
