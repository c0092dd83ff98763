"""All training stages of the ReHyAt model, one function each, plus a CLI running them in order.

    python3 -m rehyat.train --preset full --out DIR [--budget-scale 1.0]   (run from training/)
    python3 -m rehyat.train --preset long --out DIR --stages vae,teacher --budget teacher=360 --sched teacher=0:840
    python3 -m rehyat.train --preset long --out DIR2 --resume DIR/checkpoint.pt --stages teacher ...

Stages (each bounded by a wall-clock budget in seconds, so one device call trains everything):
  vae      causal video autoencoder, L1 + MSE on rendered videos; then latent mean/std.
  encoder  refit the VAE's encoder to its frozen decoder and latent statistics (a checkpoint
           recovered from a release, rehyat.export.recover, has a decoder but no encoder);
           optionally plus the latent cycle on the teacher's samples (--encoder-cycle).
  teacher  text encoder + full-softmax DiT, flow matching, 10% prompt dropout for CFG.
  stage1   per-block attention distillation: teacher sampling trajectories -> cached per-layer
           (q, k, v, softmax output); fit ONLY phi_q, phi_k of each converted block, L1.
  stage2   whole student DiT, flow matching (text encoder and VAE frozen); optionally plus the
           teacher's velocity on the clip's first 2 s as a second target (--stage2-distill), or
           instead the teacher's velocity on sampling trajectories (--stage2-traj teacher|student).
           Long clips (--stage2-long) may add an area term (--stage2-area) and alternate with the
           student's own long trajectories under a self-consistency term (--stage2-self).
Writes DIR/checkpoint.pt (fp16 weights + configs + tokenizer) and DIR/metrics.json.

Data-parallel (one process per GPU; see rehyat/ddp.py and training/README.md):
    python3 -m torch.distributed.run --nproc_per_node N --master_addr 127.0.0.1 --master_port P \
        -m rehyat.train --preset long --out DIR ...
vae, teacher and stage2 train with DistributedDataParallel: per-rank batch = the preset's batch (the
global batch is N times it), learning rate x sqrt(N) unless --lr-scale says otherwise, every rank
renders/encodes its own 1/N of the latent cache, rank 0's clock decides when every loop stops. The
sweep, stage 1, evaluation, checkpoint, metrics and logs are rank 0's; --resume loads on every rank.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from dataclasses import dataclass, asdict, field
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F

from . import ddp
from .attention import hybrid_attention_chunked
from .data import make_batch
from .dit import DiT, DiTConfig
from .sampling import sample_parallel, schedule
from .text import TextConfig, TextEncoder, Tokenizer
from .vae import CausalVideoVAE, VAEConfig


@dataclass
class Preset:
    size: int = 128
    frames: int = 32              # pixel frames per training video (2 s at 16 fps)
    vae: VAEConfig = field(default_factory=VAEConfig)
    text: TextConfig = field(default_factory=TextConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    vae_batch: int = 16
    dit_batch: int = 64
    budgets: Dict[str, float] = field(default_factory=lambda: {
        "vae": 95, "encoder": 60, "teacher": 230, "stage1": 25, "stage2": 80, "sweep": 4})
    max_steps: Dict[str, int] = field(default_factory=lambda: {
        "vae": 10 ** 9, "encoder": 10 ** 9, "teacher": 10 ** 9, "stage1": 10 ** 9, "stage2": 1500,
        "sweep": 10 ** 9})
    latent_cache: int = 12288      # videos rendered + encoded once for teacher / stage 2
    teacher_lr: float = 8e-4
    # (Tc, To) pairs whose stage-1 distillation error is measured to pick the default
    sweep: tuple = ((1, 0), (2, 0), (2, 1), (3, 1), (4, 1))
    stage1_prompts: int = 64
    stage1_steps: int = 8
    train_shift: float = 3.0
    tc: int = 2
    to: int = 1
    # stage 2 fine-tunes the student on longer clips than the teacher saw (length generalisation
    # of the recurrent form); its own latent cache of stage2_frames-frame videos, batch stage2_batch
    stage2_frames: int = 32
    stage2_batch: int = 64
    stage2_cache: int = 0          # 0: reuse the teacher's cache (same clip length)
    # length generalisation: with stage2_long_frames > 0, every other stage-2 step draws a batch of
    # stage2_long_frames-frame clips (e.g. 512 = 32 s = 64 chunks, the evaluation's 16x) from a
    # cache of stage2_long_cache videos, batch sized to the same tokens per step as the short one
    stage2_long_frames: int = 0
    stage2_long_cache: int = 0
    ema: float = 0.0               # EMA decay of the weights that are kept (0: none)
    compile: bool = False          # torch.compile the DiT for training (CUDA, torch >= 2)
    # cosine schedule position of a stage resumed across device calls: (offset_s, total_s)
    sched: Dict[str, tuple] = field(default_factory=dict)
    # data-parallel learning-rate multiplier of the vae / teacher / stage2 rates (0: sqrt(world size),
    # i.e. 1 in a single process); the per-rank batch stays the preset's
    lr_scale: float = 0.0
    # VAE: weight of the gradient-difference terms (spatial edges and frame-to-frame differences,
    # object-weighted like the pixel loss): shapes and motion are edges and their displacement
    vae_grad_loss: float = 0.0
    # flow matching (teacher and stage 2): latent cells that hold an object (any of the 4 frames x
    # 8x8 pixels a cell encodes differs from the background) weigh 1 + this, the others 1, the loss
    # normalised by the mean weight. Objects cover ~9% of the cells: at 4 they carry ~1/3 of the loss
    fm_object_weight: float = 0.0
    # stage 2: weight of a second target, the teacher's velocity, on each short clip's first
    # teacher-length latent frames (the teacher's training clip; the chunk-causal student's output
    # there does not depend on the rest of the clip), same x_t, t and prompt (0: flow matching only)
    stage2_distill: float = 0.0
    # stage 2: weight of an area term on the encoded clips (long steps; the short ones too without
    # --stage2-traj): per frame, each object's soft area (palette-softmax pixels of its colour, the
    # evaluation's labelling made differentiable) in the decoded predicted clean video x0 = x_t - t v
    # against the same in the decoded clip, |log ratio| weighted by (1 - t), over a window of
    # stage2_area_frames latent frames at a random chunk (AreaMatch). The motion accuracy's misses are
    # mostly size drift: translations read as grow/shrink (0: off)
    stage2_area: float = 0.0
    stage2_area_frames: int = 4    # the window of this term and of the self-consistency term below
    # stage 2: weight of a self-consistency term on the student's own long sampling trajectories
    # (stage2_self_prompts scenes sampled at stage2_long_frames as stage 2 starts, LongTrajectoryCache):
    # every other long step takes such a state instead of an encoded long clip, and the term asks each
    # object's soft area (and a still object's position) in a later window of the predicted clean
    # video to stay what the video's first window shows (SelfConsistency); with stage2_distill the
    # teacher's velocity on its first 2 s is a second target there. Needs stage2_long_frames (0: off)
    stage2_self: float = 0.0
    stage2_self_prompts: int = 256
    # stage 2 on sampling trajectories instead of encoded videos (no VAE encoder needed): "" (off),
    # "teacher" (the states the teacher visits when it samples) or "student" (the states the student
    # visits, as it samples when stage 2 starts); the target at every state is the teacher's
    # velocity there, conditional or unconditional (TrajectoryCache). The short steps take these
    # teacher-length clips, batch sized to stage2_batch x stage2_frames tokens; long steps unchanged
    stage2_traj: str = ""
    stage2_traj_prompts: int = 4096   # trajectories (the sampler's steps, shift and guidance below)
    stage2_traj_steps: int = 16
    stage2_traj_shift: float = 3.0
    stage2_traj_guidance: float = 4.0
    # encoder refit (the encoder stage): weight of a latent cycle term, the MSE between
    # encode(decode(z)) and z for normalised latents z the teacher samples (the sampler above: steps,
    # shift, guidance), so the encoder maps videos back into the latent distribution the DiT learned,
    # not just to some latent the decoder reconstructs them from (0: reconstruction only). Either way
    # the refit reports that cycle error on held-out samples: encoder_cycle_latents are sampled, an
    # eighth of them held out (only that eighth without the cycle term)
    encoder_cycle: float = 0.0
    encoder_cycle_latents: int = 1024


def lr_mult(p: Preset) -> float:
    return p.lr_scale if p.lr_scale > 0 else math.sqrt(ddp.world())


def preset(name: str) -> Preset:
    if name == "full":
        return Preset()
    if name == "long":
        # the release recipe for several device calls: bigger batch, bigger cache, EMA, compile,
        # stage 2 on 4 s clips (16 latent frames = 8 chunks)
        return Preset(dit_batch=128, latent_cache=49152, ema=0.999, compile=True,
                      stage2_frames=64, stage2_batch=64, stage2_cache=8192,
                      budgets={"vae": 150, "encoder": 150, "teacher": 840, "stage1": 60, "stage2": 300,
                               "sweep": 12},
                      max_steps={"vae": 10 ** 9, "encoder": 10 ** 9, "teacher": 10 ** 9, "stage1": 10 ** 9,
                                 "stage2": 10 ** 9, "sweep": 10 ** 9})
    if name == "long3":
        # the rehyat-3 experiment: `long` plus the VAE's gradient-difference loss and RoPE base 100
        # (training/experiments/rehyat-3/README.md)
        p3 = preset("long")
        p3.vae_grad_loss = 1.0
        p3.dit = DiTConfig(rope_theta=100.0)
        return p3
    if name == "long4":
        # the rehyat-4 recipe: `long3` plus the object-weighted flow-matching loss (rehyat-3's
        # generated objects drift in area: the loss was ~91% background cells) and twice the scenes
        # in the teacher's latent cache (a longer teacher run would see each ~125 times)
        p4 = preset("long3")
        p4.fm_object_weight = 4.0
        p4.latent_cache = 98304
        return p4
    if name == "tiny":
        return Preset(size=32, frames=8,
                      vae=VAEConfig(latent_channels=4, enc_channels=(8, 8, 8, 8), dec_channels=(8, 8, 8, 8)),
                      text=TextConfig(dim=16, layers=1, heads=2, max_len=24),
                      dit=DiTConfig(latent_channels=4, latent_height=4, latent_width=4, dim=32, layers=2,
                                    heads=2, text_dim=16, feature_dim=8, feature_hidden=8, rope_theta=100.0),
                      vae_batch=2, dit_batch=2, stage1_prompts=2, stage1_steps=2, latent_cache=4,
                      budgets={"vae": 1e9, "encoder": 1e9, "teacher": 1e9, "stage1": 1e9, "stage2": 1e9, "sweep": 1e9},
                      max_steps={"vae": 1, "encoder": 1, "teacher": 1, "stage1": 1, "stage2": 1, "sweep": 1},
                      sweep=((1, 0), (2, 1)), ema=0.9, stage2_frames=16, stage2_batch=2, stage2_cache=2,
                      vae_grad_loss=1.0, encoder_cycle_latents=8)
    raise ValueError(f"unknown preset {name!r} (full|long|long3|long4|tiny)")


def _amp(device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _fp32_velocity(model, device):
    """``model``'s velocity under ``_amp(device)``, cast to fp32: for ``sample_parallel`` called outside
    autocast, so that the trajectory caches guide and step in fp32 (the evaluation instead samples
    under autocast, as the service's bf16 path would)."""
    def velocity(x, t, ctx):
        with _amp(device):
            return model(x, t, ctx).float()
    return velocity


def _lr(base, step, frac, warm=100):
    return base * min(1.0, (step + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


class EMA:
    """Exponential moving average of a module's float parameters (kept in float32)."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.module, self.decay, self.n = module, decay, 0
        self.params = [q for q in module.parameters()]
        self.shadow = [q.detach().float().clone() for q in self.params]

    @torch.no_grad()
    def update(self):
        self.n += 1
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        cur = [q.detach() for q in self.params]
        if hasattr(torch, "_foreach_lerp_") and all(q.dtype == torch.float32 for q in cur):
            torch._foreach_lerp_(self.shadow, cur, 1.0 - d)
        else:
            for s_, q in zip(self.shadow, cur):
                s_.lerp_(q.float(), 1.0 - d)

    @torch.no_grad()
    def copy_to_module(self):
        for s_, q in zip(self.shadow, self.params):
            q.copy_(s_.to(q.dtype))


class FlowNet(torch.nn.Module):
    """One flow-matching forward, ``dit(x_t, t, text(ids))``: the unit a training step runs and DDP
    wraps (one wrapper over the DiT and the text encoder; a frozen text encoder has no trainable
    parameters for DDP). ``fast`` is the torch.compile'd DiT when compiling: same parameters, kept
    out of the module tree."""

    def __init__(self, dit, text):
        super().__init__()
        self.dit, self.text = dit, text
        self.__dict__["fast"] = None

    def forward(self, xt, t, ids):
        ctx = self.text(ids)
        return (self.fast if self.fast is not None else self.dit)(xt, t, ctx)


class VAENet(torch.nn.Module):
    """One autoencoder training forward: encode, latent noise, decode -> (video, latent)."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x):
        z = self.vae.encoder(x)
        z = z + 0.05 * torch.randn_like(z)  # decoder robustness to imperfect latents
        y, _ = self.vae.decoder(z)
        return y, z


class Forward:
    """Runs ``net`` for training steps: its DiT (``net.dit``) torch.compile'd when asked (CUDA,
    torch >= 2), the whole net in DistributedDataParallel when launched distributed (DDP around the
    eager net, whose DiT call goes to the compiled twin: one DDP, either path). A compile failure at
    the first step falls back to eager (logged), so a run never dies of it; under DDP every rank
    falls back together (see _loop)."""

    def __init__(self, net, want_compile: bool, log=print):
        self.net, self.compiled, self.log, self.ddp = net, None, log, None
        if want_compile and hasattr(torch, "compile") and hasattr(net, "dit") and next(net.parameters()).is_cuda:
            self.compiled = torch.compile(net.dit)
            net.__dict__["fast"] = self.compiled
        if ddp.is_on():
            self.ddp = ddp.wrap(net)

    def __call__(self, *a, **kw):
        return (self.ddp if self.ddp is not None else self.net)(*a, **kw)

    def disable(self, err):
        if self.compiled is None:
            return False
        self.log(f"[compile] disabled after error: {type(err).__name__}: {str(err)[:300]}")
        self.compiled = None
        self.net.__dict__["fast"] = None
        return True


STOP_SYNC_EVERY = 4  # data-parallel loops: rank 0 decides stop / schedule position every k steps


def _loop(name, p: Preset, fn, opt, base_lr, log, ema: "EMA" = None, fwd: "Forward" = None, sync: bool = True):
    """Run fn(step) -> loss until the stage's time budget or step cap; cosine LR over time.
    A stage split over several device calls keeps one cosine: p.sched[name] = (offset_s, total_s).
    Data-parallel (``sync`` and several ranks): rank 0's clock decides, every STOP_SYNC_EVERY steps,
    whether to stop and where the schedule is (one 2-float gloo broadcast, no GPU sync; the position
    holds until the next decision), so all ranks take the same steps at the same learning rates
    (bench/ddp_stop_flag.out.json: the cost); a stage that only rank 0 runs passes ``sync=False``."""
    t0 = time.time()
    budget, cap = p.budgets[name], p.max_steps[name]
    offset, total = p.sched.get(name, (0.0, budget))
    step, ema_loss = 0, None
    params = [q for g in opt.param_groups for q in g["params"]]
    shared = sync and ddp.is_on()
    while step < cap:
        el = time.time() - t0
        if shared and step % STOP_SYNC_EVERY == 0:  # rank 0's budget and schedule position are everyone's
            mine = [0.0, 0.0]
            if ddp.is_main():
                mine = [1.0, 0.0] if el >= budget else [0.0, (offset + el) / total]
            stop, frac = ddp.broadcast_floats(mine)
            if stop:
                break
        elif shared:
            pass  # between decisions: the last agreed schedule position
        elif el >= budget:
            break
        else:
            frac = (offset + el) / total
        for g in opt.param_groups:
            g["lr"] = _lr(base_lr, step, frac if cap > 10 ** 8 else step / cap, warm=100 if offset == 0 else 50)
        # under DDP a compiled first step runs without gradient sync, then all ranks agree whether
        # it failed anywhere (all fall back to eager together) before averaging its gradients
        guard = shared and step == 0 and fwd is not None and fwd.ddp is not None and fwd.compiled is not None
        err = None
        try:
            with ddp.no_sync(fwd.ddp if guard else None):
                loss = fn(step)
                opt.zero_grad(set_to_none=True)
                loss.backward()
        except Exception as e:  # noqa: BLE001 - only a compile failure at the first step is retried
            if not guard:
                if step == 0 and fwd is not None and fwd.disable(e):
                    opt.zero_grad(set_to_none=True)
                    continue
                raise
            err = e
        if guard:
            if ddp.any_true(err is not None):
                fwd.disable(err if err is not None else RuntimeError("torch.compile failed on another rank"))
                opt.zero_grad(set_to_none=True)
                continue
            ddp.allreduce_mean_grads(params)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if ema is not None:
            ema.update()
        v = float(loss.detach()) if step % 50 == 0 or ema_loss is None else None
        if v is not None:
            ema_loss = v if ema_loss is None else 0.8 * ema_loss + 0.2 * v
        if step % 200 == 0:
            log(f"[{name}] step {step} loss {v:.4f} ema {ema_loss:.4f} t={time.time() - t0:.0f}s")
        step += 1
    if ema is not None:
        ema.copy_to_module()
    m = {"steps": step, "seconds": round(time.time() - t0, 1), "final_loss_ema": ema_loss,
         "schedule": [offset, total], "weights": "ema" if ema is not None else "last"}
    if shared:
        m["ranks"] = ddp.world()
    return m


def _adamw(params, lr, device, **kw):
    if device.type == "cuda":
        kw["fused"] = True
    try:
        return torch.optim.AdamW(params, lr=lr, **kw)
    except (TypeError, RuntimeError):
        kw.pop("fused", None)
        return torch.optim.AdamW(params, lr=lr, **kw)


# ---------------------------------------------------------------- stage: VAE
def object_pixels(x: torch.Tensor) -> torch.Tensor:
    """Video x [B, C, F, H, W] in [-1, 1] -> [B, 1, F, H, W] bool: pixels that differ from the
    frame's top-left corner, i.e. from the background (the world's backgrounds are flat)."""
    return (x - x[..., :1, :1]).abs().sum(1, keepdim=True) > 0.1


def object_cells(x: torch.Tensor, latent_shape) -> torch.Tensor:
    """Video x [B, C, F, H, W] -> [B, 1, T, h, w] bool on the latent grid (latent_shape = (T, h, w)):
    a cell holds an object when any pixel of the frames and patch it encodes does (max pooling:
    the 4 frames of a causal latent frame and the 8x8 pixels of a latent cell)."""
    t, h, w = latent_shape
    f, hh, ww = x.shape[2:]
    k = (f // t, hh // h, ww // w)
    return F.max_pool3d(object_pixels(x).float(), k, stride=k) > 0


def vae_loss(y: torch.Tensor, x: torch.Tensor, z: torch.Tensor, grad_weight: float = 0.0) -> torch.Tensor:
    """Reconstruction loss of frames y vs x [B, C, T, H, W] (latents z): object-weighted L1 + MSE, a tiny
    latent penalty, and with grad_weight > 0 the gradient-difference terms: the differences of
    y along time, rows and columns against those of x (edges and their frame-to-frame displacement)."""
    # objects cover few pixels: weight pixels that differ from the frame's corner (background)
    w = 1.0 + 9.0 * object_pixels(x).float()
    loss = ((y - x).abs() * w).mean() + (((y - x) ** 2) * w).mean() + 1e-4 * z.float().pow(2).mean()
    if grad_weight > 0:
        g = 0.0
        for dim in (2, 3, 4):  # time, rows, columns
            dy, dx = torch.diff(y, dim=dim), torch.diff(x, dim=dim)
            wd = torch.maximum(w.narrow(dim, 0, w.shape[dim] - 1), w.narrow(dim, 1, w.shape[dim] - 1))
            g = g + ((dy - dx).abs() * wd).mean()
        loss = loss + grad_weight * g
    return loss


def train_vae(vae: CausalVideoVAE, p: Preset, device, rng, log=print) -> dict:
    vae.train()
    lr = 1e-3 * lr_mult(p)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    fwd = Forward(VAENet(vae), False, log)

    def step(_):
        x, _ = make_batch(rng, p.vae_batch, p.frames, p.size, device)
        with _amp(device):
            y, z = fwd(x)
        y = y.float()
        return vae_loss(y, x, z, p.vae_grad_loss)

    m = _loop("vae", p, step, opt, lr, log, fwd=fwd)
    vae.eval()
    with torch.no_grad():
        zs, err = [], []
        for _ in range(4):
            x, _ = make_batch(rng, p.vae_batch, p.frames, p.size, device)
            z = vae.encoder(x)
            zs.append(z.float())
            y, _ = vae.decoder(z)
            err.append(F.mse_loss(((y.float().clamp(-1, 1) + 1) / 2), (x + 1) / 2).item())
        z = torch.cat(zs)
        vae.lat_mean.copy_(z.mean(dim=(0, 2, 3, 4), keepdim=True))
        vae.lat_std.copy_(z.std(dim=(0, 2, 3, 4), keepdim=True).clamp_min(1e-3))
    ddp.broadcast_module(vae, params=False)  # rank 0's latent statistics (the weights agree already)
    m["recon_psnr_db"] = round(10 * math.log10(1.0 / max(1e-10, sum(err) / len(err))), 2)
    log(f"[vae] recon PSNR {m['recon_psnr_db']} dB")
    return m


class EncoderNet(torch.nn.Module):
    """The encoder refit's forward: encode, then the frozen decoder -> (video, raw latent); with
    ``decoded`` (videos decoded from sampled latents), also their normalised re-encoding (one
    forward, so that data-parallel training reduces every gradient)."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x, decoded=None):
        z = self.vae.encoder(x)
        y, _ = self.vae.decoder(z)
        if decoded is None:
            return y, z
        return y, z, self.vae.encode(decoded)


@torch.no_grad()
def sample_latents(model: DiT, text, tok, p: Preset, device, rng, n: int, batch: int = 256) -> torch.Tensor:
    """``n`` normalised latents [n, C, frames/4, h, w] that ``model`` samples from pure noise for
    training-distribution prompts, with the service's sampler (``sampling.sample_parallel``) at
    stage 2's trajectory settings (stage2_traj_steps, _shift, _guidance)."""
    from .world import describe, sample_scene
    c = model.cfg
    out = []
    for i in range(0, n, batch):
        b = min(batch, n - i)
        prompts = [describe(sample_scene(rng, "exclude"), rng) for _ in range(b)]
        noise = torch.randn((b, c.latent_channels, p.frames // 4, c.latent_height, c.latent_width), device=device)
        with _amp(device):
            x = sample_parallel(model, text(tok.batch(prompts).to(device)), text(tok.batch([""] * b).to(device)),
                                noise, p.stage2_traj_steps, p.stage2_traj_shift, p.stage2_traj_guidance)
        out.append(x.float())
    return torch.cat(out)


@torch.no_grad()
def _decoded(vae, z: torch.Tensor) -> torch.Tensor:
    """Frames decoded from normalised latents, clamped to the video range (what a viewer gets)."""
    y, _ = vae.decode(z)
    return y.float().clamp(-1, 1)


@torch.no_grad()
def cycle_error(vae, z: torch.Tensor, batch: int) -> float:
    """Mean squared error of encode(decode(z)) against normalised latents z (0: the encoder maps the
    decoder's videos back onto these latents exactly)."""
    err = [F.mse_loss(vae.encode(_decoded(vae, z[i:i + batch])).float(), z[i:i + batch]).item() * len(z[i:i + batch])
           for i in range(0, len(z), batch)]
    return sum(err) / len(z)


def refit_encoder(vae: CausalVideoVAE, p: Preset, device, rng, log=print, teacher: DiT = None, text=None,
                  tok=None) -> dict:
    """Train only the encoder, through the frozen decoder, with the VAE's own loss (``vae_loss``,
    the preset's gradient terms). The latent statistics stay the checkpoint's: the decoder and every
    DiT were trained on latents normalised by them. A release holds the decoder but not the encoder
    (rehyat.export.recover). The decoder alone does not fix the latent space (it ignores some
    directions the DiT learned), so with ``p.encoder_cycle`` > 0 and the checkpoint's ``teacher``
    the loss adds the latent cycle term on the teacher's samples (Preset.encoder_cycle). Reported:
    reconstruction PSNR, the normalised latents' per-channel mean and standard deviation (about 0
    and 1 when the refit found the latent space the statistics were measured on) and, with a
    teacher, the cycle error on held-out samples before and after."""
    for prm in vae.decoder.parameters():
        prm.requires_grad_(False)
    vae.decoder.eval()
    anchors = held = None
    if teacher is not None:
        teacher.eval()
        text.eval()
        t_s = time.time()
        n = max(2, p.encoder_cycle_latents)
        k = max(1, n // 8)  # held out; without the cycle term only these are sampled
        z = sample_latents(teacher, text, tok, p, device, rng, n if p.encoder_cycle > 0 else k)
        held, anchors = z[:k], z[k:]
        sampled_s = round(time.time() - t_s, 1)
        before = cycle_error(vae, held, p.vae_batch)
    elif p.encoder_cycle > 0:
        raise ValueError("the encoder refit's cycle term samples latents with the teacher: pass it")
    vae.encoder.train()
    lr = 1e-3 * lr_mult(p)
    opt = torch.optim.AdamW(vae.encoder.parameters(), lr=lr, weight_decay=0.0)
    fwd = Forward(EncoderNet(vae), False, log)
    g = torch.Generator(device="cpu").manual_seed(int(rng.integers(0, 2 ** 31)))

    def step(_):
        x, _ = make_batch(rng, p.vae_batch, p.frames, p.size, device)
        if p.encoder_cycle <= 0:
            with _amp(device):
                y, z = fwd(x)
            return vae_loss(y.float(), x, z, p.vae_grad_loss)
        za = anchors[torch.randint(0, len(anchors), (p.vae_batch,), generator=g).to(anchors.device)]
        xa = _decoded(vae, za)
        with _amp(device):
            y, z, zc = fwd(x, xa)
        return vae_loss(y.float(), x, z, p.vae_grad_loss) + p.encoder_cycle * F.mse_loss(zc.float(), za)

    m = _loop("encoder", p, step, opt, lr, log, fwd=fwd)
    vae.eval()
    for prm in vae.decoder.parameters():
        prm.requires_grad_(True)
    if held is not None:
        m["cycle"] = {"weight": p.encoder_cycle, "latents": len(anchors), "held_out": len(held),
                      "sampled_seconds": sampled_s, "mse_before": round(before, 5),
                      "mse_after": round(cycle_error(vae, held, p.vae_batch), 5)}
    with torch.no_grad():
        zs, err = [], []
        for _ in range(4):
            x, _ = make_batch(rng, p.vae_batch, p.frames, p.size, device)
            z = vae.encode(x).float()
            zs.append(z)
            y, _ = vae.decode(z)
            err.append(F.mse_loss(((y.float().clamp(-1, 1) + 1) / 2), (x + 1) / 2).item())
        z = torch.cat(zs)
        mean, std = z.mean(dim=(0, 2, 3, 4)), z.std(dim=(0, 2, 3, 4))
    m["recon_psnr_db"] = round(10 * math.log10(1.0 / max(1e-10, sum(err) / len(err))), 2)
    m["latent_mean_abs_max"] = round(float(mean.abs().max()), 4)
    m["latent_std_range"] = [round(float(std.min()), 4), round(float(std.max()), 4)]
    log(f"[encoder] recon PSNR {m['recon_psnr_db']} dB; normalised latents: |mean| <= {m['latent_mean_abs_max']}, "
        f"std {m['latent_std_range']}" + (f"; cycle MSE on the teacher's samples {m['cycle']['mse_before']} -> "
                                          f"{m['cycle']['mse_after']} (weight {p.encoder_cycle})" if "cycle" in m else ""))
    return m


# ---------------------------------------------------------------- flow matching
class LatentCache:
    """Scenes rendered and encoded once; every draw re-phrases its scenes with fresh words.
    For the object-weighted loss (``p.fm_object_weight`` > 0) it also keeps each latent's object cells
    (``object_cells``)."""

    def __init__(self, vae, p: Preset, device, rng, n: int, batch: int = 64, frames: int = None):
        from .world import render, sample_scene
        self.scenes, lat, cells = [], [], []
        masks = p.fm_object_weight > 0
        frames = frames or p.frames
        with torch.no_grad():
            for i in range(0, n, batch):
                sc = [sample_scene(rng, "exclude") for _ in range(min(batch, n - i))]
                x = render(sc, frames, size=p.size, device=device).permute(0, 4, 1, 2, 3).mul(2).sub(1)
                with _amp(device):
                    z = vae.encode(x)
                lat.append(z.to(torch.bfloat16 if device.type == "cuda" else torch.float32))
                if masks:
                    cells.append(object_cells(x, z.shape[2:]))
                self.scenes.extend(sc)
        self.lat = torch.cat(lat)
        self.cells = torch.cat(cells) if masks else None

    def draw(self, rng, b, colors: bool = False):
        """-> (latents [b, C, T, h, w], prompts, object cells [b, 1, T, h, w] or None when not kept);
        with ``colors`` also the objects' palette indices [b, MAX_OBJECTS] (-1: no object)."""
        from .world import describe
        idx = rng.integers(0, len(self.scenes), size=b)
        sel = torch.from_numpy(idx).to(self.lat.device)
        cells = self.cells[sel] if self.cells is not None else None
        out = (self.lat[sel].float(), [describe(self.scenes[i], rng) for i in idx], cells)
        return out + (object_colors([self.scenes[i] for i in idx], self.lat.device),) if colors else out


def object_colors(scenes, device=None) -> torch.Tensor:
    """Scenes -> [B, MAX_OBJECTS] int64: each object's index in the palette (COLORS), -1 where absent."""
    from .world import COLORS
    from .world.render import MAX_OBJECTS
    names = list(COLORS)
    out = torch.full((len(scenes), MAX_OBJECTS), -1, dtype=torch.long)
    for i, sc in enumerate(scenes):
        for j, o in enumerate(sc.objects):
            out[i, j] = names.index(o.color)
    return out.to(device)


class AreaMatch:
    """Stage 2's area term (``p.stage2_area``): per frame, each object's soft area in the decoded
    predicted clean video against the same in the decoded clip. A pixel's soft label is the softmax
    over the palette of -|pixel - colour|^2 / ``temperature`` (the evaluation labels pixels by the
    nearest palette colour), an object's soft area the mean of its colour's label over the frame
    (the world's colours are distinct within a video). The error is |log(area + eps) - log(area' + eps)|
    weighted by (1 - t), so low-noise states, whose predicted x0 is sharp, count most. It runs on a
    window of ``frames`` latent frames at a random chunk, decoded with one latent frame before it as the
    causal decoder's warm-up. The VAE is frozen; the gradient reaches the student through x0 = x_t - t v.
    Keeps a running mean of the term for the metrics."""

    def __init__(self, vae, weight: float, frames: int, tc: int, temperature: float = 0.02, eps: float = 1e-3):
        from .eval.detect import PALETTE
        if frames < tc or frames % tc:
            raise ValueError(f"area frames {frames} must be whole chunks of {tc} latent frames")
        self.vae, self.weight, self.frames, self.tc, self.temperature, self.eps = vae, weight, frames, tc, temperature, eps
        self.palette = PALETTE * 2 - 1  # the evaluation's palette in the decoder's range
        self.sums = {"area": 0.0, "n": 0}

    def labels(self, px: torch.Tensor) -> torch.Tensor:
        """Frames [B, 3, F, H, W] in about [-1, 1] -> every pixel's soft palette label [B, K, F, H, W]."""
        pal = self.palette.to(px.device).view(1, -1, 3, 1, 1, 1)
        d2 = ((px.float().unsqueeze(1) - pal) ** 2).sum(2)
        return torch.softmax(-d2 / self.temperature, dim=1)

    def soft_areas(self, px: torch.Tensor) -> torch.Tensor:
        """Frames [B, 3, F, H, W] in about [-1, 1] -> soft area of every palette colour [B, K, F]."""
        return self.labels(px).mean(dim=(-2, -1))

    def loss(self, v, xt, x0, t, colors, rng, measure: bool = False) -> torch.Tensor:
        T = x0.shape[2]
        w = min(self.frames, T - T % self.tc)
        s = int(rng.integers(0, (T - w) // self.tc + 1)) * self.tc
        lo = max(0, s - 1)
        x0_hat = xt[:, :, lo:s + w].float() - t.view(-1, 1, 1, 1, 1) * v[:, :, lo:s + w].float()
        with _amp(x0.device):
            with torch.no_grad():
                ref, _ = self.vae.decode(x0[:, :, lo:s + w])
            pred, _ = self.vae.decode(x0_hat)
        drop = 4 * (s - lo)
        a_ref, a_pred = self.soft_areas(ref[:, :, drop:]), self.soft_areas(pred[:, :, drop:])
        valid = colors >= 0
        idx = colors.clamp_min(0)[..., None].expand(-1, -1, a_ref.shape[-1])
        err = (torch.log(a_pred.gather(1, idx) + self.eps) - torch.log(a_ref.gather(1, idx) + self.eps)).abs()
        err = err * valid[..., None] * (1 - t).view(-1, 1, 1)
        out = err.sum() / (valid.sum() * err.shape[-1]).clamp_min(1)
        if measure:
            self.sums["area"] += float(out.detach())
            self.sums["n"] += 1
        return out

    def metrics(self) -> dict:
        return {"weight": self.weight, "latent_frames": self.frames, "temperature": self.temperature,
                "measured_steps": self.sums["n"], "mean_area_loss": float(f"{self.sums['area'] / max(1, self.sums['n']):.4g}")}


# what the self-consistency term asks of each object's soft area over its video, by motion
SELF_SKIP, SELF_KEEP, SELF_NO_GROWTH, SELF_STILL = 0, 1, 2, 3
_SELF_KIND = {"bounce": SELF_KEEP, "orbit": SELF_KEEP, "still": SELF_STILL,  # the renderer keeps their size
              "left": SELF_NO_GROWTH, "right": SELF_NO_GROWTH,  # translations: the borders only clip (shrink)
              "up": SELF_NO_GROWTH, "down": SELF_NO_GROWTH,
              "grow": SELF_SKIP, "shrink": SELF_SKIP}  # sawtooth of an unknown phase


def object_kinds(scenes, device=None) -> torch.Tensor:
    """Scenes -> [B, MAX_OBJECTS] int64: each object's SELF_* kind (SELF_SKIP where absent)."""
    from .world.render import MAX_OBJECTS
    out = torch.full((len(scenes), MAX_OBJECTS), SELF_SKIP, dtype=torch.long)
    for i, sc in enumerate(scenes):
        for j, o in enumerate(sc.objects):
            out[i, j] = _SELF_KIND[o.motion]
    return out.to(device)


class SelfConsistency:
    """Stage 2's self-consistency term (``p.stage2_self``) on the student's own long sampling
    trajectories (``LongTrajectoryCache``), which have no ground-truth video. The renderer never
    changes the size of a still, bouncing or orbiting object, never grows a translating one (the
    borders only clip it) and never moves a still one; over long videos the student's objects grow
    and wander (training/experiments/rehyat-5-area). So at a visited state x_t, the predicted clean
    video x0 = x_t - t v is decoded on its first chunk-aligned window (the reference, no gradient)
    and on a window at a random later chunk (with one latent frame before it as the causal decoder's
    warm-up), each object's soft area (``AreaMatch.soft_areas``) and soft centroid are measured per
    frame, and the term is, weighted by (1 - t) and averaged over the objects the reference shows
    (soft area > ``min_area``) and the window's frames:
    - still / bounce / orbit: |log(area + eps) - log(area_ref + eps)|;
    - left / right / up / down: max(0, log(area + eps) - log(area_ref + eps)) (growth only);
    - still, in addition: the centroid's distance from the reference's in units of the reference's
      sqrt(area) (about the object's radius), capped at ``max_travel``;
    - grow / shrink: nothing.
    Both windows come from the same prediction, so at high noise both are as blurred. The VAE is
    frozen; the gradient reaches the student through the window's x0. Keeps running means for the
    metrics."""

    def __init__(self, vae, weight: float, frames: int, tc: int, temperature: float = 0.02, eps: float = 1e-3,
                 min_area: float = 2e-3, max_travel: float = 2.0):
        self.areas = AreaMatch(vae, weight, frames, tc, temperature, eps)
        self.vae, self.weight, self.frames, self.tc = vae, weight, frames, tc
        self.eps, self.min_area, self.max_travel = eps, min_area, max_travel
        self.sums = {"self": 0.0, "area": 0.0, "travel": 0.0, "n": 0}

    def measure(self, px: torch.Tensor, colors: torch.Tensor):
        """Frames [B, 3, F, H, W] -> each object's soft area [B, MAX, F] and soft centroid [B, MAX, F, 2]
        in frame units (0..1)."""
        lab = self.areas.labels(px)  # [B, K, F, H, W]
        idx = colors.clamp_min(0)
        lab = lab[torch.arange(lab.shape[0], device=lab.device)[:, None], idx]  # [B, MAX, F, H, W]
        H, W = lab.shape[-2:]
        area = lab.mean(dim=(-2, -1))
        ys = (torch.arange(H, device=lab.device, dtype=lab.dtype) + 0.5) / H
        xs = (torch.arange(W, device=lab.device, dtype=lab.dtype) + 0.5) / W
        mass = lab.sum(dim=(-2, -1)).clamp_min(1e-6)
        cy = (lab.sum(-1) * ys).sum(-1) / mass
        cx = (lab.sum(-2) * xs).sum(-1) / mass
        return area, torch.stack([cx, cy], dim=-1)

    def loss(self, v, xt, t, colors, kinds, rng, measure: bool = False) -> torch.Tensor:
        T = xt.shape[2]
        w = min(self.frames, T - T % self.tc)
        if T < 2 * w:
            raise ValueError(f"the self-consistency term needs at least {2 * w} latent frames, got {T}")
        s = w + int(rng.integers(0, (T - 2 * w) // self.tc + 1)) * self.tc  # a window after the reference's
        tv = t.view(-1, 1, 1, 1, 1)
        with _amp(xt.device):
            with torch.no_grad():
                ref, _ = self.vae.decode(xt[:, :, :w].float() - tv * v[:, :, :w].float())
            pred, _ = self.vae.decode(xt[:, :, s - 1:s + w].float() - tv * v[:, :, s - 1:s + w].float())
        a_ref, c_ref = self.measure(ref, colors)
        a, c = self.measure(pred[:, :, 4:], colors)
        a_ref, c_ref = a_ref.mean(-1, keepdim=True), c_ref.mean(-2, keepdim=True)
        present = (colors >= 0) & (kinds != SELF_SKIP) & (a_ref[..., 0] > self.min_area)
        d = torch.log(a + self.eps) - torch.log(a_ref + self.eps)  # [B, MAX, F]
        size_err = torch.where((kinds == SELF_NO_GROWTH)[..., None], d.clamp_min(0), d.abs())
        travel = ((c - c_ref).norm(dim=-1) / a_ref.clamp_min(self.eps).sqrt()).clamp(max=self.max_travel)
        travel = travel * (kinds == SELF_STILL)[..., None]
        wt = present[..., None] * (1 - t).view(-1, 1, 1)
        n = (present.sum() * a.shape[-1]).clamp_min(1)
        size_term, travel_term = (size_err * wt).sum() / n, (travel * wt).sum() / n
        out = size_term + travel_term
        if measure:
            self.sums["self"] += float(out.detach())
            self.sums["area"] += float(size_term.detach())
            self.sums["travel"] += float(travel_term.detach())
            self.sums["n"] += 1
        return out

    def metrics(self) -> dict:
        n = max(1, self.sums["n"])
        return {"weight": self.weight, "latent_frames": self.frames, "measured_steps": self.sums["n"],
                **{f"mean_{k}_loss": float(f"{self.sums[k] / n:.4g}") for k in ("self", "area", "travel")}}


def weighted_mse(v: torch.Tensor, target: torch.Tensor, cells: torch.Tensor = None, weight: float = 0.0):
    """Flow-matching MSE; with ``weight`` > 0 the object cells [B, 1, T, h, w] weigh 1 + weight,
    normalised by the mean weight (a video without objects gives the plain MSE)."""
    if weight <= 0 or cells is None:
        return F.mse_loss(v, target)
    w = 1.0 + weight * cells.float()
    return ((v - target) ** 2 * w).mean() / w.mean()


class Distill:
    """Stage 2's second target: ``weight`` x the object-weighted MSE between the student's velocity
    on a clip's first ``frames`` latent frames and the teacher's on those frames alone (same x_t, t,
    prompt; the teacher sees its training length). Keeps running means of both terms for the metrics."""

    def __init__(self, teacher: DiT, text, weight: float, frames: int, tc: int):
        if frames < tc or frames % tc:
            raise ValueError(f"distillation frames {frames} must be whole chunks of {tc} latent frames")
        self.teacher, self.text, self.weight, self.frames = teacher, text, weight, frames
        self.sums = {"fm": 0.0, "distill": 0.0, "n": 0}

    @torch.no_grad()
    def target(self, xt, t, ids, device):
        with _amp(device):
            return self.teacher(xt[:, :, :self.frames], t, self.text(ids)).float()

    def record(self, fm, kd):
        self.sums["fm"] += float(fm.detach())
        self.sums["distill"] += float(kd.detach())
        self.sums["n"] += 1

    def metrics(self) -> dict:
        n = max(1, self.sums["n"])
        return {"weight": self.weight, "latent_frames": self.frames, "measured_steps": self.sums["n"],
                "mean_fm_loss": round(self.sums["fm"] / n, 5), "mean_distill_loss": round(self.sums["distill"] / n, 5)}


class TrajectoryCache:
    """Stage 2's data drawn from sampling rather than from encoded videos: ``n`` prompts of
    training-distribution scenes, each sampled from pure noise by ``sampler`` (the teacher, or the
    student itself) with the service's sampler (Euler, ``steps``, time ``shift``, CFG ``guidance``,
    teacher-length clips). Every visited state x_t is kept with the TEACHER's conditional and
    unconditional velocities there as the targets, so the student learns the teacher's velocity field
    where sampling actually goes, with no VAE encoder (a release's recovered checkpoint has none).
    With ``p.fm_object_weight`` > 0 each trajectory's object cells come from decoding its final
    latent (``object_cells``), for the object-weighted loss."""

    # videos decoded at once for the object cells. Decoding holds ~280 MiB per 2 s video in fp32
    # (bench/vae_decode_memory.out.json, CPU), so the whole sampling batch of 256 needs ~35 GB in bf16;
    # a second trajectory run ran out of an 80 GB H100 asking for 8 GB there
    DECODE_BATCH = 16

    def __init__(self, sampler: DiT, teacher: DiT, text, tok, vae, p: "Preset", device, rng, n: int,
                 batch: int = 256):
        from .world import describe, sample_scene
        steps, guidance = p.stage2_traj_steps, p.stage2_traj_guidance
        self.ts = schedule(steps, p.stage2_traj_shift)
        c = teacher.cfg
        keep = torch.bfloat16 if device.type == "cuda" else torch.float32
        shape = (n, steps, c.latent_channels, p.frames // 4, c.latent_height, c.latent_width)
        self.x, self.vc, self.vu = (torch.empty(shape, dtype=keep, device=device) for _ in range(3))
        self.cells = torch.empty((n, 1) + shape[3:], dtype=torch.bool, device=device) if p.fm_object_weight > 0 else None
        self.prompts = []
        teacher_v, sampler_v = _fp32_velocity(teacher, device), _fp32_velocity(sampler, device)
        with torch.no_grad():
            for i in range(0, n, batch):
                b = min(batch, n - i)
                prompts = [describe(sample_scene(rng, "exclude"), rng) for _ in range(b)]
                ctx, unc = text(tok.batch(prompts).to(device)), text(tok.batch([""] * b).to(device))

                def record(s, x, v):  # the teacher's velocity at every state the sampler visits
                    if sampler is not teacher or v.shape[0] != 2 * b:
                        v = teacher_v(torch.cat([x, x]), torch.full((2 * b,), self.ts[s], device=device),
                                      torch.cat([ctx, unc]))
                    self.x[i:i + b, s], self.vc[i:i + b, s], self.vu[i:i + b, s] = x, v[:b], v[b:]

                noise = torch.randn((b,) + shape[2:], device=device)
                x = sample_parallel(sampler_v, ctx, unc, noise, steps, p.stage2_traj_shift, guidance, on_step=record)
                if self.cells is not None:  # DECODE_BATCH videos at a time
                    for j in range(0, b, self.DECODE_BATCH):
                        xj = x[j:j + self.DECODE_BATCH]
                        with _amp(device):
                            px, _ = vae.decode(xj)
                        self.cells[i + j:i + j + len(xj)] = object_cells(px.float(), x.shape[2:])
                        del px
                self.prompts.extend(prompts)

    def __len__(self):
        return len(self.prompts)

    def draw(self, rng, b, drop: float = 0.2):
        """-> (x_t [b, C, T, h, w], t [b], prompts ("" for the unconditional draws, share ``drop``),
        the teacher's velocity for that prompt [b, C, T, h, w], object cells [b, 1, T, h, w] or None)."""
        idx = rng.integers(0, len(self.prompts), size=b)
        st = rng.integers(0, len(self.ts) - 1, size=b)
        unc = rng.random(b) < drop
        dev = self.x.device
        i, s, u = (torch.from_numpy(a).to(dev) for a in (idx, st, unc))
        target = torch.where(u.view(-1, 1, 1, 1, 1), self.vu[i, s], self.vc[i, s]).float()
        t = torch.tensor([self.ts[k] for k in st], device=dev, dtype=torch.float32)
        prompts = ["" if uu else self.prompts[k] for k, uu in zip(idx, unc)]
        return self.x[i, s].float(), t, prompts, target, self.cells[i] if self.cells is not None else None


class LongTrajectoryCache:
    """The self-consistency term's data: ``n`` training-distribution scenes, each sampled from pure
    noise at ``frames`` pixel frames (stage 2's long clips) by ``sampler`` (the student as stage 2
    starts) with the service's sampler (Euler, stage2_traj_steps / _shift / _guidance). Every visited
    state x_t is kept with its scene's object colours and SELF_* kinds; there is no target velocity."""

    def __init__(self, sampler: DiT, text, tok, p: "Preset", device, rng, n: int, frames: int, batch: int = 16):
        from .world import describe, sample_scene
        steps, guidance = p.stage2_traj_steps, p.stage2_traj_guidance
        self.ts = schedule(steps, p.stage2_traj_shift)
        c = sampler.cfg
        keep = torch.bfloat16 if device.type == "cuda" else torch.float32
        self.x = torch.empty((n, steps, c.latent_channels, frames // 4, c.latent_height, c.latent_width),
                             dtype=keep, device=device)
        self.scenes, self.prompts = [], []
        sampler_v = _fp32_velocity(sampler, device)
        with torch.no_grad():
            for i in range(0, n, batch):
                b = min(batch, n - i)
                scenes = [sample_scene(rng, "exclude") for _ in range(b)]
                prompts = [describe(sc, rng) for sc in scenes]

                def record(s, x, v):
                    self.x[i:i + b, s] = x

                ctx, unc = text(tok.batch(prompts).to(device)), text(tok.batch([""] * b).to(device))
                noise = torch.randn((b,) + self.x.shape[2:], device=device)
                sample_parallel(sampler_v, ctx, unc, noise, steps, p.stage2_traj_shift, guidance, on_step=record)
                self.scenes.extend(scenes)
                self.prompts.extend(prompts)
        self.colors, self.kinds = object_colors(self.scenes, device), object_kinds(self.scenes, device)

    def __len__(self):
        return len(self.prompts)

    def draw(self, rng, b):
        """-> (x_t [b, C, T, h, w], t [b] (t < 1), prompts, object colours [b, MAX], SELF_* kinds [b, MAX])."""
        idx = rng.integers(0, len(self.prompts), size=b)
        # from the second state on: at t = 1 the term's weight (1 - t) is 0
        st = rng.integers(min(1, len(self.ts) - 2), len(self.ts) - 1, size=b)
        dev = self.x.device
        i, s = (torch.from_numpy(a).to(dev) for a in (idx, st))
        t = torch.tensor([self.ts[k] for k in st], device=dev, dtype=torch.float32)
        return self.x[i, s].float(), t, [self.prompts[k] for k in idx], self.colors[i], self.kinds[i]


def _self_loss(net, tok, p: "Preset", device, rng, long_traj: LongTrajectoryCache, batch: int,
               term: SelfConsistency, distill: "Distill" = None, measure: bool = False):
    """A long step on the student's own long trajectories: ``term``'s weighted self-consistency,
    plus, with ``distill``, its weighted teacher velocity on the first teacher-length latent frames."""
    xt, t, prompts, colors, kinds = long_traj.draw(rng, batch)
    ids = tok.batch(prompts).to(device)
    with _amp(device):
        v = net(xt, t, ids)
    total = term.weight * term.loss(v, xt, t, colors, kinds, rng, measure=measure)
    if distill is not None:
        f = distill.frames
        total = total + distill.weight * F.mse_loss(v[:, :, :f].float(), distill.target(xt, t, ids, device))
    return total


def _traj_loss(net, tok, p: "Preset", device, rng, traj: TrajectoryCache, batch: int):
    """Stage 2 on trajectories: the (object-weighted) MSE between the student's velocity at a
    visited state and the teacher's there."""
    xt, t, prompts, target, cells = traj.draw(rng, batch)
    with _amp(device):
        v = net(xt, t, tok.batch(prompts).to(device))
    return weighted_mse(v.float(), target, cells, p.fm_object_weight)


def stage2_traj_batch(p: "Preset") -> int:
    """Batch of the trajectory steps: the short batch's tokens per step (teacher-length clips)."""
    return max(1, p.stage2_batch * p.stage2_frames // p.frames)


def _fm_loss(net, vae, tok, p: Preset, device, rng, drop=0.1, cache=None, batch=None, frames=None,
             distill: "Distill" = None, measure: bool = False, area: "AreaMatch" = None):
    """Flow-matching loss of ``net(x_t, t, ids)`` (a FlowNet or its Forward) on one batch; with
    ``distill``, plus its weighted teacher term (both recorded when ``measure``); with ``area`` (needs
    ``cache``), plus its weighted area term (recorded when ``measure``)."""
    batch, frames = batch or p.dit_batch, frames or p.frames
    colors = None
    if area is not None and cache is None:
        raise ValueError("the area term needs clips from a latent cache (their scenes' colours)")
    if cache is not None:
        x0, prompts, cells, *rest = cache.draw(rng, batch, colors=area is not None)
        colors = rest[0] if rest else None
    else:
        x, prompts = make_batch(rng, batch, frames, p.size, device)
        with torch.no_grad():
            with _amp(device):
                x0 = vae.encode(x).float()
        cells = object_cells(x, x0.shape[2:]) if p.fm_object_weight > 0 else None
    prompts = [("" if rng.random() < drop else s) for s in prompts]
    ids = tok.batch(prompts).to(device)
    u = torch.rand(x0.shape[0], device=device)
    t = p.train_shift * u / (1 + (p.train_shift - 1) * u)
    eps = torch.randn_like(x0)
    xt = (1 - t.view(-1, 1, 1, 1, 1)) * x0 + t.view(-1, 1, 1, 1, 1) * eps
    with _amp(device):
        v = net(xt, t, ids)
    loss = weighted_mse(v.float(), eps - x0, cells, p.fm_object_weight)
    total = loss
    if area is not None:
        total = total + area.weight * area.loss(v, xt, x0, t, colors, rng, measure=measure)
    if distill is None:
        return total
    f = distill.frames
    kd = weighted_mse(v[:, :, :f].float(), distill.target(xt, t, ids, device),
                      cells[:, :, :f] if cells is not None else None, p.fm_object_weight)
    if measure:
        distill.record(loss, kd)
    return total + distill.weight * kd


def train_teacher(teacher: DiT, text: TextEncoder, vae, tok, p: Preset, device, rng, log=print, cache=None) -> dict:
    teacher.train()
    text.train()
    params = list(teacher.parameters()) + list(text.parameters())
    lr = p.teacher_lr * lr_mult(p)
    opt = _adamw(params, lr, device, weight_decay=0.01, betas=(0.9, 0.99))
    fwd = Forward(FlowNet(teacher, text), p.compile, log)  # DDP: rank 0's weights, then the EMA copy
    both = torch.nn.ModuleList([teacher, text])
    ema = EMA(both, p.ema) if p.ema > 0 else None
    m = _loop("teacher", p, lambda _: _fm_loss(fwd, vae, tok, p, device, rng, cache=cache), opt,
              lr, log, ema=ema, fwd=fwd)
    m["fm_object_weight"] = p.fm_object_weight
    teacher.eval()
    text.eval()
    return m


# ---------------------------------------------------------------- stage 1
@torch.no_grad()
def collect_activations(teacher: DiT, text, tok, p: Preset, device, rng, guidance=4.0, shift=3.0):
    """Run teacher sampling trajectories and cache every layer's (q, k, q_rope, k_rope, v, y)."""
    from .world import describe, sample_scene
    prompts = [describe(sample_scene(rng, "exclude"), rng) for _ in range(p.stage1_prompts)]
    ctx = text(tok.batch(prompts).to(device))
    unc = text(tok.batch([""] * len(prompts)).to(device))
    tn = p.frames // 4
    c = teacher.cfg
    x = torch.randn(len(prompts), c.latent_channels, tn, c.latent_height, c.latent_width, device=device)
    ts = schedule(p.stage1_steps, shift)
    cache: List[list] = [[] for _ in teacher.blocks]
    for blk in teacher.blocks:
        blk.attn.capture = []
    for i in range(p.stage1_steps):
        tt = torch.full((2 * x.shape[0],), ts[i], device=device)
        with _amp(device):
            v = teacher(torch.cat([x, x]), tt, torch.cat([ctx, unc]))
        v = v.float()
        v = v[len(prompts):] + guidance * (v[:len(prompts)] - v[len(prompts):])
        x = x + (ts[i + 1] - ts[i]) * v
        for li, blk in enumerate(teacher.blocks):
            cache[li].extend(blk.attn.capture)
            blk.attn.capture = []
    for blk in teacher.blocks:
        blk.attn.capture = None
    return [tuple(torch.cat([e[j] for e in layer]).float() for j in range(6)) for layer in cache]


def _block_l1(attn, acts, idx=None):
    q, k, qr, kr, v, y = acts
    if idx is not None:
        q, k, qr, kr, v, y = (a[idx] for a in acts)
    c = attn.cfg
    yh = hybrid_attention_chunked(qr, kr, v, attn.phi_q(q), attn.phi_k(k), c.tokens_per_frame, c.tc, c.to)
    return F.l1_loss(yh, y)


@torch.no_grad()
def block_errors(student: DiT, acts) -> List[float]:
    out = []
    for blk, a in zip(student.blocks, acts):
        n = a[0].shape[0]
        errs = [_block_l1(blk.attn, a, slice(i, i + 16)).item() for i in range(0, n, 16)]
        out.append(round(sum(errs) / len(errs), 5))
    return out


def distill_stage1(student: DiT, acts, p: Preset, device, log=print, batch=32, stage="stage1") -> dict:
    """Per-block attention distillation: only phi_q, phi_k train, L1 to the teacher's output."""
    for prm in student.parameters():
        prm.requires_grad_(False)
    fparams = []
    for blk in student.blocks:
        for fm in (blk.attn.phi_q, blk.attn.phi_k):
            for prm in fm.parameters():
                prm.requires_grad_(True)
                fparams.append(prm)
    before = block_errors(student, acts)
    n = acts[0][0].shape[0]
    g = torch.Generator(device="cpu").manual_seed(0)
    opt = torch.optim.Adam(fparams, lr=3e-3)

    def step(_):
        idx = torch.randint(0, n, (min(batch, n),), generator=g).to(acts[0][0].device)
        return sum(_block_l1(blk.attn, a, idx) for blk, a in zip(student.blocks, acts)) / len(acts)

    m = _loop(stage, p, step, opt, 3e-3, log, sync=False)  # rank 0 alone
    for prm in student.parameters():
        prm.requires_grad_(True)
    m["block_l1_before"] = before
    m["block_l1_after"] = block_errors(student, acts)
    log(f"[{stage}] Tc={student.cfg.tc} To={student.cfg.to} per-block L1 before {before} after {m['block_l1_after']}")
    return m


def stage2_long_batch(p: Preset) -> int:
    """Batch of the long stage-2 clips: the short batch's tokens per step (at least one clip)."""
    return max(1, p.stage2_batch * p.stage2_frames // max(1, p.stage2_long_frames))


def finetune_stage2(student: DiT, text, vae, tok, p: Preset, device, rng, log=print, cache=None,
                    long_cache=None, teacher: DiT = None, traj: TrajectoryCache = None,
                    long_traj: LongTrajectoryCache = None) -> dict:
    """Whole-student flow matching on stage2_frames-frame clips; with ``long_cache`` (clips of
    stage2_long_frames) every odd step takes a long batch instead, same tokens per step. With
    ``p.stage2_distill`` > 0 (needs ``teacher``) the short steps add the teacher's velocity on the
    clip's first teacher-length latent frames as a second target (``Distill``). With ``traj`` the
    short steps learn the teacher's velocity on sampling trajectories instead (``TrajectoryCache``),
    and ``p.stage2_distill`` moves to the long steps: the teacher's velocity on each long clip's first
    teacher-length latent frames, beside its flow matching. With ``long_traj`` (needs ``long_cache``
    and ``p.stage2_self`` > 0) every other long step takes the student's own long trajectories and
    the self-consistency term instead (``SelfConsistency``; with ``p.stage2_distill``, plus the
    teacher's velocity on their first teacher-length latent frames)."""
    if (long_traj is not None) != (p.stage2_self > 0):
        raise ValueError("stage2_self and the long trajectories come together")
    if long_traj is not None and long_cache is None:
        raise ValueError("stage2_self alternates with the long clips: it needs long_cache")
    short_area = p.stage2_area > 0 and traj is None and cache is not None  # the short steps take the area term too
    if p.stage2_area > 0 and long_cache is None and not short_area:
        raise ValueError("stage2_area needs encoded clips: long clips, or short ones from a latent cache "
                         "without trajectories")
    student.train()
    for prm in text.parameters():
        prm.requires_grad_(False)
    lr = 1e-4 * lr_mult(p)
    opt = _adamw(student.parameters(), lr, device, weight_decay=0.0)
    fwd = Forward(FlowNet(student, text), p.compile, log)
    ema = EMA(student, p.ema) if p.ema > 0 else None
    lb = stage2_long_batch(p)
    kd = None
    if p.stage2_distill > 0:
        if teacher is None:
            raise ValueError("stage2_distill needs the teacher")
        kd = Distill(teacher.eval(), text, p.stage2_distill, min(p.frames, p.stage2_frames) // 4, student.cfg.tc)

    tb = stage2_traj_batch(p)
    am = None
    if p.stage2_area > 0:
        am = AreaMatch(vae, p.stage2_area, p.stage2_area_frames, student.cfg.tc)
        frozen = [q for q in vae.parameters() if q.requires_grad]
        for q in frozen:  # the gradient goes through the decoder to the student only
            q.requires_grad_(False)

    sc = SelfConsistency(vae, p.stage2_self, p.stage2_area_frames, student.cfg.tc) if long_traj is not None else None
    if sc is not None and am is None:
        frozen = [q for q in vae.parameters() if q.requires_grad]
        for q in frozen:  # the gradient goes through the decoder to the student only
            q.requires_grad_(False)

    def step(i):
        if sc is not None and i % 4 == 3:
            return _self_loss(fwd, tok, p, device, rng, long_traj, lb, sc, distill=kd, measure=i % 52 == 3)
        if long_cache is not None and i % 2 == 1:
            # on trajectories the teacher's velocity, if any, anchors the long clips' first seconds
            lkd = kd if traj is not None else None
            return _fm_loss(fwd, vae, tok, p, device, rng, cache=long_cache, batch=lb, frames=p.stage2_long_frames,
                            distill=lkd, measure=(lkd is not None or am is not None) and i % 50 == 1, area=am)
        if traj is not None:
            return _traj_loss(fwd, tok, p, device, rng, traj, tb)
        sa = am if short_area else None
        return _fm_loss(fwd, vae, tok, p, device, rng, cache=cache, batch=p.stage2_batch, frames=p.stage2_frames,
                        distill=kd, measure=(kd is not None or sa is not None) and i % 50 == 0, area=sa)

    m = _loop("stage2", p, step, opt, lr, log, ema=ema, fwd=fwd)
    m.update({"clip_frames": p.stage2_frames, "batch": p.stage2_batch, "fm_object_weight": p.fm_object_weight})
    if kd is not None:
        m["distill"] = kd.metrics()
    if am is not None:
        m["area"] = am.metrics()
    if sc is not None:
        m["self_consistency"] = {**sc.metrics(), "prompts": len(long_traj), "every": 4}
    if am is not None or sc is not None:
        for q in frozen:
            q.requires_grad_(True)
    if traj is not None:
        m["trajectories"] = {"sampler": p.stage2_traj, "prompts": len(traj), "steps": p.stage2_traj_steps,
                             "shift": p.stage2_traj_shift, "guidance": p.stage2_traj_guidance,
                             "clip_frames": p.frames, "batch": tb}
        m["clip_frames"], m["batch"] = p.frames, tb
    if long_cache is not None:
        m.update({"long_clip_frames": p.stage2_long_frames, "long_batch": lb, "long_every": 2})
    student.eval()
    for prm in text.parameters():
        prm.requires_grad_(True)
    return m


# ---------------------------------------------------------------- checkpoint
ENCODER_STATES = ("trained", "missing", "refit")


def save_checkpoint(path, p: Preset, tok, vae, text, teacher, student, metrics, vae_encoder: str = None):
    """fp16 weights + configs + tokenizer. ``student`` may be None (a teacher-only checkpoint,
    written between device calls and resumed with ``--resume``). ``vae_encoder``: "trained" with
    its decoder, "missing" (random: a checkpoint recovered from a release) or "refit" (``refit_encoder``);
    default: ``vae.encoder_state`` (set by load_checkpoint), else "trained"."""
    vae_encoder = vae_encoder or getattr(vae, "encoder_state", "trained")
    if vae_encoder not in ENCODER_STATES:
        raise ValueError(f"vae_encoder must be one of {ENCODER_STATES}, got {vae_encoder!r}")
    half = lambda m: {k: v.detach().cpu().half() if v.is_floating_point() else v.cpu() for k, v in m.state_dict().items()}
    torch.save({"format": 1, "preset": {"size": p.size, "frames": p.frames},
                "vae_cfg": p.vae.to_dict(), "text_cfg": p.text.to_dict(),
                "teacher_cfg": teacher.cfg.to_dict(), "student_cfg": student.cfg.to_dict() if student else None,
                "tokenizer": tok.to_json(), "vae": half(vae), "text": half(text),
                "teacher": half(teacher), "student": half(student) if student else None, "metrics": metrics,
                "vae_encoder": vae_encoder}, path)


def load_checkpoint(path, device="cpu"):
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # torch < 1.13
        ck = torch.load(path, map_location="cpu")
    tok = Tokenizer.from_json(ck["tokenizer"])
    vcfg = dict(ck["vae_cfg"])
    vcfg["enc_channels"], vcfg["dec_channels"] = tuple(vcfg["enc_channels"]), tuple(vcfg["dec_channels"])
    vae = CausalVideoVAE(VAEConfig(**vcfg))
    text = TextEncoder(TextConfig(**ck["text_cfg"]))
    teacher = DiT(DiTConfig(**ck["teacher_cfg"]))
    student = None
    if ck.get("student") is not None:
        student = DiT(DiTConfig(**{**ck["student_cfg"], "hybrid": False}))
        sc = ck["student_cfg"]
        student.to_student(sc["tc"], sc["to"], sc["feature_dim"], sc["feature_hidden"])
    for m, k in ((vae, "vae"), (text, "text"), (teacher, "teacher"), (student, "student")):
        if m is None:
            continue
        m.load_state_dict({n: v.float() if v.is_floating_point() else v for n, v in ck[k].items()})
        m.to(device).eval()
    vae.encoder_state = ck.get("vae_encoder", "trained")  # older checkpoints: trained with the decoder
    return ck, tok, vae, text, teacher, student


# ---------------------------------------------------------------- all stages
def _continued(prev: dict, r: dict) -> dict:
    """One stage over several calls: this call's record, keeping every segment, steps and seconds summed."""
    segs = prev.get("segments", [dict(prev)]) + [r]
    return {**r, "steps": sum(x["steps"] for x in segs), "seconds": round(sum(x["seconds"] for x in segs), 1),
            "segments": segs}


STAGES = ("vae", "encoder", "teacher", "sweep", "stage1", "stage2")
RECIPE = ("vae", "teacher", "sweep", "stage1", "stage2")  # the default: everything but the encoder refit


class EncoderMissing(ValueError):
    """A stage would encode videos with a checkpoint's missing (random) VAE encoder."""


def run_all(p: Preset, out_dir: str, device, seed: int = 0, log=print, eval_fn=None, stages=RECIPE,
            resume: str = None) -> dict:
    """Run ``stages`` in order. With ``resume`` (a checkpoint of an earlier call), its VAE, text
    encoder and teacher are loaded and training continues from them: a long recipe can be split
    over several device calls (vae,teacher | teacher | sweep,stage1,stage2).

    In a process group (rehyat.ddp.init, torchrun) every rank calls this: models start from rank
    0's weights; data and noise come from per-rank seeds (seed + 1000 * rank: the recipe's calls use
    seeds 0, 1, 2, which seed + rank would replay across calls); the sweep and stage 1 run on rank 0
    while the others build their stage-2 cache and wait; files, logs and evaluation are rank 0's."""
    unknown = [x for x in stages if x not in STAGES]
    if unknown:
        raise ValueError(f"unknown stages {unknown} (known: {', '.join(STAGES)})")
    rank, world = ddp.rank(), ddp.world()
    main = rank == 0
    if not main:
        log, eval_fn = (lambda s: None), None
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1000 * rank)
    if main:
        os.makedirs(out_dir, exist_ok=True)
    resumed_student = None
    if resume:
        ck, tok, vae, text, teacher, resumed_student = load_checkpoint(resume, device)
        metrics = dict(ck.get("metrics") or {})
        metrics.pop("eval", None)
        p.text = TextConfig(**ck["text_cfg"])
        p.dit = copy.deepcopy(teacher.cfg)
    else:
        if "vae" not in stages:
            raise ValueError("without --resume the stages must start with vae")
        tok = Tokenizer(max_len=p.text.max_len)
        p.text.vocab_size = tok.vocab_size
        p.dit.hybrid = False
        vae = CausalVideoVAE(p.vae).to(device)
        text = TextEncoder(p.text).to(device)
        teacher = DiT(copy.deepcopy(p.dit)).to(device)
        metrics = {}
    if world > 1:
        for m_ in (vae, text, teacher):
            ddp.broadcast_module(m_)
        torch.manual_seed(seed + 1000 * rank)  # per-rank noise (a single process keeps its stream)
    metrics.update({"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                    "torch": torch.__version__})
    if world > 1:
        metrics["data_parallel"] = {
            "world_size": world, "lr_scale": round(lr_mult(p), 4),
            "global_batch": {"vae": p.vae_batch * world, "teacher": p.dit_batch * world,
                             "stage2": p.stage2_batch * world}}
    calls = metrics.setdefault("calls", [])
    t_start = time.time()
    if "vae" in stages:
        metrics["vae"] = train_vae(vae, p, device, rng, log)
        if world > 1:
            metrics["vae"]["rank_checksums"] = ddp.rank_checksums(vae)
        vae.encoder_state = "trained"
    if "encoder" in stages:
        if "vae" in stages:
            raise ValueError("the encoder stage refits a resumed checkpoint's encoder: not with the vae stage")
        metrics["vae_encoder_refit"] = refit_encoder(vae, p, device, rng, log, teacher, text, tok)
        if world > 1:
            metrics["vae_encoder_refit"]["rank_checksums"] = ddp.rank_checksums(vae)
        vae.encoder_state = "refit"
    encodes = "teacher" in stages or ("stage2" in stages and (not p.stage2_traj or p.stage2_long_frames > 0))
    if getattr(vae, "encoder_state", "trained") == "missing" and encodes:
        raise EncoderMissing("this checkpoint has no VAE encoder (recovered from a release): the teacher and "
                             "stage 2 encode videos, so run the encoder stage first (--stages encoder,...), "
                             "or run stage 2 on sampling trajectories without long clips (--stage2-traj)")
    for prm in vae.parameters():
        prm.requires_grad_(False)
    vae.eval()
    cache = None
    if "teacher" in stages or ("stage2" in stages and not p.stage2_cache and not p.stage2_traj):
        t_cache = time.time()
        cache = LatentCache(vae, p, device, rng, ddp.share(p.latent_cache)) if p.latent_cache else None
        metrics["latent_cache"] = {"videos": p.latent_cache, "frames": p.frames,
                                   "seconds": round(time.time() - t_cache, 1)}
        if world > 1:
            metrics["latent_cache"]["per_rank"] = ddp.share(p.latent_cache)
    if "teacher" in stages:
        r = train_teacher(teacher, text, vae, tok, p, device, rng, log, cache)
        if world > 1:
            r["rank_checksums"] = ddp.rank_checksums(teacher, text)
        prev = metrics.get("teacher")
        if resume and prev:
            r = _continued(prev, r)
        metrics["teacher"] = r
    student = stage1_student = None
    if resumed_student is not None and set(stages) <= {"encoder"}:
        student = resumed_student  # an encoder refit keeps the checkpoint's student for a later stage 2
    if any(x in stages for x in ("sweep", "stage1", "stage2")):
        teacher.eval()
        text.eval()
        # without stage 1 (or the sweep) a resumed student is continued: more stage 2 in a later call
        continued = resumed_student is not None and not any(x in stages for x in ("sweep", "stage1"))
        if continued:
            student = resumed_student.to(device)
            log(f"[resume] stage 2 continues the checkpoint's student (Tc={student.cfg.tc} To={student.cfg.to})")
        else:
            student = copy.deepcopy(teacher)
            student.cfg = copy.deepcopy(teacher.cfg)
            student.to_student(p.tc, p.to)
            student.to(device)
        acts, s2cache = None, cache

        def clip_cache(key, videos, frames):
            """This rank's share of ``videos`` clips of ``frames`` frames, encoding ~64x64 frames at a time."""
            t_cache = time.time()
            c = LatentCache(vae, p, device, rng, ddp.share(videos), frames=frames, batch=max(1, 64 * 64 // frames))
            metrics[key] = {"videos": videos, "frames": frames, "seconds": round(time.time() - t_cache, 1)}
            if world > 1:
                metrics[key]["per_rank"] = ddp.share(videos)
            return c

        def stage2_cache():
            return clip_cache("stage2_cache", p.stage2_cache, p.stage2_frames)

        def stage2_long_cache():
            return clip_cache("stage2_long_cache", p.stage2_long_cache, p.stage2_long_frames) if p.stage2_long_frames else None

        s2long = None
        if not main and "stage2" in stages:  # while rank 0 distills
            if p.stage2_cache and not p.stage2_traj:
                s2cache = stage2_cache()
            s2long = stage2_long_cache()
        # stage 1 and the sweep fit on the teacher's activations; a continued stage 2 only reports its
        # per-block error on them, so it collects them after training (they are ~24 GB for long4)
        fits = "sweep" in stages or "stage1" in stages
        if main and fits:
            acts = collect_activations(teacher, text, tok, p, device, rng)
        if main and "sweep" in stages:
            sweep = {}
            for tc, to in p.sweep:  # measure the distillation error of other (Tc, To) choices
                cand = copy.deepcopy(teacher)
                cand.cfg = copy.deepcopy(teacher.cfg)
                cand.to_student(tc, to).to(device)
                r = distill_stage1(cand, acts, p, device, log, stage="sweep")
                sweep[f"Tc{tc}_To{to}"] = {"mean_block_l1": round(sum(r["block_l1_after"]) / len(r["block_l1_after"]), 5),
                                           "steps": r["steps"], "seconds": r["seconds"]}
                del cand
            metrics["tc_to_sweep"] = sweep
        if main and "stage1" in stages:
            metrics["stage1"] = distill_stage1(student, acts, p, device, log)
        if main and "stage2" in stages and p.stage2_cache and not p.stage2_traj:
            s2cache = stage2_cache()
        if main and "stage2" in stages:
            s2long = stage2_long_cache()
        ddp.barrier()
        ddp.broadcast_module(student)  # rank 0's distilled feature maps everywhere
        stage1_student = copy.deepcopy(student) if main and not continued else None
        if "stage2" in stages:
            traj = None
            if p.stage2_traj:  # every rank samples its own share, after stage 1 (the student may sample)
                t_traj = time.time()
                sampler = {"teacher": teacher, "student": student}[p.stage2_traj]
                traj = TrajectoryCache(sampler, teacher, text, tok, vae, p, device, rng, ddp.share(p.stage2_traj_prompts))
                metrics["stage2_trajectories"] = {"prompts": p.stage2_traj_prompts, "sampler": p.stage2_traj,
                                                  "seconds": round(time.time() - t_traj, 1)}
                if device.type == "cuda":  # what one run needs: may two share a GPU (gpu_refit_variants PER_GPU)?
                    metrics["stage2_trajectories"]["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 20)
                    torch.cuda.reset_peak_memory_stats(device)
            long_traj = None
            if p.stage2_self > 0:  # the student's own long videos, as stage 2 starts
                t_traj = time.time()
                long_traj = LongTrajectoryCache(student, text, tok, p, device, rng, ddp.share(p.stage2_self_prompts),
                                                p.stage2_long_frames)
                metrics["stage2_long_trajectories"] = {"prompts": p.stage2_self_prompts, "frames": p.stage2_long_frames,
                                                       "seconds": round(time.time() - t_traj, 1)}
                if device.type == "cuda":
                    metrics["stage2_long_trajectories"]["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 20)
                    torch.cuda.reset_peak_memory_stats(device)
            r = finetune_stage2(student, text, vae, tok, p, device, rng, log, s2cache, s2long, teacher=teacher,
                                traj=traj, long_traj=long_traj)
            if device.type == "cuda":
                r["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 20)
            del traj, long_traj
            if device.type == "cuda":  # the trajectories' and the training's cached blocks, before ~24 GB of activations
                torch.cuda.empty_cache()
            if main and acts is None:
                acts = collect_activations(teacher, text, tok, p, device, rng)
            if continued and metrics.get("stage2"):
                r = _continued(metrics["stage2"], r)
            metrics["stage2"] = r
            if world > 1:
                metrics["stage2"]["rank_checksums"] = ddp.rank_checksums(student)
            if main:
                metrics["stage2"]["block_l1_after"] = block_errors(student, acts)
        del acts
    calls.append({"stages": list(stages), "seconds": round(time.time() - t_start, 1)})
    if world > 1:
        calls[-1]["world_size"] = world
    metrics["train_seconds"] = round(sum(c["seconds"] for c in calls), 1)
    if not main:
        return metrics
    save_checkpoint(os.path.join(out_dir, "checkpoint.pt"), p, tok, vae, text, teacher, student, metrics)
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    if eval_fn is not None and student is not None:
        metrics["eval"] = eval_fn(tok, vae, text, teacher, stage1_student, student, device, log)
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    return metrics


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="full")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget-scale", type=float, default=1.0)
    ap.add_argument("--compile", type=int, default=None, help="1/0: override the preset's torch.compile")
    ap.add_argument("--stages", default=",".join(RECIPE), help="comma-separated subset of " + ",".join(STAGES))
    ap.add_argument("--resume", default=None, help="checkpoint of an earlier call to continue from")
    ap.add_argument("--budget", action="append", default=[], metavar="STAGE=SECONDS",
                    help="override one stage's wall-clock budget (after --budget-scale)")
    ap.add_argument("--max-steps", action="append", default=[], metavar="STAGE=STEPS",
                    help="override one stage's step cap")
    ap.add_argument("--sched", action="append", default=[], metavar="STAGE=OFFSET:TOTAL",
                    help="position of this call's part of a stage on its cosine schedule, in seconds")
    ap.add_argument("--eval", action="store_true", help="run training/eval after training")
    ap.add_argument("--deadline-s", type=float, default=0.0,
                    help="evaluation skips what would start later than this many seconds after launch")
    ap.add_argument("--stage2-long", default=None, metavar="FRAMES:VIDEOS",
                    help="stage 2 alternates with batches of FRAMES-frame clips from a cache of VIDEOS videos "
                         "(length generalisation; 0:0 = off)")
    ap.add_argument("--fm-object-weight", type=float, default=None, metavar="W",
                    help="override the preset's object weight of the flow-matching loss (0 = plain MSE; "
                         "the ablation of long4 is --preset long4 --fm-object-weight 0)")
    ap.add_argument("--stage2-distill", type=float, default=None, metavar="W",
                    help="stage 2 adds W x the teacher's velocity on each short clip's first 2 s as a second "
                         "target; with --stage2-traj, on each long clip's first 2 s instead (needs --stage2-long) "
                         "(default: the preset's, 0 = flow matching only)")
    ap.add_argument("--stage2-area", type=float, default=None, metavar="W",
                    help="stage 2 adds W x the area term on encoded clips: each object's per-frame soft area in "
                         "the decoded predicted clean video against the decoded clip's (AreaMatch); with "
                         "--stage2-traj on the long clips only (needs --stage2-long) (default: the preset's, 0 = off)")
    ap.add_argument("--stage2-self", type=float, default=None, metavar="W",
                    help="every other long step of stage 2 takes the student's own long sampling trajectories "
                         "and W x the self-consistency term: objects keep the size (and still ones the place) "
                         "their video's first second shows (SelfConsistency; needs --stage2-long) "
                         "(default: the preset's, 0 = off)")
    ap.add_argument("--stage2-self-prompts", type=int, default=None, metavar="N",
                    help="long trajectories sampled for --stage2-self (default: the preset's)")
    ap.add_argument("--stage2-traj", default=None, choices=("teacher", "student", "off"),
                    help="stage 2's short steps learn the teacher's velocity on sampling trajectories of the "
                         "teacher or of the student itself instead of flow matching on encoded videos "
                         "(needs no VAE encoder unless --stage2-long is on)")
    ap.add_argument("--stage2-traj-prompts", type=int, default=None, metavar="N",
                    help="trajectories sampled for --stage2-traj (default: the preset's)")
    ap.add_argument("--encoder-cycle", type=float, default=None, metavar="W",
                    help="the encoder refit adds W x the latent cycle error encode(decode(z)) vs z on the "
                         "teacher's samples (default: the preset's, 0 = reconstruction only)")
    ap.add_argument("--encoder-cycle-latents", type=int, default=None, metavar="N",
                    help="latents the teacher samples for the encoder refit's cycle (default: the preset's)")
    ap.add_argument("--lr-scale", type=float, default=0.0,
                    help="data-parallel learning-rate multiplier (default: sqrt(number of processes))")
    a = ap.parse_args(argv)
    ddp.init()  # torchrun's environment -> process group; a plain launch stays single-process
    try:
        _main(a)
    finally:
        ddp.finish()


# Loss weights and counts that the command line sets on the preset: each flag is the attribute's name
# in kebab case, checked before it is set (a weight >= 0; a count >= its least value).
_WEIGHT_FLAGS = ("fm_object_weight", "stage2_distill", "stage2_area", "stage2_self", "encoder_cycle")
_COUNT_FLAGS = {"stage2_self_prompts": 1, "stage2_traj_prompts": 1, "encoder_cycle_latents": 2}


def _flag(name):
    return "--" + name.replace("_", "-")


def _main(a):
    p = preset(a.preset)
    p.lr_scale = a.lr_scale
    p.budgets = {k: v * a.budget_scale for k, v in p.budgets.items()}
    if a.compile is not None:
        p.compile = bool(a.compile)
    for kv in a.budget:
        k, v = kv.split("=")
        p.budgets[k] = float(v)
    for kv in a.max_steps:
        k, v = kv.split("=")
        p.max_steps[k] = int(v)
    if a.stage2_long:
        try:
            fr, nv = a.stage2_long.split(":")
            p.stage2_long_frames, p.stage2_long_cache = int(fr), int(nv)
        except ValueError:
            raise SystemExit(f"--stage2-long: expected FRAMES:VIDEOS (e.g. 512:2048), got {a.stage2_long!r}") from None
        if p.stage2_long_frames and (p.stage2_long_frames % (4 * p.tc) or p.stage2_long_cache < 1):
            raise SystemExit(f"--stage2-long: FRAMES must be a multiple of {4 * p.tc} and VIDEOS >= 1")
    for name in _WEIGHT_FLAGS:
        v = getattr(a, name)
        if v is not None:
            if not v >= 0:
                raise SystemExit(f"{_flag(name)}: expected a weight >= 0, got {v}")
            setattr(p, name, v)
    for name, least in _COUNT_FLAGS.items():
        v = getattr(a, name)
        if v is not None:
            if v < least:
                raise SystemExit(f"{_flag(name)}: expected N >= {least}, got {v}")
            setattr(p, name, v)
    if a.stage2_traj is not None:
        p.stage2_traj = "" if a.stage2_traj == "off" else a.stage2_traj
    if p.stage2_self > 0 and not p.stage2_long_frames:
        raise SystemExit("--stage2-self samples long videos and alternates with the long clips: it needs --stage2-long")
    if p.stage2_self > 0 and p.stage2_long_frames < 8 * p.stage2_area_frames:
        raise SystemExit(f"--stage2-self needs long clips of at least {8 * p.stage2_area_frames} frames "
                         "(a reference window and a later one)")
    if p.stage2_traj and p.stage2_distill > 0 and not p.stage2_long_frames:
        raise SystemExit("--stage2-distill with --stage2-traj weighs the teacher's velocity on the long clips: "
                         "it needs --stage2-long")
    if p.stage2_traj and p.stage2_area > 0 and not p.stage2_long_frames:
        raise SystemExit("--stage2-area with --stage2-traj runs on the long clips: it needs --stage2-long")
    for kv in a.sched:
        k, v = kv.split("=")
        off, tot = v.split(":")
        p.sched[k] = (float(off), float(tot))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and ddp.is_on():
        device = torch.device("cuda", ddp.local_rank())
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    eval_fn = None
    if a.eval:
        from .eval.run import eval_models
        deadline = time.time() + a.deadline_s if a.deadline_s > 0 else None
        eval_fn = lambda *args: eval_models(*args, preset_name=a.preset, deadline=deadline)
    m = run_all(p, a.out, device, a.seed, log=lambda s: print(s, flush=True), eval_fn=eval_fn,
                stages=tuple(x for x in a.stages.split(",") if x), resume=a.resume)
    if ddp.is_main():
        print(json.dumps({k: v for k, v in m.items() if k != "eval"}, indent=1))


if __name__ == "__main__":
    main()
