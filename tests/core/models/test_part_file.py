"""The part file's disk checks: free space asked of the nearest existing folder."""

from __future__ import annotations

from collections import namedtuple

from ghostdesk.core.models.part_file import free_bytes

Usage = namedtuple("Usage", "total used free")


def test_free_space_is_asked_of_the_nearest_folder_that_exists(tmp_path):
    asked = []

    def usage(path):
        asked.append(path)
        return Usage(10, 5, 5)

    assert free_bytes(tmp_path / "models" / "sub", usage) == 5
    assert asked == [tmp_path]


def test_free_space_the_system_cannot_tell_is_none(tmp_path):
    def broken(_path):
        raise OSError("no such device")

    assert free_bytes(tmp_path, broken) is None
