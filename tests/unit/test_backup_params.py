"""nightly-backup's settings: refused (BadParameter naming the runbook's parameter) before anything runs."""

from __future__ import annotations

import pytest

from runbooks.errors import BadParameter, Refused
from runbooks.procedures import backup
from runbooks.providers.s3 import MIN_PART_SIZE


@pytest.mark.parametrize(("mib", "expected"), [(5, MIN_PART_SIZE), (8, 8 << 20), (512, 512 << 20)])
def test_part_size_in_range_is_converted_to_bytes(mib: int, expected: int) -> None:
    assert backup.part_size_bytes(mib) == expected


@pytest.mark.parametrize(
    ("mib", "needle"),
    [(1, "below S3's minimum part size of 5 MiB"), (0, "below"), (-3, "below"), (513, "above 512 MiB")],
)
def test_part_size_out_of_range_names_part_size_mib(mib: int, needle: str) -> None:
    with pytest.raises(BadParameter, match=needle) as e:
        backup.part_size_bytes(mib)
    assert isinstance(e.value, Refused) and e.value.name == "part_size_mib" and e.value.value == mib
    assert str(e.value).startswith("part_size_mib (value not shown): ") and "-p part_size_mib=8" in str(e.value)
    assert "bytes" not in str(e.value)  # the runbook speaks MiB, not the S3 layer's bytes


@pytest.mark.parametrize("level", [1, 3, 19, 22])
def test_zstd_levels_accepted(level: int) -> None:
    assert backup.check_zstd_level(level) == level


@pytest.mark.parametrize("level", [0, -1, 23, 100])
def test_zstd_level_out_of_range_is_refused(level: int) -> None:
    with pytest.raises(BadParameter, match="not a zstd compression level") as e:
        backup.check_zstd_level(level)
    assert e.value.name == "zstd_level" and "-p zstd_level=3" in e.value.fix
