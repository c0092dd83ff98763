"""Full softmax reference: PyTorch scaled_dot_product_attention, float16, on the GPU.
usage: python3 bench/sdpa.py   (prints one JSON object per measurement)"""
import json

import torch
import torch.nn.functional as F

PEAK = 989.0
GEOS = [("ours", 4, 32, 64, [64, 584, 2340, 4680]), ("Wan2.1-1.3B", 12, 128, 1560, [3, 24, 96, 192])]


def main():
    for name, h, d, p, frames in GEOS:
        for fr in frames:
            n = fr * p
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            try:
                q, k, v = (torch.randn(1, h, n, d, device="cuda", dtype=torch.float16) for _ in range(3))
                F.scaled_dot_product_attention(q, k, v)
                torch.cuda.synchronize()
                reps = 1 if n > 100_000 else 3
                times = []
                for _ in range(reps):
                    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    a.record()
                    F.scaled_dot_product_attention(q, k, v)
                    b.record()
                    torch.cuda.synchronize()
                    times.append(a.elapsed_time(b) / 1000)
                t = sorted(times)[len(times) // 2]
                fl = 4 * n * n * d * h
                print(json.dumps({"geometry": name, "N": n, "method": "full softmax, PyTorch SDPA",
                                  "ms": round(t * 1000, 2), "tflops": round(fl / t / 1e12, 1),
                                  "peakPct": round(100 * fl / t / 1e12 / PEAK, 1),
                                  "memMiB": round((torch.cuda.max_memory_allocated() - base) / 2**20)}), flush=True)
                del q, k, v
            except Exception as e:  # OOM and the like are results too
                print(json.dumps({"geometry": name, "N": n, "method": "full softmax, PyTorch SDPA",
                                  "error": str(e).splitlines()[0][:160]}), flush=True)


if __name__ == "__main__":
    print(json.dumps({"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}))
    main()
