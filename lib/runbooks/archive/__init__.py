"""The audit archive: run directories, the hash-chained ledger, the query index and verification."""
