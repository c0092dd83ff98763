"""Causal video autoencoder (deterministic; the DiT works on its normalised latents).

Pixel video [B, 3, 4T, H, W] in [-1, 1] <-> latent [B, C, T, H/8, W/8]. Latent frame i is
encoded from pixel frames 4i..4i+3 (and earlier ones); the decoder is strictly causal in time:
every temporal convolution pads on the left only, so decoding latent frames chunk by chunk while
carrying each causal convolution's last (kt - 1) input frames (the cache) reproduces whole-video
decoding exactly (zero cache = zero left padding at the start of the video). Every later chunk
of Tc latent frames decodes to 4 * Tc pixel frames; so does the first.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict
from typing import List, Optional, Tuple

import torch
from torch import nn
import torch.nn.functional as F


@dataclass
class VAEConfig:
    latent_channels: int = 16
    enc_channels: Tuple[int, int, int, int] = (32, 48, 64, 96)
    dec_channels: Tuple[int, int, int, int] = (128, 64, 48, 32)
    temporal: int = 4

    def to_dict(self):
        return asdict(self)


class CausalConv3d(nn.Module):
    """Conv3d with kernel (kt, k, k), left-only temporal padding and an explicit cache."""

    def __init__(self, cin: int, cout: int, kt: int = 3, k: int = 3):
        super().__init__()
        self.kt, self.cin = kt, cin
        self.conv = nn.Conv3d(cin, cout, (kt, k, k), padding=(0, k // 2, k // 2))

    def cache_shape(self, b: int, h: int, w: int):
        return (b, self.cin, self.kt - 1, h, w)

    def forward(self, x: torch.Tensor, cache: Optional[torch.Tensor] = None):
        if cache is None:
            cache = x.new_zeros(x.shape[0], x.shape[1], self.kt - 1, x.shape[3], x.shape[4])
        xx = torch.cat([cache, x], dim=2)
        return self.conv(xx), xx[:, :, xx.shape[2] - (self.kt - 1):]


def _frames2d(x: torch.Tensor, fn):
    b, c, t, h, w = x.shape
    y = fn(x.transpose(1, 2).reshape(b * t, c, h, w))
    return y.reshape(b, t, y.shape[1], y.shape[2], y.shape[3]).transpose(1, 2)


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        c0, c1, c2, c3 = cfg.enc_channels
        self.t = cfg.temporal
        self.net2d = nn.Sequential(
            nn.Conv2d(3, c0, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c0, c1, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(c2, c3, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(c3, c3, 3, padding=1), nn.SiLU())
        self.merge = nn.Conv3d(c3 * cfg.temporal, c3 * 2, 1)
        self.tconv = CausalConv3d(c3 * 2, c3 * 2, kt=2)
        self.out = nn.Conv3d(c3 * 2, cfg.latent_channels, 1)

    def forward(self, x):
        b, _, f, _, _ = x.shape
        if f % self.t:
            raise ValueError(f"frame count {f} is not a multiple of {self.t}")
        h = _frames2d(x, self.net2d)  # [B, c3, F, h, w]
        c, hh, ww = h.shape[1], h.shape[3], h.shape[4]
        h = h.reshape(b, c, f // self.t, self.t, hh, ww).transpose(2, 3).reshape(b, c * self.t, f // self.t, hh, ww)
        h = F.silu(self.merge(h))
        h = h + F.silu(self.tconv(h)[0])
        return self.out(h)


class Decoder(nn.Module):
    """Streaming decoder. ``forward(z, caches)`` -> (frames, new caches)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        c0, c1, c2, c3 = cfg.dec_channels
        self.t = cfg.temporal
        self.c1 = c1
        self.conv_in = CausalConv3d(cfg.latent_channels, c0)
        self.res = CausalConv3d(c0, c0)
        self.to_time = nn.Conv3d(c0, c1 * cfg.temporal, 1)
        self.up1 = nn.Conv2d(c1, c1, 3, padding=1)       # 16 -> 32
        self.tmix = CausalConv3d(c1, c1)                 # pixel-rate temporal mixing at 32x32
        self.up2 = nn.Conv2d(c1, c2, 3, padding=1)       # 32 -> 64
        self.up3 = nn.Conv2d(c2, c3, 3, padding=1)       # 64 -> 128
        self.out = nn.Conv2d(c3, 3, 3, padding=1)

    def causal_convs(self) -> List[CausalConv3d]:
        return [self.conv_in, self.res, self.tmix]

    def cache_shapes(self, b: int, h: int, w: int):
        return [self.conv_in.cache_shape(b, h, w), self.res.cache_shape(b, h, w),
                self.tmix.cache_shape(b, h * 2, w * 2)]

    def empty_cache(self, b: int, h: int, w: int, device=None, dtype=torch.float32):
        return [torch.zeros(s, device=device, dtype=dtype) for s in self.cache_shapes(b, h, w)]

    def forward(self, z, caches: Optional[List[torch.Tensor]] = None):
        caches = caches if caches is not None else [None, None, None]
        h, c0 = self.conv_in(z, caches[0])
        h = F.silu(h)
        r, c1 = self.res(h, caches[1])
        h = h + F.silu(r)
        h = self.to_time(h)  # [B, c1*4, T, h, w]
        b, _, t, hh, ww = h.shape
        h = h.reshape(b, self.c1, self.t, t, hh, ww).transpose(2, 3).reshape(b, self.c1, t * self.t, hh, ww)
        h = _frames2d(h, lambda u: F.silu(self.up1(F.interpolate(u, scale_factor=2.0, mode="nearest"))))
        r, c2 = self.tmix(h, caches[2])
        h = h + F.silu(r)
        h = _frames2d(h, lambda u: self.out(F.silu(self.up3(F.interpolate(
            F.silu(self.up2(F.interpolate(u, scale_factor=2.0, mode="nearest"))), scale_factor=2.0, mode="nearest")))))
        return h, [c0, c1, c2]


class CausalVideoVAE(nn.Module):
    def __init__(self, cfg: VAEConfig = VAEConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        # latent normalisation (set after training): z_norm = (z - mean) / std
        self.register_buffer("lat_mean", torch.zeros(1, cfg.latent_channels, 1, 1, 1))
        self.register_buffer("lat_std", torch.ones(1, cfg.latent_channels, 1, 1, 1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 3, F, H, W] in [-1, 1] -> normalised latent [B, C, F/4, H/8, W/8]."""
        return (self.encoder(x) - self.lat_mean) / self.lat_std

    def decode(self, z: torch.Tensor, caches=None):
        """normalised latent -> (pixels [B, 3, 4T, H, W] in about [-1, 1], new caches)."""
        return self.decoder(z * self.lat_std + self.lat_mean, caches)

    def decode_chunks(self, z: torch.Tensor, tc: int) -> torch.Tensor:
        caches = None
        out = []
        for i in range(0, z.shape[2], tc):
            x, caches = self.decode(z[:, :, i:i + tc], caches)
            out.append(x)
        return torch.cat(out, dim=2)
