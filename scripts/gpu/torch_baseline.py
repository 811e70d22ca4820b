"""GPU host: PyTorch fp16 latency of timm models, eager (channels-last) and torch.compile, for comparison in the same run
as ait_bench. usage: python3 torch_baseline.py OUT.json NAME[:HW],... BATCH,... [MODE,...]   (modes default reduce-overhead)
Median of CUDA-event-timed runs after warm-up; random weights (torch.manual_seed(0)), as the compiled builds' random weights."""
import json, sys, time
import numpy as np
import torch
import timm

out, names, batches = sys.argv[1], sys.argv[2].split(","), [int(b) for b in sys.argv[3].split(",")]
modes = sys.argv[4].split(",") if len(sys.argv) > 4 else ["reduce-overhead"]
torch.backends.cudnn.benchmark = True


def median_ms(fn, iterations):
    with torch.no_grad():
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(iterations):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record(); fn(); e.record(); e.synchronize()
            times.append(s.elapsed_time(e))
    return float(np.median(times))


report = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "models": {}}
for spec in names:
    name, hw = (spec.split(":") + ["224"])[:2]
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval().cuda().half().to(memory_format=torch.channels_last)
    entry = report["models"].setdefault(name, {})
    for b in batches:
        x = torch.randn(b, 3, int(hw), int(hw), device="cuda").half().to(memory_format=torch.channels_last)
        entry.setdefault(str(b), {})["eagerMs"] = median_ms(lambda: model(x), 30 if b <= 8 else 10)
    for mode in modes:
        torch._dynamo.reset()
        compiled = torch.compile(model, mode=mode)
        for b in batches:
            x = torch.randn(b, 3, int(hw), int(hw), device="cuda").half().to(memory_format=torch.channels_last)
            t0 = time.time()
            with torch.no_grad():
                compiled(x); compiled(x)
            entry[str(b)][f"compile:{mode}:s"] = round(time.time() - t0, 1)
            entry[str(b)][f"compile:{mode}"] = median_ms(lambda: compiled(x), 30 if b <= 8 else 10)
        print(name, json.dumps(entry), flush=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
