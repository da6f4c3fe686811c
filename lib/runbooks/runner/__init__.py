"""The host-side runner: parameter validation, execution, honest status, redaction, the run's record (the kernel
side a notebook calls is :mod:`runbooks.kernel`; the runner never imports it)."""
