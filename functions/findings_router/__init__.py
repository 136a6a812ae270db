"""findings-router: AWS Security Hub findings to on-call, per environment."""

__version__ = "0.2.0"  # the one place the version is set: pyproject reads it, the CLI and the stacks' tags report it
