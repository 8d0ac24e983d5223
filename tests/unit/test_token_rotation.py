"""Rotating the token signing key logs nobody out: tokens signed by the previous key stay valid until they
expire, tokens signed by a newer key than a container knows are accepted after one re-read of the secret."""

from datetime import timedelta

import boto3
import pytest

from stratus.adapters.secrets import SecretValue
from stratus.domain.auth import sign_token
from stratus.domain.principal import CallerRefused, CallerResolver, Refusal, SignedToken
from stratus.store.accounts import DynamoAccountRepository
from tests.unit.test_auth import OpenEOLogin

SECRET = "stratus/token-signing-key/test"
FIRST, SECOND, THIRD = "a" * 64, "b" * 64, "c" * 64


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def secret(tables):
    client = boto3.client("secretsmanager", region_name="eu-central-1")
    client.create_secret(Name=SECRET, SecretString=FIRST)
    return client


def alice_token(key: str) -> SignedToken:
    return SignedToken(sign_token(key, "alice", timedelta(minutes=5), tv=0))


@pytest.fixture
def callers_of(secret):
    login = OpenEOLogin()
    assert login.create_user("alice", "correct horse")

    def callers(key: SecretValue) -> CallerResolver:
        return CallerResolver(DynamoAccountRepository(), key, verification_keys=key.verification_keys)

    return callers


def test_before_any_rotation_the_current_key_alone_verifies(secret):
    assert SecretValue(secret, SECRET).verification_keys() == [FIRST]


def test_tokens_of_the_previous_key_stay_valid_and_older_ones_not(secret, callers_of):
    clock = Clock()
    key = SecretValue(secret, SECRET, clock=clock)
    callers = callers_of(key)
    # Given a token signed before the rotation
    before = alice_token(key())
    # When the key is rotated (and this container's read is old enough to be renewed)
    secret.put_secret_value(SecretId=SECRET, SecretString=SECOND)
    clock.now += 301
    # Then new tokens are signed with the new key and both old and new tokens verify
    assert key() == SECOND
    assert callers.resolve(before).user_id == "alice"
    assert callers.resolve(alice_token(key())).user_id == "alice"
    # And after a second rotation the first key's tokens are refused
    secret.put_secret_value(SecretId=SECRET, SecretString=THIRD)
    clock.now += 301
    with pytest.raises(CallerRefused) as refused:
        callers.resolve(before)
    assert refused.value.refusal == Refusal.TOKEN_INVALID


def test_a_token_of_a_key_newer_than_the_container_knows_is_accepted_after_one_reread(secret, callers_of):
    clock = Clock()
    warm = SecretValue(secret, SECRET, clock=clock)
    callers = callers_of(warm)
    assert warm() == FIRST  # this container read the secret before the rotation
    secret.put_secret_value(SecretId=SECRET, SecretString=SECOND)
    clock.now += 31  # past the minimum interval between re-reads, before the regular refresh
    # When a token signed by another container with the new key arrives
    assert callers.resolve(alice_token(SECOND)).user_id == "alice"
    # Then this container now signs with the new key too
    assert warm() == SECOND


def test_tokens_matching_no_key_cause_at_most_one_reread_per_interval(secret, callers_of):
    clock = Clock()
    key = SecretValue(secret, SECRET, clock=clock)
    callers = callers_of(key)
    key()
    reads = []
    real = secret.get_secret_value
    secret.get_secret_value = lambda **kwargs: reads.append(kwargs) or real(**kwargs)
    clock.now += 31
    for _ in range(5):
        with pytest.raises(CallerRefused):
            callers.resolve(alice_token("forged" * 10))
    assert len([r for r in reads if "VersionStage" not in r]) == 1
