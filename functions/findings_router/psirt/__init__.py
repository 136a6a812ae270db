"""PSIRT: which resources are affected by a CVE (`findings-router cve`) and what is new (the scheduled digest).

* `model`: `AffectedResource`, one row (a resource × package × CVE), whose fields are the json/csv columns;
* `inspector`: Amazon Inspector `ListFindings` queries (`filter_criteria`, `cve_queries`, `digest_queries`), paging
  (`iter_findings`, `fetch_affected`) and findings → rows (`affected_from_inspector`);
* `securityhub`: Security Hub `GetFindingsV2` (OCSF, CVE filter) and `GetFindings` (ASFF, title prefix then
  confirmed in code): requests and parsers;
* `report`: merge across sources, sort, `Summary`, `apply_since`, and the digest (`group_by_cve`, `digest_csv`,
  `digest_text`);
* `sweep`: the orchestration over Regions and sources, with botocore's retries and one-line errors.

Everything but `sweep` is pure (no SDK import, no clock). Nothing here imports findings_router_local: the digest
Lambda uses it with Lambda's boto3.
"""
