"""The baseline stack's custom resources (infra/baseline/, docs/baseline.md): adopt what an account has already
enabled (GuardDuty, Security Hub, Config, CloudTrail), enable Inspector (no CloudFormation resource exists), and the
preflight that turns "already exists" into a clear message before CloudFormation creates anything.

Each handler is a plain function of the request and a boto3 client (tested with botocore's Stubber); `resource.py`
speaks CloudFormation's custom resource protocol around it.
"""
