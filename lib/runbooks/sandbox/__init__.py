"""The sandbox: a local twin of Spectral's hosting, on loopback, that every runbook runs against."""
