"""The twin's runtime services (app, api, ops, worker): one small process each, run by the Render twin.

A service reads its configuration from its environment at start-up (its env group's variables plus its
own), exactly as a Render service does, and exposes ``GET /healthz``: its ``SPECTRAL_GENERATION``, a
fingerprint of each key it holds (never the value), whether its Supabase keys work against the
Supabase twin and whether its Cloudflare token is valid (``GET /user/tokens/verify`` on the Cloudflare twin).
Run: ``python -m runbooks.sandbox.services`` (env: PORT, TWIN_SERVICE_NAME, TWIN_KEY_NAMES).
"""
