"""A local stand-in for Amazon Inspector and Security Hub, as a PSIRT report asks them (`findings-router cve`).

* `dataset`: a realistic log4shell estate (Inspector findings; their Security Hub ASFF and OCSF copies) and N
  synthetic findings for the bench;
* `filters`: the services' filter semantics for the keys the stand-in implements;
* `server`: the HTTP server (`InspectorStandIn`) on 127.0.0.1, or in-process (`attach`): rest-json
  `ListFindings`, `ListFindingAggregations`, `GetFindingsV2`, `GetFindings`, with faults and a call count.
"""

from findings_router_local.fakes.inspector.dataset import (
    LOG4SHELL,
    LOG4SHELL_2,
    NOW,
    asff_of,
    log4shell_estate,
    ocsf_of,
    synthetic_findings,
)
from findings_router_local.fakes.inspector.filters import FilterProblem
from findings_router_local.fakes.inspector.server import InspectorStandIn

__all__ = [
    "LOG4SHELL",
    "LOG4SHELL_2",
    "NOW",
    "FilterProblem",
    "InspectorStandIn",
    "asff_of",
    "log4shell_estate",
    "ocsf_of",
    "synthetic_findings",
]
