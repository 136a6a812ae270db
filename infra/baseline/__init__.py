"""The baseline stack, `FindingsBaseline-<env>`: the environment's security services as code (config/<env>.yaml
`baseline:`, docs/baseline.md). One small construct per service; `stack.py` composes them."""
