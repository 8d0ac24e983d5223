"""The tracer is Powertools' X-Ray tracer only when tracing is on."""

from stratus.observability import PassThroughTracer, tracing_enabled


def test_tracing_is_on_only_in_lambda_and_not_switched_off():
    assert tracing_enabled({"AWS_LAMBDA_FUNCTION_NAME": "api"})
    assert not tracing_enabled({"AWS_LAMBDA_FUNCTION_NAME": "api", "POWERTOOLS_TRACE_DISABLED": "true"})
    assert not tracing_enabled({})


def test_pass_through_tracer_leaves_handlers_unchanged():
    tracer = PassThroughTracer()

    def handler(event, context):
        return event

    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracer.capture_method(handler) is handler
