"""`fader-desktop import-reference`: convert a reference-implementation checkpoint (.pth) to .fader."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="reference checkpoint saved by facebookresearch/FaderNetworks (torch.save of the module)")
    p.add_argument("-o", "--output", required=True, help="output .fader file")
    p.add_argument("--attr", help="comma-separated attribute names in the checkpoint's order (default: from the checkpoint)")
    p.add_argument("--classifier", help="the reference's classifier checkpoint, stored with the model")
    from fader_desktop.cli import add_overwrite_argument
    add_overwrite_argument(p)


def run(args) -> int:
    from core.errors import printable
    from core.legacy_import import import_reference_checkpoint
    from core.model_file import save_model
    from fader_desktop.cli import check_output
    from core.model_file import check_model_output
    out = Path(args.output)
    check_model_output(out, (args.checkpoint, args.classifier))
    check_output(out, [], args.overwrite)  # a .fader already there may be the user's own model
    model = import_reference_checkpoint(args.checkpoint, attributes=args.attr.split(",") if args.attr else None,
                                        classifier_path=args.classifier)
    save_model(model, out, replace=args.overwrite)
    print(f"wrote {printable(out)}")
    return 0
