"""LocalStack plugins for `make e2e` (docs/e2e.md): installed into .cache/e2e/localstack-venv, never into .venv.

* `executor`: the Lambda runtime executor `local` (LAMBDA_RUNTIME_EXECUTOR=local): each execution environment is a
  local process running `rie.py` with the runtime's Python; no Docker.
* `securityhub`: a Security Hub provider (localstack-core has none): custom actions (action targets), and
  BatchUpdateFindings(V2) and BatchImportFindings recorded, with the events Security Hub would emit;
* `actiontarget`: the CloudFormation resource AWS::SecurityHub::ActionTarget, created in that provider.

Both use LocalStack internals that are stable only because localstack-core is pinned.
"""
