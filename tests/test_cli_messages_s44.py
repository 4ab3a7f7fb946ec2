"""The command line's messages about attribute names and values read as words (QA, session 44).

They printed Python lists ("the model has ['Smiling', 'Male']") and named no close match for a
typo; `--own Young=5` was refused with the --set slider-range wording. Each case runs the real
`cli.main()` in-process (as tests/test_cli_edit.py does for bad inputs): the errors come before
any face is searched for, so each run takes a model load.
"""
from __future__ import annotations

import pytest

from conftest import make_tiny_model

#: Young's slider range 0 .. 1 makes 5 fall outside the values --set accepts (-3 .. 4), as for the
#: QA tester's model; the other names hold what a model trained from folders may hold.
ATTRS = (("Smiling", ("no", "yes"), (-1.0, 2.0)),
         ("Young", ("no", "yes"), (0.0, 1.0)),
         ("Mouth, open = 'wide'", ("no", "yes"), (-1.0, 2.0)),
         ("Hair", ("black", "blond", "brown"), (0.0, 1.0)))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("msg") / "m.fader", with_classifier=False, attrs=ATTRS)


def error(capsys, tmp_path, *args) -> str:
    """The one error line of a command that must fail with status 2 and write nothing."""
    from fader_desktop.cli import main
    rc = main([str(a) for a in args] + ["--device", "cpu"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("fader-desktop: error: "), err
    assert not any(tmp_path.iterdir()), "a refused command wrote a file"
    return lines[0]


def test_unknown_attribute_lists_the_model_in_words_and_names_the_close_one(capsys, tmp_path, portrait_path, model):
    line = error(capsys, tmp_path, "edit", portrait_path, "-o", tmp_path / "o.png", "--set", "Smilin=1",
                 "--model", model)
    assert "[" not in line and "]" not in line, line
    # the model's order (the window's), each name quoted whole though it holds ", ", " = " and quotes
    assert line.endswith("unknown attribute 'Smilin' (did you mean 'Smiling'?); the model has 'Smiling', 'Young', "
                         "\"Mouth, open = 'wide'\" and 'Hair'"), line
    # sweep's --attr takes the same words, and a value label of a sweep's target too
    line = error(capsys, tmp_path, "sweep", portrait_path, "-o", tmp_path / "s.png", "--attr", "yuong",
                 "--model", model)
    assert "unknown attribute 'yuong' (did you mean 'Young'?); the model has 'Smiling'," in line, line
    line = error(capsys, tmp_path, "sweep", portrait_path, "-o", tmp_path / "s.png", "--attr", "Hair=blnd",
                 "--model", model)
    assert line.endswith("'Hair' has no value 'blnd' (did you mean 'blond'?); its values are 'black', 'blond' "
                         "and 'brown'"), line
    line = error(capsys, tmp_path, "edit", portrait_path, "-o", tmp_path / "o.png", "--set", "Smiling=maybe",
                 "--model", model)
    assert line.endswith("bad value 'maybe' for 'Smiling': give a number or a label, 'no' or 'yes'"), line


@pytest.mark.parametrize("value, shown", [("5", "5"), ("0.5", "0.5"), ("-4", "-4"),
                                          ("yess", "'yess' (did you mean 'yes'?)")])
def test_own_out_of_the_slider_range_gets_the_own_wording(capsys, tmp_path, portrait_path, model, value, shown):
    """--own says what the face is: 5 was told it is "outside -3 .. 4 (the slider range ...)"."""
    line = error(capsys, tmp_path, "edit", portrait_path, "-o", tmp_path / "o.png", "--own", f"Young={value}",
                 "--model", model)
    assert "slider range" not in line and "outside" not in line, line
    assert line.endswith(f"Young: a face's own value is 0 or 1 ('no' or 'yes'), not {shown}"), line
    # an attribute with three values: one of their numbers, not any index --set would round
    line = error(capsys, tmp_path, "edit", portrait_path, "-o", tmp_path / "o.png", "--own", "Hair=3",
                 "--model", model)
    assert line.endswith("Hair: a face's own value is 0, 1 or 2 ('black', 'blond' or 'brown'), not 3"), line


def test_a_recipe_naming_an_unknown_attribute_is_refused_in_words(capsys, tmp_path, tmp_path_factory, portrait_path,
                                                                   model):
    """A recipe's unknown name printed the model's names as a Python list too."""
    import json
    recipe = tmp_path_factory.mktemp("recipe") / "r.json"
    recipe.write_text(json.dumps({"format": "fader-recipe", "version": 1, "values": {"smilng": 1}}))
    line = error(capsys, tmp_path, "edit", portrait_path, "-o", tmp_path / "o.png", "--recipe", recipe,
                 "--model", model)
    assert "[" not in line, line
    assert line.endswith("unknown attribute 'smilng' (did you mean 'Smiling'?); the model has 'Smiling', 'Young', "
                         "\"Mouth, open = 'wide'\" and 'Hair'"), line
