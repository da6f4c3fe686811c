"""State that procedures write and checks read: where backups are and how they are named, the resumable state
of key rotations, the local twin's identity. Below both ``procedures`` and ``checks``, so neither imports the
other for it."""
