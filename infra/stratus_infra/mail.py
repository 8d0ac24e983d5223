"""E-mail through Amazon SES (`Mail`): the sender's domain identity with Easy DKIM, and a configuration set every
message is sent with, so bounces and complaints are handled.

Handling: the configuration set puts addresses that bounce or complain on the account's SES suppression list
(SES then drops later messages to them instead of hurting the account's reputation), and publishes bounces,
complaints and rejects to an SNS topic (`publish_feedback_to`, the alarm topic) so an operator sees them.

Two stages can send from one sender: one stage creates the identity (`mailIdentity: create`), the others name it
(`existing`); each stage has its own configuration set (`stratus-<stage>`).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from constructs import Construct

# SES events an operator must see: the address is bad, the recipient complained, or SES refused the message
FEEDBACK_EVENTS = (ses.EmailSendingEvent.BOUNCE, ses.EmailSendingEvent.COMPLAINT, ses.EmailSendingEvent.REJECT)


@dataclass(frozen=True)
class MailProps:
    """Props of `Mail`.

    :param stage: Deployment name, in the configuration set's name.
    :param domain: The sender's domain: the SES identity.
    :param create_identity: Whether this stack creates the identity (else it exists already).
    """

    stage: str
    domain: str
    create_identity: bool


class Mail(Construct):
    """`configuration_set`, `identity` (None when it exists already), `identity_arn` and `configuration_set_arn`."""

    def __init__(self, scope: Construct, construct_id: str, props: MailProps) -> None:
        super().__init__(scope, construct_id)
        self.configuration_set = ses.ConfigurationSet(
            self, "ConfigurationSet", configuration_set_name=f"stratus-{props.stage}",
            suppression_reasons=ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS, reputation_metrics=True,
            tls_policy=ses.ConfigurationSetTlsPolicy.REQUIRE)
        self.identity: ses.EmailIdentity | None = None
        if props.create_identity:
            # Easy DKIM: SES signs with a key it rotates; the three CNAME records are stack outputs
            self.identity = ses.EmailIdentity(self, "DomainIdentity", identity=ses.Identity.domain(props.domain),
                                              dkim_signing=True)
        stack = Stack.of(self)
        self.domain = props.domain
        self.identity_arn = stack.format_arn(service="ses", resource="identity", resource_name=props.domain)
        self.configuration_set_arn = stack.format_arn(
            service="ses", resource="configuration-set",
            resource_name=self.configuration_set.configuration_set_name)

    def publish_feedback_to(self, topic: sns.ITopic) -> None:
        """Bounces, complaints and rejects of this stage's messages go to `topic`."""
        self.configuration_set.add_event_destination(
            "Feedback", destination=ses.EventDestination.sns_topic(topic), events=list(FEEDBACK_EVENTS))
