"""Jira Service Management (JSM) Ops: alerts through the integration-events API (`GenieKey` API key).

* `alerts`: the request of each notification (pure): create with alias = incident key, priority P1–P5, close by alias;
* `client`: `JsmNotifier`, which sends them through the shared `Retrier`;
* `recording`: `RecordingJsmNotifier`, its in-memory twin.
"""
