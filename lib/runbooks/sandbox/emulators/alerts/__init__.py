"""The alert receivers of the twin: a Slack-compatible incoming webhook and the PagerDuty Events API v2."""
