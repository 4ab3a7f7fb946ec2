"""python -m training.classifier names a misspelt column of the data before it refuses the
attribute the data then lack, as the evaluation names it."""
from conftest import make_tiny_model, noise_images

TWO = (("Smiling", ("no", "yes"), (-1.0, 2.0)), ("Male", ("no", "yes"), (-1.0, 2.0)))


def test_a_misspelt_column_is_named_beside_the_attribute_the_data_lack(tmp_path, one_torch_thread, capsys):
    """A table of Smiling and 'Mael' for a model of Smiling and Male said only 'the data do not
    label Male', where the evaluation of the same data names the column it comes near."""
    from training.classifier import main
    names = [f"IMG_{i:02d}.png" for i in range(8)]
    noise_images(tmp_path / "d", names)
    table = tmp_path / "d" / "labels.csv"
    table.write_text("file,Smiling,Mael\n" + "".join(f"{n},{i % 2},{(i // 2) % 2}\n" for i, n in enumerate(names)))
    src = make_tiny_model(tmp_path / "in.fader", attrs=TWO)
    rc = main(["--model", str(src), "--data", str(table), "--out", str(tmp_path / "out.fader")])
    err = capsys.readouterr().err
    assert rc == 2 and not (tmp_path / "out.fader").exists()
    assert "the data do not label Male" in err
    assert "the data's attribute 'Mael' is none of the model's (did you mean 'Male'?)" in err, err
