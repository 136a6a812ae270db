"""Generic webhooks: a signed JSON body (Standard Webhooks 1.0) for a team's own receiver, and chat presets.

* `payload`: the versioned body of docs/webhook-schema.md (pure);
* `signing`: Standard Webhooks `v1` signatures with `whsec_` secrets (several during a rotation);
* `chat`: the Slack incoming-webhook and Microsoft Teams Workflows (Adaptive Card) bodies;
* `client`: `WebhookNotifier`, which sends any of them through the shared `Retrier`;
* `recording`: `RecordingWebhookNotifier`, its in-memory twin.
"""
