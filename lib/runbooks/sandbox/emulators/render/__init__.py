"""Render twin: the public API (env groups, services, env vars, deploys, metrics) and the twin services it runs.

Run: ``python -m runbooks.sandbox.emulators.render --root R --port P``. The twin supervises the four twin
service processes (``runbooks.sandbox.services``): a deploy restarts a service with its current env.
"""
