"""Supabase twin: the Management API (project, backups/PITR, API keys, JWT signing keys, posture settings) and
the project's API (REST root, auth).

Split as moto splits a service: the state models (``models.SupabaseBackend`` and the area models it composes)
hold the behaviour; the router modules only translate HTTP; ``app.create_app`` assembles them.
"""
