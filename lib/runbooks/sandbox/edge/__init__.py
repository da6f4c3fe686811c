"""The twin's edge: one process serving the Cloudflare API emulator, the authoritative DNS server and
the HTTPS endpoints of the hostnames, over one shared in-memory world (``python -m runbooks.sandbox.edge``).
"""
