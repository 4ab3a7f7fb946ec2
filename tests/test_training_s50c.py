"""CelebA's attribute table read in one pass with the checks of before (every line, the same
messages), and fader-train refusing what it can check without torch before torch loads."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_DATA
from core.errors import FaderError
from training.datasets import read_celeba_attributes

REPO = Path(__file__).resolve().parents[1]


def _table(tmp_path: Path, body: str, header: str = "3\nSmiling Male\n", newline: str = "\n") -> Path:
    """tmp_path/list_attr_celeba.txt of `header` then `body`, lines ended by `newline`."""
    f = tmp_path / "list_attr_celeba.txt"
    f.write_bytes((header + body).replace("\n", newline).encode("utf-8"))
    return f


def _refusal(f: Path) -> str:
    with pytest.raises(FaderError) as e:
        read_celeba_attributes(f)
    return str(e.value)


def _good_rows(first: int, n: int) -> str:
    return "".join(f"{i:06d}.jpg {1 if i % 2 else -1} -1\n" for i in range(first, first + n))


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("where,bad,says", [
    ("first row", "000000.jpg 1\n", "'000000.jpg' (1 values, 2 attributes)"),
    ("amid 2,000 good rows", "001500.jpg 1 -1 1\n", "'001500.jpg' (3 values, 2 attributes)"),
    ("last row, no final newline", "009999.jpg", "'009999.jpg' (0 values, 2 attributes)"),
])
def test_a_line_with_too_few_or_too_many_values_is_refused_naming_its_file(tmp_path, newline, where, bad, says):
    body = {"first row": bad + _good_rows(1, 20),
            "amid 2,000 good rows": _good_rows(1, 1000) + bad + _good_rows(2000, 1000),
            "last row, no final newline": _good_rows(1, 20) + bad}[where]
    f = _table(tmp_path, body, newline=newline)
    assert _refusal(f) == f"{f}: malformed line for {says}"


def test_the_first_malformed_line_is_the_one_named(tmp_path):
    f = _table(tmp_path, _good_rows(1, 50) + "000051.jpg -1 -1 -1 -1\n" + _good_rows(52, 50) + "000102.jpg 1\n")
    assert _refusal(f) == f"{f}: malformed line for '000051.jpg' (4 values, 2 attributes)"


@pytest.mark.parametrize("line,fields", [
    ("000003.jpg\t1\t-1", 3),             # tabs
    ("   000003.jpg   1    -1   ", 3),    # runs of spaces, leading and trailing
    ("000003.jpg\x0c1 -1", 3),            # form feed: a space to str.split
    ("000003.jpg 1\x1f-1 1", 4),          # a unit separator too
    ("000003.jpg\xa01 -1", 3),            # a no-break space (not ASCII)
    ("000003.jpg 1\u3000-1 1", 4),        # an ideographic space
    ("000003.jpg 1\x01-1", 2),            # a control character that is no space: part of its field
])
def test_fields_are_the_ones_str_split_finds(tmp_path, line, fields):
    f = _table(tmp_path, _good_rows(1, 2) + line + "\n" + _good_rows(4, 2))
    if fields == 3:
        names, rows = read_celeba_attributes(f)
        assert names == ["Smiling", "Male"] and len(rows) == 5
        assert rows["000003.jpg"] == line.split()[1:] and rows["000004.jpg"] == ["-1", "-1"]
    else:
        assert _refusal(f) == f"{f}: malformed line for '000003.jpg' ({fields - 1} values, 2 attributes)"


def test_blank_lines_are_skipped_other_values_and_repeated_names_kept_as_before(tmp_path):
    """The table refuses only a wrong field count: a value other than 1 / -1 is kept as read (a
    run reads it as 'no') and a repeated name's last line counts, as they always did."""
    f = _table(tmp_path, "\n" + _good_rows(1, 2) + "   \t \n000003.jpg yes 0\n000001.jpg -1 1\n\n\n")
    names, rows = read_celeba_attributes(f)
    assert names == ["Smiling", "Male"]
    assert list(rows) == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert dict(rows) == {"000001.jpg": ["-1", "1"], "000002.jpg": ["-1", "-1"], "000003.jpg": ["yes", "0"]}
    assert "000004.jpg" not in rows and len(rows) == 3


@pytest.mark.parametrize("header,body,says", [
    ("count\nSmiling Male\n", _good_rows(1, 3), "not a CelebA attribute file"),   # no count
    ("3\n\n", "", "not a CelebA attribute file"),                           # no names
    ("", "", "not a CelebA attribute file"),                                # empty
    ("3\n\n", "000001.jpg 1\n", "malformed line for '000001.jpg' (1 values, 0 attributes)"),  # lines first
    ("x\nSmiling Male\n", "000001.jpg 1\n", "malformed line for '000001.jpg' (1 values, 2 attributes)"),
])
def test_a_file_that_is_not_an_attribute_table_is_refused(tmp_path, header, body, says):
    f = _table(tmp_path, body, header=header)
    msg = _refusal(f)
    assert msg.startswith(f"{f}: {says}")
    if says.startswith("not"):
        assert msg == f"{f}: not a CelebA attribute file (expected a count line and a header of names)"


def test_an_unreadable_table_is_refused_with_the_reason(tmp_path):
    (tmp_path / "list_attr_celeba.txt").mkdir()
    assert _refusal(tmp_path / "list_attr_celeba.txt") == f"{tmp_path / 'list_attr_celeba.txt'}: cannot read (Is a directory)"


def test_a_table_that_is_not_text_is_refused_in_words(tmp_path):
    """A binary file (or another encoding) named as the table was a UnicodeDecodeError traceback."""
    table = tmp_path / "list_attr_celeba.txt"
    table.write_bytes(b"2\nSmiling\n\xff\xfe\x00 1\n")
    assert _refusal(table) == f"{table}: not a CelebA attribute file (it is not text)"


def _read_as_before(attr_file: Path) -> tuple:
    """read_celeba_attributes as it was until s50c (every row split), the reference for the real file."""
    with open(attr_file) as f:
        first = f.readline()
        names = f.readline().split()
        table = {}
        for line in f:
            parts = line.split()
            if not parts:
                continue
            assert len(parts) == len(names) + 1
            table[parts[0]] = parts[1:]
    assert first.strip().isdigit() and names
    return names, table


def test_the_real_celeba_table_reads_as_before():
    attr_file = SHARED_DATA / "list_attr_celeba.txt"
    if not attr_file.is_file():
        pytest.skip(f"{attr_file} is absent (the shared CelebA data is not on this machine)")
    names, rows = read_celeba_attributes(attr_file)
    old_names, old = _read_as_before(attr_file)
    assert names == old_names and len(names) == 40
    assert list(rows) == list(old) and len(rows) == 202_599
    assert all(rows[k] == v for k, v in old.items())


# fader-train in a process of its own, saying whether torch got loaded by the time it returned
_WRAPPER = ("import sys\nfrom training import cli\ncode = cli.main(sys.argv[1:])\n"
            "print('torch loaded' if 'torch' in sys.modules else 'torch not loaded')\nsys.exit(code)\n")


def _train(args) -> tuple:
    r = subprocess.run([sys.executable, "-c", _WRAPPER, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def _celeba(tmp_path: Path) -> Path:
    """A CelebA folder of four black aligned images and their table."""
    import cv2
    import numpy as np
    (tmp_path / "img_align_celeba").mkdir()
    for i in range(4):
        cv2.imwrite(str(tmp_path / "img_align_celeba" / f"{i:06d}.jpg"), np.zeros((218, 178, 3), np.uint8))
    return _table(tmp_path, _good_rows(0, 4), header="4\nSmiling Male\n")


@pytest.mark.parametrize("case", ["missing data", "misspelt attribute", "resumed on moved data", "out holds files"])
def test_a_refused_run_is_answered_before_torch_loads(tmp_path, case):
    out = tmp_path / "run"
    args = ["--out", out, "--steps", "2"]
    if case == "missing data":
        args += ["--data", tmp_path / "nope"]
        says = f"error: {tmp_path / 'nope'}: no such file or folder"
    elif case == "misspelt attribute":
        table = _celeba(tmp_path)
        args += ["--data", table, "--attr", "smiling"]
        says = f"error: {table}: unknown CelebA attribute 'smiling' (did you mean 'Smiling'?)"
    elif case == "resumed on moved data":   # the run's checkpoint is read (with torch) after the data's paths
        out.mkdir()
        (out / "checkpoint_last.pt").write_bytes(b"not read")
        args += ["--data", tmp_path / "moved", "--resume"]
        says = f"error: {tmp_path / 'moved'}: no such file or folder"
    else:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        args += ["--data", _celeba(tmp_path)]
        says = f"error: --out {out}: the folder holds files (notes.txt) and is not a fader-train run"
    code, stdout, stderr = _train(args)
    assert code == 2 and says in stderr, stderr
    assert stdout == "torch not loaded"


def test_a_refusal_before_the_ranks_meet_is_said_once_per_machine(tmp_path, monkeypatch, capsys):
    """Under torchrun every rank checks the same options and data before the process group: a
    missing data folder was said by each (twice in a two-process run from the training window).
    The machine's first rank says it; an error after the ranks met is still said with its rank."""
    from training import cli
    args = ["--data", str(tmp_path / "none"), "--out", str(tmp_path / "run"), "--steps", "2"]
    for rank, said in (("0", True), ("1", False)):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("LOCAL_RANK", rank)
        assert cli._main(args) == 2
        err = capsys.readouterr().err
        assert (str(tmp_path / "none") in err) == said, (rank, err)
