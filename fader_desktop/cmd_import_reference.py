"""`fader-desktop import-reference`: convert a reference-implementation checkpoint (.pth) to .fader."""
from __future__ import annotations

import argparse
from pathlib import Path

from core.errors import FaderError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="reference checkpoint saved by facebookresearch/FaderNetworks (torch.save of the module)")
    p.add_argument("-o", "--output", required=True, help="output .fader file")
    p.add_argument("--attr", help="comma-separated attribute names in the checkpoint's order (default: from the checkpoint)")
    p.add_argument("--classifier", help="the reference's classifier checkpoint, stored with the model")
    from fader_desktop.cli import add_overwrite_argument
    add_overwrite_argument(p)


def check_import_output(out: Path, inputs) -> None:
    """Refuse (FaderError) an import's output that is not a .fader file, is one of the checkpoints
    read (`inputs`; None entries skipped), or lies in a folder that does not exist. The command
    line and the window's import both ask this."""
    from core.atomic_write import same_file
    from core.image_io import check_output_folder
    if out.suffix.lower() != ".fader":   # Windows and macOS names are case-blind: M.FADER is a model
        raise FaderError(f"{out}: output must be a .fader file")
    for given in inputs:
        if given is not None and same_file(out, Path(given)):
            raise FaderError(f"{out}: refusing to overwrite the input checkpoint {given}; choose another output path")
    # a mistyped folder is an error, as for every other command's output (save_model would create it)
    check_output_folder(out, "cannot write model file")


def run(args) -> int:
    from core.errors import printable
    from core.legacy_import import import_reference_checkpoint
    from core.model_file import save_model
    from fader_desktop.cli import check_output
    out = Path(args.output)
    check_import_output(out, (args.checkpoint, args.classifier))
    check_output(out, [], args.overwrite)  # a .fader already there may be the user's own model
    model = import_reference_checkpoint(args.checkpoint, attributes=args.attr.split(",") if args.attr else None,
                                        classifier_path=args.classifier)
    save_model(model, out, replace=args.overwrite)
    print(f"wrote {printable(out)}")
    return 0
