"""Stratus processing engine: evaluates an openEO process graph and writes its results to S3.

Run as `python -m stratus_processing` inside the AWS Batch container (see `runner`).
"""

__version__ = "0.1.0"
