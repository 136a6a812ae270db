#!/usr/bin/env python3
"""CDK entry point: `cdk deploy -c env=prod` deploys config/prod.yaml's stack, FindingsRouter-prod.

Without `-c env=...` every environment in config/ is synthesized. See docs/deploy.md.
"""

import sys

from aws_cdk import App

from findings_router.settings.load import PolicyError
from infra.app import UnknownEnvironmentError, build_from_context
from infra.stack import InvalidDeploymentSettingsError

app = App()
try:
    build_from_context(app)
except (PolicyError, UnknownEnvironmentError, InvalidDeploymentSettingsError) as error:
    # The message names the file, line and field; a traceback would only bury it.
    sys.exit(f"findings-router: {error}")
app.synth()
