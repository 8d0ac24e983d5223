"""`stratus.aws.LazyClient`: a service built from several adapters creates a client only when a request uses it."""

from stratus import aws


def test_a_lazy_client_is_made_on_first_use_and_is_always_the_current_client():
    aws.reset_clients()
    try:
        lazy = aws.LazyClient("sqs")
        assert aws.client.cache_info().currsize == 0  # standing in costs nothing

        assert lazy.meta.service_model.service_name == "sqs"
        assert aws.client.cache_info().currsize == 1
        assert lazy.meta is aws.client("sqs").meta

        aws.reset_clients()  # e.g. a new endpoint: the stand-in follows
        assert lazy.meta is aws.client("sqs").meta
    finally:
        aws.reset_clients()
