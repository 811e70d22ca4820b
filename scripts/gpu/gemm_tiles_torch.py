"""cuBLAS (torch.addmm, fp16, bias) on the shapes of scripts/gpu/gemm-tiles.ts: the yardstick for the CUTLASS tiles.
Prints one JSON object; run on the GPU host: python3 scripts/gpu/gemm_tiles_torch.py > gemm-tiles-torch.json"""
import json
import torch

results = []
for model, seq, hidden in (("vit_b", 197, 768), ("vit_l", 577, 1024)):
    for batch in (1, 8, 64, 256):
        m = batch * seq
        for name, n, k in (("qkv", 3 * hidden, hidden), ("proj", hidden, hidden), ("fc1", 4 * hidden, hidden), ("fc2", hidden, 4 * hidden)):
            a = torch.randn(m, k, device="cuda", dtype=torch.half)
            w = torch.randn(n, k, device="cuda", dtype=torch.half)
            bias = torch.randn(n, device="cuda", dtype=torch.half)
            iterations = 10 if m * n * k > 1e11 else 50
            for _ in range(3):
                torch.addmm(bias, a, w.t())
            best = None
            for _ in range(3):
                start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(iterations):
                    torch.addmm(bias, a, w.t())
                stop.record()
                torch.cuda.synchronize()
                ms = start.elapsed_time(stop) / iterations
                best = ms if best is None else min(best, ms)
            results.append({"shape": f"{model} b{batch} {name}", "m": m, "n": n, "k": k, "ms": best, "tflops": 2 * m * n * k / (best * 1e9)})
print(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": results}, indent=1))
