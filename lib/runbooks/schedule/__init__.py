"""Scheduled runs: one declaration per schedule, Render cron jobs or a host's cron as the engine, alerts that
reach on-call, and proof that every slot ran (docs/SCHEDULES.md).

- :mod:`cron`: cron expressions over UTC (slots, next runs, latest slot);
- :mod:`catalogue`: the resolved schedules of an environment (notebook metadata + inventory overrides);
- :mod:`claims`: :class:`~runbooks.schedule.claims.SlotClaims`, claiming a slot at most once;
- :mod:`due`: ``run-due`` for a single host, with its catch-up policy;
- :mod:`compliance`: every slot of a period matched to the archive;
- :mod:`blueprint`: the cron-job part of Render's ``render.yaml``;
- :mod:`runbooks.schedule.alerts`: Slack-compatible webhook and PagerDuty Events API v2 notifications.
"""
