"""Local stand-ins for the services findings-router talks to, served on 127.0.0.1 (see `fakes.pagerduty`)."""
