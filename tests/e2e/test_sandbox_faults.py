"""The healthy twin has none of the S3 faults' misconfigurations (each probe, run on a twin with its fault, passes:
tests/e2e/test_fault_catalogue.py runs it there after the catching runbook)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from twin_probes import S3_PROBES

from runbooks.sandbox.fixture import Sandbox

pytestmark = pytest.mark.sandbox

#: on the healthy twin, the operation IAM refuses in a case, and how (the other cases fail an assertion)
REFUSED_ON_HEALTHY_TWIN: dict[str, tuple[str, str]] = {
    "runtime-reads-backups": ("GetObject", "AccessDenied"),
    "writer-can-delete-backups": ("DeleteObject", "AccessDenied"),
}


@pytest.mark.parametrize("fault", sorted(S3_PROBES))
def test_healthy_twin_does_not_have_the_misconfiguration(fault: str, sandbox: Sandbox) -> None:
    if fault in REFUSED_ON_HEALTHY_TWIN:  # refused by IAM, not by broken credentials or a missing bucket
        with pytest.raises(ClientError) as err:
            S3_PROBES[fault](sandbox)
        refused = (err.value.operation_name, err.value.response["Error"]["Code"])
        assert refused == REFUSED_ON_HEALTHY_TWIN[fault]
    else:
        with pytest.raises(AssertionError):
            S3_PROBES[fault](sandbox)
