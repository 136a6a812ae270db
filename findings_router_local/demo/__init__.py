"""`findings-router demo`: the real router, end to end, on a laptop.

Starts moto's server and a local PagerDuty (Events v2) receiver on 127.0.0.1, creates in moto the table, queues and
secrets each environment's stack would create (`findings_router_local.environment`, from infra.contract's definitions,
the same the CDK constructs use), then feeds a bundled day of Security Hub events through SQS to the real router handler,
invoked as Lambda's event source mapping invokes it. Prints, per environment policy, what happened and what the
on-call receiver saw. Everything it starts is stopped before it returns.

* `corpus`: the bundled day and the field scenarios;
* `run`: drives one environment after another (`run_demo`);
* `operator`: how PagerDuty tells the ack receiver what an operator did;
* `report`: what is printed.
"""

from findings_router_local.demo.corpus import load_corpus
from findings_router_local.demo.run import run_demo

__all__ = ["load_corpus", "run_demo"]
