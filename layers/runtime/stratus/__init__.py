"""Stratus shared runtime: the code every Lambda function and the processing container share."""

__version__ = "0.1.0"
