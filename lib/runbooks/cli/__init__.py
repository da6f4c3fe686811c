"""The ``runbooks`` command line; one module per command group."""
