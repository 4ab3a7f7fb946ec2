"""Real training on a small CelebA sample, kill -9 + resume, fine-tuning, export (tiny models, 32 px)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.attributes import Attribute, attribute_code
from conftest import celeba_rows
from core.model_file import FaderModel, load_model, save_model
from core.networks import ArchConfig
from training.cache import open_cache
from training.datasets import open_dataset
from training.trainer import CHECKPOINT_NAME, TrainConfig, Trainer, init_from_model, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CELEBA = SHARED / "celeba" / "img_align_celeba"
TINY = dict(img_size=32, init_fm=8, max_fm=64, n_layers=3, hid_dim=64)


# one intra-op thread (conftest): tiny tensors, a shared 2-core machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _need_celeba():
    if not (SHARED / "list_attr_celeba.txt").is_file() or not CELEBA.is_dir():
        pytest.skip("CelebA subset (../shared/data) not available")


@pytest.fixture(scope="module")
def celeba_sample(tmp_path_factory):
    """~1000 split-0 training and 200 split-1 validation CelebA images at 32 px (memmap cache)."""
    _need_celeba()
    ds = open_dataset(CELEBA, "Male,Smiling")
    tr = [i for i, it in enumerate(ds.items) if it.split == 0][:1000]
    va = [i for i, it in enumerate(ds.items) if it.split == 1][:200]
    idx = tr + va
    cache = open_cache([ds.items[i].path for i in idx], 32, cache_dir=tmp_path_factory.mktemp("cache"), progress=False)
    assert cache.n_valid == len(idx)
    labels = ds.labels[idx]
    return ds.attributes, np.asarray(cache.images), labels, np.arange(len(tr)), np.arange(len(tr), len(idx))


@torch.no_grad()
def _lat_dis_accuracy(tr: Trainer) -> float:
    tr.ae.eval()
    tr.lat_dis.eval()
    from training.evaluation import predict_indices, to_input
    x = to_input(tr.images[tr.val_idx], "cpu")
    pred = predict_indices(tr.lat_dis(tr.ae.encode(x)[-1]), tr.attrs)
    return float((pred.numpy() == tr.labels[tr.val_idx]).mean())


def _run(sample, lam, steps, tmp_path, amp="auto", every=25, **extra):
    """A Trainer run `steps` iterations; also the mean reconstruction loss of every `every` iterations."""
    from training.batches import BatchStream
    attrs, images, labels, tr_idx, va_idx = sample
    torch.manual_seed(0)
    arch = ArchConfig(n_attr=sum(a.n for a in attrs), **TINY)
    cfg = TrainConfig(steps=steps, lambda_lat_dis=lam, lambda_schedule=steps // 2, lr=1e-3, log_every=25, seed=0,
                      amp=amp, **extra)
    t = Trainer(arch, attrs, images, labels, tr_idx, va_idx, cfg, tmp_path, "cpu", progress=False)
    stream = BatchStream(images, labels, tr_idx, cfg.batch_size, cfg.seed, 0, True)
    recs = []
    try:
        for s in range(steps):
            t.train_iteration(stream)
            if (s + 1) % every == 0:
                recs.append(float(t._acc[0]) / t._acc_n)
                t._acc.zero_()
                t._acc_n = 0
    finally:
        stream.close()
    return t, recs


def test_training_lowers_reconstruction_and_fools_the_latent_discriminator(celeba_sample, tmp_path):
    # 200 steps (250 before): over three seeds the latent discriminator reads 0.73-0.78 without the
    # feedback (over 0.70 needed) and 0.63-0.64 with it (under 0.70-0.73 needed)
    steps = 200
    base, recs0 = _run(celeba_sample, 0.0, steps, tmp_path / "a")
    adv, recs1 = _run(celeba_sample, 0.05, steps, tmp_path / "b")
    # reconstruction improves a lot in both runs
    assert recs0[-1] < 0.6 * recs0[0], recs0
    assert recs1[-1] < 0.6 * recs1[0], recs1
    labels, va = celeba_sample[2], celeba_sample[4]
    chance = float(np.mean([max(np.mean(labels[va, j]), 1 - np.mean(labels[va, j])) for j in range(labels.shape[1])]))
    acc0, acc1 = _lat_dis_accuracy(base), _lat_dis_accuracy(adv)
    # without feedback the latent code keeps the attributes; with the ramped feedback the
    # discriminator is pushed towards the majority-class rate
    assert acc0 > chance + 0.08, (acc0, chance)
    assert acc1 < acc0 - 0.05, (acc1, acc0, chance)
    assert abs(acc1 - chance) < abs(acc0 - chance)


@torch.no_grad()
def _edit_tv_and_chroma(tr: Trainer) -> tuple:
    """Mean total variation and chroma of the edits (every attribute flipped, minus the reconstruction)."""
    from training.evaluation import code_from_indices, to_input
    from training.losses import chroma, total_variation
    tr.ae.eval()
    x = to_input(tr.images[tr.val_idx], "cpu")
    y = torch.from_numpy(tr.labels[tr.val_idx]).long()
    enc = tr.ae.encode(x)
    rec = tr.ae.decode(enc, code_from_indices(y, tr.attrs))[-1]
    edit = tr.ae.decode(enc, code_from_indices(1 - y, tr.attrs))[-1]
    return float(total_variation(edit - rec)), float(chroma(edit - rec))


def test_edit_smoothness_options(celeba_sample, tmp_path):
    """--lambda-edit-tv makes edits smoother, --lambda-edit-chroma greyer; --clf-blur low-passes what
    the classifier discriminator sees."""
    clf = dict(lambda_clf_dis=0.1, n_clf_dis=1)
    # 40 iterations (the loss read every 10), over three seeds: the edit's TV falls to 0.46-0.53x, its
    # chroma at weight 1.0 to 0.54-0.59x, the reconstruction to 0.37-0.48x of its first window (60
    # read every 20: 0.56x, 0.61x, 0.36-0.40x; 120 and chroma weight 0.5: 0.52x, 0.69x, 0.25-0.27x)
    plain, _ = _run(celeba_sample, 0.0, 40, tmp_path / "a", every=10, **clf)
    smooth, recs = _run(celeba_sample, 0.0, 40, tmp_path / "b", every=10, lambda_edit_tv=0.5, **clf)
    grey, recs_g = _run(celeba_sample, 0.0, 40, tmp_path / "d", every=10, lambda_edit_chroma=1.0, **clf)
    (tv0, ch0), (tv1, _), (_, ch2) = _edit_tv_and_chroma(plain), _edit_tv_and_chroma(smooth), _edit_tv_and_chroma(grey)
    assert tv1 < 0.7 * tv0, (tv1, tv0)
    assert ch2 < 0.7 * ch0, (ch2, ch0)
    # the penalties do not stop the auto-encoder learning
    assert recs[-1] < 0.7 * recs[0] and recs_g[-1] < 0.7 * recs_g[0], (recs, recs_g)
    from training.losses import chroma
    grey_change = torch.rand(2, 1, 8, 8).expand(2, 3, 8, 8)
    assert float(chroma(grey_change)) < 1e-6 and float(chroma(torch.rand(2, 3, 8, 8))) > 0.05
    blurred, _ = _run(celeba_sample, 0.0, 5, tmp_path / "c", clf_blur=1.0, **clf)
    from training.losses import total_variation
    noise = torch.rand(4, 3, 32, 32) * 2 - 1
    assert total_variation(blurred._clf_view(noise)) < 0.3 * total_variation(noise)
    flat = torch.full((1, 3, 32, 32), 0.25)
    assert torch.allclose(blurred._clf_view(flat), flat)
    assert plain._clf_view(noise) is noise
    assert all(torch.isfinite(p).all() for p in blurred.clf_dis.parameters())


def test_weight_average_is_what_gets_evaluated_and_exported(celeba_sample, tmp_path):
    """--ema: the averaged auto-encoder trails the live one, is the one evaluated and exported, and
    survives a checkpoint; a checkpoint written without it starts the average at its weights."""
    attrs, images, labels, tr_idx, va_idx = celeba_sample
    t, recs = _run(celeba_sample, 0.0, 30, tmp_path / "a", ema=0.9)
    live = dict(t.ae.named_parameters())
    avg = dict(t.ae_ema.named_parameters())
    assert any(not torch.equal(live[k], avg[k]) for k in live)
    assert all(float((live[k] - avg[k]).detach().abs().max()) < 1.0 for k in live)  # it follows the weights
    assert t.ae_eval is t.ae_ema and not any(p.requires_grad for p in t.ae_ema.parameters())
    t.run_dir.mkdir(parents=True, exist_ok=True)
    t.export(t.run_dir / "m.fader", {})
    exported = load_model(t.run_dir / "m.fader").autoencoder.state_dict()
    assert all(torch.equal(exported[k], v.cpu()) for k, v in t.ae_ema.state_dict().items())
    assert not all(torch.equal(exported[k], v.cpu()) for k, v in t.ae.state_dict().items())
    t.save_checkpoint()
    ck = load_checkpoint(t.ckpt_path)
    again = Trainer(t.arch, attrs, images, labels, tr_idx, va_idx, TrainConfig(**ck["config"]), tmp_path / "a", "cpu",
                    progress=False)
    again.load_state(ck)
    assert all(torch.equal(v, again.ae_ema.state_dict()[k]) for k, v in t.ae_ema.state_dict().items())
    plain, _ = _run(celeba_sample, 0.0, 3, tmp_path / "b")
    assert plain.ae_eval is plain.ae and plain.ae_ema is None
    plain.run_dir.mkdir(parents=True, exist_ok=True)
    plain.save_checkpoint()
    ck = load_checkpoint(plain.ckpt_path)
    later = Trainer(plain.arch, attrs, images, labels, tr_idx, va_idx, TrainConfig(**{**ck["config"], "ema": 0.99}),
                    tmp_path / "b", "cpu", progress=False)
    later.load_state(ck)
    assert all(torch.equal(v, later.ae_ema.state_dict()[k]) for k, v in plain.ae.state_dict().items())


def test_image_critic_learns_attributes_and_steers_the_decoder(celeba_sample, tmp_path):
    """--n-critic: the critic's attribute head learns the real images' attributes, its realism head
    tells real from decoded, the auto-encoder's decodes move towards what the head reads as the
    requested attribute, and a checkpoint resumes the critic exactly."""
    from training.critic import diff_augment
    from training.evaluation import code_from_indices, predict_indices, to_input
    steps = 120
    # a critic of width 16 (the default 32 took 1.6x the time here) reads the attributes as well
    crit = dict(n_critic=1, lambda_critic_adv=0.01, lambda_critic_attr=0.3, critic_width=16)
    t, recs = _run(celeba_sample, 0.0, steps, tmp_path / "a", **crit)
    # the same training without the critic's feedback: no critic (its decodes are read by t's) and
    # no latent discriminator (lambda 0 leaves it unused); 4x faster than one trained and unused,
    # the swap rate as low (0.35 against 0.33, where t's is 0.86)
    base, _ = _run(celeba_sample, 0.0, steps, tmp_path / "b", n_lat_dis=0)
    attrs, images, labels, tr_idx, va_idx = celeba_sample
    x = to_input(images[va_idx], "cpu")
    y = torch.from_numpy(labels[va_idx])
    with torch.no_grad():
        t.critic.eval()
        real_p, real_a = t.critic(x)
        acc = float((predict_indices(real_a, attrs) == y).float().mean())
        # Male and Smiling from augmented 32 px crops after 120 steps: above always answering the
        # majority value (0.62 here). The margin is small on purpose: the float kernels of an
        # AVX2-only CPU gave 0.6725 where an AVX-512 one had given over 0.68 (width 32; 0.685 at
        # width 16 on the AVX2 CPU, where the swap rates below were 0.86 against 0.33).
        majority = float(torch.maximum(y.float().mean(0), 1 - y.float().mean(0)).mean())
        assert acc > majority + 0.03, (acc, majority)

        def swap_rate(tr):
            tr.ae.eval()
            flipped = 1 - y
            dec = tr.ae(x, code_from_indices(flipped, attrs))[1][-1]
            return float((predict_indices(t.critic(dec)[1], attrs) == flipped).float().mean())
        fake_p = t.critic(t.ae(x, code_from_indices(1 - y, attrs))[1][-1])[0]
        assert float(real_p.mean()) > float(fake_p.mean())
        assert swap_rate(t) > swap_rate(base) + 0.1, (swap_rate(t), swap_rate(base))
    assert recs[-1] < 0.7 * recs[0], recs
    # augmentation: same shape, a different image, differentiable
    z = torch.rand(4, 3, 32, 32, requires_grad=True)
    out = diff_augment(z * 2 - 1, torch.Generator().manual_seed(0))
    assert out.shape == z.shape and not torch.allclose(out, z * 2 - 1)
    out.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    # checkpoint round trip
    t.run_dir.mkdir(parents=True, exist_ok=True)
    t.save_checkpoint()
    ck = load_checkpoint(t.ckpt_path)
    assert ck["critic"] is not None and ck["opt_critic"] is not None
    again = Trainer(t.arch, attrs, images, labels, tr_idx, va_idx, TrainConfig(**ck["config"]), tmp_path / "a", "cpu",
                    progress=False)
    again.load_state(ck)
    for k, v in t.critic.state_dict().items():
        assert torch.equal(v, again.critic.state_dict()[k]), k
    # resumed with another --critic-width: a new critic, the rest of the run as it was
    narrow = Trainer(t.arch, attrs, images, labels, tr_idx, va_idx, TrainConfig(**{**ck["config"], "critic_width": 8}),
                     tmp_path / "a", "cpu", progress=False)
    narrow.load_state(ck)
    assert narrow.critic.trunk[0].parametrizations.weight.original.shape[0] == 8 and narrow.step == t.step
    assert all(torch.equal(v, narrow.ae.state_dict()[k]) for k, v in t.ae.state_dict().items())


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_training(celeba_sample, tmp_path, amp):
    """The autocast path CUDA takes by default (bf16, or fp16 with loss scaling), forced on the CPU."""
    from training.precision import cpu_has_native_bf16
    # A CPU without AVX512-BF16/AMX emulates bf16 about 10x slower, and torch's CPU convolutions
    # have no fp16 backward kernel on any CPU (an AMX Xeon: 2.8 s per 32x32 conv's backward at
    # batch 32 in fp16, 3 ms in bf16; the fp16 case ran over 10 minutes there): a quarter of the
    # batch keeps those cases near a minute. The critic at a quarter of the default width: its emulated
    # convolutions were three quarters of each step (10 fp16 steps: 7.0 s at width 32, 1.7 s at 16;
    # 40 fp16 steps here: 12.2 s at 16, 5.7 s at 8, 5.6 s at 4, the rest is the auto-encoder's).
    # 40 iterations, the loss read every 10: the last ten's mean is 0.38-0.44 of the first ten's over
    # three seeds (50 gave 0.36, 30 0.51-0.60; 100 read every 25 gave 0.28 at width 16, 0.26 at width
    # 32; fp16 at width 8: 0.443, as at 16), under the 0.6 below.
    fast = amp == "bf16" and cpu_has_native_bf16()
    t, recs = _run(celeba_sample, 0.05, 40, tmp_path, amp=amp, every=10, n_critic=1, lambda_critic_adv=0.01,
                   lambda_critic_attr=0.1, critic_width=8, batch_size=32 if fast else 8)
    want = torch.bfloat16 if amp == "bf16" else torch.float16
    assert t.amp_dtype == want
    x = torch.zeros(2, 3, 32, 32).to(memory_format=torch.channels_last)
    with t._autocast():
        assert t.ae.encode(x)[-1].dtype == want  # the step really runs in half precision
    assert recs[-1] < 0.6 * recs[0], recs
    assert all(torch.isfinite(p).all() for p in t.ae.parameters())
    assert all(p.dtype == torch.float32 for p in t.ae.parameters())  # fp32 master weights
    from training.evaluation import train_classifier
    attrs, images, labels, tr_idx, va_idx = celeba_sample
    # 5 steps: the evaluation needs a classifier, not a good one
    t.classifier = train_classifier(images, labels, tr_idx, va_idx, attrs, 5, "cpu", progress=False)[0].eval()
    metrics = t.evaluate()  # under autocast too
    assert 10 < metrics["psnr"] < 60 and 0 <= metrics["swap_mean"] <= 1
    t.save_checkpoint()
    ck = load_checkpoint(t.ckpt_path)
    assert ck["config"]["amp"] == amp
    if amp == "fp16":
        scale = t.scalers["ae"].get_scale()
        assert set(ck["scalers"]) == {"ae", "lat", "ptc", "clf", "critic"} and scale > 0
        again = Trainer(t.arch, attrs, images, labels, tr_idx, va_idx, TrainConfig(**ck["config"]), tmp_path, "cpu",
                        progress=False)
        again.load_state(ck)
        assert again.scalers["ae"].get_scale() == scale and again.step == t.step
    else:
        assert not t.scalers


def _folder_from_celeba(root: Path, attr: str, n_per: int) -> Path:
    """A labeled folder DATA=<root>/<attr>/{no,yes} of real CelebA images (symlinks)."""
    files = sorted(os.listdir(CELEBA))[:2000]
    names, table = celeba_rows(files)
    j = names.index(attr)
    counts = {"no": 0, "yes": 0}
    for f in files:
        v = "yes" if table[f][j] == "1" else "no"
        if counts[v] < n_per:
            (root / attr / v).mkdir(parents=True, exist_ok=True)
            os.symlink(CELEBA / f, root / attr / v / f)
            counts[v] += 1
    return root / attr


def test_kill_9_then_resume_continues_exactly(tmp_path, capsys):
    from training import cli
    _need_celeba()
    data = _folder_from_celeba(tmp_path / "d", "Smiling", 60)
    common = ["--data", str(data), "--img-size", "32", "--init-fm", "8", "--max-fm", "32", "--n-layers", "3",
              "--hid-dim", "32", "--classifier-steps", "5", "--eval-every", "20", "--ckpt-every", "5",
              "--lambda-schedule", "40", "--threads", "1", "--quiet", "--cache-dir", str(tmp_path / "cache"),
              "--val-size", "16"]
    # the run killed -9 after a checkpoint past step 10 (a thread watches it), then resumed
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "training.cli", *common, "--steps", "40", "--out", str(out)],
                         cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed, failed = [], []

    def kill_past_step_10():
        try:
            deadline = time.time() + 240
            while time.time() < deadline and p.poll() is None:
                if (out / CHECKPOINT_NAME).exists():
                    step = load_checkpoint(out / CHECKPOINT_NAME)["step"]
                    if step >= 10:
                        os.kill(p.pid, signal.SIGKILL)
                        killed.append(step)
                        return
                time.sleep(0.05)
        except BaseException as e:   # raised below, not lost in the thread
            failed.append(e)
    watcher = threading.Thread(target=kill_past_step_10, daemon=True)
    watcher.start()
    try:
        # meanwhile (its interpreter starts for seconds), the uninterrupted reference run in this
        # process, as the resume: only the killed run needs its own; its own cache folder, so that
        # neither waits for the other's preprocessing
        ref = [x if x != str(tmp_path / "cache") else str(tmp_path / "ref_cache") for x in common]
        assert cli.main(ref + ["--steps", "40", "--out", str(tmp_path / "ref"), "--keep-evals"]) == 0, \
            capsys.readouterr().err[-2000:]
        watcher.join(240)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        watcher.join(10)
    if failed:
        raise failed[0]
    killed_at = killed[0] if killed else None
    if killed_at is None:
        pytest.fail("the run finished or timed out before a checkpoint past step 10 could be interrupted")
    ck = load_checkpoint(out / CHECKPOINT_NAME)  # intact after kill -9
    assert 10 <= ck["step"] < 40
    capsys.readouterr()
    code = cli.main(common + ["--steps", "40", "--out", str(out), "--resume"])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    assert f"resumed {out / CHECKPOINT_NAME} at step {ck['step']}" in err
    a = load_checkpoint(tmp_path / "ref" / CHECKPOINT_NAME)
    b = load_checkpoint(out / CHECKPOINT_NAME)
    assert a["step"] == b["step"] == 40 and a["batches"] == b["batches"]
    for net in ("ae", "lat_dis"):
        for k, v in a[net].items():
            assert torch.allclose(v.float(), b[net][k].float(), atol=1e-5), (net, k)
    # Adam's moments are stored in the full convolution's shape (training/live_taps.py)
    for i, p in enumerate(v for k, v in b["lat_dis"].items() if not k.endswith(("running_mean", "running_var",
                                                                                "num_batches_tracked"))):
        assert b["opt_lat"]["state"][i]["exp_avg"].shape == p.shape
    assert a["opt_ae"]["state"][0]["step"] == b["opt_ae"]["state"][0]["step"]
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [20, 40]
    # --keep-evals: every evaluated state is a model file of its own
    kept = sorted(p.name for p in (tmp_path / "ref").glob("model_step*.fader"))
    assert kept == ["model_step0000020.fader", "model_step0000040.fader"]
    assert load_model(tmp_path / "ref" / kept[1]).meta["training"]["steps"] == 40
    assert not list(out.glob("model_step*.fader"))
    m = load_model(out / "model.fader")
    assert [x.name for x in m.attributes] == ["Smiling"] and m.classifier is not None
    assert (out / "preview_latest.png").is_file() and cv2.imread(str(out / "preview_latest.png")) is not None


def test_finetune_adds_an_attribute(celeba_sample, tmp_path, capsys):
    attrs, images, labels, tr_idx, va_idx = celeba_sample
    smiling = [attrs[1]]
    arch = ArchConfig(n_attr=2, **TINY)
    from training.evaluation import train_classifier
    clf, acc = train_classifier(images, labels[:, 1:], tr_idx, va_idx, smiling, 30, "cpu", progress=False)
    cfg = TrainConfig(steps=20, eval_every=20, ckpt_every=20, lambda_schedule=10)
    t = Trainer(arch, smiling, images, labels[:, 1:], tr_idx, va_idx[:32], cfg, tmp_path / "old", "cpu",
                classifier=clf, meta={"license": "test"}, progress=False)
    t.fit()
    old = load_model(tmp_path / "old" / "model.fader")
    assert [a.name for a in old.attributes] == ["Smiling"]
    # in-process: the new Male planes start at zero, so the new model decodes exactly like the old
    new_attrs = [old.attributes[0], Attribute("Male")]
    new_arch = ArchConfig.from_dict({**old.config.to_dict(), "n_attr": 4})
    ae = init_from_model(old, new_attrs, new_arch).eval()
    x = torch.from_numpy(images[va_idx[:4]]).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        want = old.autoencoder.decode(old.autoencoder.encode(x), attribute_code(old.attributes, [{"Smiling": 1.0}] * 4))[-1]
        for male in (0.0, 1.0, 2.0):
            got = ae.decode(ae.encode(x), attribute_code(new_attrs, [{"Smiling": 1.0, "Male": male}] * 4))[-1]
            assert torch.allclose(got, want, atol=1e-5)
    # adding a skip connection: its decoder planes start at zero, so nothing changes at first
    skip_arch = ArchConfig.from_dict({**old.config.to_dict(), "n_skip": 1})
    ae_skip = init_from_model(old, old.attributes, skip_arch).eval()
    with torch.no_grad():
        got = ae_skip.decode(ae_skip.encode(x), attribute_code(old.attributes, [{"Smiling": 1.0}] * 4))[-1]
    assert ae_skip.config.n_skip == 1 and torch.allclose(got, want, atol=1e-5)
    two_arch = ArchConfig.from_dict({**old.config.to_dict(), "n_skip": 2})
    two_skips = tmp_path / "two_skips.fader"
    save_model(FaderModel(two_arch, old.attributes, init_from_model(old, old.attributes, two_arch),
                          old.classifier, old.classifier_config, old.meta), two_skips)
    _need_celeba()
    data = _folder_from_celeba(tmp_path / "d", "Male", 40)
    # a fine-tune can add skip connections but not remove them (the command run in this process)
    from training import cli
    capsys.readouterr()
    code = cli.main(["--data", str(data), "--init", str(two_skips),
                     "--n-skip", "1", "--steps", "5", "--out", str(tmp_path / "fewer"), "--quiet",
                     "--threads", "1", "--cache-dir", str(tmp_path / "cache")])
    assert code == 2 and "can add skip connections, not remove them" in capsys.readouterr().err
    # through the CLI: a labeled folder of the new attribute; Smiling is labelled by the old classifier
    code = cli.main(["--data", str(data), "--init", str(tmp_path / "old" / "model.fader"), "--steps", "10",
                     "--eval-every", "10", "--classifier-steps", "5", "--out", str(tmp_path / "ft"), "--quiet",
                     "--threads", "1", "--cache-dir", str(tmp_path / "cache"), "--val-size", "16"])
    assert code == 0, capsys.readouterr().err[-2000:]
    ft = load_model(tmp_path / "ft" / "model.fader")
    assert [a.name for a in ft.attributes] == ["Smiling", "Male"]
    assert ft.config.n_attr == 4 and ft.meta["training"]["pseudo_labelled"] == ["Smiling"]
    assert ft.meta["training"]["init"].endswith("model.fader")


def test_align_mode_detects_faces_and_skips_faceless_images(tmp_path):
    _need_celeba()
    from training.datasets import align_available
    if not align_available():
        pytest.skip("core.faces / core.alignment not available")
    wild = SHARED / "celeba" / "img_celeba"
    if not wild.is_dir():
        pytest.skip("in-the-wild CelebA photos not available")
    photos = sorted(wild.iterdir())[:2]
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 128, np.uint8))  # no face in it
    cache = open_cache([str(p) for p in photos] + [str(blank)], 32, align=True, cache_dir=tmp_path / "c",
                       progress=False)
    assert cache.valid.tolist() == [True, True, False]
    assert cache.skipped == {"no face": 1}
    # an aligned face crop is not a plain resize of the photo
    plain = cv2.resize(cv2.imread(str(photos[0]))[:, :, ::-1], (32, 32), interpolation=cv2.INTER_AREA)
    assert np.abs(cache.images[0].astype(int) - plain).mean() > 10


def _noise_folder(root: Path, seed: int) -> Path:
    """A labeled folder root/Bangs/{no,yes} of 12 random 40x40 images each: smooth ones (5x5 random
    colours enlarged), which the start's look for whole photos searches for faces in 0.11 s for all
    10 it looks at; in pixel noise that took 0.29 s, at every start."""
    rng = np.random.default_rng(seed)
    for v in ("no", "yes"):
        for i in range(12):
            p = root / "Bangs" / v / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), cv2.resize(rng.integers(0, 255, (5, 5, 3), dtype=np.uint8), (40, 40),
                                           interpolation=cv2.INTER_CUBIC))
    return root / "Bangs"


def test_max_minutes_stops_with_an_exported_model(tmp_path, capsys):
    from training import cli
    _noise_folder(tmp_path, 0)
    out = tmp_path / "run"
    t0 = time.time()
    # a 0.6 s budget (3 s before: the test's time was mostly the budget); the clock is read before
    # each step, so the run takes at least one however loaded the machine
    code = cli.main(["--data", str(tmp_path / "Bangs"), "--img-size", "32", "--init-fm", "8", "--max-fm", "16",
                     "--n-layers", "3", "--hid-dim", "16", "--steps", "1000000", "--max-minutes", "0.01",
                     "--classifier-steps", "2", "--eval-every", "100000", "--out", str(out), "--quiet",
                     "--cache-dir", str(tmp_path / "cache"), "--val-size", "4"])
    assert code == 0
    assert time.time() - t0 < 120
    assert "time budget at step" in capsys.readouterr().err
    ck = load_checkpoint(out / CHECKPOINT_NAME)
    assert 0 < ck["step"] < 1000000
    m = load_model(out / "model.fader")  # the final evaluation exported it
    assert m.meta["training"]["steps"] == ck["step"]
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()] == [ck["step"]]


def test_continue_the_training_of_a_half_precision_model(tmp_path, capsys):
    """--continue: a new run goes on from a committed float16 model: its weights, its recipe, its
    step count (so the loss weights' ramps go on), with options given on the command line on top."""
    from training import cli
    common_data = _noise_folder(tmp_path, 1)
    common = ["--data", str(common_data), "--img-size", "32", "--quiet", "--cache-dir", str(tmp_path / "cache"),
              "--val-size", "4", "--threads", "1"]
    first = tmp_path / "first"
    assert cli.main(common + ["--init-fm", "8", "--max-fm", "16", "--n-layers", "3", "--hid-dim", "16",
                              "--steps", "6", "--eval-every", "6", "--classifier-steps", "2", "--half-export",
                              "--lambda-lat-dis", "0.02", "--lambda-schedule", "20", "--lambda-critic-attr", "0.05",
                              "--critic-width", "8", "--ema", "0.9", "--amp", "off", "--out", str(first)]) == 0
    model = load_model(first / "model.fader")
    assert model.meta["training"]["steps"] == 6
    capsys.readouterr()
    second = tmp_path / "second"
    assert cli.main(common + ["--continue", str(first / "model.fader"), "--steps", "10", "--eval-every", "2",
                              "--lambda-edit-tv", "0.01", "--out", str(second)]) == 0
    err = capsys.readouterr().err
    assert f"continuing the training of {first / 'model.fader'} at step 6 (to step 10)" in err
    side = first / "model.discriminators.safetensors"   # written by the export, loaded by --continue
    assert f"discriminators from {side} (step 6): lat_dis, critic" in err
    ck = load_checkpoint(second / CHECKPOINT_NAME)
    c = ck["config"]
    assert ck["step"] == 10 and c["steps"] == 10
    assert (c["lambda_lat_dis"], c["lambda_schedule"], c["n_critic"], c["lambda_critic_attr"], c["critic_width"]) == \
        (0.02, 20, 1, 0.05, 8)   # the model's recipe
    assert c["lambda_edit_tv"] == 0.01 and c["eval_every"] == 2   # what was given now
    assert c["amp"] == "auto"   # precision is this machine's choice, not the recorded run's
    recs = [json.loads(x) for x in (second / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [8, 10]
    assert recs[0]["lambda_lat_dis"] == pytest.approx(0.02 * 8 / 20)   # the ramp went on from step 6
    assert load_model(second / "model_last.fader" if (second / "model_last.fader").exists() else second / "model.fader") \
        .meta["training"]["continued_from"] == {"model": str(first / "model.fader"), "step": 6}
    # the last state of a run, exported from its checkpoint, continues the same way
    assert cli.main(["--out", str(first), "--export-last", "--quiet"]) == 0
    assert cli.main(common + ["--continue", str(first / "model_last.fader"), "--steps", "7", "--out", str(tmp_path / "w")]) == 0
    assert f"discriminators from {first / 'model_last.discriminators.safetensors'} (step 6): lat_dis, critic" \
        in capsys.readouterr().err
    # a damaged discriminator file beside the model is a one-line error, and --fresh-discriminators skips it
    side.write_bytes(side.read_bytes()[:200])
    assert cli.main(common + ["--continue", str(first / "model.fader"), "--steps", "10", "--out", str(tmp_path / "y")]) == 2
    assert f"error: {side}: not a discriminator file, or damaged" in capsys.readouterr().err
    assert cli.main(common + ["--continue", str(first / "model.fader"), "--steps", "7", "--fresh-discriminators",
                              "--out", str(tmp_path / "z")]) == 0
    assert "the discriminators start untrained (--fresh-discriminators)" in capsys.readouterr().err
    # a model without the file gets one from a continuation that only warms the discriminators up: the
    # auto-encoder is untouched, so that run's file belongs beside the original model
    side.unlink()
    assert cli.main(common + ["--continue", str(first / "model.fader"), "--critic-warmup", "3", "--steps", "9",
                              "--out", str(tmp_path / "warm")]) == 0
    assert "no model.discriminators.safetensors beside the model: the discriminators start untrained" \
        in capsys.readouterr().err
    side.write_bytes((tmp_path / "warm" / "model.discriminators.safetensors").read_bytes())
    assert cli.main(common + ["--continue", str(first / "model.fader"), "--steps", "7", "--out", str(tmp_path / "v")]) == 0
    assert f"discriminators from {side} (step 9): lat_dis, critic" in capsys.readouterr().err
    # data that label more attributes than the model (CelebA's 40): without --attr the continuation
    # trains the model's own, instead of failing on the others
    rows = ["file,Bangs,Smiling"] + [f"Bangs/{p.parent.name}/{p.name},{p.parent.name},{i % 2}"
                                     for i, p in enumerate(sorted(common_data.rglob("*.png")))]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    table = ["--data", str(tmp_path / "labels.csv")] + common[2:]
    assert cli.main(table + ["--continue", str(first / "model.fader"), "--steps", "7", "--out", str(tmp_path / "t")]) == 0
    assert "--continue trains the model's attributes 'Bangs' of the data's 2" in capsys.readouterr().err
    cont = tmp_path / "t" / ("model_last.fader" if (tmp_path / "t" / "model_last.fader").exists() else "model.fader")
    assert [x.name for x in load_model(cont).attributes] == ["Bangs"]   # not grown by the data's Smiling
    # a model that does not record its recipe is refused with a clear message
    model.meta["training"].pop("hyper_parameters")
    save_model(model, tmp_path / "bare.fader")
    assert cli.main(common + ["--continue", str(tmp_path / "bare.fader"), "--steps", "10", "--out", str(tmp_path / "x")]) == 2
    assert "does not record its training recipe" in capsys.readouterr().err


def test_discriminators_saved_beside_an_export_load_into_a_new_run(tmp_path):
    """Every export writes the latent discriminator and the critic beside the model; a new trainer
    loads them exactly (at the export's precision). A file for other auto-encoder weights, a
    pickle in its place, or a critic of another width is refused or started anew, with a message."""
    from core.errors import FaderError
    from training.discriminator_file import discriminators_path
    attrs = [Attribute("Smiling")]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (40, 1))
    arch = ArchConfig(n_attr=2, **TINY)
    cfg = dict(steps=4, eval_every=100, ckpt_every=100, lambda_schedule=4, seed=0, n_critic=1,
               lambda_critic_adv=0.01, critic_width=8, half_export=True)

    def trainer(seed, **kw):
        return Trainer(arch, attrs, images, labels, np.arange(32), np.arange(32, 40),
                       TrainConfig(**{**cfg, "seed": seed, **kw}), tmp_path / f"run{seed}", "cpu", progress=False)
    t = trainer(0)
    from training.evaluation import to_input
    x, y = to_input(images[:8], "cpu"), torch.from_numpy(labels[:8]).long()
    for _ in range(2):   # the discriminators move away from their initial weights
        t.lat_dis_step(x, y)
        t.critic_step(x, y)
        t.autoencoder_step(x, y)
        t.step += 2
    t.export(tmp_path / "m.fader", {})
    side = discriminators_path(tmp_path / "m.fader")
    assert side == tmp_path / "m.discriminators.safetensors" and side.is_file()
    model = load_model(tmp_path / "m.fader")
    fresh = trainer(1)
    assert not torch.equal(fresh.critic.state_dict()["trunk.0.bias"], t.critic.state_dict()["trunk.0.bias"])
    info = fresh.load_discriminators(side, model)
    assert info == {"step": 4, "loaded": ["lat_dis", "critic"], "fresh": {}}
    for mine, theirs in ((fresh.critic, t.critic), (fresh.lat_dis, t.lat_dis)):
        for k, v in theirs.state_dict().items():
            want = v.half().to(v.dtype) if v.is_floating_point() else v
            assert torch.equal(mine.state_dict()[k], want), k
    # a critic of another width starts anew; the latent discriminator still loads
    narrow = trainer(2, critic_width=4)
    assert narrow.load_discriminators(side, model)["fresh"] == {"critic": "another architecture in the file"}
    # the file of other auto-encoder weights is refused
    with torch.no_grad():
        next(model.autoencoder.parameters()).add_(0.1)
    save_model(model, tmp_path / "other.fader", half=True)
    (tmp_path / "other.discriminators.safetensors").write_bytes(side.read_bytes())
    with pytest.raises(FaderError, match="other auto-encoder weights"):
        trainer(3).load_discriminators(tmp_path / "other.discriminators.safetensors", load_model(tmp_path / "other.fader"))
    # a pickle where the file should be is never unpickled: a clear error
    marker = tmp_path / "ran"
    torch.save({"x": _Boom(str(marker))}, tmp_path / "evil.safetensors")
    with pytest.raises(FaderError, match="not a discriminator file"):
        trainer(4).load_discriminators(tmp_path / "evil.safetensors", model)
    assert not marker.exists()


class _Boom:
    """Unpickling this would create a file: proof that a loader did unpickle."""
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_full_disk_at_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    """A checkpoint write that fails (disk full) is a one-line error saying which checkpoint is
    intact; that checkpoint still loads and no temporary file is left."""
    from core.errors import FaderError
    attrs = [Attribute("Smiling")]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (40, 1))
    arch = ArchConfig(n_attr=2, **TINY)
    cfg = TrainConfig(steps=6, eval_every=100, ckpt_every=3, lambda_schedule=4, seed=0)
    t = Trainer(arch, attrs, images, labels, np.arange(32), np.arange(32, 40), cfg, tmp_path / "run", "cpu",
                progress=False)
    real_save = torch.save
    calls = []

    def disk_fills_up(obj, f, *a, **k):
        calls.append(obj["step"])
        if obj["step"] >= 6:
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *a, **k)
    monkeypatch.setattr(torch, "save", disk_fills_up)
    with pytest.raises(FaderError) as info:
        t.fit()
    msg = str(info.value)
    assert msg == (f"{tmp_path / 'run' / CHECKPOINT_NAME}: cannot write (No space left on device); "
                   "the checkpoint of step 3 is intact: rerun with --resume once it can be written")
    monkeypatch.undo()
    assert calls[:2] == [3, 6]
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)["step"] == 3
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".part")]


def test_averaged_weights_get_their_own_batch_norm_statistics(celeba_sample, tmp_path):
    """--ema: before an evaluation the average's batch-norm statistics are measured for its own
    weights (the live network's fit the live weights), without moving the training's random stream."""
    attrs, images, labels, tr_idx, va_idx = celeba_sample
    # a critic of width 16: 0.63 dB gained after the recalibration, as at the default 32, in 40 % of the time
    t, _ = _run(celeba_sample, 0.0, 40, tmp_path, ema=0.9, n_critic=1, lambda_critic_adv=0.01, critic_width=16)
    live = {k: v.clone() for k, v in t.ae.named_buffers() if "running" in k}
    vi = images[va_idx][:64]
    before = _psnr(t.ae_ema, vi)
    rng = torch.get_rng_state()
    t._recalibrate_ema_bn()
    assert torch.equal(rng, torch.get_rng_state())
    mine = dict(t.ae_ema.named_buffers())
    assert all(not torch.allclose(v, mine[k]) for k, v in live.items())
    after = _psnr(t.ae_ema, vi)
    print(f'PSNR {before:.2f} -> {after:.2f}')
    assert after > before + 0.2, (before, after)


@torch.no_grad()
def _psnr(ae, images_u8) -> float:
    from training.evaluation import to_input
    ae.eval()
    x = to_input(images_u8, "cpu")
    y = torch.zeros(len(x), ae.config.n_attr)
    y[:, 0::2] = 1  # a fixed code: the comparison is between statistics, not attributes
    out = ae(x, y)[1][-1].clamp(-1, 1)
    return float(10 * torch.log10(4.0 / ((out - x) ** 2).mean()))


def test_resume_after_the_data_were_copied_again(tmp_path, capsys):
    """Resuming accepts the same files with new modification times (a re-synced copy of the data)
    and refuses different files."""
    from training import cli
    _need_celeba()
    import shutil
    src = _folder_from_celeba(tmp_path / "links", "Smiling", 20)
    data = tmp_path / "d" / "Smiling"
    shutil.copytree(src, data, symlinks=False)
    common = ["--data", str(data), "--img-size", "32", "--init-fm", "8", "--max-fm", "32", "--n-layers", "3",
              "--hid-dim", "32", "--classifier-steps", "3", "--eval-every", "10", "--ckpt-every", "5",
              "--threads", "1", "--quiet", "--cache-dir", str(tmp_path / "cache"), "--val-size", "8"]
    out = tmp_path / "run"
    # the runs in this process: three interpreters started only to import torch took most of the time
    assert cli.main(common + ["--steps", "10", "--out", str(out)]) == 0, capsys.readouterr().err[-2000:]
    capsys.readouterr()
    later = time.time() + 3600
    for f in data.rglob("*.jpg"):
        os.utime(f, (later, later))
    assert cli.main(common + ["--steps", "15", "--out", str(out), "--resume"]) == 0, capsys.readouterr().err[-2000:]
    assert load_checkpoint(out / CHECKPOINT_NAME)["step"] == 15
    victim = sorted((data / "yes").glob("*.jpg"))[0]
    victim.rename(victim.with_name("renamed_" + victim.name))
    capsys.readouterr()
    code = cli.main(common + ["--steps", "20", "--out", str(out), "--resume"])
    assert code != 0 and "the data differ from the run's" in capsys.readouterr().err


def test_edit_residual_shows_the_critic_edits_on_the_input(celeba_sample, tmp_path):
    """--edit-residual: the critic's edited images are the input plus the model's edit (the photo's
    own detail stays, as after the paste-back), and evaluation reads the edits that way too."""
    from training.evaluation import to_input
    attrs, images, labels, tr_idx, va_idx = celeba_sample
    t, recs = _run(celeba_sample, 0.0, 30, tmp_path, n_critic=1, lambda_critic_adv=0.01, lambda_critic_attr=0.05,
                   edit_residual=True, critic_width=16)   # the critic's width is not tested here: narrow is fast
    assert all(np.isfinite(recs))
    x = to_input(images[va_idx][:16], "cpu")
    y = torch.from_numpy(labels[va_idx][:16]).long()
    torch.manual_seed(1)
    shown = t._fake(x, y).float()
    t.cfg.edit_residual = False
    torch.manual_seed(1)
    bare = t._fake(x, y).float()
    # the bare decode of a 30-step model is a blur; on the input, the detail is the input's
    assert float((shown - x).abs().mean()) < 0.5 * float((bare - x).abs().mean())
    assert not torch.allclose(shown, x, atol=1e-3)  # and the edit is there
    t.cfg.edit_residual = True
    t.run_dir.mkdir(parents=True, exist_ok=True)
    from training.evaluation import evaluate
    m = evaluate(t.ae_eval, _any_classifier(t),
                 attrs, images[va_idx][:32], labels[va_idx][:32], "cpu")
    assert set(m["paste_swap_accuracy"]) == {a.name for a in attrs} and 0 <= m["paste_swap_mean"] <= 1


def _any_classifier(t):
    from core.networks import Classifier
    from training.evaluation import classifier_config
    torch.manual_seed(0)
    return Classifier(classifier_config(32, sum(a.n for a in t.attrs), max_fm=32)).eval()


def test_learning_rate_decays_to_zero_and_the_decay_can_start_on_resume(tmp_path):
    """--lr-decay-start: the learning rates fall linearly to 0 at --steps, so the last iteration
    leaves the weights where they were; a run resumed with the option starts its decay there."""
    from training import cli
    _noise_folder(tmp_path, 1)
    out = tmp_path / "run"
    common = ["--data", str(tmp_path / "Bangs"), "--img-size", "32", "--init-fm", "8", "--max-fm", "16",
              "--n-layers", "3", "--hid-dim", "16", "--classifier-steps", "2", "--eval-every", "100000",
              "--ckpt-every", "1", "--out", str(out), "--quiet", "--cache-dir", str(tmp_path / "cache"),
              "--val-size", "4", "--lr", "1e-3"]
    assert cli.main(common + ["--steps", "6"]) == 0
    ck = load_checkpoint(out / CHECKPOINT_NAME)
    assert ck["opt_ae"]["param_groups"][0]["lr"] == pytest.approx(1e-3)  # constant without the option
    ae6 = {k: v.clone() for k, v in ck["ae"].items()}
    assert cli.main(common + ["--resume", "--steps", "10", "--lr-decay-start", "6"]) == 0
    ck = load_checkpoint(out / CHECKPOINT_NAME)
    assert ck["config"]["lr_decay_start"] == 6 and ck["step"] == 10
    # the last iteration (step 9 -> 10) ran at 1e-3 * (10 - 9) / (10 - 6)
    assert ck["opt_ae"]["param_groups"][0]["lr"] == pytest.approx(2.5e-4)
    assert ck["opt_lat"]["param_groups"][0]["lr"] == pytest.approx(2.5e-4)
    assert any(not torch.equal(ae6[k], v) for k, v in ck["ae"].items() if v.is_floating_point())
    cfg = TrainConfig(lr=1e-3, steps=10, lr_decay_start=6)
    assert [cfg.lr_at(s) for s in (0, 5, 6, 8, 10)] == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 0.0])


def test_learning_rate_decays_to_zero_by_the_end_of_the_time_budget(tmp_path, capsys):
    """--lr-decay-minutes: with a time budget and no known step count (the GPU recipe), the rates
    fall linearly to 0 over the budget's last minutes; the log records the rate at each evaluation."""
    from training import cli
    _noise_folder(tmp_path, 2)
    out = tmp_path / "run"
    common = ["--data", str(tmp_path / "Bangs"), "--img-size", "32", "--init-fm", "8", "--max-fm", "16",
              "--n-layers", "3", "--hid-dim", "16", "--classifier-steps", "2", "--eval-every", "3",
              "--out", str(out), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--val-size", "4",
              "--lr", "1e-3", "--steps", "1000000"]
    assert cli.main(common + ["--max-minutes", "0.1", "--lr-decay-minutes", "0.2"]) == 2
    assert "needs a --max-minutes budget at least as long" in capsys.readouterr().err
    # a 4.8 s budget (12 s before): the last record's iteration may start an evaluation's time before
    # the end (0.3 s here), a quarter of the rate's fall (1.2 s) left for a loaded machine
    assert cli.main(common + ["--max-minutes", "0.08", "--lr-decay-minutes", "0.08"]) == 0
    err = capsys.readouterr().err
    assert "time budget at step" in err, err
    lrs = [json.loads(x)["lr"] for x in (out / "log.jsonl").read_text().splitlines()]
    assert len(lrs) >= 2, (lrs, err[-300:])
    # falling all along; the last iteration ran within an iteration's time of the budget's end
    assert all(a >= b for a, b in zip(lrs, lrs[1:])) and lrs[0] > lrs[-1] and lrs[-1] < 2.5e-4, lrs
    ck = load_checkpoint(out / CHECKPOINT_NAME)
    assert ck["opt_ae"]["param_groups"][0]["lr"] == pytest.approx(lrs[-1])
    # the rule itself: steps' decay times the budget's
    cfg = TrainConfig(lr=1e-3, steps=10, lr_decay_start=6, max_minutes=2, lr_decay_minutes=1)
    assert [cfg.lr_now(0, s) for s in (None, 120, 60, 30, 0, -5)] == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 0, 0])
    assert cfg.lr_now(8, 30) == pytest.approx(2.5e-4)


def test_resume_with_a_wider_decoder_decodes_as_before_then_grows_it(tmp_path, capsys):
    """--resume --dec-min-fm: the run's decoder is widened in place (weights, weight average and
    Adam's state), decodes exactly as before, and training then uses the new feature maps."""
    from core.networks import AutoEncoder, decoder_widths
    from training import cli
    from training.widen import widen_checkpoint
    _noise_folder(tmp_path, 2)
    out = tmp_path / "run"
    common = ["--data", str(tmp_path / "Bangs"), "--img-size", "32", "--init-fm", "4", "--max-fm", "16",
              "--n-layers", "3", "--hid-dim", "16", "--classifier-steps", "2", "--eval-every", "100000",
              "--ckpt-every", "1", "--out", str(out), "--quiet", "--cache-dir", str(tmp_path / "cache"),
              "--val-size", "4", "--ema", "0.9", "--lambda-critic-attr", "0.05", "--critic-width", "8"]
    assert cli.main(common + ["--steps", "4"]) == 0
    ck = load_checkpoint(out / CHECKPOINT_NAME)
    old = ArchConfig.from_dict(ck["arch"])
    assert old.dec_min_fm == 0 and decoder_widths(old)[-2:] == [(8, 4), (4, 3)]

    wide_ck = widen_checkpoint(ck, 12, log=lambda s: None)
    new = ArchConfig.from_dict(wide_ck["arch"])
    assert decoder_widths(new)[-2:] == [(12, 12), (12, 3)]
    torch.manual_seed(0)
    x, y = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, old.n_attr)
    for key, train_mode in (("ae", True), ("ae_ema", False)):
        a, b = AutoEncoder(old), AutoEncoder(new)
        a.load_state_dict(ck[key]), b.load_state_dict(wide_ck[key])
        a.train(train_mode), b.train(train_mode)
        with torch.no_grad():
            assert torch.allclose(a(x, y)[1][-1], b(x, y)[1][-1], atol=1e-6)
    assert wide_ck["critic"] is ck["critic"] and wide_ck["lat_dis"] is ck["lat_dis"]

    capsys.readouterr()
    assert cli.main(common + ["--resume", "--steps", "8", "--dec-min-fm", "12"]) == 0
    assert "decoder widened to at least 12 feature maps per layer" in capsys.readouterr().err
    ck8 = load_checkpoint(out / CHECKPOINT_NAME)
    assert ck8["step"] == 8 and ck8["arch"]["dec_min_fm"] == 12
    # the links from the new maps into the old ones started at zero and were trained
    w = ck8["ae"]["dec_layers.2.0.weight"]          # (in: 12 maps + code planes, out: 3), transposed conv
    assert w[4:12].abs().sum() > 0
    assert cli.main(["--out", str(out), "--export-last", "--quiet"]) == 0
    model = load_model(out / "model_last.fader")
    assert model.config.dec_min_fm == 12
    from core.engine import Engine
    eng = Engine(model, device="cpu", threads=1)
    crops = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    lat = eng.encode(crops)
    names = [a.name for a in model.attributes]
    lo, hi = eng.decode(lat, {names[0]: 0.0}), eng.decode(lat, {names[0]: 1.0})
    assert lo.shape == (2, 32, 32, 3) and not np.array_equal(lo, hi)   # the app runs the wider decoder
    # fine-tuning the wider model on one more attribute starts from exactly its decodes
    new_attrs = list(model.attributes) + [Attribute("Hat")]
    arch2 = ArchConfig.from_dict({**model.config.to_dict(), "n_attr": model.config.n_attr + 2, "n_skip": 1})
    ae2 = init_from_model(model, new_attrs, arch2).eval()
    xt = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        ref = model.autoencoder.eval()
        want = ref.decode(ref.encode(xt), attribute_code(model.attributes, [{names[0]: 1.0}] * 2))[-1]
        got = ae2.decode(ae2.encode(xt), attribute_code(new_attrs, [{names[0]: 1.0, "Hat": 1.0}] * 2))[-1]
    assert torch.allclose(got, want, atol=1e-5)
    # narrowing is refused with a clear message, and the checkpoint is left as it was
    assert cli.main(common + ["--resume", "--steps", "9", "--dec-min-fm", "8"]) == 2
    assert "a decoder can be widened, not narrowed" in capsys.readouterr().err
    assert load_checkpoint(out / CHECKPOINT_NAME)["step"] == 8


def test_single_edits_flip_exactly_one_attribute(celeba_sample, tmp_path):
    """--single-edits 1: every decoded edit is a slider's edit, one attribute changed and the other
    kept at its label; 0.5 makes about half of them so, the rest the reference's random values."""
    attrs, images, labels, tr_idx, va_idx = celeba_sample
    y = torch.from_numpy(labels[tr_idx][:512]).long()
    t, _ = _run(celeba_sample, 0.0, 0, tmp_path, single_edits=1.0)

    def changed(code):
        r = torch.stack([c.argmax(1) for c in torch.split(code, [a.n for a in attrs], 1)], 1)
        return (r != y).sum(1)
    n = changed(t._random_code(y))
    assert torch.all(n == 1)
    which = torch.stack([c.argmax(1) for c in torch.split(t._random_code(y), [a.n for a in attrs], 1)], 1) != y
    assert all(0.35 < float(which[:, j].float().mean()) < 0.65 for j in range(len(attrs)))  # each attribute
    t.cfg.single_edits = 0.5
    n = changed(t._random_code(y))
    # a random code keeps both labels a quarter of the time and changes both another quarter
    assert 0.55 < float((n == 1).float().mean()) < 0.9 and float((n == 0).float().mean()) > 0.05


def test_held_attribute_loss_counts_only_the_kept_attributes():
    from training.losses import held_attr_loss
    attrs = [Attribute("A", ("0", "1")), Attribute("B", ("0", "1"))]
    ref = torch.tensor([[2.0, -1.0, 0.5, 0.0]])
    assert float(held_attr_loss(ref, ref, torch.ones(1, 2), attrs)) == 0.0
    moved_b = torch.tensor([[2.0, -1.0, -1.0, 2.0]])
    assert float(held_attr_loss(moved_b, ref, torch.tensor([[1.0, 0.0]]), attrs)) == pytest.approx(0.0, abs=1e-7)
    assert float(held_attr_loss(moved_b, ref, torch.tensor([[0.0, 1.0]]), attrs)) > 0.1


@torch.no_grad()
def _reading_shifts(t, x, y) -> tuple:
    """Mean KL between the run's critic readings of a reconstruction and of the one-attribute edit
    (attribute 0 flipped): for the attribute the edit changes, and for the one it keeps."""
    from training.evaluation import code_from_indices
    from training.losses import held_attr_loss
    t.ae_eval.eval()
    t.critic.eval()
    flipped = y.clone()
    flipped[:, 0] = 1 - flipped[:, 0]
    rec = t.ae_eval(x, code_from_indices(y, t.attrs))[1][-1]
    ed = t.ae_eval(x, code_from_indices(flipped, t.attrs))[1][-1]
    a_ed, a_rec = t.critic(ed)[1], t.critic(rec)[1]
    col = torch.eye(2)
    return tuple(float(held_attr_loss(a_ed, a_rec, col[j].expand(len(y), 2), t.attrs)) for j in (0, 1))


def test_critic_hold_term_keeps_the_other_attributes_of_an_edit(celeba_sample, tmp_path):
    """--lambda-critic-hold: trained against it, the decoder's one-attribute edits move the critic's
    reading of the attribute they keep less than the same run without the term does."""
    from training.evaluation import to_input
    # the margins below were measured with one intra-op thread (one_torch_thread); with two the run
    # without the term edits more (3.17 vs 1.66 with it, under the 0.6 ratio)
    attrs, images, labels, tr_idx, va_idx = celeba_sample
    x = to_input(images[va_idx][:64], "cpu")
    y = torch.from_numpy(labels[va_idx][:64]).long()
    # a critic of width 16 for 100 iterations: 0.45x the time of width 32 for 80, which moved the kept
    # attribute as much without the term (0.17 alone) but made the edit less surely with it (seeds
    # 0-2 of the width 32 run: one failed the last assertion, of width 16 none)
    common = dict(n_critic=1, lambda_critic_attr=1.0, single_edits=1.0, critic_width=16)
    shift = {}
    for hold in (0.0, 5.0):
        t, recs = _run(celeba_sample, 0.0, 100, tmp_path / str(hold), lambda_critic_hold=hold, **common)
        assert all(np.isfinite(recs))
        shift[hold] = _reading_shifts(t, x, y)
    # The kept attribute holds: its reading moves little (0.013 alone; 0.031 after the file's other
    # tests) and 2.5x less than without the term wherever that run moves it (0.115 alone, 0.166 after
    # them). How far the run without the term moves it depends on the seed and on the state the
    # file's earlier tests leave, so a fixed ratio alone would measure those, not the term.
    assert shift[5.0][1] < max(0.4 * shift[0.0][1], 0.05), shift
    # and the edit is still made (2.0 vs 2.7 alone, 2.4 vs 3.1 after the others)
    assert shift[5.0][0] > 0.6 * shift[0.0][0], shift


def test_critic_warmup_trains_the_critic_while_the_auto_encoder_waits(celeba_sample, tmp_path):
    """--critic-warmup: the first iterations change the critic and the latent discriminator only;
    after them the auto-encoder trains as before."""
    from training.batches import BatchStream
    attrs, images, labels, tr_idx, va_idx = celeba_sample
    extra = dict(n_critic=1, lambda_critic_attr=0.1, lambda_critic_adv=0.01)
    fresh, _ = _run(celeba_sample, 0.05, 0, tmp_path / "a", **extra)
    t, _ = _run(celeba_sample, 0.05, 10, tmp_path / "b", critic_warmup_until=10, **extra)
    for k, v in fresh.ae.state_dict().items():
        assert torch.equal(v, t.ae.state_dict()[k]), k
    assert not torch.equal(fresh.critic.attr_fc.weight, t.critic.attr_fc.weight)
    assert not torch.equal(fresh.lat_dis.state_dict()[next(iter(fresh.lat_dis.state_dict()))],
                           t.lat_dis.state_dict()[next(iter(t.lat_dis.state_dict()))])
    stream = BatchStream(images, labels, tr_idx, t.cfg.batch_size, 0, 0, True)
    try:
        t.train_iteration(stream)
    finally:
        stream.close()
    assert any(not torch.equal(v, t.ae.state_dict()[k]) for k, v in fresh.ae.state_dict().items())


def test_default_model_script_packs_the_run_with_its_critic(tmp_path, capsys):
    """scripts/train_default_model.sh --pack: the run's last state at half precision, without its
    evaluation classifier, with the critic and latent discriminator beside it, so that the run goes
    on on another machine (--continue loads both); without a checkpoint it says so."""
    from training import cli
    data = _noise_folder(tmp_path, 2)
    common = ["--data", str(data), "--img-size", "32", "--quiet", "--cache-dir", str(tmp_path / "cache"),
              "--val-size", "4", "--threads", "1", "--amp", "off"]
    run = tmp_path / "run"
    assert cli.main(common + ["--init-fm", "8", "--max-fm", "16", "--n-layers", "3", "--hid-dim", "16", "--steps", "4",
                              "--eval-every", "4", "--classifier-steps", "2", "--n-critic", "1", "--critic-width", "8",
                              "--lambda-critic-attr", "0.05", "--ema", "0.9", "--out", str(run)]) == 0
    pack = tmp_path / "replica" / "model.fader"
    script = REPO / "scripts" / "train_default_model.sh"
    env = {**os.environ, "B": str(run), "PACK": str(pack), "PY": sys.executable, "AMP": "off"}
    r = subprocess.run(["bash", str(script), "--pack"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"packed step 4: {pack}" in r.stdout
    m = load_model(pack)
    assert m.classifier is None and m.meta["training"]["steps"] == 4
    assert all(v.dtype == torch.float16 for k, v in _file_tensors(pack).items() if v.is_floating_point())
    ck = load_checkpoint(run / CHECKPOINT_NAME)
    for k, v in ck["ae_ema"].items():   # the weights the run evaluates, at half precision
        if v.is_floating_point():
            assert torch.equal(m.autoencoder.state_dict()[k].float(), v.half().float()), k
    assert sorted(x.name for x in pack.parent.iterdir()) == ["model.discriminators.safetensors", "model.fader"]
    capsys.readouterr()
    assert cli.main(common + ["--continue", str(pack), "--steps", "6", "--classifier-steps", "2",
                              "--out", str(tmp_path / "next")]) == 0
    assert f"discriminators from {pack.parent / 'model.discriminators.safetensors'} (step 4): lat_dis, critic" \
        in capsys.readouterr().err
    env["B"] = str(tmp_path / "nothing")
    r = subprocess.run(["bash", str(script), "--pack"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "no checkpoint to pack" in r.stderr
    assert load_model(pack).meta["training"]["steps"] == 4   # the pack there is kept


def _file_tensors(path: Path) -> dict:
    from safetensors.torch import load_file
    return load_file(str(path))
