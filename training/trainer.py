"""The Fader Networks trainer: the reference's alternating updates, made fast, resumable and safe.

Each iteration (facebookresearch/FaderNetworks `train.py` + `src/training.py`):
  1. n_lat_dis latent-discriminator steps: encode a batch with the auto-encoder in eval mode and
     no gradient, train the discriminator to predict the true attributes from
     enc_outputs[-1 - n_skip] (cross-entropy per attribute, summed).
  2. n_ptc_dis patch-discriminator steps (optional): real images vs decodes with random
     attributes, targets smoothed by smooth_label.
  3. n_clf_dis classifier-discriminator steps (optional).
  4. one auto-encoder step on a fresh batch: lambda_ae * MSE(x, D(E(x), y))
     + lambda_lat_dis(step) * CE(lat_dis(E(x)), flipped y)   (binary: 1 - y; n values: a random
       other value) [+ patch / classifier terms on decodes with random attributes], where every
     lambda ramps linearly from 0 over lambda_schedule iterations.
Adam(lr 2e-4, betas (0.5, 0.999)), gradient norms clipped to 5, batch 32, random horizontal flips.

Speed: channels-last tensors, fused Adam, no host synchronisation inside an iteration (losses are
summed on the device and read every `log_every` steps), batches assembled by a background thread
from the uint8 memmap, and on CUDA autocast (bf16, or fp16 with a GradScaler; `amp` forces either anywhere).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import platform
import signal
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from core.atomic_write import atomic_file, write_bytes_atomic
from core.attributes import Attribute, quoted
from core.errors import FaderError
from core.model_file import FaderModel, save_model
from core.networks import ArchConfig, AutoEncoder, Classifier, LatentDiscriminator, PatchDiscriminator, decoder_widths

from .augment import gaussian_blur
from .batches import BatchStream, DeviceBatchStream
from .critic import Critic, diff_augment
from .discriminator_file import NAMES as DISCRIMINATORS, discriminators_path, load_discriminators, save_discriminators
from .evaluation import (code_from_indices, classifier_config, evaluate, preview_grid, to_input, write_png,
                         _adam_kwargs)
from .live_taps import optimizer_state_full, optimizer_state_live, use_live_taps
from .losses import attr_loss, chroma, held_attr_loss, total_variation
from .precision import amp_dtype, slow_amp_warning
from .progress import progress_bar
from .small_map_conv import use_small_map_convs

from core.run_files import CHECKPOINT_NAME  # noqa: E402  (the run folder's names)
# Memory layout of activations and conv weights (measured with bench/train_speed.py).
CHANNELS_LAST = True
CHECKPOINT_FORMAT = "fader-train-checkpoint"
CELEBA_LICENSE = ("non-commercial research only, inherited from CelebA "
                  "(Liu et al., ICCV 2015; CelebA is available for non-commercial research purposes only)")

#: the training bar on a terminal: tqdm's default less its step/s, which the losses' img/s gives
TRAINING_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"


@dataclass
class TrainConfig:
    """Training hyper-parameters (the reference's defaults unless noted)."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 2e-4
    beta1: float = 0.5
    clip_grad_norm: float = 5.0
    lambda_ae: float = 1.0
    lambda_lat_dis: float = 1e-4
    lambda_ptc_dis: float = 0.0
    lambda_clf_dis: float = 0.0
    lambda_schedule: int = 500_000
    n_lat_dis: int = 1
    n_ptc_dis: int = 0
    n_clf_dis: int = 0
    smooth_label: float = 0.2
    flip: bool = True
    seed: int = 0
    eval_every: int = 1000
    ckpt_every: int = 500
    log_every: int = 50
    classifier_steps: int = 2000
    # how classifier_steps was chosen, for the model's recipe: fader-train sets it for a new run ("by
    # data size", "by --classifier-steps", or a taken classifier's: training/cli.py). "": not known, as
    # in a checkpoint or model of before it was recorded (its default 2,000 was not given)
    classifier_steps_chosen: str = ""
    preview_rows: int = 8
    max_minutes: float = 0.0       # 0: no wall-clock budget
    psnr_drop: float = 3.0         # a checkpoint is eligible as "best" only within this many dB of the best PSNR seen
    half_export: bool = False
    threads: int = 0               # 0: all cores this process may use
    amp: str = "auto"              # one of precision.AMP_MODES; see amp_dtype()
    clf_weights: dict = field(default_factory=dict)  # attribute name -> factor on its classifier-loss term
    keep_evals: bool = False       # also export every evaluated state as model_step<N>.fader
    clf_blur: float = 0.0          # Gaussian blur sigma (px) on the classifier discriminator's inputs (0 = off)
    lambda_edit_tv: float = 0.0    # weight of the total variation of (edited decode - reconstruction)
    lambda_edit_chroma: float = 0.0  # weight of the colour (chroma) part of that edit
    data_on_device: bool = False   # hold the training images on the device (DeviceBatchStream)
    n_critic: int = 0              # image-critic steps per iteration (training/critic.py; 0 = no critic)
    lambda_critic_adv: float = 0.0   # weight of the critic's realism term on decodes with random attributes
    lambda_critic_attr: float = 0.0  # weight of the critic's attribute term on those decodes
    critic_attr_weight: float = 1.0  # weight of the attribute loss on real images in the critic's own step
    lambda_critic_hold: float = 0.0  # weight of the critic's reading of the attributes an edit keeps: it must
                                     # stay what it was on the reconstruction (KL, same augmentation for both)
    critic_warmup_until: int = 0   # before this step an iteration trains the discriminators and the critic
                                   # only: a fresh critic (a --continue run) first learns, the auto-encoder waits
    single_edits: float = 0.0      # fraction of the edits that flip exactly one attribute, as a slider does,
                                   # instead of the reference's all-random values (0 = the reference)
    critic_width: int = 32         # feature maps of the critic's first layer (cost grows with its square)
    ema: float = 0.0               # decay of an exponential moving average of the auto-encoder's weights,
                                   # which evaluation, previews and exports use (0 = the live weights)
    edit_residual: bool = False    # the image networks (critic, patch/classifier discriminators) see an edit
                                   # as the paste-back applies it, x + D(E(x), y') - D(E(x), y), not D(E(x), y')
    lr_decay_start: int = 0        # from this step on, every learning rate falls linearly to 0 at `steps`
                                   # (AttGAN's TF schedule; 0 = constant learning rate)
    lr_decay_minutes: float = 0.0  # with max_minutes: every learning rate also falls linearly to 0 over the
                                   # budget's last M minutes (a decay by time, when the step count is unknown)

    def lr_at(self, step: int) -> float:
        """The learning rate of iteration `step`: `lr`, or on the linear decay to 0 at `steps`."""
        start = self.lr_decay_start
        if not start or step < start or self.steps <= start:
            return self.lr
        return self.lr * max(0.0, (self.steps - step) / (self.steps - start))

    def lr_now(self, step: int, seconds_left: Optional[float]) -> float:
        """`lr_at(step)`, scaled down linearly to 0 over the last `lr_decay_minutes` of the time budget
        (`seconds_left` of it remain; None: no budget, no time decay)."""
        lr = self.lr_at(step)
        if self.lr_decay_minutes > 0 and seconds_left is not None:
            lr *= min(1.0, max(0.0, seconds_left / (60.0 * self.lr_decay_minutes)))
        return lr

    def lam(self, base: float, step: int) -> float:
        """The reference get_lambda: linear ramp from 0 to `base` over lambda_schedule iterations."""
        s = self.lambda_schedule
        return base if s == 0 else base * min(step, s) / s

    @classmethod
    def from_recorded(cls, recorded: dict) -> "TrainConfig":
        """The config a model's metadata or a checkpoint recorded; fields this version lacks are dropped."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in recorded.items() if k in known})

    def recipe_meta(self, step: int) -> dict:
        """What an export records of the recipe at `step`, so that --continue can go on from it."""
        return {"hyper_parameters": asdict(self), "lambda_lat_dis_at_export": self.lam(self.lambda_lat_dis, step)}


def atomic_torch_save(obj, path: Path) -> None:
    """torch.save to a temp file in the same folder, fsync, os.replace: a kill at any moment leaves
    either the old or the new file, never a torn one. A failed write (full disk, ...) raises
    FaderError naming the file and the reason."""
    try:
        with atomic_file(path) as f:
            torch.save(obj, f)
    except (OSError, RuntimeError) as e:
        # torch's zip writer reports a failed write as a RuntimeError raised while the OSError is handled
        cause = e if isinstance(e, OSError) else e.__context__
        if not isinstance(cause, OSError):
            raise
        raise FaderError(f"{path}: cannot write ({cause.strerror or cause})") from None


def _match_state_layout(opt: torch.optim.Optimizer) -> None:
    """Give optimizer state tensors their parameter's memory layout (a checkpoint written when a
    network was channels-last, resumed now that it is not): fused Adam would otherwise copy them
    to the parameter's layout and back at every step."""
    for p, st in opt.state.items():
        for k, v in list(st.items()):
            if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                st[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def init_from_model(model: FaderModel, attrs: Sequence[Attribute], arch: ArchConfig) -> AutoEncoder:
    """A new auto-encoder for `attrs` initialised from `model` (fine-tuning).

    Every weight is copied; in the decoder layers' first convolution the input planes of the
    attribute code are mapped by (attribute, value); planes of new attributes/values, and of skip
    connections that `arch` adds, start at zero, so the fine-tuned model initially decodes exactly
    as the old one did.
    """
    old = model.autoencoder
    new = AutoEncoder(arch)
    old_cols = {}
    start = 0
    for a in model.attributes:
        for v, val in enumerate(a.values):
            old_cols[(a.name, val)] = start + v
        start += a.n
    col_map = []  # (new column, old column or None)
    start = 0
    for a in attrs:
        for v, val in enumerate(a.values):
            col_map.append((start + v, old_cols.get((a.name, val))))
        start += a.n
    old_sd, new_sd = old.state_dict(), new.state_dict()
    n_old, n_new = model.config.n_attr, arch.n_attr
    # The first convolution of every decoder layer reads [h, code planes, skip planes].
    input_convs = {}
    for i, layer in enumerate(new.dec_layers):
        j, conv = next((j, m) for j, m in enumerate(layer) if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
        input_convs[f"dec_layers.{i}.{j}.weight"] = (i, isinstance(conv, torch.nn.ConvTranspose2d))
    for key, t in new_sd.items():
        src = old_sd.get(key)
        if src is None:
            raise FaderError(f"--init: the model has no tensor {key}; its architecture differs")
        if key not in input_convs:
            if src.shape != t.shape:
                raise FaderError(f"--init: tensor {key} has shape {tuple(src.shape)} in the model, {tuple(t.shape)} needed")
            new_sd[key] = src.clone()
            continue
        i, transposed = input_convs[key]
        dim = 0 if transposed else 1  # ConvTranspose weight is (in, out, k, k), Conv (out, in, k, k)
        had_skip = 0 < i <= model.config.n_skip
        h_planes = decoder_widths(arch)[i][0]  # a wider decoder's maps outnumber the skip maps
        w = torch.zeros_like(t)

        def put(dst, srcr):
            a = [slice(None)] * t.dim()
            b = [slice(None)] * t.dim()
            a[dim], b[dim] = dst, srcr
            w[tuple(a)] = src[tuple(b)]
        put(slice(0, h_planes), slice(0, h_planes))
        for nc, oc in col_map:
            if oc is not None:
                put(slice(h_planes + nc, h_planes + nc + 1), slice(h_planes + oc, h_planes + oc + 1))
        if had_skip:  # a skip connection added by fine-tuning keeps its zero planes
            put(slice(h_planes + n_new, t.shape[dim]), slice(h_planes + n_old, src.shape[dim]))
        new_sd[key] = w
    new.load_state_dict(new_sd)
    return new


def hardware_description(device: torch.device) -> str:
    """A short description of where training ran."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} threads"


class Trainer:
    """Owns the networks, optimizers, data streams and run folder of one training run."""

    def __init__(self, arch: ArchConfig, attrs: Sequence[Attribute], images, labels: np.ndarray,
                 train_idx, val_idx, cfg: TrainConfig, run_dir, device, classifier: Optional[Classifier] = None,
                 init_ae: Optional[AutoEncoder] = None, meta: Optional[dict] = None, log=print,
                 progress: bool = True, channels_last: Optional[bool] = None, dist=None):
        self.arch, self.attrs, self.cfg = arch, list(attrs), cfg
        # dist: a training.distributed.DistContext for a data-parallel run (None: one process).
        # Only rank 0 (is_main) writes the run folder.
        self.dist = dist
        self.is_main = dist is None or dist.is_main
        self.world_size = 1 if dist is None else dist.world_size
        self._ddp: dict = {}
        self.images, self.labels = images, labels
        self.train_idx, self.val_idx = np.asarray(train_idx), np.asarray(val_idx)
        self.run_dir = Path(run_dir)
        self.device = torch.device(device)
        self.log, self.progress = log, progress
        self.meta = dict(meta or {})
        # A fine-tune's attributes its data does not label were labelled by the --init model's
        # classifier (training.pseudo_labelled): their swap figures would be that classifier judging
        # its own labels, so they are not measured (the figures leave them out; pseudo_labelled says
        # which, for the model card and `info`), and the best state is chosen on the data's own.
        pseudo = set((self.meta.get("training") or {}).get("pseudo_labelled") or ())
        self.unmeasured = [x.name for x in self.attrs if x.name in pseudo]
        self.measured = [j for j, x in enumerate(self.attrs) if x.name not in pseudo] if self.unmeasured else None
        self.stop_reason: Optional[str] = None
        self._t_fit: Optional[float] = None  # when fit() started: the time budget and its decay count from it
        self.lr = cfg.lr
        if dist is not None and cfg.lr_decay_minutes:
            # each process's clock would give its own rate, and the replicas would drift apart
            raise FaderError("--lr-decay-minutes is for a run in one process, not data-parallel")
        torch.manual_seed(cfg.seed)
        dev = self.device
        if channels_last is None:
            channels_last = CHANNELS_LAST
        self.channels_last = channels_last
        cl = torch.channels_last if channels_last else torch.contiguous_format

        def net(m, fmt=cl):
            return use_small_map_convs(m).to(dev).to(memory_format=fmt)

        self.ae = net(init_ae if init_ae is not None else AutoEncoder(arch))
        # The latent discriminator sees only the latent map (a few pixels), where its convolutions
        # are matrix products: channels-last weights would only make fused Adam copy them.
        self.lat_dis = net(LatentDiscriminator(arch), torch.contiguous_format) if cfg.n_lat_dis else None
        if self.lat_dis is not None:
            s = self.lat_dis.conv_in_size
            use_live_taps(self.lat_dis.conv_layers, (s, s))
        self.ptc_dis = net(PatchDiscriminator(arch)) if cfg.n_ptc_dis else None
        self.clf_dis = net(Classifier(classifier_config(arch.img_size, arch.n_attr))) if cfg.n_clf_dis else None
        if self.clf_dis is not None:
            use_live_taps(self.clf_dis.conv_layers, (arch.img_size, arch.img_size))
        self.classifier = net(classifier).eval() if classifier is not None else None
        # Spectral-norm layers are parametrized modules: kept as they are (no small-map kernels).
        self.critic = Critic(arch.img_size, arch.n_attr, cfg.critic_width).to(dev).to(memory_format=cl) \
            if cfg.n_critic else None
        if dist is not None:
            from .distributed import prepare_module
            for m in (self.ae, self.lat_dis, self.ptc_dis, self.clf_dis, self.critic):
                if m is not None:
                    prepare_module(m, dist)
        kw = _adam_kwargs(dev)
        adam = lambda m: torch.optim.Adam(m.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999), **kw)
        self.opt_ae = adam(self.ae)
        # The averaged auto-encoder: a GAN's generator oscillates from step to step (the run's
        # own swap accuracy moved 0.73 -> 0.58 and Eyeglasses 0.89 -> 0.29 within 500 steps);
        # the average over the last ~1/(1 - ema) steps is what gets evaluated and shipped.
        self.ae_ema = None
        if cfg.ema:
            import copy
            self.ae_ema = copy.deepcopy(self.ae).eval().requires_grad_(False)
        self.opt_lat = adam(self.lat_dis) if self.lat_dis is not None else None
        self.opt_ptc = adam(self.ptc_dis) if self.ptc_dis is not None else None
        self.opt_clf = adam(self.clf_dis) if self.clf_dis is not None else None
        self.opt_critic = adam(self.critic) if self.critic is not None else None
        unknown = set(cfg.clf_weights) - {a.name for a in self.attrs}
        if unknown:
            raise FaderError(f"clf_weights names attributes that are not trained: {quoted(sorted(unknown))}")
        self._clf_weights = [float(cfg.clf_weights.get(a.name, 1.0)) for a in self.attrs] if cfg.clf_weights else None
        self.amp_dtype = amp_dtype(cfg.amp, dev)
        slow = slow_amp_warning(cfg.amp, dev)
        if slow:
            log(f"warning: {slow}")
        # fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range.
        self.scalers = {}
        if self.amp_dtype == torch.float16:
            self.scalers = {k: torch.amp.GradScaler(dev.type) for k in ("ae", "lat", "ptc", "clf", "critic")}
        self.step = 0
        self.batches = 0
        self.elapsed = 0.0
        self.best = {"score": -1.0, "step": -1, "psnr_max": -math.inf, "metrics": None}
        self._acc = torch.zeros(5, device=dev)  # rec, lat-dis loss, AE adversarial term, ptc-dis loss, critic loss
        self._acc_n = 0
        self._train_since_eval = torch.zeros(5, device=dev)
        self._train_since_eval_n = 0
        self.n_skip = arch.n_skip
        self.ckpt_path = self.run_dir / CHECKPOINT_NAME
        self._saved_step: Optional[int] = None  # step of the last checkpoint this run wrote or resumed
        self._saved_state: Optional[tuple] = None  # (step, last evaluation) of the last one this run wrote
        self._last_eval_step = -1
        # Stop signals (install_signal_handlers): a stop-now signal that comes while a checkpoint or
        # model is written waits for the write's end (`_deferred`), then stops the run.
        self._writing: Optional[str] = None   # what is being written ("the checkpoint of step N")
        self._deferred: Optional[str] = None  # the signal that waits for that write
        self._ending = False                  # fit's last checkpoint: the run stops after it anyway
        self.finished = False                 # training is over: a late signal changes nothing
        self._late_signal = False             # one came after that: a second one stops at once

    # ------------------------------------------------------------------ steps
    def _autocast(self):
        if self.amp_dtype is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _trained(self, module):
        """The module to call for the forward pass whose loss trains it: its DistributedDataParallel
        wrapper in a data-parallel run (gradients averaged over the ranks), else itself."""
        return self._ddp.get(id(module), module)

    def _batch_rand(self, y: torch.Tensor) -> torch.Tensor:
        """torch.rand(y.shape) for per-sample draws; data-parallel: this rank's rows of the global
        batch's draw, so every rank and a single process draw the same numbers."""
        if self.dist is None:
            return torch.rand(y.shape, device=y.device)
        return self.dist.batch_rand(y.shape, y.device)

    def _aug_rand(self, shape) -> torch.Tensor:
        """Per-image uniform draws for the critic's augmentation (as `_batch_rand`, any shape)."""
        if self.dist is None:
            return torch.rand(shape, device=self.device)
        return self.dist.batch_rand(shape, self.device)

    def _seconds_left(self) -> Optional[float]:
        """Seconds left of this invocation's time budget (None: no budget, or fit() has not started).
        The budget is per invocation: a resumed run gets max_minutes more."""
        if not self.cfg.max_minutes or self._t_fit is None:
            return None
        return self.cfg.max_minutes * 60 - (time.time() - self._t_fit)

    def _set_lr(self) -> None:
        """Every optimizer at this iteration's learning rate (a resumed optimizer's own is overridden:
        the schedule, changeable on resume, decides)."""
        lr = self.lr = self.cfg.lr_now(self.step, self._seconds_left())
        for opt, _ in self._opts().values():
            if opt is not None:
                for g in opt.param_groups:
                    g["lr"] = lr

    def _optimize(self, key: str, loss, module, opt) -> None:
        opt.zero_grad(set_to_none=True)
        scaler = self.scalers.get(key)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        if self.cfg.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(module.parameters(), self.cfg.clip_grad_norm, foreach=True)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()

    def _batch(self, stream: BatchStream) -> tuple:
        xb, yb = stream.next()
        self.batches += 1
        return to_input(xb, self.device, self.channels_last), yb.to(self.device, non_blocking=True)

    def lat_dis_step(self, x, y) -> torch.Tensor:
        """Train the latent discriminator on one batch (encoder frozen, in eval mode as in the reference)."""
        self.ae.eval()
        self.lat_dis.train()
        with torch.no_grad(), self._autocast():
            z = self.ae.encode(x)[-1 - self.n_skip]
        with self._autocast():
            loss = attr_loss(self._trained(self.lat_dis)(z.detach()).float(), y, self.attrs)
        self._optimize("lat", loss, self.lat_dis, self.opt_lat)
        return loss.detach()

    def _clf_view(self, x: torch.Tensor) -> torch.Tensor:
        """What the classifier discriminator sees: `x`, low-passed when clf_blur > 0.

        Blurring both real and decoded images leaves the decoder nothing to gain from high-frequency
        patterns a classifier can read (coloured speckle in place of glasses), and its gradient is smooth.
        """
        sigma = self.cfg.clf_blur
        if not sigma:
            return x
        return gaussian_blur(x, sigma)

    def _random_code(self, y) -> torch.Tensor:
        """The reference flip_attributes(..., 'all'): every attribute set to a uniformly random value;
        with `single_edits`, that fraction of the rows instead keeps its labels but for one attribute,
        chosen uniformly, set to another value (a slider's edit)."""
        ns = torch.tensor([a.n for a in self.attrs], device=y.device)
        r = (self._batch_rand(y) * ns).long().clamp_max(ns - 1)
        if self.cfg.single_edits > 0:
            u = self._batch_rand(y)
            k = y.shape[1]
            single = u[:, :1] < self.cfg.single_edits
            which = (u[:, 1:2] * k).long().clamp_max(k - 1)
            one = torch.where(torch.arange(k, device=y.device) == which, self._other_values(y), y)
            r = torch.where(single, one, r)
        return code_from_indices(r, self.attrs)

    def _other_values(self, y) -> torch.Tensor:
        """Every attribute of `y` set to a uniformly random other value (binary: 1 - y)."""
        ns = torch.tensor([a.n for a in self.attrs], device=y.device)
        shift = 1 + (self._batch_rand(y) * (ns - 1)).long().clamp_max(ns - 2)
        return (y + shift) % ns

    @property
    def _critic_in_loss(self) -> bool:
        """Whether the auto-encoder's loss has a critic term."""
        cfg = self.cfg
        return self.critic is not None and cfg.lambda_critic_adv + cfg.lambda_critic_attr + cfg.lambda_critic_hold > 0

    @property
    def _decodes_edits(self) -> bool:
        """Whether each auto-encoder step also decodes an edit with random attributes (some loss
        term needs one); the reconstruction and that edit are then decoded in one batch."""
        cfg = self.cfg
        return cfg.lambda_ptc_dis + cfg.lambda_clf_dis + cfg.lambda_edit_tv + cfg.lambda_edit_chroma > 0 \
            or self._critic_in_loss

    def _shown(self, x, edited, recon) -> torch.Tensor:
        """What the image networks see of an edit: the decode itself, or (edit_residual) the edit
        added to the input as the paste-back adds it to the photo. The photo's own detail stays
        under the edit there, and the app exports that; trained on the bare decode, the edit came
        out too weak on the photo (judge, shipped model: 0.85 of flips on the decode, 0.68 on
        crop + edit at model resolution, 0.66 after the paste-back)."""
        if not self.cfg.edit_residual:
            return edited
        return (x + edited.float() - recon.float()).clamp(-1, 1)

    @torch.no_grad()
    def _fake(self, x, y) -> torch.Tensor:
        """Edits with random attributes as the image networks see them (auto-encoder in eval mode)."""
        with self._autocast():
            if not self.cfg.edit_residual:
                return self.ae(x, self._random_code(y))[1][-1]
            out = self.ae(x, code_from_indices(y, self.attrs), self._random_code(y))[1][-1]
            return self._shown(x, out[len(x):], out[:len(x)])

    def ptc_dis_step(self, x, y) -> torch.Tensor:
        """Train the patch discriminator: real images vs decodes with random attributes."""
        self.ae.eval()
        self.ptc_dis.train()
        fake = self._fake(x, y)
        with self._autocast():
            real_p = self._trained(self.ptc_dis)(x).float()
            fake_p = self._trained(self.ptc_dis)(fake.detach()).float()
        s = self.cfg.smooth_label
        loss = F.binary_cross_entropy(real_p, torch.full_like(real_p, 1 - s)) + \
            F.binary_cross_entropy(fake_p, torch.full_like(fake_p, s))
        self._optimize("ptc", loss, self.ptc_dis, self.opt_ptc)
        return loss.detach()

    def clf_dis_step(self, x, y) -> torch.Tensor:
        """Train the classifier discriminator (used by the lambda_clf_dis term)."""
        self.clf_dis.train()
        with self._autocast():
            loss = attr_loss(self._trained(self.clf_dis)(self._clf_view(x)).float(), y, self.attrs)
        self._optimize("clf", loss, self.clf_dis, self.opt_clf)
        return loss.detach()

    def critic_step(self, x, y) -> torch.Tensor:
        """Train the image critic: hinge realism loss on real images vs decodes with random
        attributes, plus the attribute loss on real images, all through the same random augmentation."""
        cfg = self.cfg
        self.ae.eval()
        self.critic.train()
        fake = self._fake(x, y)
        with self._autocast():
            critic = self._trained(self.critic)
            real_p, real_a = critic(diff_augment(x, rand=self._aug_rand))
            fake_p, _ = critic(diff_augment(fake.float(), rand=self._aug_rand))
        loss = F.relu(1 - real_p.float()).mean() + F.relu(1 + fake_p.float()).mean()
        if cfg.critic_attr_weight:
            loss = loss + cfg.critic_attr_weight * attr_loss(real_a.float(), y, self.attrs)
        self._optimize("critic", loss, self.critic, self.opt_critic)
        return loss.detach()

    def autoencoder_step(self, x, y) -> tuple:
        """One auto-encoder step; returns (reconstruction loss, adversarial term) as device tensors."""
        cfg = self.cfg
        self.ae.train()
        dis = [m for m in (self.lat_dis, self.ptc_dis, self.clf_dis, self.critic) if m is not None]
        for m in dis:
            m.eval()
            # The discriminators' own weight gradients are not needed here: skip computing them.
            m.requires_grad_(False)
        try:
            use_critic = self._critic_in_loss
            edits = self._decodes_edits
            with self._autocast():
                rnd = self._random_code(y) if edits else None
                enc, dec = self._trained(self.ae)(x, code_from_indices(y, self.attrs), rnd)
                out = dec[-1]
                if edits:  # one decoder pass over [reconstruction; edit]: shared batch statistics
                    out, dec_f = out[:len(x)], out[len(x):]
                rec = ((x - out.float()) ** 2).mean()
                loss = cfg.lambda_ae * rec
                adv = torch.zeros((), device=x.device)
                lam = cfg.lam(cfg.lambda_lat_dis, self.step)
                if cfg.lambda_lat_dis and self.lat_dis is not None:
                    # Fool the discriminator: cross-entropy against flipped attributes
                    # (binary: 1 - y; n values: a uniformly random other value).
                    adv = attr_loss(self.lat_dis(enc[-1 - self.n_skip]).float(), self._other_values(y), self.attrs)
                    loss = loss + lam * adv
                if edits:
                    shown = self._shown(x, dec_f, out.detach())
                    if cfg.lambda_edit_tv or cfg.lambda_edit_chroma:
                        edit = dec_f.float() - out.float().detach()
                        if cfg.lambda_edit_tv:
                            loss = loss + cfg.lambda_edit_tv * total_variation(edit)
                        if cfg.lambda_edit_chroma:
                            loss = loss + cfg.lambda_edit_chroma * chroma(edit)
                    if cfg.lambda_ptc_dis:
                        p = self.ptc_dis(shown).float()
                        loss = loss + cfg.lam(cfg.lambda_ptc_dis, self.step) * \
                            F.binary_cross_entropy(p, torch.full_like(p, 1 - cfg.smooth_label))
                    ry = torch.stack([c.argmax(1) for c in torch.split(rnd, [a.n for a in self.attrs], 1)], 1)
                    if cfg.lambda_clf_dis:
                        loss = loss + cfg.lam(cfg.lambda_clf_dis, self.step) * \
                            attr_loss(self.clf_dis(self._clf_view(shown)).float(), ry, self.attrs,
                                      weights=self._clf_weights)
                    if use_critic:
                        if cfg.lambda_critic_hold:
                            # the edit and the reconstruction under the same augmentation draw, so that the
                            # change of the critic's reading is the edit's, not the augmentation's
                            n = len(shown)

                            def paired(shape):
                                r = self._aug_rand((n,) + tuple(shape[1:]))
                                return torch.cat([r, r])
                            both = torch.cat([shown.float(), self._shown(x, out.detach(), out.detach()).float()])
                            p, att = self.critic(diff_augment(both, rand=paired))
                            p, att, att_rec = p[:n], att[:n], att[n:].detach()
                            loss = loss + cfg.lam(cfg.lambda_critic_hold, self.step) * \
                                held_attr_loss(att.float(), att_rec.float(), (ry == y).float(), self.attrs)
                        else:
                            p, att = self.critic(diff_augment(shown.float(), rand=self._aug_rand))
                        if cfg.lambda_critic_adv:
                            loss = loss - cfg.lam(cfg.lambda_critic_adv, self.step) * p.float().mean()
                        if cfg.lambda_critic_attr:
                            loss = loss + cfg.lam(cfg.lambda_critic_attr, self.step) * \
                                attr_loss(att.float(), ry, self.attrs, weights=self._clf_weights)
            self._optimize("ae", loss, self.ae, self.opt_ae)
            self._update_ema()
        finally:
            for m in dis:
                m.requires_grad_(True)
        return rec.detach(), adv.detach()

    def train_iteration(self, stream: BatchStream) -> None:
        """One full iteration (discriminator step(s), then the auto-encoder step)."""
        cfg = self.cfg
        lat = torch.zeros((), device=self.device)
        ptc = torch.zeros((), device=self.device)
        crit = torch.zeros((), device=self.device)
        for _ in range(cfg.n_lat_dis):
            lat = self.lat_dis_step(*self._batch(stream))
        for _ in range(cfg.n_ptc_dis):
            ptc = self.ptc_dis_step(*self._batch(stream))
        for _ in range(cfg.n_clf_dis):
            self.clf_dis_step(*self._batch(stream))
        for _ in range(cfg.n_critic):
            crit = self.critic_step(*self._batch(stream))
        if self.step < cfg.critic_warmup_until:
            # logged as 0: the log's one counter per window must not change (its mean divides by it)
            rec = adv = torch.zeros((), device=self.device)
        else:
            rec, adv = self.autoencoder_step(*self._batch(stream))
        # Accumulate on the device: no host synchronisation inside the iteration.
        self._acc += torch.stack([rec, lat, adv, ptc, crit])
        self._acc_n += 1
        self.step += 1

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        """Everything a resume needs, as plain tensors / dicts (loadable with weights_only=True)."""
        def sd(m):
            return None if m is None else m.state_dict()
        return {
            "format": CHECKPOINT_FORMAT, "version": 1,
            "arch": self.arch.to_dict(),
            "attributes": [a.to_dict() for a in self.attrs],
            "config": asdict(self.cfg),
            "step": self.step, "batches": self.batches, "elapsed": self.elapsed,
            "best": {k: v for k, v in self.best.items() if k != "metrics"},
            "best_metrics_json": json.dumps(self.best.get("metrics")),
            "ae": sd(self.ae), "lat_dis": sd(self.lat_dis), "ptc_dis": sd(self.ptc_dis), "clf_dis": sd(self.clf_dis),
            "critic": sd(self.critic), "ae_ema": sd(self.ae_ema),
            "classifier": sd(self.classifier),
            "classifier_arch": self.classifier.config.to_dict() if self.classifier is not None else None,
            # Adam's state in the full convolutions' shapes (training/live_taps.py)
            **{k: None if opt is None else optimizer_state_full(opt.state_dict(), m)
               for k, (opt, m) in self._opts().items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "meta_json": json.dumps(self.meta),
        }

    def _update_ema(self) -> None:
        """ae_ema <- ema * ae_ema + (1 - ema) * ae (parameters); batch-norm statistics copied."""
        if self.ae_ema is None:
            return
        with torch.no_grad():
            live = dict(self.ae.named_parameters())
            avg = [p for _, p in self.ae_ema.named_parameters()]
            torch._foreach_lerp_(avg, [live[n] for n, _ in self.ae_ema.named_parameters()], 1.0 - self.cfg.ema)
            for (_, b), (_, lb) in zip(self.ae_ema.named_buffers(), self.ae.named_buffers()):
                b.copy_(lb)

    def _recalibrate_ema_bn(self, n_batches: int = 16) -> None:
        """Batch-norm statistics measured for the averaged weights (the live network's belong to
        the live weights: on the 128 px run they cost the average 1.1 dB of PSNR), on training
        images decoded as training decodes them: reconstruction and random codes in one batch."""
        if self.ae_ema is None:
            return
        cfg = self.cfg
        edits = self._decodes_edits
        # A plain copy: the live modules may be SyncBatchNorm, which would wait for the other ranks.
        # manual_seed reseeds CUDA too: fork the device's generator as well, or every re-estimate
        # would reset the training stream on a GPU.
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(cfg.seed + self.step)
            ae = AutoEncoder(self.arch).to(self.device)
            ae.load_state_dict(self.ae_ema.state_dict())
            bns = [m for m in ae.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
            if not bns:
                return
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # a plain average over the batches below
            ae.train()
            ns = torch.tensor([a.n for a in self.attrs])
            pick = np.sort(np.random.default_rng(cfg.seed + self.step).choice(
                self.train_idx, min(len(self.train_idx), n_batches * cfg.batch_size), replace=False))
            with torch.no_grad(), self._autocast():
                for s in range(0, len(pick), cfg.batch_size):
                    rows = pick[s:s + cfg.batch_size]
                    x = to_input(np.ascontiguousarray(self.images[rows]), self.device)
                    y = torch.from_numpy(np.ascontiguousarray(self.labels[rows])).long()
                    rnd = code_from_indices((torch.rand(y.shape) * ns).long().clamp_max(ns - 1), self.attrs)
                    ae(x, code_from_indices(y, self.attrs).to(self.device), rnd.to(self.device) if edits else None)
            live = dict(ae.named_buffers())
            for name, b in self.ae_ema.named_buffers():
                b.copy_(live[name])

    @property
    def ae_eval(self):
        """The auto-encoder that is evaluated, previewed and exported (the average when --ema)."""
        return self.ae_ema if self.ae_ema is not None else self.ae

    def _opts(self) -> dict:
        """Checkpoint key -> (optimizer, the module whose parameters it updates)."""
        return {"opt_ae": (self.opt_ae, self.ae), "opt_lat": (self.opt_lat, self.lat_dis),
                "opt_ptc": (self.opt_ptc, self.ptc_dis), "opt_clf": (self.opt_clf, self.clf_dis),
                "opt_critic": (self.opt_critic, self.critic)}

    @contextlib.contextmanager
    def _write_before_stopping(self, what: str):
        """A stop-now signal (a second Ctrl-C or SIGTERM) that comes inside this block is held until
        the block ends, then stops the run: abandoning a checkpoint write lost every step since the
        one before, without a word. (Every file is written atomically: a write that is abandoned
        all the same, by a third signal or a kill, leaves the file's previous contents.)"""
        outer = self._writing is None
        if outer:
            self._writing = what
        try:
            yield
        finally:
            if outer:
                self._writing = None
        if outer and self._deferred and not self._ending:
            raise KeyboardInterrupt

    def save_checkpoint(self) -> None:
        """Atomically write RUN_DIR/checkpoint_last.pt; if that fails, the one before stays.
        Data-parallel: rank 0 writes (every rank holds the same state), the others do nothing."""
        if not self.is_main:
            return
        with self._write_before_stopping(f"the checkpoint of step {self.step}"):
            try:
                atomic_torch_save(self.state(), self.ckpt_path)
            except FaderError as e:
                kept = (f"the checkpoint of step {self._saved_step} is intact: rerun with --resume once it can be written"
                        if self._saved_step is not None else "no checkpoint was written")
                raise FaderError(f"{e}; {kept}") from None
            self._saved_step = self.step
            self._saved_state = (self.step, self._last_eval_step)

    @property
    def saved_step(self) -> Optional[int]:
        """The step of the checkpoint in the run folder (written or resumed by this run; None: none)."""
        return self._saved_step

    def load_state(self, ck: dict) -> None:
        """Restore a checkpoint written by `state` (same architecture and attributes)."""
        def ld(m, key):
            if m is not None and ck.get(key) is not None:
                m.load_state_dict(ck[key])
        ld(self.ae, "ae"); ld(self.lat_dis, "lat_dis"); ld(self.ptc_dis, "ptc_dis"); ld(self.clf_dis, "clf_dis")
        if self.ae_ema is not None:  # a checkpoint written before --ema: the average starts at the weights
            self.ae_ema.load_state_dict(ck["ae_ema"] if ck.get("ae_ema") is not None else self.ae.state_dict())
        fresh_critic = self.critic is not None and ck.get("critic") is not None and not _same_shapes(self.critic, ck["critic"])
        if fresh_critic:  # resumed with another --critic-width: the critic starts anew
            self.log("the checkpoint's image critic has another width; a new critic starts")
        else:
            ld(self.critic, "critic")
        for k, (opt, m) in self._opts().items():
            if k == "opt_critic" and fresh_critic:
                continue
            if opt is not None and ck.get(k) is not None:
                opt.load_state_dict(optimizer_state_live(ck[k], m))
                _match_state_layout(opt)
        if ck.get("classifier") is not None:
            if self.classifier is None:
                self.classifier = use_small_map_convs(Classifier(_classifier_arch(ck, self.arch)))
                self.classifier = self.classifier.to(self.device).to(memory_format=torch.channels_last)
            self.classifier.load_state_dict(ck["classifier"])
            self.classifier.eval()
        for k, s in self.scalers.items():
            if k in ck.get("scalers", {}):
                s.load_state_dict(ck["scalers"][k])
        self.step, self.batches, self.elapsed = int(ck["step"]), int(ck["batches"]), float(ck["elapsed"])
        self._saved_step = self.step
        self.best.update(ck.get("best", {}))
        self.best["metrics"] = json.loads(ck.get("best_metrics_json") or "null")
        torch.set_rng_state(ck["rng_cpu"])
        if self.device.type == "cuda" and ck.get("rng_cuda"):
            torch.cuda.set_rng_state_all(ck["rng_cuda"])

    # ------------------------------------------------------------------ evaluation / export
    def evaluate(self) -> dict:
        """Validation figures (needs the evaluation classifier)."""
        vi = self.val_idx
        images = np.ascontiguousarray(self.images[np.sort(vi)])
        labels = self.labels[np.sort(vi)]
        return evaluate(self.ae_eval, self.classifier, self.attrs, images, labels, self.device,
                        lat_dis=self.lat_dis, n_skip=self.n_skip, autocast_dtype=self.amp_dtype,
                        measured=self.measured)

    def export(self, path: Path, metrics: dict) -> None:
        """Write the current auto-encoder (+ classifier) as a .fader model, atomically."""
        # Building the modules draws initial weights: keep that off the training RNG, so the
        # batches and codes after an export are the same however many exports a run makes.
        with torch.random.fork_rng(devices=[]):
            ae = AutoEncoder(self.arch)
            clf_cfg = ArchConfig.from_dict(self.classifier.config.to_dict()) if self.classifier is not None else None
            clf = Classifier(clf_cfg) if clf_cfg is not None else None
        ae.load_state_dict({k: v.detach().cpu() for k, v in self.ae_eval.state_dict().items()})
        ae.eval()
        if clf is not None:
            clf.load_state_dict({k: v.detach().cpu() for k, v in self.classifier.state_dict().items()})
            clf.eval()
        meta = json.loads(json.dumps(self.meta))
        training = meta.setdefault("training", {})
        training.update({"steps": self.step, "seconds": round(self.elapsed, 1),
                         "hardware": hardware_description(self.device), "world_size": self.world_size,
                         **self.cfg.recipe_meta(self.step)})
        meta["metrics"] = metrics
        meta["alignment"] = _alignment_meta()
        # the discriminators first: a write abandoned between the two (a third Ctrl-C) leaves the
        # model as it was, with the checkpoint's `best` still naming it (a discriminator file of
        # other weights is told apart by its digest of the auto-encoder, and not used)
        dis = {k: None if m is None else m.state_dict() for k, m in self._discriminators().items()}
        if any(v is not None for v in dis.values()):  # for --continue (training/discriminator_file.py)
            save_discriminators(discriminators_path(path), dis, ae, self.step, half=self.cfg.half_export)
        save_model(FaderModel(self.arch, list(self.attrs), ae, clf, clf_cfg, meta), path, half=self.cfg.half_export)

    def _discriminators(self) -> dict:
        """The networks trained against the auto-encoder, by their discriminator-file names."""
        return {"lat_dis": self.lat_dis, "ptc_dis": self.ptc_dis, "clf_dis": self.clf_dis, "critic": self.critic}

    def load_discriminators(self, path, model: FaderModel) -> dict:
        """Load the discriminators saved beside `model` (a --continue run); see
        training/discriminator_file.py for what the result says."""
        return load_discriminators(path, self._discriminators(), model.autoencoder)

    def _eval_and_export(self, t_start: float) -> str:
        cfg = self.cfg
        if self._acc_n:
            self._train_since_eval += self._acc
            self._train_since_eval_n += self._acc_n
            self._acc.zero_()
            self._acc_n = 0
        n = max(1, self._train_since_eval_n)
        tr = (self._train_since_eval / n).tolist()
        self._train_since_eval.zero_()
        self._train_since_eval_n = 0
        t0 = time.time()
        self._recalibrate_ema_bn()
        m = self.evaluate()
        self._last_eval_step = self.step
        m["eval_seconds"] = round(time.time() - t0, 1)
        self.best["psnr_max"] = max(self.best["psnr_max"], m["psnr"])
        selection = f"best mean swap accuracy with PSNR within {cfg.psnr_drop} dB of the run's best"
        if self.unmeasured:
            selection = selection.replace("swap accuracy", "swap accuracy of the attributes the data labels")
        metrics = {"step": self.step, "validation": m, "selection": selection}
        # What model.fader may hold: this state, the one it holds, and those --keep-evals exported (an
        # earlier state's weights are gone otherwise). A rise of the best PSNR can make the held one
        # ineligible; this state, then the best PSNR, always is.
        cands = {self.step: m}
        for rec in self._logged_evals():
            if self._kept_path(rec["step"]).is_file() or rec["step"] == self.best["step"]:
                cands[rec["step"]] = rec["val"]
        if self.best["step"] >= 0 and self.best.get("metrics"):
            cands.setdefault(self.best["step"], self.best["metrics"]["validation"])
        held = self.best["step"]
        choice = select_best({k: (v["swap_mean"], v["psnr"]) for k, v in cands.items()},
                             self.best["psnr_max"], cfg.psnr_drop)
        is_best = choice == self.step
        copy_kept = not is_best and choice is not None and choice != self.best["step"]
        # model.fader and its discriminator file are one pair, written before `best` names them and
        # logged with them: a stop-now signal waits for all of it
        guard = (self._write_before_stopping(f"the model of step {choice if copy_kept else self.step}")
                 if is_best or copy_kept or cfg.keep_evals else contextlib.nullcontext())
        with guard:
            if is_best:
                self.export(self.run_dir / "model.fader", metrics)
                self.best.update({"score": m["swap_mean"], "step": self.step, "metrics": metrics})
            elif copy_kept:   # a kept earlier state
                kept = self._kept_path(choice)
                for src, dst in ((discriminators_path(kept), discriminators_path(self.run_dir / "model.fader")),
                                 (kept, self.run_dir / "model.fader")):
                    if src.is_file():
                        write_bytes_atomic(dst, src.read_bytes())
                    elif dst.is_file():
                        dst.unlink()
                self.best.update({"score": cands[choice]["swap_mean"], "step": choice,
                                  "metrics": {"step": choice, "validation": cands[choice], "selection": selection}})
            if cfg.keep_evals:
                self.export(self._kept_path(self.step), metrics)
            grid_rows = np.sort(self.val_idx)[: cfg.preview_rows]
            grid = preview_grid(self.ae_eval, self.attrs, self.images[grid_rows], self.labels[grid_rows], self.device)
            write_png(self.run_dir / f"preview_{self.step:07d}.png", grid)
            write_png(self.run_dir / "preview_latest.png", grid)
            rec = {"step": self.step, "time": round(time.time(), 1), "elapsed": round(self.elapsed, 1),
                   "lambda_lat_dis": cfg.lam(cfg.lambda_lat_dis, self.step), "lr": self.lr,
                   "train": {"rec": tr[0], "lat_dis": tr[1], "adv": tr[2], "ptc_dis": tr[3], "critic": tr[4]},
                   "val": m, "best": is_best, "best_step": self.best["step"], "world_size": self.world_size}
            with open(self.run_dir / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
                f.flush()
                os.fsync(f.fileno())
        swaps = " ".join(f"{k}={v:.2f}" for k, v in m["swap_accuracy"].items())
        if self.unmeasured:
            swaps += f"; not measured: {', '.join(self.unmeasured)}, labelled by the starting model"
        return (f"step {self.step} | lambda {rec['lambda_lat_dis']:.1e} | rec {tr[0]:.4f} | "
                f"PSNR {m['psnr']:.2f} dB | lat-dis acc {m.get('lat_dis_accuracy_mean', float('nan')):.3f} | "
                f"swap {m['swap_mean']:.3f} ({swaps}) | on the input {m['paste_swap_mean']:.3f} | others {m['others_unchanged_mean']:.3f}"
                + (" | best, exported" if is_best else f" | best stays step {held}" if self.best["step"] == held
                   else f" | best now step {self.best['step']} (from its {self._kept_path(self.best['step']).name})"))

    def _kept_path(self, step: int) -> Path:
        return self.run_dir / f"model_step{step:07d}.fader"

    def _logged_evals(self) -> list:
        """The run's earlier evaluations, from log.jsonl (torn or foreign lines skipped)."""
        path = self.run_dir / "log.jsonl"
        out = []
        for line in (path.read_text(errors="replace").splitlines() if path.is_file() else []):
            try:
                rec = json.loads(line)
                if isinstance(rec.get("step"), int) and rec["step"] < self.step:
                    float(rec["val"]["swap_mean"]), float(rec["val"]["psnr"])
                    out.append(rec)
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
        return out

    def _trim_log(self) -> None:
        """On resume, drop log.jsonl lines from steps after the checkpoint (they are redone) and
        any torn last line, so the loss curves stay monotonic in step."""
        path = self.run_dir / "log.jsonl"
        if not path.exists():
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and rec.get("step", 0) <= self.step:
                keep.append(line)
        write_bytes_atomic(path, "".join(k + "\n" for k in keep).encode("utf-8"))

    # ------------------------------------------------------------------ main loop
    def fit(self) -> str:
        """Train until cfg.steps, the wall-clock budget or a stop request; returns the stop reason.
        Evaluates/exports every eval_every steps and writes checkpoint_last.pt every ckpt_every
        steps and at exit."""
        cfg = self.cfg
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.dist is not None:
            self._start_data_parallel()
        rank = 0 if self.dist is None else self.dist.rank
        if cfg.data_on_device:
            stream = DeviceBatchStream(self.images, self.labels, self.train_idx, cfg.batch_size, cfg.seed,
                                       self.batches, cfg.flip, self.device, rank=rank, world_size=self.world_size)
        else:
            stream = BatchStream(self.images, self.labels, self.train_idx, cfg.batch_size, cfg.seed,
                                 self.batches, cfg.flip, pin=self.device.type == "cuda",
                                 rank=rank, world_size=self.world_size)
        bar = None
        if self.progress and self.is_main:
            # without tqdm's step/s (the losses' img/s says the rate): at 100 columns its bar was 2
            # characters wide and the line wrapped
            bar = progress_bar(cfg.steps, "training", "step", initial=self.step, smoothing=0.05,
                               bar_format=TRAINING_BAR)
        write = bar.write if bar is not None else self.log
        if self.step > 0 and self.is_main:
            self._trim_log()
        t_start = self._t_fit = time.time()
        base_elapsed = self.elapsed
        self._ending = False
        reason = "done"
        t_rate, s_rate = time.time(), self.step
        mid_iteration = False
        try:
            while self.step < cfg.steps:
                stop = self.stop_reason
                left = self._seconds_left()
                if stop is None and left is not None and left <= 0 and self.is_main:  # rank 0's clock decides
                    stop = "time budget"
                if self.dist is not None:
                    stop = self.dist.agree_stop(stop)  # every rank stops after the same iteration
                if stop:
                    reason = stop
                    break
                mid_iteration = True
                self._set_lr()
                self.train_iteration(stream)
                mid_iteration = False
                self.elapsed = base_elapsed + time.time() - t_start
                if bar is not None:
                    bar.update(1)
                if self.step % cfg.log_every == 0:
                    if self.dist is not None:
                        self.dist.all_reduce_mean_(self._acc)  # the global batch's losses, the same on every rank
                    vals = (self._acc / self._acc_n).tolist()  # the only host sync, once per log_every steps
                    if not all(math.isfinite(v) for v in vals):
                        raise FaderError(f"training diverged at step {self.step} (loss is NaN/inf); "
                                         f"resume from {self.ckpt_path.name} with a lower learning rate")
                    self._train_since_eval += self._acc
                    self._train_since_eval_n += self._acc_n
                    self._acc.zero_()
                    self._acc_n = 0
                    now = time.time()
                    ips = (self.step - s_rate) * cfg.batch_size / max(1e-9, now - t_rate)
                    t_rate, s_rate = now, self.step
                    if bar is not None:
                        bar.set_postfix_str(f"{ips:.0f} img/s rec {vals[0]:.4f} lat {vals[1]:.3f} "
                                            f"lambda {cfg.lam(cfg.lambda_lat_dis, self.step):.1e}")
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    self._evaluate(write, t_start)
                if self.step % cfg.ckpt_every == 0:
                    self._checkpoint()
            if reason == "time budget" and self._last_eval_step != self.step:
                self._evaluate(write, t_start)
        finally:
            stream.close()
            if bar is not None:
                bar.close()
            self.elapsed = base_elapsed + time.time() - t_start
            # Always leave a resumable checkpoint (also on Ctrl-C / SIGTERM / errors after step 0);
            # data-parallel, not from the middle of an iteration (a rank died in a collective):
            # the last checkpoint then stays, consistent.
            # (not again when a stop came right after a checkpoint of this very state: the wait the
            # user was told of would double)
            if (self.dist is None or not mid_iteration) and \
                    self._saved_state != (self.step, self._last_eval_step):
                self._ending = True   # a stop-now signal during this last write waits for it, then nothing more
                self.save_checkpoint()
        return reason

    # ------------------------------------------------------------------ data-parallel hooks
    def _start_data_parallel(self) -> None:
        """Check that every rank resumes the same state on the same data, then wrap the networks
        that train in DistributedDataParallel (which also makes their weights rank 0's)."""
        import zlib
        tr = np.ascontiguousarray(self.train_idx, dtype=np.int64)
        self.dist.check_same("the run's state and data", [
            self.step, self.batches, self.cfg.batch_size, self.cfg.seed, len(tr), zlib.crc32(tr.tobytes()),
            zlib.crc32(np.ascontiguousarray(self.labels[tr], dtype=np.int64).tobytes())],
            "every process must see the same --data at the same path and the same RUN_DIR (a shared folder "
            "on several machines)")
        if not self._ddp:
            self._ddp = {id(m): self.dist.wrap(m) for m in (self.ae, self.lat_dis, self.ptc_dis, self.clf_dis,
                                                            self.critic) if m is not None}

    def _evaluate(self, write, t_start: float) -> None:
        """Evaluate and export (rank 0; the other ranks wait for it)."""
        if self.dist is None:
            write(self._eval_and_export(t_start))
            return
        if self._acc_n:
            self.dist.all_reduce_mean_(self._acc)
        msg = self.dist.main_only("evaluation", lambda: self._eval_and_export(t_start))
        if self.is_main:
            write(msg)
        else:
            self._acc.zero_()
            self._acc_n = 0
        self._last_eval_step = self.step

    def _checkpoint(self) -> None:
        """The periodic checkpoint (rank 0; the other ranks wait for it)."""
        if self.dist is None:
            self.save_checkpoint()
        else:
            self.dist.main_only("checkpoint", self.save_checkpoint)


def _same_shapes(module: torch.nn.Module, state: dict) -> bool:
    own = module.state_dict()
    return set(own) == set(state) and all(tuple(own[k].shape) == tuple(state[k].shape) for k in own)


def _classifier_arch(ck: dict, arch: ArchConfig) -> ArchConfig:
    """The evaluation classifier's architecture stored in a checkpoint (before it was stored: the default)."""
    if ck.get("classifier_arch"):
        return ArchConfig.from_dict(ck["classifier_arch"])
    return classifier_config(arch.img_size, arch.n_attr)


def select_best(evals: dict, psnr_max: float, psnr_drop: float) -> Optional[int]:
    """The step of the best of `evals` ({step: (mean swap accuracy, PSNR)}): the highest swap
    accuracy among those within `psnr_drop` dB of the run's best PSNR `psnr_max`, on equal swap
    accuracy the higher PSNR (then the earlier step: no new export for a tie); None if none is within."""
    ok = [(swap, psnr, -step) for step, (swap, psnr) in evals.items() if psnr >= psnr_max - psnr_drop]
    return -max(ok)[2] if ok else None


def _alignment_meta() -> Optional[dict]:
    """The CelebA template the crops were made with (None while core.alignment is unavailable;
    readers then fall back to CelebA's framing, which is what the data path used)."""
    try:
        from core.alignment import CELEBA_TEMPLATE
    except Exception:  # missing or broken module: never let it stop a training run
        return None
    return CELEBA_TEMPLATE.to_dict()



def load_checkpoint(path) -> dict:
    """Load checkpoint_last.pt safely (weights_only: plain tensors and containers, no code)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on foreign pickle protocols: the error below says it
            ck = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FaderError(f"{path}: no checkpoint to resume from") from None
    except pickle.UnpicklingError:
        # weights_only refused the contents (garbage, or objects that could run code): never retry without it
        raise FaderError(f"{path}: damaged or not a fader-train checkpoint (only plain tensors and containers "
                         "are loaded from a checkpoint, never code)") from None
    except Exception as e:  # torn / truncated file
        # some errors have no message (an empty file: EOFError())
        first = (str(e).split(". ")[0].splitlines() or [type(e).__name__])[0][:120]
        raise FaderError(f"{path}: damaged or not a fader-train checkpoint ({first})") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise FaderError(f"{path}: not a fader-train checkpoint")
    return ck


def export_checkpoint(ckpt_path, out_path, half: bool = False, classifier: bool = True) -> None:
    """Export the auto-encoder (+ classifier, unless `classifier` is False) of a checkpoint as a
    .fader model — the last state of a run rather than its selected best (e.g. to continue from it
    with --init or --continue)."""
    ck = load_checkpoint(ckpt_path)
    arch = ArchConfig.from_dict(ck["arch"])
    attrs = [Attribute.from_dict(a) for a in ck["attributes"]]
    ae = AutoEncoder(arch)
    ae.load_state_dict(ck["ae_ema"] if ck.get("ae_ema") is not None else ck["ae"])  # what the run evaluates
    clf = clf_cfg = None
    if classifier and ck.get("classifier") is not None:
        clf_cfg = _classifier_arch(ck, arch)
        clf = Classifier(clf_cfg)
        clf.load_state_dict(ck["classifier"])
    meta = json.loads(ck.get("meta_json") or "{}")
    # the recipe as Trainer.export records it, so that --continue can go on from this export too
    meta.setdefault("training", {}).update({"steps": int(ck["step"]), "seconds": round(float(ck["elapsed"]), 1),
                                            **TrainConfig.from_recorded(ck["config"]).recipe_meta(int(ck["step"])),
                                            "exported_from": f"{Path(ckpt_path).name} (last state, not the selected best)"})
    meta["metrics"] = None
    meta["alignment"] = _alignment_meta()
    save_model(FaderModel(arch, attrs, ae.eval(), clf.eval() if clf is not None else None, clf_cfg, meta), out_path, half=half)
    states = {k: ck.get(k) for k in DISCRIMINATORS}
    if any(v is not None for v in states.values()):
        save_discriminators(discriminators_path(out_path), states, ae, int(ck["step"]), half=half)


def install_signal_handlers(trainer: Trainer) -> None:
    """SIGINT / SIGTERM ask the loop to stop after the current iteration and save a checkpoint.
    A second one stops at once (fit's finally-block still saves), except while a checkpoint or model
    is being written: that write ends first, with a line saying so, and the run stops after it; a
    third one then abandons the write (the file keeps its previous contents). Once training is
    over (`trainer.finished`) a first signal changes nothing (the run is only saying how it ended),
    a second one stops at once."""
    def handler(signum, frame):
        if trainer.finished:
            # the run is only saying how it ended; a second signal still stops a teardown that hangs
            if trainer._late_signal:
                raise KeyboardInterrupt
            trainer._late_signal = True
            return
        name = "SIGTERM" if signum == signal.SIGTERM else "interrupted"
        if not trainer.stop_reason:
            trainer.stop_reason = name
            return
        writing = trainer._writing
        if writing is None or trainer._deferred:
            raise KeyboardInterrupt
        trainer._deferred = name
        again = "Ctrl-C" if signum == signal.SIGINT else "signal"
        if writing.startswith("the checkpoint"):
            kept = (f"the checkpoint of step {trainer.saved_step} stays" if trainer.saved_step is not None
                    else "no checkpoint is kept")
        else:
            kept = "model.fader stays as it was"
        try:
            trainer.log(f"stopping once {writing} is written (another {again} stops at once without it: {kept})")
        except Exception:  # the stream may be mid-write (re-entrant call): never break the write over a message
            pass
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
