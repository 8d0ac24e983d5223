"""OpenID Connect for the openEO API: an Amazon Cognito user pool with a resource server scope for the API,
a public app client for openEO tools (Web Editor, R client) and a confidential one for machines
(client-credentials grant). The API Lambda verifies their access tokens against the pool's JWKS."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Duration, Fn, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from stratus import resources


@dataclass(frozen=True)
class IdentityProps:
    """Props of `Identity`.

    :param stage: Deployment name, part of the hosted-UI domain prefix (unique per region).
    :param removal_policy: What happens to the user pool (and its accounts) when the stack is deleted.
    :param access_token_validity: Lifetime of access tokens. @default one hour, as basic-auth tokens
    :param email: How the pool sends its mails (invitations, password resets). @default Cognito's own sender
        (50 mails a day, from no-reply@verificationemail.com)
    """

    stage: str
    removal_policy: RemovalPolicy
    access_token_validity: Duration = Duration.seconds(resources.TOKEN_LIFETIME_S)
    email: cognito.UserPoolEmail | None = None


class Identity(Construct):
    """`user_pool`, `public_client`, `machine_client`; `settings()` gives the API's OIDC settings."""

    def __init__(self, scope: Construct, construct_id: str, props: IdentityProps) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=False,  # accounts are made by operators (or the order service)
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            password_policy=cognito.PasswordPolicy(min_length=12, require_symbols=False),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=props.removal_policy,
            deletion_protection=props.removal_policy == RemovalPolicy.RETAIN,
            email=props.email,
        )
        # hosted UI and /oauth2/token; prefixes are global per region, hence the account id
        self.domain = self.user_pool.add_domain("Domain", cognito_domain=cognito.CognitoDomainOptions(
            domain_prefix=Fn.join("-", ["stratus", props.stage, Aws.ACCOUNT_ID])))
        openeo_scope = cognito.ResourceServerScope(scope_name=resources.OIDC_OPENEO_SCOPE,
                                                   scope_description="Use the openEO API")
        server = self.user_pool.add_resource_server(
            "ResourceServer", identifier=resources.OIDC_RESOURCE_SERVER, scopes=[openeo_scope])
        api_scope = cognito.OAuthScope.resource_server(server, openeo_scope)

        self.public_client = self.user_pool.add_client(
            "OpeneoToolsClient",
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),  # PKCE: `resources.OIDC_PUBLIC_CLIENT_GRANTS`
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE, api_scope],
                callback_urls=resources.OIDC_REDIRECT_URLS,
            ),
            access_token_validity=props.access_token_validity,
            prevent_user_existence_errors=True,
        )
        self.machine_client = self.user_pool.add_client(
            "MachineClient",
            generate_secret=True,
            o_auth=cognito.OAuthSettings(flows=cognito.OAuthFlows(client_credentials=True), scopes=[api_scope]),
            access_token_validity=props.access_token_validity,
            prevent_user_existence_errors=True,
        )

    @property
    def issuer(self) -> str:
        """The `iss` of the pool's tokens (the `ProviderURL` attribute lacks the scheme)."""
        return Fn.join("", ["https://cognito-idp.", Aws.REGION, ".", Aws.URL_SUFFIX, "/",
                            self.user_pool.user_pool_id])

    def settings(self) -> dict[str, str]:
        """`Settings` fields of the API function for OpenID Connect."""
        return {
            "oidc_issuer": self.issuer,
            "oidc_client_ids": Fn.join(",", [self.public_client.user_pool_client_id,
                                             self.machine_client.user_pool_client_id]),
            "oidc_default_client_id": self.public_client.user_pool_client_id,
        }
