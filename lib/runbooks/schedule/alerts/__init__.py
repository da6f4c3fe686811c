"""Alerts of scheduled runs: what a notification says (:mod:`message`), its two wire formats (:mod:`formats`:
Slack-compatible incoming webhook, PagerDuty Events API v2), delivery with retries (:mod:`delivery`), open
incidents (:mod:`incidents`) and the decisions after a run or a missed slot (:mod:`notify`)."""
