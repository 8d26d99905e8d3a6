"""Atomic writes leave either the old file or the complete new one."""
import json

import pytest

from tagvis_lib.errors import DataFormatError
from tagvis_lib.utils.atomic import atomic_open, write_json


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as fh:
            fh.write('{"half": ')
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_write_json_creates_parents(tmp_path):
    write_json(tmp_path / "a" / "b.json", [1, 2])
    assert json.loads((tmp_path / "a" / "b.json").read_text()) == [1, 2]


def test_data_format_error_names_file_and_field():
    err = DataFormatError("/x/train.json", "annotations[3].segmentations", "expected 5 entries, got 4")
    assert str(err) == "/x/train.json: annotations[3].segmentations: expected 5 entries, got 4"
    assert err.path == "/x/train.json" and err.field == "annotations[3].segmentations"


def test_written_files_get_ordinary_permissions(tmp_path):
    import os

    write_json(tmp_path / "p.json", {})
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "p.json").stat().st_mode & 0o777 == 0o666 & ~mask
