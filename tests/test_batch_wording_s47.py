"""The batch's words, as QA met them in the batch window: a read-only output folder was named
twice in one line ("OUT: cannot write the outputs: cannot write into OUT (…)")."""
from __future__ import annotations

import pytest

from core.batch import _check_writable
from core.errors import FaderError


def test_an_output_folder_that_cannot_be_written_is_named_once(tmp_path):
    out = tmp_path / "gone"   # no such folder: the probe file cannot be made (as on a read-only disk)
    with pytest.raises(FaderError) as e:
        _check_writable(out, f"{out}: cannot write the outputs")
    assert str(e.value).count(str(out)) == 1 and str(e.value).startswith(f"{out}: cannot write the outputs ("), str(e.value)
    # the report, in a folder of its own: both are named
    with pytest.raises(FaderError) as e:
        _check_writable(out, f"{tmp_path / 'r.json'}: cannot write the report")
    assert f"cannot write into {out}" in str(e.value)


def test_a_report_path_holding_json_nested_too_deeply_is_no_report_of_ours(tmp_path):
    """Review: the report at --report is read to find an earlier run's (and to refuse replacing a
    file that is not one); JSON nested 100,000 levels deep raised RecursionError out of the batch."""
    from core.batch import _read_report
    p = tmp_path / "r.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    assert _read_report(p) is None
