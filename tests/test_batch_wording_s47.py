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
