"""The twin's PostgreSQL, by concern: the server's programs and template (``install``), one twin's cluster
and server process (``cluster``), seeding (``seed``), base backups and point-in-time recovery (``pitr``).
The component that runs it is :mod:`runbooks.sandbox.components.postgres`."""
