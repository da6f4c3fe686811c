"""The hosting inventory: HOSTING.md's facts as validated, per-environment data."""

from runbooks.inventory.loader import ENVIRONMENTS, InventoryError, load, load_file
from runbooks.inventory.models import (
    Bucket,
    BucketRole,
    Environment,
    Hostname,
    Posture,
    RotatingKey,
    Service,
)

__all__ = [
    "ENVIRONMENTS",
    "Bucket",
    "BucketRole",
    "Environment",
    "Hostname",
    "InventoryError",
    "Posture",
    "RotatingKey",
    "Service",
    "load",
    "load_file",
]
