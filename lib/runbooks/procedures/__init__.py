"""Multi-step procedure logic that notebooks drive (backup, restore, flip, rotation); unit-tested here."""
