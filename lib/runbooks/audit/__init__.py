"""The audit site: a static site built from the archive for auditors (``runbooks audit site``)."""
