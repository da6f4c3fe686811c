"""Small emulators of the vendors' HTTP APIs; the vendors' own clients talk to them by base URL."""
