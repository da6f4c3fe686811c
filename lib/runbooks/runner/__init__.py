"""The papermill-based runner: parameter validation, execution, honest status, redaction, locks."""
