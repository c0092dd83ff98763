"""Host memory of decoding 2 s latent videos at once with long4's VAE decoder, on the CPU in fp32.

    cd training && python3 -m bench.vae_decode_memory bench/vae_decode_memory.out.json

Why: TrajectoryCache (rehyat.train) decoded the final latents of each sampling batch, 256 videos, at
once; on an H100 a second trajectory run then failed asking for 8 GB there. It now decodes
TrajectoryCache.DECODE_BATCH videos at a time. Each batch size runs in a fresh process (peak RSS,
ru_maxrss, minus the RSS after building the decoder and its input), so the runs do not share a
high-water mark. The ratios are against DECODE_BATCH measured in the same run. The per-video slope
projects 256 at once; the GPU holds activations in bf16 under autocast, about half of these fp32
bytes (a projection, not a GPU measurement).
"""
import json
import os
import resource
import subprocess
import sys

from bench.machine import cpu_name

BATCHES = (1, 4, 16, 32)


def _one(b: int) -> float:
    import torch
    from rehyat import train
    from rehyat.vae import CausalVideoVAE
    torch.manual_seed(0)
    p = train.preset("long4")
    vae = CausalVideoVAE(p.vae).eval()
    z = torch.randn(b, p.dit.latent_channels, p.frames // 4, p.dit.latent_height, p.dit.latent_width)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.no_grad():
        y, _ = vae.decode(z)
    assert y.shape[0] == b
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024.0  # KiB -> MiB


def main(out):
    from rehyat.train import TrajectoryCache
    ref = TrajectoryCache.DECODE_BATCH
    batches = sorted(set(BATCHES) | {ref})
    mib = {}
    for b in batches:
        r = subprocess.run([sys.executable, "-m", "bench.vae_decode_memory", "--one", str(b)],
                           capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        mib[b] = round(float(r.stdout.strip().splitlines()[-1]), 1)
    lo, hi = batches[0], batches[-1]
    per_video = (mib[hi] - mib[lo]) / (hi - lo)
    res = {
        "machine": f"CPU: {cpu_name()}, {os.cpu_count()} cores",
        "what": "peak host memory added by one no-grad vae.decode of B long4 latent videos of 2 s (fp32)",
        "peak_mib": {str(b): mib[b] for b in batches},
        "ratio_to_decode_batch": {str(b): round(mib[b] / mib[ref], 2) for b in batches},
        "decode_batch": ref,
        "mib_per_video": round(per_video, 1),
        "projected_256_at_once_mib_fp32": round(mib[lo] + per_video * (256 - lo)),
        "projected_ratio_256_to_decode_batch": round((mib[lo] + per_video * (256 - lo)) / mib[ref], 1),
    }
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    if sys.argv[1] == "--one":
        print(_one(int(sys.argv[2])))
    else:
        main(sys.argv[1])
