"""`fader-train`: train or fine-tune a Fader model from labeled folders, a CSV table or CelebA.

Exit status: 0 done (or stopped by --max-minutes), 2 bad options or data (one line on stderr),
130 / 143 stopped by Ctrl-C / SIGTERM after saving a resumable checkpoint (or before training
began: nothing saved; the last line says which).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

# RUN_MARKER is written into every run folder when the run starts: the folders --out may write into
# are new or empty ones and those that hold this file (or a checkpoint), never a folder of the user's files.
from core.attributes import counted, quoted
from core.run_files import RUN_MARKER, train_program

PROG = train_program()   # `fader-train`, or the packaged app's `fader-desktop train`
SKIPPED_LIST = "skipped.txt"   # in the run folder: the images preprocessing skipped, with the reason
PSEUDO_LABELS = "pseudo_labels.txt"  # in a fine-tuning run folder: the labels the --init model's classifier gave
MAX_BATCH_SIZE = 1024
# the critic's first layer; its cost grows with the square (the default model's critic: 16 and 32)
MAX_CRITIC_WIDTH = 512
MAX_THREADS = 1024
# The evaluation classifier's steps when --classifier-steps is not given: this many epochs of the
# training images, at most CLASSIFIER_MAX_STEPS (CelebA-sized data keeps the 2,000 steps of
# before). A fixed 2,000 were ~1,780 epochs of a 36-image folder: minutes of CPU and a classifier
# that learnt its training images by heart.
CLASSIFIER_EPOCHS = 100
CLASSIFIER_MAX_STEPS = 2000
# what a run records (TrainConfig.classifier_steps_chosen) of a number it chose so, and of one given
CLASSIFIER_BY_DATA = "by data size"
CLASSIFIER_GIVEN = "by --classifier-steps"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        from core.errors import printable
        self.exit(2, f"{PROG}: error: {printable(message)}\n")


class _HelpFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to an option's help only where the text does not say its default itself
    and X means something: None stands for a default worked out later (the hand-written text says
    which), and a flag is off unless given."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text.lower() or action.default is None or action.default is argparse.SUPPRESS
                or isinstance(action.default, bool) or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every option documented for --help)."""
    p = _Parser(prog=PROG, formatter_class=_HelpFormatter,
                description="Train a Fader Networks model (Lample et al. 2017) and export RUN_DIR/model.fader. "
                            "DATA is a labeled folder (DATA/<value>/images, DATA's name = the attribute), "
                            "a CSV table (file,attr1,...; values 0/1, -1/1 or labels) or CelebA "
                            "(list_attr_celeba.txt with img_align_celeba/ or img_align_celeba_89x109/).")
    g = p.add_argument_group("data")
    g.add_argument("--data", action="append", metavar="DATA",
                   help="data source; repeat to combine several CelebA image folders")
    g.add_argument("--attr", default=None, metavar="A,B",
                   help="attributes to train (CelebA / CSV column names, '*' = all); default: all")
    g.add_argument("--img-size", type=int, default=None, metavar="N", help="training resolution (power of two, 32..256); default 64, a pack's own (--data *.fpack), or the --init model's")
    g.add_argument("--align", action="store_true", help="detect and align faces (photos that are not aligned crops); images without a face are skipped")
    g.add_argument("--val-size", type=int, default=None, metavar="N",
                   help="validation images (CelebA: at most N of split 1; otherwise a deterministic hold-out, default "
                        "10%% up to 500, drawn value by value among the usable images: each value its share, a value "
                        "of 3 images or more at least one; refused where too few would be left to train on)")
    g.add_argument("--exclude", action="append", default=None, metavar="PATH",
                   help="leave these images out of training and validation: a folder (its images' names) or a text "
                        "file of names; repeatable (e.g. a held-out photo set that shares CelebA ids)")
    g.add_argument("--no-flip", action="store_true", help="disable random horizontal flips")
    g.add_argument("--cache-dir", default=None, help="preprocessing cache folder (default $FADER_CACHE_DIR or ~/.cache/fader-desktop/training)")
    g.add_argument("--workers", type=int, default=None, metavar="N", help="threads for preprocessing (default: all cores)")

    g = p.add_argument_group("run")
    g.add_argument("--out", required=False, metavar="RUN_DIR", help="run folder: model.fader, checkpoint_last.pt, log.jsonl, previews")
    g.add_argument("--steps", type=int, default=None, metavar="N", help="training iterations (one discriminator + one auto-encoder step each)")
    g.add_argument("--epochs", type=float, default=None, metavar="N", help="alternatively: passes over the training images (in auto-encoder batches)")
    g.add_argument("--max-minutes", type=float, default=0.0, metavar="M", help="stop after M minutes of training (0 = no limit), exporting the best model")
    g.add_argument("--lr-decay-minutes", type=float, default=0.0, metavar="M",
                   help="with --max-minutes: every learning rate falls linearly to 0 over the budget's last M "
                        "minutes (a schedule by time, for a run whose step count is not known beforehand)")
    g.add_argument("--resume", action="store_true", help="continue RUN_DIR/checkpoint_last.pt (step count, optimizers, RNG); --steps may raise the total")
    g.add_argument("--continue", dest="continue_from", default=None, metavar="MODEL",
                   help="continue the training that made MODEL (e.g. the committed half-precision default model) in "
                        "a new run folder: its weights, its recorded recipe (options given here that differ from "
                        "the defaults override it) and its step count, so the loss weights go on from where they "
                        "were; --steps is then the total. The latent discriminator and the critic come from "
                        "MODEL's NAME.discriminators.safetensors beside it (every export writes one) when present, "
                        "else they start untrained; optimizer moments start anew")
    g.add_argument("--fresh-discriminators", action="store_true",
                   help="with --continue: start the discriminators untrained even where the model has a "
                        "discriminator file beside it")
    g.add_argument("--init", default=None, metavar="MODEL", help="fine-tune from this .fader model (its attributes first; new attributes get zero-initialised decoder planes)")
    g.add_argument("--device", default="auto", help="auto, cpu or cuda")
    # The choices are training.precision.AMP_MODES, spelled out so that --help does not import torch.
    g.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"), default=None,
                   help="mixed precision: auto (default) = bf16 autocast on CUDA where supported, else fp16 with "
                        "loss scaling; fp32 on the CPU. bf16/fp16 force it on any device (on a CPU without native "
                        "bf16, AVX512-BF16/AMX, emulated bf16 ran 13x slower), off disables it; a resumed run keeps "
                        "its own unless given, a --continue run starts at auto")
    g.add_argument("--data-on-device", action="store_true",
                   help="copy the training crops to the device once and cut batches there (a GPU: large batches "
                        "never wait for the host); needs the crops to fit in its memory")
    g.add_argument("--threads", type=int, default=0, metavar="N", help="CPU threads for torch (0 = all cores available)")
    g.add_argument("--seed", type=int, default=0, help="random seed")
    g.add_argument("--eval-every", type=int, default=1000, metavar="N", help="evaluate, write a preview and export the model if best every N steps")
    g.add_argument("--ckpt-every", type=int, default=500, metavar="N", help="write checkpoint_last.pt every N steps (and at exit)")
    g.add_argument("--log-every", type=int, default=50, metavar="N", help="read the losses (one device sync) every N steps")
    g.add_argument("--keep-evals", action="store_true",
                   help="also export the model at every evaluation as RUN_DIR/model_step<N>.fader, to choose "
                        "another state than the best by swap accuracy")
    g.add_argument("--half-export", action="store_true", help="store model.fader tensors as float16")
    g.add_argument("--psnr-drop", type=float, default=3.0, metavar="DB",
                   help="a model is selected as best only if its PSNR is within DB of the run's best PSNR")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.add_argument("--export-last", action="store_true",
                   help="only write RUN_DIR/model_last.fader from RUN_DIR/checkpoint_last.pt (the last state, not the best) and exit")

    g = p.add_argument_group("architecture (reference defaults)")
    g.add_argument("--n-layers", type=int, default=None, metavar="N", help="encoder/decoder layers (default log2(img_size)-2: a 4x4 latent like the reference's 256 px model)")
    g.add_argument("--init-fm", type=int, default=32, metavar="N", help="feature maps of the first encoder layer")
    g.add_argument("--max-fm", type=int, default=512, metavar="N", help="maximum feature maps")
    g.add_argument("--n-skip", type=int, default=None, metavar="N",
                   help="skip connections encoder->decoder (default 0; with --init, more than the model's "
                        "adds skips whose decoder planes start at zero)")
    g.add_argument("--dec-min-fm", type=int, default=None, metavar="N",
                   help="at least N feature maps in every decoder hidden layer (default 0: the encoder's widths). "
                        "With --resume, a larger N widens the run's decoder in place: it first decodes exactly "
                        "as before, and training grows the new maps in")
    g.add_argument("--deconv-method", default="convtranspose", choices=["convtranspose", "upsampling", "pixelshuffle"], help="decoder upsampling")
    g.add_argument("--instance-norm", action="store_true", help="instance norm instead of batch norm")
    g.add_argument("--dec-dropout", type=float, default=0.0, metavar="P", help="dropout in the last decoder layers")
    g.add_argument("--lat-dis-dropout", type=float, default=0.3, metavar="P", help="dropout in the latent discriminator")
    g.add_argument("--hid-dim", type=int, default=512, metavar="N", help="hidden units of the discriminators / classifier")

    g = p.add_argument_group("losses and optimisation (reference defaults)")
    g.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="batch size (under torchrun: the global batch, split over the processes)")
    g.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (betas 0.5, 0.999)")
    g.add_argument("--lr-decay-start", type=int, default=None, metavar="STEP",
                   help="from STEP on, every learning rate falls linearly to 0 at --steps (AttGAN's schedule; "
                        "default 0: constant; changeable on resume, e.g. to finish a long run)")
    g.add_argument("--clip-grad-norm", type=float, default=5.0, metavar="X", help="gradient norm clip (0 = off)")
    g.add_argument("--lambda-ae", type=float, default=1.0, metavar="X", help="reconstruction loss weight")
    g.add_argument("--lambda-lat-dis", type=float, default=None, metavar="X",
                   help="latent discriminator feedback weight (final value of the ramp; default 1e-4; a resumed run "
                        "keeps its own unless given)")
    g.add_argument("--lambda-schedule", type=int, default=500000, metavar="N", help="iterations over which the lambdas ramp up linearly from 0 (0 = constant)")
    g.add_argument("--n-lat-dis", type=int, default=1, metavar="N", help="latent discriminator steps per iteration")
    g.add_argument("--n-ptc-dis", type=int, default=0, metavar="N", help="patch discriminator steps per iteration (0 = no patch discriminator)")
    g.add_argument("--lambda-ptc-dis", type=float, default=0.0, metavar="X", help="patch discriminator feedback weight")
    g.add_argument("--n-clf-dis", type=int, default=None, metavar="N", help="classifier discriminator steps per iteration (default 1 if --lambda-clf-dis > 0)")
    g.add_argument("--lambda-clf-dis", type=float, default=0.0, metavar="X", help="classifier discriminator feedback weight")
    g.add_argument("--clf-weight", action="append", default=None, metavar="ATTR=W",
                   help="multiply ATTR's term of the classifier loss by W (repeatable; default 1 each): "
                        "more for an attribute the decoder changes too weakly")
    g.add_argument("--clf-blur", type=float, default=None, metavar="SIGMA",
                   help="Gaussian blur (sigma in px) on what the classifier discriminator sees, real and decoded "
                        "(not in the reference; default 0 = off): its loss can then not be met with fine speckle")
    g.add_argument("--lambda-edit-tv", type=float, default=None, metavar="X",
                   help="weight of the total variation of an edit (decode with random attributes minus the "
                        "reconstruction; not in the reference; default 0): smooth, localised edits")
    g.add_argument("--lambda-edit-chroma", type=float, default=None, metavar="X",
                   help="weight of the colour part of an edit (its channels' deviation from their mean; not in "
                        "the reference; default 0): against coloured blotches in place of real changes")
    g.add_argument("--n-critic", type=int, default=None, metavar="N",
                   help="image-critic steps per iteration (default 1 if a --lambda-critic-* is > 0): one network with a "
                        "realism head and an attribute head (trained on real images), both on augmented images")
    g.add_argument("--lambda-critic-adv", type=float, default=None, metavar="X",
                   help="weight of the critic's realism term on decodes with random attributes (default 0)")
    g.add_argument("--lambda-critic-attr", type=float, default=None, metavar="X",
                   help="weight of the critic's attribute term on those decodes (default 0)")
    g.add_argument("--lambda-critic-hold", type=float, default=None, metavar="X",
                   help="weight of the critic's reading of the attributes an edit keeps (not in the reference; "
                        "default 0): it must stay as on the reconstruction, seen under the same augmentation "
                        "(KL divergence); against edits that also change another attribute, e.g. glasses that "
                        "age the face")
    g.add_argument("--critic-warmup", type=int, default=None, metavar="N",
                   help="the first N iterations of this invocation train the discriminators and the critic only, "
                        "the auto-encoder waits (default 0): for --continue, whose critic starts untrained. The "
                        "log's reconstruction loss counts those iterations as 0")
    g.add_argument("--single-edits", type=float, default=None, metavar="P",
                   help="fraction of the decoded edits that flip exactly one attribute and keep the others at "
                        "their labels, as a slider does (not in the reference, whose edits set every attribute "
                        "at random; default 0; changeable on resume)")
    g.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="evaluate, preview and export an exponential moving average of the auto-encoder's weights "
                        "(e.g. 0.999, the last ~1,000 steps) instead of the live ones, which oscillate under the "
                        "adversarial terms (default 0: off; changeable on resume)")
    g.add_argument("--edit-residual", action=argparse.BooleanOptionalAction, default=None,
                   help="experimental: the critic and image discriminators judge an edit as the app applies it, the "
                        "input plus (edited - reconstructed decode) (not in the reference; default off; changeable on "
                        "resume). Tried on the 128 px run: stronger flips on exported photos, but rainbow colour "
                        "blotches within 2,000 steps - the colour-augmented critic does not see them")
    g.add_argument("--critic-width", type=int, default=None, metavar="N",
                   help="feature maps of the critic's first layer (default 32; 16 is ~4x cheaper; a resumed run "
                        "with another width starts a new critic)")
    g.add_argument("--smooth-label", type=float, default=0.2, metavar="X", help="label smoothing of the patch discriminator's targets (as in the reference)")

    g = p.add_argument_group("evaluation classifier")
    g.add_argument("--classifier-steps", type=int, default=None, metavar="N",
                   help="steps to train the evaluation classifier before the model (default: by data size, "
                        f"{CLASSIFIER_EPOCHS} epochs of the training images, at most {CLASSIFIER_MAX_STEPS:,}; "
                        "a resumed run keeps its own)")
    g.add_argument("--classifier-max-fm", type=int, default=512, metavar="N",
                   help="largest layer width of the evaluation classifier this run trains (256 keeps a 128 px "
                        "model file about 16 MB smaller in float16)")
    g.add_argument("--classifier", default=None, metavar="PATH", help="use the classifier stored in this .fader file instead of training one")

    # Spelled out here rather than in training/distributed.py, which imports torch (--help does not).
    g = p.add_argument_group(
        "data-parallel training (under torchrun; see docs/training.md)",
        "torchrun --nproc_per_node N [--nnodes M --rdzv-backend c10d --rdzv-endpoint HOST:PORT] "
        "$(which fader-train) OPTIONS trains one model on N processes per machine (gloo on CPU, NCCL on CUDA). "
        "--batch-size is then the global batch: each process takes batch-size / (number of processes), and "
        "the learning rate applies to that global batch as in one process (N processes with --batch-size B "
        "train the model one process with B trains, up to float rounding). Only rank 0 writes RUN_DIR; "
        "on several machines RUN_DIR and DATA must be at the same path on each (a shared folder).")
    g.add_argument("--dist-timeout", type=float, default=300.0, metavar="S",
                   help="seconds a process waits for the others (a collective operation, or rank 0's "
                        "preprocessing, evaluation or checkpoint showing no sign of life) before the whole "
                        "run stops with an error")
    return p


def _parse_clf_weights(items, names) -> dict:
    from core.errors import FaderError
    out = {}
    for it in items:
        name, sep, w = it.partition("=")
        try:
            v = float(w)
        except ValueError:
            v = float("nan")
        if not sep or not math.isfinite(v) or v < 0:
            raise FaderError(f"--clf-weight must be ATTR=W with W >= 0, got {it!r}")
        if names is not None and name not in names:
            raise FaderError(f"--clf-weight: {name!r} is not a trained attribute ({', '.join(names)})")
        out[name] = v
    return out


def _from_celeba(ds) -> bool:
    """CelebA's own files, or a pack made from them (its licence and splits come along)."""
    return ds.kind == "celeba" or (ds.kind == "packed" and "CelebA" in ds.description)


def _critic_terms_asked(a) -> bool:
    """Whether a --lambda-critic-* option puts a critic term in the auto-encoder's loss."""
    return ((a.lambda_critic_adv or 0) + (a.lambda_critic_attr or 0) + (a.lambda_critic_hold or 0)) > 0


def _check_numbers(a) -> None:
    from core.errors import FaderError

    def pos(name, v, allow_zero=False):
        if v is None:
            return
        if not isinstance(v, (int, float)) or (v < 0 if allow_zero else v <= 0) or (isinstance(v, float) and not math.isfinite(v)):
            raise FaderError(f"--{name.replace('_', '-')} must be {'>= 0' if allow_zero else 'positive'}, got {v}")
    for n in ("steps", "epochs", "batch_size", "eval_every", "ckpt_every", "log_every", "init_fm", "max_fm",
              "hid_dim", "lr", "val_size", "workers", "n_layers", "classifier_max_fm", "critic_width"):
        pos(n, getattr(a, n))
    for n in ("max_minutes", "clip_grad_norm", "lambda_ae", "lambda_lat_dis", "lambda_schedule", "n_lat_dis",
              "n_ptc_dis", "lambda_ptc_dis", "lambda_clf_dis", "classifier_steps", "threads", "n_skip", "psnr_drop",
              "n_clf_dis", "clf_blur", "lambda_edit_tv", "lambda_edit_chroma", "n_critic", "lambda_critic_adv",
              "lambda_critic_attr", "lambda_critic_hold", "critic_warmup"):
        pos(n, getattr(a, n), allow_zero=True)
    if not 0 <= a.seed < 2 ** 32:
        raise FaderError(f"--seed must be in [0, 2^32), got {a.seed}")
    if a.single_edits is not None and not 0 <= a.single_edits <= 1:
        raise FaderError(f"--single-edits must be in [0, 1], got {a.single_edits}")
    pos("lr_decay_minutes", a.lr_decay_minutes, allow_zero=True)
    if a.lr_decay_minutes and not (a.max_minutes and a.lr_decay_minutes <= a.max_minutes):
        raise FaderError(f"--lr-decay-minutes {a.lr_decay_minutes:g} needs a --max-minutes budget at least as long")
    for n in ("dec_dropout", "lat_dis_dropout", "ema"):
        v = getattr(a, n)
        if v is not None and not 0 <= v < 1:
            raise FaderError(f"--{n.replace('_', '-')} must be in [0, 1), got {v}")
    if not 0 <= a.smooth_label < 0.5:
        raise FaderError(f"--smooth-label must be in [0, 0.5), got {a.smooth_label}")
    for n, limit in (("batch_size", MAX_BATCH_SIZE), ("threads", MAX_THREADS), ("workers", MAX_THREADS),
                     ("critic_width", MAX_CRITIC_WIDTH)):
        v = getattr(a, n)
        if v is not None and v > limit:
            raise FaderError(f"--{n.replace('_', '-')} must be at most {limit}, got {v}")
    if a.img_size is not None and (not 32 <= a.img_size <= 256 or a.img_size & (a.img_size - 1)):
        raise FaderError(f"--img-size must be a power of two in 32..256, got {a.img_size}")
    if a.batch_size < 2:
        raise FaderError("--batch-size must be at least 2 (batch norm)")
    if a.lambda_ptc_dis and not a.n_ptc_dis:
        raise FaderError("--lambda-ptc-dis needs --n-ptc-dis > 0 (a patch discriminator to train)")
    if a.n_clf_dis == 0 and a.lambda_clf_dis:
        raise FaderError("--lambda-clf-dis needs --n-clf-dis > 0")
    if a.n_critic == 0 and _critic_terms_asked(a):
        raise FaderError("--lambda-critic-adv/--lambda-critic-attr/--lambda-critic-hold need --n-critic > 0")


# fader-train options whose values the --continue model's recorded recipe supplies unless given. Not
# --amp: precision belongs to the machine (the default model was trained under bf16 on a CPU that
# computes it natively; inherited on one that emulates it, a continued run took 18 s a step against 2.1 s in fp32).
_RECIPE_OPTIONS = ("batch_size", "lr", "clip_grad_norm", "lambda_ae", "lambda_lat_dis", "lambda_ptc_dis",
                   "lambda_clf_dis", "lambda_schedule", "n_lat_dis", "n_ptc_dis", "n_clf_dis", "smooth_label", "seed",
                   "psnr_drop", "clf_blur", "lambda_edit_tv", "lambda_edit_chroma", "n_critic",
                   "lambda_critic_adv", "lambda_critic_attr", "lambda_critic_hold", "single_edits", "critic_width",
                   "ema", "edit_residual")


def _continued_config(model, a, given: set, cfg):
    """(TrainConfig, start step) for --continue: the model's recorded recipe, with the options given
    on the command line and this run's own bookkeeping (evaluation, checkpoints, budget) on top."""
    from .trainer import TrainConfig
    hp, step = _recorded_training(model, a)
    rec = TrainConfig.from_recorded(hp)
    for k in _RECIPE_OPTIONS:
        if k not in given:
            setattr(cfg, k, getattr(rec, k))
    cfg.flip = rec.flip if "no_flip" not in given else cfg.flip
    if "clf_weight" not in given:
        cfg.clf_weights = dict(rec.clf_weights)
    cfg.steps = a.steps
    return cfg, step


def _check_recorded_recipe(hp: dict, a) -> None:
    """The --continue model's recorded recipe obeys the rules its options obey on the command line
    (a file made elsewhere may say anything: n_lat_dis -5, a critic 6,000 maps wide, lr "2e-4")."""
    import argparse
    from dataclasses import MISSING, fields

    from core.errors import FaderError
    from .trainer import TrainConfig
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    trial = argparse.Namespace(**vars(a))

    def refuse(why: str):
        return FaderError(f"--continue {a.continue_from}: the training recipe recorded in the model is not usable "
                          f"({why}); give that option on the command line to replace it")
    for k in _RECIPE_OPTIONS:
        if k not in hp or k in a.given:
            continue
        v, d = hp[k], defaults.get(k)
        if isinstance(d, bool):
            ok = isinstance(v, bool)
        else:
            ok = not isinstance(v, bool) and isinstance(v, int if isinstance(d, int) else (int, float))
        if not ok:
            raise refuse(f"{k} = {v!r} is not {'true or false' if isinstance(d, bool) else 'a number'}")
        setattr(trial, k, v)
    weights = hp.get("clf_weights", {})
    if "clf_weight" not in a.given and not (isinstance(weights, dict) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0
            for x in weights.values())):
        raise refuse(f"clf_weights = {weights!r} is not a table of weights >= 0")
    if "flip" in hp and not isinstance(hp["flip"], bool):
        raise refuse(f"flip = {hp['flip']!r} is not true or false")
    try:
        _check_numbers(trial)
    except FaderError as e:
        raise refuse(str(e)) from None


def _recorded_training(model, a) -> tuple:
    """(recorded hyper-parameters, step) of the --continue model; FaderError if it lacks them or
    --steps (the total) does not exceed its step."""
    from core.errors import FaderError
    tr = (model.meta or {}).get("training") or {}
    hp, step = tr.get("hyper_parameters"), tr.get("steps")
    if not isinstance(hp, dict) or not isinstance(step, int) or step < 0:
        raise FaderError(f"--continue {a.continue_from}: the model does not record its training recipe and step; "
                         "use --init to fine-tune from it")
    if a.steps is None or a.steps <= step:
        raise FaderError(f"--continue: --steps is the total and must exceed the model's {step} steps")
    return hp, step


def _load_init_model(path):
    """The --init / --continue model; a run's own checkpoint given instead is named as such."""
    from core.errors import ModelFileError
    from core.model_file import load_model
    from .trainer import CHECKPOINT_NAME
    try:
        return load_model(path)
    except ModelFileError as e:
        p = Path(path)
        if "checkpoint" in str(e) and (p.name == CHECKPOINT_NAME or (p.parent / RUN_MARKER).is_file()):
            raise ModelFileError(f"{path}: is a fader-train checkpoint, not a model: continue its run with --resume "
                                 f"--out {p.parent}, or make a model file of it with --export-last --out {p.parent}") from None
        raise


def holds_a_run(run_dir) -> str:
    """The refusal of a new run's --out that holds a run's checkpoint (checked as the command is
    read, before a checkpoint is looked for, and again once the folder is locked)."""
    from core.run_files import CHECKPOINT_NAME   # not .trainer's: it loads torch
    return f"{run_dir}: already holds a run ({CHECKPOINT_NAME}); use --resume or another --out"


def check_run_folder(run_dir: Path) -> None:
    """--out must be a new folder, an empty one (hidden files aside) or a fader-train run
    (FaderError otherwise), so that a run never writes over files it did not create. Checked
    before any work is done."""
    from core.errors import FaderError
    from core.run_files import CHECKPOINT_NAME   # not .trainer's: it loads torch
    if run_dir.exists() and not run_dir.is_dir():
        raise FaderError(f"--out {run_dir}: exists and is not a folder")
    if run_dir.is_symlink() and not run_dir.exists():   # mkdir would fail late with "File exists"
        raise FaderError(f"--out {run_dir}: a symbolic link to a missing target ({os.readlink(run_dir)}); "
                         "remove it or choose another --out")
    blocker = next((q for q in run_dir.parents if q.exists() and not q.is_dir()), None)
    if blocker is not None:
        raise FaderError(f"--out {run_dir}: {blocker} is a file, not a folder")
    near = next(q for q in (run_dir, *run_dir.parents) if q.exists())
    if not os.access(near, os.W_OK | os.X_OK):
        raise FaderError(f"--out {run_dir}: cannot write in {near} (read-only or no permission); "
                         "choose a folder you can write to")
    if not run_dir.is_dir() or (run_dir / CHECKPOINT_NAME).exists() or (run_dir / RUN_MARKER).is_file():
        return
    try:  # hidden files (.DS_Store, temporary files) are not the user's work and are never written
        entries = sorted(e for e in os.listdir(run_dir) if not e.startswith("."))
    except OSError as e:
        raise FaderError(f"--out {run_dir}: cannot read the folder ({e.strerror or e})") from None
    if entries:
        shown = ", ".join(entries[:3]) + (", …" if len(entries) > 3 else "")
        raise FaderError(f"--out {run_dir}: the folder holds files ({shown}) and is not a fader-train run; "
                         "choose a new or empty folder so that none of them is overwritten")


def _start_run_folder(run_dir: Path, data: list, cache_dir: Path) -> None:
    """Create or update the run's marker, which also records the --data paths and the cache folder
    of its latest start: what a --resume without --data names, and where it preprocesses."""
    from datetime import datetime, timezone
    from core.atomic_write import write_bytes_atomic
    run_dir.mkdir(parents=True, exist_ok=True)
    info = _read_marker(run_dir) or {"format": "fader-train-run", "version": 1,
                                     "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    info.update(data=[os.path.abspath(os.path.expanduser(d)) for d in data], cache_dir=os.path.abspath(cache_dir))
    write_bytes_atomic(run_dir / RUN_MARKER, (json.dumps(info) + "\n").encode("utf-8", "surrogateescape"))


def _read_marker(run_dir: Path) -> Optional[dict]:
    try:
        info = json.loads((run_dir / RUN_MARKER).read_bytes().decode("utf-8", "surrogateescape"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _recorded_start(run_dir: Path) -> tuple:
    """(--data paths, cache folder or None) a run folder records of its latest start: its marker,
    or, in a folder of an earlier version, the last line of command.txt ([], None: neither)."""
    info = _read_marker(run_dir) or {}
    data = info.get("data")
    if isinstance(data, list) and data and all(isinstance(d, str) for d in data):
        cache = info.get("cache_dir")
        return data, cache if isinstance(cache, str) else None
    try:
        lines = (run_dir / "command.txt").read_bytes().decode("utf-8", "surrogateescape").splitlines()
    except OSError:
        return [], None
    line = next((x for x in reversed(lines) if x.strip()), "")
    try:
        words = shlex.split(line)
    except ValueError:   # written unquoted by an earlier version
        words = line.split()
    data, cache = [], None
    for i, w in enumerate(words):
        name, eq, value = w.partition("=")
        if not eq:
            value = words[i + 1] if i + 1 < len(words) else ""
        if name == "--data" and value:
            data.append(value)
        elif name == "--cache-dir" and value:
            cache = value
    # an earlier version wrote the line unquoted (a path with a space comes apart) and relative
    # paths from a working folder no longer known: only absolute paths that exist are named
    data = [d for d in data if os.path.isabs(d) and os.path.exists(d)]
    return data, cache if cache and os.path.isabs(cache) else None


def _missing_data(a) -> str:
    """Why --data is required, with what a --resume's run folder or a --continue model records of it."""
    if a.resume:
        msg = "--data is required: a run is resumed with its whole original command line and --resume added"
        recorded = _recorded_start(Path(a.out))[0] if a.out else []
        if recorded:
            msg += f"; {a.out} was trained with " + " ".join(f"--data {shlex.quote(d)}" for d in recorded)
        if a.out and (Path(a.out) / "command.txt").is_file():
            msg += f" (its command lines: {Path(a.out) / 'command.txt'})"
        return msg
    if a.continue_from:
        from core.errors import FaderError
        msg = "--data is required: --continue trains the model further on the data given with --data"
        try:
            desc = ((_load_init_model(a.continue_from).meta or {}).get("training") or {}).get("data")
        except FaderError:
            desc = None
        return msg + (f" (the model records its data as: {desc})" if isinstance(desc, str) and desc else "")
    return "--data is required"


def _cache_dir(a, ck, run_dir: Path, say) -> Optional[str]:
    """--cache-dir, or for a resumed run the cache folder it recorded (where its crops are) while that
    folder exists; None: the default."""
    if a.cache_dir is not None or ck is None:
        return a.cache_dir
    recorded = _recorded_start(run_dir)[1]
    if recorded and Path(recorded).is_dir():
        say(f"{PROG}: using the run's cache folder {recorded} (--cache-dir chooses another)")
        return recorded
    if recorded:
        say(f"{PROG}: the run's cache folder {recorded} is gone; preprocessing in the default one")
    return None


def run(argv=None, log=None) -> int:
    """Parse options and train; raises FaderError for bad options/data. Returns the exit status.
    Under torchrun (WORLD_SIZE > 1 in the environment) this process is one rank of a data-parallel run.
    The SIGINT/SIGTERM handlers the trainer installs are put back as they were when it returns or
    raises: called in-process (a test, an app), a later Ctrl-C would only set a finished trainer's flag;
    so is torch's thread count (`--threads`)."""
    from core.threads import TorchThreads
    # what the run holds until it ends: the run folder's lock, the process group, the thread count
    held: dict = {"threads": TorchThreads()}
    handlers = _signal_handlers()
    try:
        code = _run(argv, log, held)
    except KeyboardInterrupt as e:   # Ctrl-C or SIGTERM before the trainer took over its signals
        if held.get("dist") is not None:
            held["dist"].abort(e)
        code = _stopped_early(e, held, log)
    except BaseException as e:
        if held.get("dist") is not None:
            held["dist"].abort(e)   # the ranks waiting for this one's work stop now, with its message
        else:   # refused before the process group: every rank of a machine checks the same options and data
            e.before_group = True
        raise
    else:
        if held.get("dist") is not None:
            held["dist"].close()
    finally:
        if held.get("lock") is not None:
            held["lock"].release()
        _restore_signal_handlers(handlers)
        held["threads"].restore()
    return code


def _signal_handlers() -> dict:
    import signal
    return {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}


def _restore_signal_handlers(handlers: dict) -> None:
    """Put back handlers `_signal_handlers` read (None: one not set from Python, which cannot be
    put back). Only the main thread can set them, and only there has the trainer changed them."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return
    for s, h in handlers.items():
        if h is not None and signal.getsignal(s) is not h:
            signal.signal(s, h)


class Terminated(KeyboardInterrupt):
    """SIGTERM before training, raised as Ctrl-C's KeyboardInterrupt is, so that the same clean-up
    runs (a half-built preprocessing cache removed, the run folder's lock released) and the run
    says that it stopped (the default action ended the process without a word)."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _stopped_early(e: KeyboardInterrupt, held: dict, log) -> int:
    """Say that the run stopped before training began (nothing saved); its exit status."""
    how = "stopped by SIGTERM" if isinstance(e, Terminated) else "interrupted"
    if held.get("trainer") is not None:   # cannot happen (the trainer says how it ended): the plain word
        note = how
    elif held.get("exporting"):
        note = f"{how}; model_last.fader was not written"
    elif held.get("resumed_step") is not None:
        note = (f"{how} before training began; nothing was saved (the run's checkpoint is still at step "
                f"{held['resumed_step']}: the same command resumes it)")
    else:
        note = f"{how} before training began; nothing was saved"
    say = held.get("say")
    if say is None:   # stopped before the options were read: rank 0 alone speaks, as for errors
        rank = os.environ.get("RANK", "0") if os.environ.get("WORLD_SIZE", "1") != "1" else "0"
        say = log or (_say_stderr if rank == "0" else (lambda s: None))
    kept = getattr(e, "preprocessing_kept", None)   # set by training/cache.py
    if kept:
        say(f"{PROG}: preprocessing stopped after {kept[0]} of {kept[1]} images; those are kept in the cache, "
            "and the next start goes on from there")
    say(f"{PROG}: {note}")
    return 143 if isinstance(e, Terminated) else 130


def _run(argv, log, held: dict) -> int:
    """The run, phase by phase: options, this process's place, the data, the configuration, the
    run folder and the evaluation classifier (rank 0), then training."""
    parser = build_parser()
    a = parser.parse_args(argv)   # before torch loads: --help and a wrong option answer at once
    from core.errors import FaderError

    # options given on the command line (they override a --continue model's recipe)
    a.given = {k for k, v in vars(a).items() if v is not None and v != parser.get_default(k)}
    say = log or _say_stderr
    if a.export_last:
        held["exporting"] = True
        return _export_last(a, say)
    init_model, opened = _check_options(a)   # torch loads in it, once what needs none is checked
    from core.engine import resolve_device
    from .datasets import align_available
    from .distributed import default_threads, init_from_env
    device = resolve_device(a.device)
    # Under torchrun: join the other processes (None for a plain run). Only rank 0 speaks and writes.
    dist = held["dist"] = init_from_env(device, a.dist_timeout)
    if dist is not None:
        device = dist.device
        if not dist.is_main:
            say = lambda s: None  # noqa: E731
    held["say"] = say
    quiet = a.quiet or (dist is not None and not dist.is_main)
    held["threads"].set(a.threads or default_threads(dist))
    run_dir = Path(a.out)
    ck = _checkpoint_to_resume(a, run_dir, say)
    if ck is not None:
        held["resumed_step"] = int(ck["step"])
        _align_as_the_run(a, ck, say)
    if a.align and not align_available():
        raise FaderError("--align needs face detection and alignment (core.faces, core.alignment), which are not available in this build")
    widen = ck is not None and a.dec_min_fm is not None
    if widen:   # refused before the data is read; done after, when there is something to train
        from core.networks import ArchConfig
        from .widen import check_widening, widen_checkpoint
        check_widening(ArchConfig.from_dict(ck["arch"]), ArchConfig.from_dict({**ck["arch"], "dec_min_fm": a.dec_min_fm}))
    # a resumed run already at its --steps says so once its data are known to be its own
    data = _load_data(a, ck, init_model, run_dir, device, dist, quiet, say, _resumed_steps(a, ck), opened)
    if data is None:
        return 0
    if widen:
        ck = widen_checkpoint(ck, a.dec_min_fm, log=say)
    arch, cfg, continued_at = _configure(a, ck, data, dist, say)
    if ck is not None and _already_there(ck, cfg.steps, say):  # --epochs: known once the data is
        return 0
    meta = _run_meta(a, ck, data, run_dir, continued_at)
    # Rank 0 prepares the run folder and the evaluation classifier; the other ranks wait for it.
    phase = dist.phase("preparing the run folder and the evaluation classifier") if dist is not None else None
    leader = phase is None or phase.leader
    given_clf = _given_classifier(a, data) if ck is None and leader and a.classifier else None
    if leader:
        _prepare_run_folder(ck, run_dir, a.data, data, held, say)
    classifier = None
    if ck is None and leader:
        classifier = _evaluation_classifier(a, data, cfg, device, meta, quiet, say, given_clf)
    return _train(a, argv, ck, data, arch, cfg, meta, classifier, device, dist, phase, quiet, say, run_dir, continued_at,
                  held)


def _resumed_steps(a, ck) -> Optional[int]:
    """The --steps a resumed run goes to, as far as known before its data are preprocessed: given,
    the run's own, or with --epochs from the number of training images the run recorded (which its
    own data, checked before, still have); None: not a resumed run, or not known."""
    if ck is None:
        return None
    if a.steps is not None:
        return a.steps
    if a.epochs is None:
        return ck["config"]["steps"]
    try:
        n_train = (json.loads(ck.get("meta_json") or "{}").get("training") or {}).get("n_train")
    except (ValueError, AttributeError):
        return None
    if not isinstance(n_train, int) or n_train <= 0:
        return None
    return int(math.ceil(a.epochs * n_train / ck["config"]["batch_size"]))   # as _configure computes it


def _already_there(ck, steps, say) -> bool:
    """Whether a resumed run is already at its --steps (it is said; nothing is trained)."""
    if steps is None or ck["step"] < steps:
        return False
    say(f"{PROG}: the run is already at step {ck['step']} (>= --steps {steps}); nothing to train "
        "(give a larger --steps to go on)")
    return True


def _export_last(a, say) -> int:
    """--export-last: the run's last checkpoint as model_last.fader (rank 0 only)."""
    from core.errors import FaderError
    from .trainer import CHECKPOINT_NAME, export_checkpoint
    if not a.out:
        raise FaderError("--export-last needs --out RUN_DIR")
    if os.environ.get("RANK", "0") != "0":
        return 0   # under torchrun: rank 0 exports
    export_checkpoint(Path(a.out) / CHECKPOINT_NAME, Path(a.out) / "model_last.fader", a.half_export)
    say(f"{PROG}: wrote {Path(a.out) / 'model_last.fader'}")
    return 0


def _check_options(a) -> tuple:
    """Option errors found before any work (FaderError); fills in the defaults that depend on others.
    Returns (the --init / --continue model or None, the data of a run not resumed, opened here).
    What needs no torch is checked first, the data included: a refused command is answered at
    once, not after the second or two torch takes to load (on every rank under torchrun)."""
    from core.errors import FaderError
    if not a.data:
        raise FaderError(_missing_data(a))
    if not a.out:
        raise FaderError("--out is required")
    # the run folder first: a new run's command given again on its folder heard "give --steps N"
    # and only with --steps that the folder already holds a run
    check_run_folder(Path(a.out))
    from core.run_files import CHECKPOINT_NAME   # not .trainer's: it loads torch
    if not a.resume and (Path(a.out) / CHECKPOINT_NAME).exists():
        raise FaderError(holds_a_run(a.out))
    if a.steps is not None and a.epochs is not None:
        raise FaderError("give either --steps or --epochs, not both")
    if a.steps is None and a.epochs is None and not a.resume:
        raise FaderError("give --steps N or --epochs N")
    if sum(map(bool, (a.resume, a.init, a.continue_from))) > 1:
        raise FaderError("--resume continues a run folder, --continue a model's training in a new folder, "
                         "--init starts a new one from a model: give only one")
    if a.fresh_discriminators and not a.continue_from:
        raise FaderError("--fresh-discriminators goes with --continue MODEL")
    _check_numbers(a)
    _check_out_outside_data(a)
    if a.classifier:
        _check_regular_file("--classifier", a.classifier)
    if a.clf_weight:
        _parse_clf_weights(a.clf_weight, None)  # the syntax now, the names once the data is known
    if not (a.dist_timeout > 0 and math.isfinite(a.dist_timeout)):
        raise FaderError(f"--dist-timeout must be positive, got {a.dist_timeout}")
    opened = _open_data(a)
    # torch from here on
    init_model = _load_init_model(a.init or a.continue_from) if a.init or a.continue_from else None
    if a.continue_from:
        _check_recorded_recipe(_recorded_training(init_model, a)[0], a)
    _check_architectures(a, init_model)
    if a.n_clf_dis is None:
        a.n_clf_dis = 1 if a.lambda_clf_dis > 0 else 0
    if a.n_critic is None and _critic_terms_asked(a):
        a.n_critic = 1
    return init_model, opened


def _open_data(a):
    """The data of a run not resumed, opened as _load_data would, but before torch loads (the
    model-file limits of its attributes, which need it, are checked there). A resumed run's data
    are opened once its checkpoint is read (its attributes choose the columns): here only the
    paths and the --attr list are checked, and only where the checkpoint is there (a folder
    without one is refused for that first, as before). None for a resumed run."""
    from core.run_files import CHECKPOINT_NAME
    from .datasets import check_sources, open_dataset
    if a.resume:
        if (Path(a.out) / CHECKPOINT_NAME).exists():
            check_sources(a.data, a.attr)
        return None
    return open_dataset(a.data, a.attr, every_column=a.attr is None and bool(a.continue_from), model_limits=False)


def _check_regular_file(option: str, path) -> None:
    """An input file option names a regular file (a fifo or a device would block or fail late)."""
    from core.errors import FaderError
    p = Path(path).expanduser()
    if not p.exists():
        raise FaderError(f"{option} {path}: no such file" + (" (a symbolic link to a missing target)"
                                                             if p.is_symlink() else ""))
    if not p.is_file():
        raise FaderError(f"{option} {path}: not a regular file")


# ArchConfig fields as the options that set them, for the networks' own validation messages.
_AE_OPTIONS = {"img_size": "--img-size", "init_fm": "--init-fm", "max_fm": "--max-fm", "n_layers": "--n-layers",
               "n_skip": "--n-skip", "dec_min_fm": "--dec-min-fm", "deconv_method": "--deconv-method",
               "instance_norm": "--instance-norm", "dec_dropout": "--dec-dropout",
               "lat_dis_dropout": "--lat-dis-dropout", "hid_dim": "--hid-dim"}


def _validate_arch(cfg, what: str, options: dict, given: set) -> None:
    """cfg.validate() (core.networks' rules, not a copy of them), its message followed by the
    option that sets each field it names, with that field's value (and whether it defaulted)."""
    import re
    from core.errors import FaderError
    try:
        cfg.validate()
    except FaderError as e:
        msg = str(e).removeprefix("invalid architecture: ")
        named = dict.fromkeys(re.findall(r"\b(" + "|".join(options) + r")\b", msg))
        parts = []
        for f in named:
            opt = options[f]
            if opt.startswith("--"):
                dflt = "" if opt[2:].replace("-", "_") in given else " by default"
                parts.append(f"{f} is {opt} {getattr(cfg, f)}{dflt}")
            else:   # not an option: a fixed part of the network
                parts.append(f"{f} is {opt}")
        raise FaderError(f"invalid {what}: {msg}" + (f" ({'; '.join(parts)})" if parts else "")) from None


def _check_architectures(a, init_model) -> None:
    """Every network's architecture the options set, validated before any work or any file is
    written (the networks themselves are built after the run folder and the classifier)."""
    from .evaluation import classifier_config
    size = a.img_size or (init_model.image_size if init_model is not None else _default_img_size(a.data))
    if a.resume:   # the run's own (a --dec-min-fm widening is checked as the checkpoint is read)
        pass
    elif init_model is None:
        _validate_arch(_arch_from_options(a, size, 1), "architecture", _AE_OPTIONS, a.given)
    else:
        c = init_model.config
        _validate_arch(_init_arch(a, init_model, 1), f"architecture for {'--init' if a.init else '--continue'}",
                       {"n_skip": "--n-skip", "n_layers": f"the model's, {c.n_layers}",
                        "img_size": f"the model's, {c.img_size}"}, a.given)
    if not a.classifier:
        # its first layer's width is fixed: only --classifier-max-fm (and the size) can make it invalid
        _validate_arch(classifier_config(size, 1, a.classifier_max_fm), "evaluation classifier architecture",
                       {"max_fm": "--classifier-max-fm", "init_fm": "its first layer's width, fixed",
                        "img_size": "--img-size"}, a.given)


def _init_arch(a, init_model, n_attr: int):
    """The --init / --continue model's architecture for this run: its own, with n_attr and --n-skip."""
    from core.errors import FaderError
    from core.networks import ArchConfig
    old_skip = init_model.config.n_skip
    if a.n_skip is not None and a.n_skip < old_skip:
        raise FaderError(f"--n-skip {a.n_skip}: the --init model has {old_skip} skip connections; "
                         "fine-tuning can add skip connections, not remove them")
    if a.dec_min_fm not in (None, init_model.config.dec_min_fm):
        raise FaderError("--dec-min-fm with --init/--continue: widen a run's decoder with --resume instead")
    n_skip = old_skip if a.n_skip is None else a.n_skip
    return ArchConfig(**{**init_model.config.to_dict(), "n_attr": n_attr, "n_skip": n_skip})


def _default_img_size(data) -> int:
    """A new run's resolution when --img-size is not given: packs' own (crops made at that size,
    not resampled: a 128 px pack trained at 64 px before), else 64."""
    from core.errors import FaderError
    from .packfile import PACK_SUFFIX, open_pack
    packs = [Path(d) for d in (data or []) if Path(d).suffix.lower() == PACK_SUFFIX and Path(d).is_file()]
    if not packs or len(packs) != len(data):
        return 64
    try:
        return max(open_pack(p).size for p in packs)
    except FaderError:
        return 64   # an unreadable pack is reported, with its name, where the data is opened


def _arch_from_options(a, img_size: int, n_attr: int):
    from core.networks import ArchConfig
    n_layers = a.n_layers or max(1, int(math.log2(img_size)) - 2)
    return ArchConfig(img_size=img_size, init_fm=a.init_fm, max_fm=a.max_fm, n_layers=n_layers,
                      n_skip=a.n_skip or 0, deconv_method=a.deconv_method, instance_norm=a.instance_norm,
                      dec_dropout=a.dec_dropout, lat_dis_dropout=a.lat_dis_dropout, hid_dim=a.hid_dim,
                      n_attr=n_attr, dec_min_fm=a.dec_min_fm or 0)


def _check_out_outside_data(a) -> None:
    """A run folder inside a --data folder would be read as data by the next run: its previews as
    images of a value named after the run (a labeled folder's attribute grows a value)."""
    from core.errors import FaderError
    out = Path(a.out).resolve()
    for d in a.data:
        root = Path(d).resolve()
        if root.is_dir() and (out == root or root in out.parents):
            raise FaderError(f"--out {a.out} is inside --data {d}: the run's previews would be read as training "
                             "images by the next run; put the run folder elsewhere")


def _checkpoint_to_resume(a, run_dir: Path, say) -> Optional[dict]:
    """The checkpoint --resume continues (None for a new run, which must not find one)."""
    from core.errors import FaderError
    from .trainer import CHECKPOINT_NAME, load_checkpoint
    ckpt_path = run_dir / CHECKPOINT_NAME
    if a.resume:
        if not ckpt_path.exists() and (run_dir / RUN_MARKER).is_file():
            # stopped before its first checkpoint (while training its evaluation classifier): nothing
            # to lose, so the run starts again in its own folder
            if a.steps is None and a.epochs is None:
                raise FaderError(f"{run_dir}: the run stopped before its first checkpoint; start it again with "
                                 "the same options and --steps or --epochs (without --resume)")
            say(f"{PROG}: {run_dir}: the run stopped before its first checkpoint; starting it again")
            a.resume = False
            return None
        return load_checkpoint(ckpt_path)
    if ckpt_path.exists():
        raise FaderError(holds_a_run(run_dir))
    return None


# What a run's metadata (training.aligned_by) says of its crops, by its --align.
ALIGNED_BY = {True: "face detection + alignment", False: "input framing (CelebA crop)"}


def _align_as_the_run(a, ck, say) -> None:
    """A resumed run makes its crops as it did at its start: --align is the run's own (recorded in
    its checkpoint), whatever the command line says; a difference is said. (Only the file names
    were compared: a run started with --align and resumed without it trained on the photos
    resized whole.)"""
    try:
        recorded = (json.loads(ck.get("meta_json") or "{}").get("training") or {}).get("aligned_by")
    except (ValueError, AttributeError):
        return
    own = next((k for k, v in ALIGNED_BY.items() if v == recorded), None)
    if own is None or own == bool(a.align):
        return
    if own:
        say(f"{PROG}: the run was started with --align: its faces are detected and aligned again (--align kept)")
    else:
        say(f"{PROG}: --align ignored: the run was started without it and trains on its images' own framing")
    a.align = own


@dataclass
class _Data:
    """What the run trains on: the data set, its labels, the split and the preprocessed images."""

    ds: object
    dropped: int
    attrs: list
    labels: np.ndarray
    pseudo: list                 # attributes labelled by the --init model's classifier
    init_model: object
    clf_weights: Optional[dict]
    img_size: int
    init_path: Optional[str]     # --init or --continue
    train_idx: np.ndarray
    val_idx: np.ndarray
    paths: list
    cache: object
    skipped: list = None         # lines of RUN_DIR/skipped.txt (rank 0)
    split: object = None         # datasets.SplitParams the split was drawn with (recorded in the model)


def _load_data(a, ck, init_model, run_dir: Path, device, dist, quiet: bool, say,
               done_steps: Optional[int] = None, opened=None) -> Optional[_Data]:
    """Open the data, check it against --init and the checkpoint, split it and preprocess it.
    `opened`: the data as _check_options opened them (a run not resumed). None: the resumed run is
    already at `done_steps` and the data are its own (said; nothing to do)."""
    from core.attributes import Attribute, quoted
    from core.errors import FaderError
    from .cache import open_cache
    from .datasets import (SPLIT_BY_VALUE, check_model_limits, check_val_size, exclude_images, model_spelling,
                           open_dataset, recorded_split, split_dataset)
    init_path = a.init or a.continue_from
    # a resumed or continued run trains its own attributes (below): other columns are not refused
    if opened is not None and ck is None:
        ds = opened
        check_model_limits(ds, a.data)
    else:
        ds = open_dataset(a.data, a.attr, every_column=a.attr is None and (ck is not None or bool(a.continue_from)))
    if ck is not None and a.attr is None:   # a resumed run trains its own attributes, as --continue below
        own = {x["name"] for x in ck["attributes"]}
        kept = [x.name for x in ds.attributes if x.name in own]
        if kept and len(kept) < len(ds.attributes):
            ds = open_dataset(a.data, ",".join(kept))
    if a.continue_from and a.attr is None:
        # a continued model trains its own attributes: the data's others are left out, not added
        # (CelebA's file lists 40; a continuation cannot grow the model)
        own = {m.name for m in init_model.attributes}
        kept = [x.name for x in ds.attributes if x.name in own]
        if kept and len(kept) < len(ds.attributes):
            say(f"{PROG}: --continue trains the model's attributes {quoted(kept)} of the data's {len(ds.attributes)}")
            ds = open_dataset(a.data, ",".join(kept))
    for note in ds.notes:
        say(f"{PROG}: warning: {note}")
    dropped = 0
    if a.exclude:
        ds, dropped = exclude_images(ds, a.exclude)
        say(f"{PROG}: --exclude left out {counted(dropped, 'image')}")
    attrs = list(ds.attributes)
    labels = ds.labels
    if init_model is not None or ck is not None:
        model_names = [m.name for m in init_model.attributes] if init_model is not None else \
            [x["name"] for x in ck["attributes"]]
        attrs = model_spelling(attrs, model_names, "model" if ck is None else "run",
                               lambda m: say(f"{PROG}: {m}"))
        ref = init_model.attributes if init_model is not None else \
            [Attribute.from_dict(x) for x in ck["attributes"]]
        attrs, labels = _model_values(attrs, labels, ref, "model" if ck is None else "run", say)
    pseudo, order = [], []
    if init_model is not None:
        # The model's attributes come first, in its order; attributes the data lacks are labelled
        # by the model's own classifier (so fine-tuning on a folder of one attribute keeps the rest).
        by_name = {x.name: i for i, x in enumerate(attrs)}
        for ma in init_model.attributes:
            if ma.name in by_name and attrs[by_name[ma.name]].values != ma.values:
                raise FaderError(f"--init: attribute {ma.name!r} has values {quoted(ma.values)} in the model but "
                                 f"{quoted(attrs[by_name[ma.name]].values)} in the data; name the data's values as the "
                                 f"model's (value folders or CSV labels {' / '.join(ma.values)}), or train it as a "
                                 f"new attribute under another name")
        pseudo = [ma for ma in init_model.attributes if ma.name not in by_name]
        if pseudo and init_model.classifier is None:
            raise FaderError(f"--init: the data lacks {quoted(x.name for x in pseudo)} and the model has no classifier to label them")
        order = [x.name for x in init_model.attributes] + [x.name for x in attrs if x.name not in {m.name for m in init_model.attributes}]
    resumed = _ResumedLabels(ck, attrs, run_dir) if ck is not None else None
    if resumed is not None:
        pseudo = resumed.pseudo
    clf_weights = _parse_clf_weights(a.clf_weight, [x.name for x in attrs] + [x.name for x in pseudo]) \
        if a.clf_weight else None
    img_size = a.img_size or (init_model.image_size if init_model else
                              (int(ck["arch"]["img_size"]) if ck else _default_img_size(a.data)))
    if init_model is not None and img_size != init_model.image_size:
        raise FaderError(f"--img-size {img_size} differs from the --init model's {init_model.image_size}: a model is "
                         f"fine-tuned at its own size; leave --img-size out (or give {init_model.image_size})")
    if ck is not None and img_size != int(ck["arch"]["img_size"]):
        raise FaderError(f"--img-size {img_size} differs from the checkpoint's {ck['arch']['img_size']}")
    # a resumed run draws its split by its own rule, seed and --val-size (one started before the split
    # by value: by hash)
    split = _split_params(a, ck, init_model if a.continue_from else None)
    by_value = split.rule == SPLIT_BY_VALUE
    if by_value and (ck is None or not (run_dir / "val_files.txt").is_file()):
        check_val_size(ds, split.val_size)   # before preprocessing: refused at once
    train_idx, val_idx = split_dataset(ds, split.val_size, split.seed, rule=split.rule)
    kept_val = ""
    if ck is not None and (run_dir / "val_files.txt").is_file():
        # A resumed run keeps the validation images it was selecting on, however they would be drawn now.
        listed = (run_dir / "val_files.txt").read_bytes().decode("utf-8", "surrogateescape")  # names as written
        rec = recorded_split(ds, listed.splitlines())
        if rec is not None:
            train_idx, val_idx = rec
            kept_val = " (the run's own, from val_files.txt)"
    paths = [it.path for it in ds.items]
    # the split is said once preprocessing has found the unusable images, with the counts trained on
    say(f"{PROG}: {ds.description}; attributes {quoted(x.name for x in attrs)}; {counted(len(paths), 'image')}")
    if ck is not None and (_check_same_files(ck, run_dir, paths, ds) or _same_split(ck, paths, train_idx, val_idx)) \
            and _already_there(ck, done_steps, say):
        return None   # the data are the run's (checked first: other data must not read as "finished")
    # before preprocessing, which whole photos would make the user wait for (and leave in the cache)
    if a.align and (reason := _detector_unavailable()):
        # it aligns every image with the detector: without it each was skipped as "ModelFileError"
        raise FaderError(f"--align needs the face detector, which cannot be loaded: {reason} "
                         f"(reinstall the app, or give face crops without --align)")
    _check_framed_photos(a, paths, say, resumed=ck is not None, kind=ds.kind)
    cache_dir = _cache_dir(a, ck, run_dir, say)
    build_cache = lambda: open_cache(paths, img_size, a.align, cache_dir, a.workers, progress=not quiet,  # noqa: E731
                                     log=lambda s: say(f"{PROG}: preprocessing: {s}"))
    cache = build_cache() if dist is None else dist.build_once("preprocessing", build_cache)
    skipped = []
    if cache.skipped:
        if dist is None or dist.is_main:   # written by _prepare_run_folder, once the folder is locked
            skipped = _skipped_images(cache, paths, a.align)
            # the reasons as read now (a cache built by an earlier version counted them all 'unreadable')
            cache.skipped = dict(Counter(x.split("\t", 1)[1] for x in skipped))
        say(f"{PROG}: skipped {counted(sum(cache.skipped.values()), 'image')}: "
            + "; ".join(f"{v} × {k}" for k, v in sorted(cache.skipped.items())))
    how = "reused" if cache.reused else "built"
    if cache.n_reused:
        how += f"; reused {cache.n_reused} of {len(paths)} images from earlier preprocessing"
    say(f"{PROG}: preprocessing cache {cache.path} ({how})")
    _check_framing(a, cache, len(paths))
    try:
        if not kept_val and by_value:   # each value's share of validation images among the usable ones
            check_val_size(ds, split.val_size, cache.valid)
            train_idx, val_idx = split_dataset(ds, split.val_size, split.seed, usable=cache.valid, rule=split.rule)
        train_idx = train_idx[cache.valid[train_idx]]
        val_idx = val_idx[cache.valid[val_idx]]
        say(_split_line(ds, attrs, labels, train_idx, val_idx, kept_val, int((~cache.valid).sum())))
        if a.continue_from and ck is None:
            _warn_validating_on_trained(a, ds, paths, val_idx, split, say)
        if len(train_idx) < 2 or len(val_idx) < 1:
            raise FaderError(f"{a.data[0]}: too few usable images ({len(train_idx)} train, {len(val_idx)} validation)"
                             + ("" if split.val_size is None else f" with --val-size {split.val_size}"))
        _check_every_value_seen(a, attrs, labels, train_idx, val_idx, say)
    except FaderError as e:   # the run stops before its folder (and skipped.txt) is written: name them here
        if not skipped:
            raise
        shown = ", ".join("{} ({})".format(*x.split("\t", 1)) for x in skipped[:5])
        raise FaderError(f"{e}; skipped: {shown}" + (f", … ({len(skipped)} in all)" if len(skipped) > 5 else "")) from None
    if ck is None and not a.continue_from and a.batch_size > len(train_idx):  # --continue: in _configure
        # a batch larger than the data only repeats images, at the memory cost of its full size
        say(f"{PROG}: --batch-size {a.batch_size} is more than the {len(train_idx)} training images; using {len(train_idx)}")
        a.batch_size = len(train_idx)
    if init_model is not None:
        attrs, labels = _init_model_labels(init_model, attrs, labels, order, pseudo, cache, paths, device, say)
    if resumed is not None:
        attrs, labels = resumed.labels(ds, labels, cache, paths, device, say, np.union1d(train_idx, val_idx))
    return _Data(ds, dropped, attrs, labels, pseudo, init_model, clf_weights, img_size, init_path, train_idx,
                 val_idx, paths, cache, skipped, split)


_ALIGN_FIX = "add --align (in the training window: 'Detect and align faces'), which finds and aligns each face"


def _split_params(a, ck, init_model=None):
    """The run's split (datasets.SplitParams): a new run's by the current rule, --seed and
    --val-size; a --continue run's as the model records its split (rule, seed, val size), each
    unless given (a model that records none: its recipe's seed); a resumed run's as its checkpoint records them (one started before they were
    recorded: its rule, none being the hold-out by hash, with the command line's --seed and
    --val-size)."""
    from .datasets import SPLIT_BY_VALUE, SplitParams, recorded_split_params, recorded_split_rule
    if ck is None and a.continue_from and init_model is not None:
        # a continuation keeps the model's split where --seed / --val-size are not given: drawn
        # with seed 0 it validated on images the model had trained on
        tr = (init_model.meta or {}).get("training") or {}
        rec = recorded_split_params(tr)
        hp_seed = (tr.get("hyper_parameters") or {}).get("seed")
        seed = a.seed if "seed" in a.given else (rec.seed if rec else hp_seed if isinstance(hp_seed, int) else a.seed)
        size = a.val_size if "val_size" in a.given or rec is None else rec.val_size
        return SplitParams(rec.rule if rec else recorded_split_rule(tr), seed, size)
    if ck is None:
        return SplitParams(SPLIT_BY_VALUE, a.seed, a.val_size)
    tr = json.loads(ck.get("meta_json") or "{}").get("training") or {}
    return recorded_split_params(tr) or SplitParams(recorded_split_rule(tr), a.seed, a.val_size)


def _warn_validating_on_trained(a, ds, paths, val_idx, split, say) -> None:
    """A --continue run whose validation images include some the model trained on (its run folder's
    train_files.txt; another --seed or --val-size, or other data) says how many: its validation
    figures and best-model choice would flatter it there."""
    from .datasets import listed_keys, split_key
    listed = Path(a.continue_from).parent / "train_files.txt"
    given = " and ".join(f"{o} {v}" for o, k, v in (("--seed", "seed", a.seed), ("--val-size", "val_size", a.val_size))
                         if k in a.given)
    try:
        lines = listed.read_bytes().decode("utf-8", "surrogateescape").splitlines()
    except OSError:
        if given:
            say(f"{PROG}: warning: {given} draws another split than the model's; some validation images may be "
                f"images it trained on ({listed} is not there to tell); leave {given} out to keep its split")
        return
    trained = set(listed_keys(ds, lines))
    n = sum(split_key(ds, paths[i]) in trained for i in val_idx)
    if n:
        why = f"with {given} the split differs from the model's; leave it out to keep the model's split" if given \
            else "the data differ from the model's"
        say(f"{PROG}: warning: {n} of the {len(val_idx)} validation images are images the model trained on "
            f"(by {listed}); its validation figures will read too well ({why})")


def _split_line(ds, attrs, labels, train_idx, val_idx, kept_val: str, n_skipped: int) -> str:
    """The split as trained on: usable images only (the skipped ones said), and for a user's data of
    a few attributes each value's validation images ('validation: Smiling no 2, yes 2')."""
    from .datasets import user_data
    line = f"{PROG}: {len(train_idx)} train / {len(val_idx)} validation images{kept_val}"
    if n_skipped:
        line += f", not counting the {n_skipped} skipped"
    if user_data(ds) and len(attrs) <= 4:
        per = []
        for j, x in enumerate(attrs):
            n_val = np.bincount(labels[val_idx, j], minlength=x.n)
            per.append(f"{x.name} " + ", ".join(f"{label} {n_val[v]}" for v, label in enumerate(x.values)))
        line += "; validation: " + "; ".join(per)
    return line


def _check_framing(a, cache, n: int) -> None:
    """Whole photos given without --align are refused before they train as faces when most images
    are neither square nor 178:218 (the few that happen to be would train as faces: 3 of 61 photos
    did, a body shot among them); square ones are looked at before preprocessing
    (_check_framed_photos)."""
    from core.errors import FaderError
    from .datasets import NOT_ALIGNED
    if a.align:
        return
    bad = cache.skipped.get(NOT_ALIGNED, 0) if cache.skipped else 0
    if bad * 2 > n:
        raise FaderError(f"{a.data[0]}: {bad} of the {n} images are not aligned face crops (neither square nor "
                         f"framed like CelebA's 178x218): for whole photos {_ALIGN_FIX}")


# How the check names the images of each framing, where their aligned crop has the face, and why
# they are taken as crops
_FRAMED = {"square": ("square images", "eyes level across the middle, the face filling most of the frame", ""),
           "celeba": ("images of CelebA's 178x218 shape", "eyes level at mid-height, the face about half the width",
                      "images of that shape (within 2.5 %: 4:5 portraits such as 1080x1350 too) are cropped as CelebA's "
                      "aligned images are; ")}


def _detector_unavailable() -> Optional[str]:
    """Why the face detector cannot be loaded (its files moved or damaged; the first line of the
    error), or None where it loads."""
    from core.errors import FaderError
    try:
        from core.faces import shared_detector
        shared_detector()
    except (ImportError, FaderError) as e:
        return (str(e).splitlines() or [type(e).__name__])[0]
    return None


def _check_framed_photos(a, paths, say, resumed: bool = False, kind: str = "") -> None:
    """Without --align, refuse whole photos that load_training_crop would take as face crops by
    their shape: square ones (1080x1080 crops of half-body photos) and those within CelebA's
    178x218 aspect (4:5 portraits, 1080x1350), when most of a sample of them show a face, but not
    where an aligned crop of that framing has it. A few such images, or images without a face
    found, are a warning, and so is the refusal's case on --resume (a run started before this check
    goes on). The images of a CelebA layout (`kind` "celeba": its img_align_celeba folders) are
    CelebA's aligned set: their framing is not looked at. Where the face detector cannot be loaded
    (its files moved or damaged) the check is skipped with a warning."""
    from core.errors import FaderError
    if a.align:
        return
    def some(x):
        return ", ".join(Path(p).name for p in x[:3]) + (", …" if len(x) > 3 else "")
    found = _framed_images(paths)
    todo = [f for f in _FRAMED if found[f] and not (f == "celeba" and kind == "celeba")]
    if not todo:
        return
    reason = _detector_unavailable()
    if reason:   # the check is advice: without the detector's files (moved, damaged) the run trains as it did
        say(f"{PROG}: warning: the {' and '.join(_FRAMED[f][0] for f in todo)} were not checked for being whole "
            f"photos rather than face crops: the face detector cannot be loaded ({reason})")
        return
    for framing in todo:
        noun, where, why = _FRAMED[framing]
        looked, elsewhere, faceless = _framed_faces(paths, framing, found[framing])
        # whole photos put the face elsewhere in 89 % of them, aligned crops in none of 1,800 (_framed_faces)
        if len(elsewhere) >= 3 and len(elsewhere) * 2 > len(looked) and not resumed:
            raise FaderError(f"{a.data[0]}: these look like whole photos, not face crops: in {len(elsewhere)} of the "
                             f"{len(looked)} {noun} looked at ({some(elsewhere)}) the face is not where an aligned "
                             f"crop has it ({where}); {why}for whole photos {_ALIGN_FIX}")
        off = elsewhere + faceless
        if len(off) >= max(3, math.ceil(0.1 * len(looked))):
            what = [f"{len(elsewhere)} with the face elsewhere than an aligned crop has it"] if elsewhere else []
            what += [f"{len(faceless)} without a face found"] if faceless else []
            say(f"{PROG}: warning: {len(off)} of the {len(looked)} {noun} looked at may not be face crops "
                f"({' and '.join(what)}: {some(off)}); they are trained as they are; {why}if they are whole "
                f"photos, {_ALIGN_FIX}")


def _framed_images(paths) -> dict:
    """{framing: paths} of the images load_training_crop would crop by their shape
    (datasets.framing_of: "square", "celeba"), among up to 300 spread over the data (a labeled
    folder lists its values in turn), upright (EXIF orientation, as they are read); only the
    headers are read, and a pack's crops (made by its own alignment) are left out."""
    from PIL import Image
    from .datasets import framing_of
    from .packfile import split_member
    found: dict = {"square": [], "celeba": []}
    for i in np.unique(np.linspace(0, len(paths) - 1, min(len(paths), 300)).astype(int)) if paths else []:
        if split_member(paths[i]) is not None:
            continue
        try:
            with Image.open(paths[i]) as im:
                w, h = im.size
                if im.getexif().get(0x0112) in (5, 6, 7, 8):   # a phone photo stored sideways, read upright
                    w, h = h, w
        except Exception:   # what Pillow cannot read, the cache has read its own way
            continue
        framing = framing_of(w, h)
        if framing is not None:
            found[framing].append(paths[i])
    return found


def _framed_faces(paths, framing: str = "square", candidates=None) -> tuple:
    """(images looked at, those with a face but none where an aligned crop has it, those with no
    face found), of up to 30 usable images of `framing` ("square", or "celeba": CelebA's 178x218
    shape, 4:5 portraits included) spread over `candidates` (default: _framed_images(paths)); the
    first 10 (spread too) end the look when none of them is off, or none has a face. Each is
    searched for faces of 40 px and more at 224 px across, and at up to 672 px where none was found
    (a small face in a big photo). A face is where an aligned crop has it when its five landmarks lie
    on average within a tenth of the width of the CelebA template's, as load_training_crop's crop
    places them (square: the whole image is the template's crop box; celeba: the whole image is its
    178x218 frame, scaled to the image across and down). Measured with bench/training_framing.py:
    of 300 img_align_celeba and 300 img_align_celeba_from_wild crops cut square (at 178, 256 and
    1024 px) none had its face elsewhere (the largest distance 0.064) and 3 of the 1,800 none found;
    of 500 img_celeba photos centre-cropped square (at their size and at 1080 px) 89 % had their
    face elsewhere, 5 % none found; figures of the CelebA framing in docs/training.md."""
    import cv2
    from core.alignment import CELEBA_TEMPLATE
    from core.faces import detect_faces
    from .datasets import read_rgb
    if candidates is None:
        candidates = _framed_images(paths)[framing]
    spread = np.unique(np.linspace(0, len(candidates) - 1, min(30, len(candidates))).astype(int))
    picked = [candidates[k] for k in spread]
    picked = picked[0::3] + picked[1::3] + picked[2::3]
    box = CELEBA_TEMPLATE.crop_box if framing == "square" else (0.0, 0.0, *CELEBA_TEMPLATE.frame)
    side = 224
    looked, elsewhere, faceless = [], [], []
    for path in picked:
        if len(looked) == 10 and (not elsewhere + faceless or len(faceless) == 10):
            break
        rgb, _ = read_rgb(path)
        if rgb is None:
            continue
        looked.append(path)
        h, w = rgb.shape[:2]
        for width in dict.fromkeys((side, max(side, min(3 * side, w)))):
            height = max(1, round(width * h / w))
            resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if w > width else cv2.INTER_CUBIC)
            faces = detect_faces(resized, min_size=40)
            if faces:
                break
        if not faces:
            faceless.append(path)
            continue
        # the template's landmarks where the crop puts them, in this image's pixels (pixel centres)
        scale = np.array([width / (box[2] - box[0]), height / (box[3] - box[1])])
        template = (CELEBA_TEMPLATE.landmarks.astype(np.float64) + 0.5 - box[:2]) * scale - 0.5
        if min(np.linalg.norm(f.landmarks - template, axis=1).mean() for f in faces) > 0.1 * width:
            elsewhere.append(path)
    return looked, elsewhere, faceless


def _check_same_files(ck, run_dir: Path, paths: list, ds) -> bool:
    """A resumed run's data must be the run's: checked before any preprocessing against the images
    its train_files.txt and val_files.txt list (by their paths inside the data, so moved data
    passes) and the number it had, so the error can say what changed and how to go on (the
    cache-key check after preprocessing remains for what this cannot tell). True: the data are the
    run's; False: this cannot tell (CelebA, packs, a run of an earlier version)."""
    from core.errors import FaderError
    from .datasets import split_key, user_data
    tr = (json.loads(ck.get("meta_json") or "{}").get("training") or {})
    skipped = tr.get("skipped") or {}
    counts = (tr.get("n_train"), tr.get("n_val"), sum(skipped.values()) if isinstance(skipped, dict) else None)
    if not user_data(ds) or not all(isinstance(n, int) for n in counts):
        return False   # CelebA and packs hold images of other splits, in neither list; an old run lacks the counts
    listed = []
    for name in ("train_files.txt", "val_files.txt"):
        try:
            listed += (run_dir / name).read_bytes().decode("utf-8", "surrogateescape").splitlines()
        except OSError:
            return False
    keys = {split_key(ds, p) for p in paths}

    def present(line: str) -> bool:
        parts = Path(line.strip()).as_posix().split("/")
        return any("/".join(parts[i:]) in keys for i in range(len(parts)))
    removed = sum(1 for line in listed if line.strip() and not present(line))
    added = max(0, len(paths) - (sum(counts) - removed))
    if not (added or removed):
        return True
    what = " and ".join(x for x in (f"{counted(added, 'image')} added" if added else "",
                                    f"{removed} removed or renamed" if removed else "") if x)
    raise FaderError(f"{run_dir}: the data differ from the run's ({what} since the run started); resume with the "
                     f"run's --data as it was, or train the run's model further on the new data in a new run "
                     f"folder: --continue {run_dir / 'model.fader'} --steps TOTAL --out NEW_RUN_DIR")


def _same_split(ck, paths: list, train_idx, val_idx) -> bool:
    """Whether the split, before any image is preprocessed, is the run's by _configure's rule (the
    training files' names and both counts as recorded): so on CelebA and packs, whose images of
    other splits _check_same_files cannot count, when the run skipped none of its images."""
    from .datasets import train_files_sha1
    tr = (json.loads(ck.get("meta_json") or "{}").get("training") or {})
    return (tr.get("n_train") == len(train_idx) and tr.get("n_val") == len(val_idx)
            and tr.get("train_files_sha1") == train_files_sha1(paths, train_idx))


# Spellings of the two values of a yes/no attribute: the data's and a model's match across them.
def _yes_no_sides(values) -> Optional[list]:
    """0 or 1 for each of two values as the data's labels order them (datasets._order_values: the
    one that reads as "no" is 0), or None where neither or both read so. Where none reads as "no"
    and one as "yes", the first is 0 as the loader takes it (and warns): `1`/`2` is 1 -> 0, 2 -> 1,
    though '1' alone reads as "yes" (read so, 1/2 data of 1 = not smiling trained flipped)."""
    from .datasets import _negative, _positive
    neg = _negative(values)
    if len(values) == 2 and len(neg) == 1:
        return [0 if v in neg else 1 for v in values]
    pos = [_positive(v) for v in values]
    return [0, 1] if len(values) == 2 and sum(pos) == 1 else None


def _model_values(attrs, labels, ref_attrs, whose: str, say) -> tuple:
    """(attributes, labels) with each of the data's attributes that the model (or run) has spelled as
    there, its labels renumbered to the model's order, where the values differ only in letter case
    (`No`/`Yes` for `no`/`yes`) or both are two yes/no-like values (true/false, 1/0 for no/yes).
    Attributes that still differ are left as they are: the caller refuses them."""
    from dataclasses import replace
    ref = {x.name: x for x in ref_attrs}
    attrs, labels = list(attrs), labels.copy()
    for j, x in enumerate(attrs):
        m = ref.get(x.name)
        if m is None or x.values == m.values or len(x.values) != len(m.values):
            continue
        lower = {v.lower(): i for i, v in enumerate(m.values)}
        if len(lower) == len(m.values) and all(v.lower() in lower for v in x.values):
            perm = [lower[v.lower()] for v in x.values]
        elif len(m.values) == 2:
            # the same words as the data's own ordering: no_Eyeglasses/yes_Eyeglasses, as the
            # warning about unclear values advises, was refused by a narrower list of its own
            ms, xs = _yes_no_sides(m.values), _yes_no_sides(x.values)
            if ms is None or xs is None:
                continue
            perm = [ms.index(k) for k in xs]
        else:
            continue
        if len(set(perm)) != len(perm):
            continue
        labels[:, j] = np.asarray(perm)[labels[:, j]]
        say(f"{PROG}: the data's {x.name} " + ", ".join(f"{v!r} is the {whose}'s {m.values[k]!r}"
                                                       for v, k in zip(x.values, perm)))
        attrs[j] = replace(x, values=m.values)
    return attrs, labels


class _ResumedLabels:
    """A resumed run's attributes and labels, in its checkpoint's order: the data's columns (their
    values checked against the run's: a new or renamed label would index past the run's networks or
    flip its labels silently), and the attributes the --init model's classifier labelled, read back
    from RUN_DIR/pseudo_labels.txt (or, for a run written before that file, labelled again by the
    --init model its metadata names)."""

    def __init__(self, ck, data_attrs, run_dir: Path):
        from core.attributes import Attribute, quoted
        from core.errors import FaderError
        self.run_attrs = [Attribute.from_dict(x) for x in ck["attributes"]]
        self.file = run_dir / PSEUDO_LABELS
        by_name = {x.name: x for x in self.run_attrs}
        for x in data_attrs:
            if x.name not in by_name:
                raise FaderError(f"--resume: the run trains {quoted(by_name)}, not the data's {x.name!r}; "
                                 "resume with the run's --data and --attr")
            if x.values != by_name[x.name].values:
                raise FaderError(f"--resume: {x.name} has values {quoted(x.values)} in the data but "
                                 f"{quoted(by_name[x.name].values)} in the run; resume with the run's data and labels")
        own = {x.name for x in data_attrs}
        self.data_names = [x.name for x in data_attrs]
        self.pseudo = [x for x in self.run_attrs if x.name not in own]
        self.init_model = None
        if self.pseudo and not self.file.is_file():
            init = (json.loads(ck.get("meta_json") or "{}").get("training") or {}).get("init")
            if not init or not Path(init).is_file():
                raise FaderError(f"--resume: the data lacks {quoted(x.name for x in self.pseudo)}, which the --init model "
                                 f"{init} labelled, and neither it nor {self.file} is there")
            self.init_model = _load_init_model(init)

    def labels(self, ds, labels, cache, paths, device, say, used) -> tuple:
        """(attributes, labels) in the run's order. The file labels the images the run used
        (`used`: those it trains and validates on); the others, skipped, get a placeholder value,
        which nothing reads (an image skipped when the run started that is readable now is not
        labelled: an error, as for an image added since)."""
        from core.errors import FaderError
        from .datasets import split_key
        if self.init_model is not None:
            return _init_model_labels(self.init_model, [self.run_attrs[[x.name for x in self.run_attrs].index(n)]
                                                        for n in self.data_names], labels,
                                      [x.name for x in self.run_attrs], self.pseudo, cache, paths, device, say)
        rec, names = {}, []
        if self.pseudo:
            lines = self.file.read_bytes().decode("utf-8", "surrogateescape").splitlines()
            names = lines[0].split("\t")[1:] if lines else []
            rec = {k: v for k, _, v in (ln.partition("\t") for ln in lines[1:])}
        cols = []
        for x in self.run_attrs:
            if x.name in self.data_names:
                cols.append(labels[:, self.data_names.index(x.name)])
                continue
            j = names.index(x.name) if x.name in names else None
            col = np.zeros(len(paths), np.int64)
            try:
                for i in used:
                    col[i] = x.values.index(rec[split_key(ds, paths[i])].split("\t")[j])
            except (KeyError, ValueError, IndexError, TypeError):
                raise FaderError(f"--resume: {self.file} lacks the label of {x.name} for some of the data's images "
                                 f"(e.g. {split_key(ds, paths[i])}); resume with the run's --data") from None
            cols.append(col)
        return list(self.run_attrs), np.stack(cols, 1).astype(np.int64)


def _pseudo_labels_text(data: "_Data") -> bytes:
    """RUN_DIR/pseudo_labels.txt: the labels the --init model's classifier gave, one image a line
    (its path inside the data, a tab, the value labels) for each image the run trains or validates
    on, so that --resume needs neither the model nor its classifier again."""
    from .datasets import split_key
    names = [x.name for x in data.pseudo]
    cols = [[x.name for x in data.attrs].index(n) for n in names]
    rows = ["\t".join(["file", *names])]
    # the images trained or validated on: a skipped one (unreadable, no face) was given no label
    rows += ["\t".join([split_key(data.ds, data.paths[i]), *(data.attrs[j].values[data.labels[i, j]] for j in cols)])
             for i in np.union1d(data.train_idx, data.val_idx)]
    return ("\n".join(rows) + "\n").encode("utf-8", "surrogateescape")


# What a cache built before the loader's reasons were kept says of every image it could not read.
_VAGUE_REASON = "unreadable"


def _skipped_images(cache, paths, align: bool) -> list:
    """The lines of RUN_DIR/skipped.txt: each image preprocessing skipped, a tab, its reason (as the
    cache recorded it; a cache of an earlier version counts reasons only: with more than one kind,
    or an earlier version's vague one, each skipped image is read again to tell)."""
    from .cache import _crop_one
    if getattr(cache, "reasons", None) is not None:
        return [f"{paths[i]}\t{cache.reasons.get(int(i), 'skipped')}" for i in np.flatnonzero(~cache.valid)]
    kinds = list(cache.skipped)
    one = kinds[0] if len(kinds) == 1 and kinds[0] != _VAGUE_REASON else None
    return [f"{paths[i]}\t{one or _crop_one((paths[i], cache.size, align))[1] or 'skipped'}"
            for i in np.flatnonzero(~cache.valid)]


def _check_every_value_seen(a, attrs, labels, train_idx, val_idx, say) -> None:
    """A value without usable training images cannot be learnt (an error); one without validation
    images makes the run's swap accuracy say nothing about it (a warning)."""
    from core.errors import FaderError
    for j, x in enumerate(attrs):
        n_train = np.bincount(labels[train_idx, j], minlength=x.n)
        n_val = np.bincount(labels[val_idx, j], minlength=x.n)
        for v, label in enumerate(x.values):
            if n_train[v] == 0:
                raise FaderError(f"{a.data[0]}: {x.name} = {label!r} has no usable training image "
                                 f"({n_val[v]} in validation; unreadable or faceless images are skipped)")
            if n_val[v] == 0:
                say(f"{PROG}: warning: {x.name} = {label!r} has no validation image ({n_train[v]} for training): "
                    "the run's swap accuracy does not measure it")


def _init_model_labels(init_model, attrs, labels, order, pseudo, cache, paths, device, say) -> tuple:
    """(attributes, labels) in the --init model's order; the attributes the data lacks are labelled
    by the model's classifier."""
    import torch
    from .evaluation import predict_indices, to_input
    # An attribute the model has keeps the model's entry (its tuned slider range), not the data's
    # default one; its values are the model's already (_load_data refuses others).
    own = {m.name: m for m in init_model.attributes}
    cols = []
    for name in order:
        if name in {x.name for x in attrs}:
            j = [x.name for x in attrs].index(name)
            cols.append((own.get(name) or next(x for x in attrs if x.name == name), labels[:, j]))
        else:
            cols.append((own[name], None))
    if pseudo:
        # the model given by --init or --continue (a continued run said "--init")
        say(f"{PROG}: labelling {quoted(x.name for x in pseudo)} with the classifier of the model it starts from")
        clf = init_model.classifier.to(device).eval()
        pred = np.zeros((len(paths), len(init_model.attributes)), np.int64)
        ok = np.flatnonzero(cache.valid)
        with torch.no_grad():
            for s in range(0, len(ok), 256):
                part = ok[s:s + 256]
                pred[part] = predict_indices(clf(to_input(cache.images[part], device)), init_model.attributes).cpu().numpy()
        mnames = [m.name for m in init_model.attributes]
        cols = [(x, c if c is not None else pred[:, mnames.index(x.name)]) for x, c in cols]
    return [x for x, _ in cols], np.stack([c for _, c in cols], 1).astype(np.int64)


def _configure(a, ck, data: _Data, dist, say) -> tuple:
    """(ArchConfig, TrainConfig, step a --continue run starts at or None): the checkpoint's when
    resuming, else from the options and --init (--continue: and the model's recorded recipe)."""
    from .datasets import train_files_sha1
    from core.errors import FaderError
    from core.networks import ArchConfig
    from .trainer import CHECKPOINT_NAME, TrainConfig
    ckpt_path = Path(a.out) / CHECKPOINT_NAME
    attrs, init_model, img_size, train_idx = data.attrs, data.init_model, data.img_size, data.train_idx
    n_attr = sum(x.n for x in attrs)
    if ck is not None:
        arch = ArchConfig.from_dict(ck["arch"])
        if [x["name"] for x in ck["attributes"]] != [x.name for x in attrs]:
            raise FaderError(f"{ckpt_path}: trained attributes {quoted(x['name'] for x in ck['attributes'])} differ from the data's "
                             f"{quoted(x.name for x in attrs)}")
        cfg = TrainConfig(**ck["config"])
        meta_prev = json.loads(ck.get("meta_json") or "{}")
        prev = meta_prev.get("training", {})
        # The cache key also covers modification times, which a copy or a re-sync of the data changes:
        # the same training and validation files (by name and count) are the same data.
        same_files = (prev.get("train_files_sha1") == train_files_sha1(data.paths, train_idx)
                      and prev.get("n_train") == len(train_idx) and prev.get("n_val") == len(data.val_idx))
        if prev.get("cache_key") not in (None, data.cache.key) and not same_files:
            raise FaderError(f"{ckpt_path}: the data differ from the run's (different files or size); resume with "
                             f"the run's --data as it was, or train the run's model further on the new data in a new "
                             f"run folder: --continue {Path(a.out) / 'model.fader'} --steps TOTAL --out NEW_RUN_DIR")
        if a.steps is not None:
            cfg.steps = a.steps
        elif a.epochs is not None:
            cfg.steps = int(math.ceil(a.epochs * len(train_idx) / cfg.batch_size))
        cfg.max_minutes = a.max_minutes  # a fresh budget for this session
        cfg.lr_decay_minutes = a.lr_decay_minutes  # and its decay
        for n in ("eval_every", "ckpt_every", "log_every"):  # the run's own cadence unless given again
            if n in a.given:
                setattr(cfg, n, getattr(a, n))
        _note_ignored_on_resume(a, arch, cfg, say)
    else:
        if init_model is not None:
            arch = _init_arch(a, init_model, n_attr)
        else:
            arch = _arch_from_options(a, img_size, n_attr)
        arch.validate()
        steps = a.steps if a.steps is not None else int(math.ceil(a.epochs * len(train_idx) / a.batch_size))
        cfg = TrainConfig(steps=steps, batch_size=a.batch_size, lr=a.lr, clip_grad_norm=a.clip_grad_norm,
                          lambda_ae=a.lambda_ae, lambda_lat_dis=1e-4 if a.lambda_lat_dis is None else a.lambda_lat_dis,
                          lambda_ptc_dis=a.lambda_ptc_dis,
                          lambda_clf_dis=a.lambda_clf_dis, lambda_schedule=a.lambda_schedule, n_lat_dis=a.n_lat_dis,
                          n_ptc_dis=a.n_ptc_dis, n_clf_dis=a.n_clf_dis, smooth_label=a.smooth_label,
                          flip=not a.no_flip, seed=a.seed, eval_every=a.eval_every, ckpt_every=a.ckpt_every,
                          log_every=a.log_every, max_minutes=a.max_minutes,
                          lr_decay_minutes=a.lr_decay_minutes, psnr_drop=a.psnr_drop, half_export=a.half_export, threads=a.threads)
    continued_at = None
    if a.continue_from:
        cfg, continued_at = _continued_config(init_model, a, a.given, cfg)
        if cfg.batch_size > len(train_idx):   # as a new run's (_load_data), once the recorded recipe is known
            whose = "--batch-size" if "batch_size" in a.given else "the model's recorded batch size"
            say(f"{PROG}: {whose} {cfg.batch_size} is more than the {len(train_idx)} training images; using {len(train_idx)}")
            cfg.batch_size = len(train_idx)
    # A new run's classifier_steps (and how chosen) are set by _evaluation_classifier, which knows
    # whether it trains a classifier; a resumed run keeps its checkpoint's.
    if a.keep_evals:
        cfg.keep_evals = True
    for n in ("amp", "clf_blur", "lambda_edit_tv", "lambda_edit_chroma", "n_critic", "lambda_critic_adv",
              "lambda_critic_attr", "lambda_critic_hold", "single_edits", "critic_width", "lambda_lat_dis", "ema",
              "edit_residual", "lr_decay_start"):
        if getattr(a, n) is not None:
            setattr(cfg, n, getattr(a, n))
    if data.clf_weights is not None:
        cfg.clf_weights = data.clf_weights
    if a.data_on_device:
        cfg.data_on_device = True
    if a.half_export:
        cfg.half_export = True
    if dist is not None and cfg.batch_size % dist.world_size:
        raise FaderError(f"--batch-size {cfg.batch_size} is the global batch: it must be a multiple of the "
                         f"{dist.world_size} processes")
    return arch, cfg, continued_at


def classifier_steps_for(n_train: int, batch_size: int) -> int:
    """The evaluation classifier's steps chosen by data size: CLASSIFIER_EPOCHS epochs of `n_train`
    images at `batch_size`, at most CLASSIFIER_MAX_STEPS."""
    return max(1, min(CLASSIFIER_MAX_STEPS, math.ceil(CLASSIFIER_EPOCHS * n_train / batch_size)))


# Options a resumed run takes from its checkpoint whatever the command line says (its recipe and shape).
_FIXED_ON_RESUME = ("batch_size", "lr", "clip_grad_norm", "lambda_ae", "lambda_ptc_dis", "lambda_clf_dis",
                    "lambda_schedule", "n_lat_dis", "n_ptc_dis", "n_clf_dis", "smooth_label", "seed",
                    "classifier_steps", "psnr_drop", "init_fm", "max_fm", "n_layers", "n_skip", "deconv_method",
                    "instance_norm", "dec_dropout", "lat_dis_dropout", "hid_dim")


def _note_ignored_on_resume(a, arch, cfg, say) -> None:
    """Say which given options a resumed run ignores, with the run's own values."""
    ignored = []
    for n in _FIXED_ON_RESUME:
        if n in a.given:
            own = getattr(cfg, n) if hasattr(cfg, n) else getattr(arch, n, None)
            if own != getattr(a, n):
                ignored.append(f"--{n.replace('_', '-')} {getattr(a, n)} (the run's: {own})")
    if "no_flip" in a.given and cfg.flip:
        ignored.append("--no-flip (the run flips)")
    if a.classifier:   # the run's evaluation classifier is in its checkpoint
        ignored.append(f"--classifier {a.classifier} (the run keeps the classifier it was started with)")
    if ignored:
        say(f"{PROG}: a resumed run keeps its own recipe; ignored: " + ", ".join(ignored))


def _run_meta(a, ck, data: _Data, run_dir: Path, continued_at: Optional[int]) -> dict:
    """The model file's metadata: what was trained on what (the checkpoint's when resuming)."""
    from .datasets import split_description, train_files_sha1, used_description
    ds, attrs, train_idx, val_idx, paths = data.ds, data.attrs, data.train_idx, data.val_idx, data.paths
    train_names = sorted(Path(paths[i]).name for i in train_idx)
    ids_sha = train_files_sha1(paths, train_idx)
    # the images trained and validated on: the skipped (unreadable, faceless) ones are counted in "skipped"
    used = used_description(ds, np.union1d(train_idx, val_idx))
    meta = {
        "name": model_name(run_dir.name, [x.name for x in attrs], data.img_size),
        "description": f"Fader Networks model trained with fader-train on {used}",
        "license": _licence(ds, data.init_model),
        "training": {
            "data": used, "data_kind": ds.kind, "cache_key": data.cache.key,
            "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
            "validation": split_description(ds, val_idx, data.split.rule),
            # read back on --resume (_split_params) and by the evaluation, to draw the split again
            **data.split.record(),
            "train_files_sha1": ids_sha, "train_first_last": [train_names[0], train_names[-1]],
            "skipped": data.cache.skipped, "aligned_by": ALIGNED_BY[bool(a.align)],
            "init": str(data.init_path) if data.init_path else None,
            "continued_from": {"model": str(a.continue_from), "step": continued_at} if a.continue_from else None,
            "excluded": {"sources": [str(x) for x in a.exclude], "images": data.dropped} if a.exclude else None,
            "pseudo_labelled": [x.name for x in data.pseudo],
        },
    }
    if data.init_model is not None and data.init_model.meta.get("mirror_decode"):
        # a model fine-tuned or continued from one decoded with each face's mirror image is decoded
        # so too (the shipped model's +0.5 dB): its fine-tunes lost it without a word
        meta["mirror_decode"] = True
    if ck is not None:
        meta = json.loads(ck.get("meta_json") or "{}") or meta
    return meta


# a run's model names its attributes up to this many; more are counted, as the built-in model's
# name does ("Fader Desktop default (128 px, 5 attributes)"): five names made the window's model
# label and Recent Models cut the name short
NAMED_ATTRIBUTES = 3


def model_name(run: str, attributes, img_size: int) -> str:
    """A run's model name, in the built-in model's form: 'run (64 px, Smiling, Male)', or
    'run (128 px, 5 attributes)' for more than NAMED_ATTRIBUTES (names as given: the CLI's --set
    takes them)."""
    what = ", ".join(attributes) if len(attributes) <= NAMED_ATTRIBUTES else f"{len(attributes)} attributes"
    return f"{run} ({img_size} px, {what})"


def _licence(ds, init_model) -> str:
    """The trained model's terms: its training images', and those of the model it started from."""
    from .trainer import CELEBA_LICENSE
    own = CELEBA_LICENSE if _from_celeba(ds) else "same terms as the training images (user data)"
    base = str((init_model.meta or {}).get("license") or "") if init_model is not None else ""
    if not base or base == own:
        return own
    return f"derived from a model under: {base} -- further trained on images under: {own}"


def _prepare_run_folder(ck, run_dir: Path, given: list, data: _Data, held: dict, say) -> None:
    """Rank 0: check the folder again, lock it, mark it and write the split's file lists."""
    from core.atomic_write import write_bytes_atomic
    from core.errors import FaderError
    from .run_lock import RunLock
    from .trainer import CHECKPOINT_NAME
    check_run_folder(run_dir)  # again: the folder may have filled while the data was read
    held["lock"] = RunLock(run_dir).acquire()  # a second run on this folder gets a clear error
    # a run killed while writing a checkpoint left its temporary file (120 MB at 128 px) behind
    from core.atomic_write import remove_stale_temps
    removed = remove_stale_temps(run_dir)
    if removed:
        say(f"{PROG}: removed {counted(removed, 'temporary file')} that a killed run left in {run_dir}")
    if ck is None and (run_dir / CHECKPOINT_NAME).exists():  # another run finished here meanwhile
        raise FaderError(holds_a_run(run_dir))
    _start_run_folder(run_dir, given, data.cache.path.parent)
    if ck is None:
        for name, idx in (("train_files.txt", data.train_idx), ("val_files.txt", data.val_idx)):
            write_bytes_atomic(run_dir / name, ("\n".join(data.paths[i] for i in idx) + "\n").encode("utf-8", "surrogateescape"))
        if data.pseudo:
            write_bytes_atomic(run_dir / PSEUDO_LABELS, _pseudo_labels_text(data))
    if data.skipped:
        write_bytes_atomic(run_dir / SKIPPED_LIST, ("\n".join(data.skipped) + "\n").encode("utf-8", "surrogateescape"))
        say(f"{PROG}: the skipped images are listed in {run_dir / SKIPPED_LIST}")


def _given_classifier(a, data: _Data):
    """The --classifier model, checked against the run's data before the run folder is written."""
    from core.errors import FaderError
    from core.model_file import load_model
    attrs = data.attrs
    cm = load_model(a.classifier)
    if cm.classifier is None:
        raise FaderError(f"{a.classifier}: has no classifier")
    if [x.to_dict() for x in cm.attributes] != [x.to_dict() for x in attrs] and \
            [(x.name, x.values) for x in cm.attributes] != [(x.name, x.values) for x in attrs]:
        raise FaderError(f"{a.classifier}: its classifier predicts {quoted(x.name for x in cm.attributes)}, the run trains "
                         f"{quoted(x.name for x in attrs)}")
    if cm.image_size != data.img_size:
        raise FaderError(f"{a.classifier}: classifier works at {cm.image_size}px, the run at {data.img_size}px")
    return cm


def _evaluation_classifier(a, data: _Data, cfg, device, meta: dict, quiet: bool, say, given=None):
    """The classifier that measures swap accuracy: --classifier's (`given`, from _given_classifier),
    the --init model's, or one trained now. Records its source and validation accuracy in `meta`."""
    from core.errors import FaderError
    from .evaluation import classifier_accuracy, train_classifier
    attrs, init_model, cache, labels = data.attrs, data.init_model, data.cache, data.labels
    if a.classifier:
        cm = given or _given_classifier(a, data)
        classifier = cm.classifier
        acc = classifier_accuracy(classifier.to(device), cache.images, labels, data.val_idx, attrs, device)
        meta["classifier"] = {"source": str(a.classifier), "val_accuracy": dict(zip([x.name for x in attrs], acc))}
        _taken_classifier_steps(a, cfg, cm, f"--classifier {a.classifier}", say)
    elif init_model is not None and init_model.classifier is not None and \
            [(x.name, x.values) for x in init_model.attributes] == [(x.name, x.values) for x in attrs]:
        classifier = init_model.classifier
        acc = classifier_accuracy(classifier.to(device), cache.images, labels, data.val_idx, attrs, device)
        # the attributes it labelled itself it reads right by construction: not measured
        own = {x.name: v for x, v in zip(attrs, acc) if x.name not in {p.name for p in data.pseudo}}
        meta["classifier"] = {"source": f"--init model {data.init_path}", "val_accuracy": own}
        _taken_classifier_steps(a, cfg, init_model, f"{'--continue' if a.continue_from else '--init'} {data.init_path}",
                                say)
    else:
        if a.classifier_steps is not None:
            cfg.classifier_steps, cfg.classifier_steps_chosen = a.classifier_steps, CLASSIFIER_GIVEN
        else:   # at the batch size the classifier trains with (a --continue model's recorded one)
            cfg.classifier_steps = classifier_steps_for(len(data.train_idx), cfg.batch_size)
            cfg.classifier_steps_chosen = CLASSIFIER_BY_DATA
        if cfg.classifier_steps < 1:
            raise FaderError("--classifier-steps must be positive when no --classifier is given")
        how = ""
        if cfg.classifier_steps_chosen == CLASSIFIER_BY_DATA:   # said, with the numbers it was chosen from
            how = (f", chosen by data size: {CLASSIFIER_EPOCHS} epochs of {len(data.train_idx):,} training images"
                   f" at batch {cfg.batch_size}, at most {CLASSIFIER_MAX_STEPS:,}; --classifier-steps N sets another number")
        say(f"{PROG}: training the evaluation classifier ({cfg.classifier_steps:,} steps{how})")
        t0 = time.time()
        classifier, acc = train_classifier(cache.images, labels, data.train_idx, data.val_idx, attrs, cfg.classifier_steps,
                                           device, cfg.batch_size, cfg.seed, cfg.flip, progress=not quiet,
                                           max_fm=a.classifier_max_fm)
        meta["classifier"] = {"source": "trained by this run", "steps": cfg.classifier_steps,
                              "steps_chosen": cfg.classifier_steps_chosen,
                              "seconds": round(time.time() - t0, 1),
                              "val_accuracy": dict(zip([x.name for x in attrs], [round(v, 4) for v in acc]))}
    said = [f"{k} {v:.3f}" for k, v in meta["classifier"]["val_accuracy"].items()]
    if len(said) < len(attrs):   # the --init model's, on the attributes it labelled
        said.append(f"not measured on {quoted(x.name for x in data.pseudo)}, which it labelled")
    say(f"{PROG}: classifier validation accuracy " + ", ".join(said))
    return classifier


def _taken_classifier_steps(a, cfg, model, source: str, say) -> None:
    """The recipe of a run that trains no classifier and takes `model`'s: the classifier steps (and
    how they were chosen) that `model` recorded, as a --continue run keeps the rest of its recipe,
    or where it recorded none, 0 steps and that none were trained (the number this run would have
    chosen described no classifier, and overwrote the continued model's own). A --classifier-steps
    given is said to be unused (it went without a word)."""
    if a.classifier_steps is not None:
        say(f"{PROG}: --classifier-steps {a.classifier_steps} is not used: the run takes the classifier of {source}")
    tr = (model.meta or {}).get("training")   # a file made elsewhere may record anything
    hp = tr.get("hyper_parameters") if isinstance(tr, dict) else None
    hp = hp if isinstance(hp, dict) else {}
    steps, chosen = hp.get("classifier_steps"), hp.get("classifier_steps_chosen")
    if isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0:
        # a model of before the choice was recorded: how is not known ("" is left out of the card)
        cfg.classifier_steps, cfg.classifier_steps_chosen = steps, chosen if isinstance(chosen, str) else ""
    else:
        cfg.classifier_steps, cfg.classifier_steps_chosen = 0, f"none trained: the classifier of {source}"


def _train(a, argv, ck, data: _Data, arch, cfg, meta: dict, classifier, device, dist, phase, quiet: bool, say,
           run_dir: Path, continued_at: Optional[int], held: dict) -> int:
    """Build the trainer (resumed or with a first checkpoint), train, and say how it ended
    (`held["trainer"]` once a stop is the trainer's to handle)."""
    from .trainer import CHECKPOINT_NAME, Trainer, init_from_model, install_signal_handlers
    ckpt_path = run_dir / CHECKPOINT_NAME
    init_ae = init_from_model(data.init_model, data.attrs, arch) if data.init_model is not None else None
    trainer = Trainer(arch, data.attrs, data.cache.images, data.labels, data.train_idx, data.val_idx, cfg, run_dir,
                      device, classifier=classifier, init_ae=init_ae, meta=meta, log=say, progress=not quiet, dist=dist)
    if a.critic_warmup:
        start = ck["step"] if ck is not None else (continued_at or 0)
        cfg.critic_warmup_until = start + a.critic_warmup
        say(f"{PROG}: steps {start}-{cfg.critic_warmup_until - 1} train the discriminators and the critic only")
    if ck is not None:
        trainer.load_state(ck)
        best = (f"best mean swap accuracy {trainer.best['score']:.3f} at step {trainer.best['step']}"
                if trainer.best.get("step", -1) >= 0 else "not evaluated yet")
        say(f"{PROG}: resumed {ckpt_path} at step {trainer.step} ({best})")
    # From here a stop is the trainer's: it ends with a checkpoint (and a stop-now signal waits for
    # a checkpoint or model being written), and the run says which step the checkpoint holds.
    # A Ctrl-C ignored when the run started stays ignored, as it was while preprocessing: a script's
    # background job ignores it, the terminal's Ctrl-C being for the command in the foreground.
    import signal
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    install_signal_handlers(trainer)
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    held["trainer"] = trainer
    try:
        if ck is None:
            if continued_at is not None:
                trainer.step = continued_at  # the loss weights' ramps go on from where the model's training was
                say(f"{PROG}: continuing the training of {a.continue_from} at step {continued_at} (to step {cfg.steps})")
                _continued_discriminators(a, trainer, data.init_model, say)
            trainer.save_checkpoint()  # the classifier is not retrained after a kill (rank 0 writes it)
        if dist is not None:  # a killed torchrun: stop as on SIGTERM (every rank after the same step, checkpoint saved)
            dist.watch_launcher(lambda: setattr(trainer, "stop_reason", trainer.stop_reason or "SIGTERM"))
        if trainer.is_main:
            with open(run_dir / "command.txt", "a", encoding="utf-8", errors="surrogateescape") as f:
                # quoted, so that a line can be pasted (and read back by a --resume that lacks --data)
                words = shlex.split(train_program(full=True)) + [str(x) for x in (argv if argv is not None else sys.argv[1:])]
                f.write(shlex.join(words) + "\n")
        if phase is not None:
            phase.end()
            if dist.is_main:
                say(f"{PROG}: data-parallel on {dist.world_size} processes ({dist.backend}); global batch "
                    f"{cfg.batch_size} = {dist.world_size} x {cfg.batch_size // dist.world_size}")
        reason = trainer.fit()
    except KeyboardInterrupt as e:   # a second signal: stopped at once
        if dist is not None:
            dist.abort(e)   # the ranks waiting for this one stop now
        reason = trainer.stop_reason or "interrupted"
    finally:
        trainer.finished = True
    best = trainer.best
    model = (f"best mean swap accuracy {best['score']:.3f} (step {best['step']}) -> {run_dir / 'model.fader'}"
             if best["step"] >= 0 else "no model yet (it is written at the first evaluation)")
    saved = trainer.saved_step
    if not trainer.is_main:
        kept = ""
    elif saved is None:
        kept = "no checkpoint was written: start the run again with the same command"
    elif saved < trainer.step:   # e.g. a third signal abandoned the last checkpoint's write
        kept = (f"resumable checkpoint {ckpt_path} at step {saved} (the run stopped at once: "
                f"steps {saved + 1}-{trainer.step} are not in it)")
    else:
        kept = f"resumable checkpoint {ckpt_path} (step {saved})"
    # the training window's Cancel is a SIGTERM: its log read "fader-train: SIGTERM at step 101"
    said = "stopped on request (SIGTERM)" if reason == "SIGTERM" else reason
    say(f"{PROG}: {said} at step {trainer.step} after {trainer.elapsed / 60:.1f} min; {model}; {kept}")
    if trainer.is_main and saved is not None and reason in ("interrupted", "SIGTERM", "time budget") \
            and trainer.step < cfg.steps:
        # the natural guess, `--resume --out RUN`, is refused (the data is not in the run folder)
        say(f"{PROG}: to go on: {_resume_line(argv, dist)}")
    if reason == "interrupted":
        return 130
    if reason == "SIGTERM":
        return 143
    return 0


# Options a resumed run refuses ("give only one"): the run folder holds what they started it from.
_NOT_ON_RESUME = ("init", "continue_from", "fresh_discriminators")


def resume_arguments(argv) -> list:
    """The arguments that resume the run `argv` started: the same, with --resume added where it is
    not there and without --init / --continue (and --fresh-discriminators), which a resumed run
    refuses. Options are matched as argparse matches them (`--init=M`, an abbreviation)."""
    parser = build_parser()
    longs = [o for o in parser._option_string_actions if o.startswith("--")]

    def action_of(word: str):
        name = word.partition("=")[0] if word.startswith("--") else word
        if name in parser._option_string_actions:
            return parser._option_string_actions[name]
        hits = {parser._option_string_actions[o] for o in longs if o.startswith(name)} if name.startswith("--") else set()
        return hits.pop() if len(hits) == 1 else None

    words, out, i = [str(x) for x in argv], [], 0
    while i < len(words):
        w = words[i]
        if w == "--":
            out += words[i:]
            break
        action = action_of(w) if w.startswith("-") else None
        n = 2 if action is not None and action.nargs != 0 and "=" not in w else 1
        if action is None or action.dest not in _NOT_ON_RESUME:
            out += words[i:i + n]
        i += n
    try:
        resumed = parser.parse_args(out).resume
    except SystemExit:   # cannot happen (the run parsed them): --resume is added
        resumed = False
    return out if resumed else [*out, "--resume"]


def _resume_line(argv, dist) -> str:
    """The command that resumes this run, to be pasted: `fader-train` and the arguments with
    --resume (resume_arguments); under torchrun the launcher's own line (read from /proc where
    it is there: the arguments this process got come last in it), else what to run it with."""
    args = resume_arguments(argv if argv is not None else sys.argv[1:])
    if dist is None:
        return shlex.join([*shlex.split(train_program(typed=True)), *args])
    given = [str(x) for x in (argv if argv is not None else sys.argv[1:])]
    launcher = _launcher_words()
    if launcher and len(launcher) > len(given) + 2 and (not given or launcher[-len(given):] == given):
        words = launcher[:len(launcher) - len(given)]
        if os.path.basename(words[1]) == "torchrun":   # `torchrun …` runs as `python …/torchrun …`
            words = ["torchrun", *words[2:]]
        line = shlex.join([*words, *args])
    else:   # the launcher's line is not known: its options are the user's
        line = "the same torchrun line with the arguments of " + shlex.join([*shlex.split(train_program(typed=True)), *args])
    return line + (" (on every machine)" if dist.world_size > dist.local_world_size else "")


def _launcher_words() -> list:
    """The command line of the process that started this one (torchrun), [] where unknown."""
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return []
    return [w.decode("utf-8", "surrogateescape") for w in raw.split(b"\0")[:-1]]


def _continued_discriminators(a, trainer, model, say) -> None:
    """--continue: load the discriminators saved beside the model, or say why they start untrained."""
    from .discriminator_file import discriminators_path
    side = discriminators_path(a.continue_from)
    if a.fresh_discriminators:
        say(f"{PROG}: the discriminators start untrained (--fresh-discriminators)")
        return
    if not side.exists():
        say(f"{PROG}: no {side.name} beside the model: the discriminators start untrained "
            "(--critic-warmup N lets them learn before the auto-encoder moves)")
        return
    info = trainer.load_discriminators(side, model)
    fresh = "; ".join(f"{k} starts untrained ({why})" for k, why in info["fresh"].items())
    say(f"{PROG}: discriminators from {side} (step {info['step']}): {', '.join(info['loaded']) or 'none'}"
        + (f"; {fresh}" if fresh else ""))


def main(argv: Optional[list] = None) -> int:
    """Console entry point `fader-train`."""
    # Before torch loads OpenMP: idle worker threads sleep instead of spinning. On a shared
    # machine with more runnable threads than cores, spinning barriers made a 2-thread training
    # step up to 5x slower than a 1-thread one (measured here); passive waiting avoids that.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import signal
    # SIGTERM (the training window's Stop) stops the work before training as Ctrl-C does; the
    # trainer installs its own handlers once it can save a checkpoint. Restored when the run ends.
    previous = _signal_handlers()
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _main(argv)
    finally:
        _restore_signal_handlers(previous)


def _say_stderr(text: str) -> None:
    """One of the run's lines on stderr. A stderr that is a closed pipe (`fader-train … | tee log`
    with Ctrl-C, which stops tee too) is let go, and stderr goes to the null device from then on:
    the BrokenPipeError turned a clean stop, its checkpoint written, into exit status 1, and the
    error handler's own line raised a second one."""
    try:
        print(text, file=sys.stderr, flush=True)
    except BrokenPipeError:
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
        except (OSError, ValueError):
            pass


def _main(argv) -> int:
    """main() once its signal handlers are in place: the exit status, errors as one line."""
    from core.errors import FaderError, printable
    try:
        code = run(argv)
    except FaderError as e:
        msg = printable(e)
        rank = os.environ.get("RANK", "0") if os.environ.get("WORLD_SIZE", "1") != "1" else "0"
        if rank == "0":
            _say_stderr(f"{PROG}: error: {msg}")
        elif getattr(e, "before_group", False) and os.environ.get("LOCAL_RANK", "0") != "0":
            pass   # the machine's first rank says it: the training window showed it once per process
        elif type(e).__name__ != "RemoteFailure":  # rank 0 has said what went wrong
            _say_stderr(f"{PROG}: error: rank {rank}: {msg}")
        return 2
    except OSError as e:  # a preview, log or list file that could not be written (full disk, ...)
        target = e.filename2 or e.filename  # a failed rename names the temporary file first
        where = f"{target}: " if target else ""
        _say_stderr(f"{PROG}: error: {printable(where)}{printable(e.strerror or e)}")
        return 2
    except KeyboardInterrupt as e:   # a further signal while the run was ending
        _say_stderr(f"{PROG}: {'stopped by SIGTERM' if isinstance(e, Terminated) else 'interrupted'}")
        return 143 if isinstance(e, Terminated) else 130
    return code


if __name__ == "__main__":
    sys.exit(main())
