"""cuBLAS (torch.addmm, fp16, bias) on the shapes of scripts/gpu/gemm-tiles.ts: the yardstick for the CUTLASS tiles.
With --epilogues, the shapes and epilogues of `gemm-tiles.ts --epilogues` as PyTorch eager runs them: fc1 as addmm
then exact GELU, fc2 as addmm then the residual add.
Prints one JSON object; run on the GPU host: python3 scripts/gpu/gemm_tiles_torch.py [--epilogues] > gemm-tiles-torch.json"""
import json
import sys
import torch

epilogue_mode = "--epilogues" in sys.argv


def best_ms(fn, iterations):
    for _ in range(3):
        fn()
    best = None
    for _ in range(3):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iterations):
            fn()
        stop.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(stop) / iterations
        best = ms if best is None else min(best, ms)
    return best


results = []
models = (("vit_l", 577, 1024),) if epilogue_mode else (("vit_b", 197, 768), ("vit_l", 577, 1024))
for model, seq, hidden in models:
    for batch in (8,) if epilogue_mode else (1, 8, 64, 256):
        m = batch * seq
        for name, n, k in (("qkv", 3 * hidden, hidden), ("proj", hidden, hidden), ("fc1", 4 * hidden, hidden), ("fc2", hidden, 4 * hidden)):
            a = torch.randn(m, k, device="cuda", dtype=torch.half)
            w = torch.randn(n, k, device="cuda", dtype=torch.half)
            bias = torch.randn(n, device="cuda", dtype=torch.half)
            iterations = 10 if m * n * k > 1e11 else 50
            runs = {"addmm": lambda: torch.addmm(bias, a, w.t())}
            if epilogue_mode and name == "fc1":
                runs = {"addmm + gelu": lambda: torch.nn.functional.gelu(torch.addmm(bias, a, w.t()))}
            elif epilogue_mode and name == "fc2":
                residual = torch.randn(m, n, device="cuda", dtype=torch.half)
                runs = {"addmm + residual": lambda: torch.addmm(bias, a, w.t()) + residual}
            elif epilogue_mode:
                continue
            for what, fn in runs.items():
                ms = best_ms(fn, iterations)
                results.append({"shape": f"{model} b{batch} {name}", "what": what, "m": m, "n": n, "k": k, "ms": ms,
                                "tflops": 2 * m * n * k / (ms * 1e9)})
print(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": results}, indent=1))
