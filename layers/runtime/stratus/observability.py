"""The shared logger and tracer, kept out of any handler package so domain and store code can log too."""

from aws_lambda_powertools import Logger, Tracer

logger = Logger(service="stratus")
tracer = Tracer(service="stratus")
