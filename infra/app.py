#!/usr/bin/env python3
"""CDK entry point (`cdk.json`: `.venv/bin/python infra/app.py`): read context once, build the stack, synthesize."""

import aws_cdk as cdk

from stratus_infra.config import StratusConfig
from stratus_infra.stack import build

app = cdk.App()
build(app, StratusConfig.from_context(app.node))
app.synth()
