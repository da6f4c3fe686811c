"""Supabase twin: the Management API (backups/PITR, API keys, JWT signing keys) and the project's auth.

``app.create_app`` assembles one FastAPI app from the router modules of this package; each module owns
one area of the API and may define ``router`` (an APIRouter) and ``on_startup(ctx)``.
"""
