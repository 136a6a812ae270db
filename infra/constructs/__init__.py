"""The stack's CDK constructs, one concern each, composed by infra/stack.py.

They take narrow settings (`FunctionSpec`, `QueueSettings`, `AlarmSettings`, …) that the stack computes from the
environment's `Policy`, rather than the policy itself. Each keeps the construct id and parent it always had: CDK
derives every logical id from the construct path, and the deployed resources must not be replaced.

(`from constructs import Construct` inside this package is the `constructs` library, not this package: imports are
absolute.)
"""
