"""bench/psirt.py runs end to end (in-process here: unit tests open no socket) and reports what docs/psirt.md
quotes. No timing assertion: the API call count is behaviour, the seconds are only figures."""

from __future__ import annotations

import json

from bench import psirt
from bench.__main__ import BENCHES


def test_the_psirt_bench_counts_pages_of_25_and_confirms_every_row():
    result = psirt.run(120, transport="in-process")
    assert result.name == "psirt_cve" and "psirt" in BENCHES
    details = result.details
    assert details["rows"] == details["confirmed_by_security_hub"] == 120
    # 120 findings: 5 pages of 25 on vulnerabilityId, 1 empty relatedVulnerabilities page; 2 pages of 100 in v2
    assert details["api_calls"] == {"inspector2:ListFindings": 5 + 1, "securityhub:GetFindingsV2": 2}
    assert details["client_counted_calls"] == details["api_calls_total"] == 8
    assert details["exit_status"] == 1 and details["table_lines"] >= 120
    assert (
        result.figure.startswith("120 findings: ") and "8 API calls (6 ListFindings + 2 GetFindingsV2)" in result.figure
    )
    json.dumps(result.to_dict())
