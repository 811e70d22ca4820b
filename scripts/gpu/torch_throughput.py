"""GPU host: PyTorch eager throughput, to run beside `ait_bench --instances N --threads M --duration S` (the same scheme
and the same JSON fields). Models as in torch_eager.py (build()): fp16, channels-last, random weights.
usage: python3 torch_throughput.py MODEL [--instances N] [--threads M] [--duration S] [--batch-sizes 1,8] [--warmup 10]
N model copies, each with its own CUDA stream and at most one run in flight; thread t drives copies t, t+M, ... in turn
(waits for a copy's previous run, records its latency, enqueues the next). A run's latency: CUDA events around it on
its stream, which is idle when the run is enqueued, so enqueue to completion. images/s = batch x runs / wall time from
the first enqueue to the last completion. Prints one JSON line:
{"mode": "throughput", "runner": "torch-eager-fp16", "model", "gpu", "torch", "results": [{"mode", "batchSize",
"graphMode": false, "instances", "threads", "durationS", "runs", "itemsPerSecond", "p50Ms", "p95Ms", "p99Ms", "maxMs"}]}"""
import argparse
import json
import math
import os
import sys
import threading
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_eager import build, to  # noqa: E402


def batched(x, batch):
    """The batch-1 example inputs of build() repeated to `batch` (detection models take a list of images)."""
    if isinstance(x, list):
        return [v for v in x for _ in range(batch)]
    if isinstance(x, tuple):
        return tuple(batched(v, batch) for v in x)
    return x.repeat(batch, *([1] * (x.dim() - 1)))


def percentile(sorted_ms, p):
    """Nearest rank, as ait_bench."""
    return sorted_ms[min(len(sorted_ms), max(1, math.ceil(p * len(sorted_ms)))) - 1]


def run(models, args, streams, batch, threads, duration, warmup):
    for model, a, s in zip(models, args, streams):  # warm-up: cuDNN picks its algorithms here
        with torch.cuda.stream(s), torch.inference_mode():
            for _ in range(warmup):
                model(*a)
    torch.cuda.synchronize()
    latencies, lock = [], threading.Lock()
    begin = time.perf_counter()
    deadline = begin + duration

    def drive(t):
        mine, pending = [], {}  # copy index -> (start, done) events of its run in flight
        mine_indices = range(t, len(models), threads)
        with torch.inference_mode():  # grad mode and the current stream are per thread
            while time.perf_counter() < deadline:
                for i in mine_indices:
                    if i in pending:
                        start, done = pending.pop(i)
                        done.synchronize()
                        mine.append(start.elapsed_time(done))
                    start, done = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    with torch.cuda.stream(streams[i]):
                        start.record()
                        models[i](*args[i])
                        done.record()
                    pending[i] = (start, done)
        for start, done in pending.values():
            done.synchronize()
            mine.append(start.elapsed_time(done))
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=drive, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - begin
    ms = sorted(latencies)
    return {
        "mode": "throughput",
        "batchSize": batch,
        "graphMode": False,
        "instances": len(models),
        "threads": threads,
        "durationS": round(elapsed, 3),
        "runs": len(ms),
        "itemsPerSecond": round(batch * len(ms) / elapsed, 1),
        "p50Ms": round(percentile(ms, 0.5), 4),
        "p95Ms": round(percentile(ms, 0.95), 4),
        "p99Ms": round(percentile(ms, 0.99), 4),
        "maxMs": round(ms[-1], 4),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a name build() knows (timm name, vitmatte, torchvision detection model)")
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--batch-sizes", default="1")
    parser.add_argument("--warmup", type=int, default=10)
    o = parser.parse_args()
    if not (1 <= o.threads <= o.instances) or o.duration <= 0:
        parser.error("needs --instances N >= 1, --threads M in 1..N and --duration > 0")
    torch.backends.cudnn.benchmark = True
    models, examples = [], []
    for _ in range(o.instances):
        model, inputs = build(o.model)
        models.append(model.eval().cuda().half().to(memory_format=torch.channels_last))
        examples.append(inputs)
    streams = [torch.cuda.Stream() for _ in models]
    results = []
    for batch in (int(b) for b in o.batch_sizes.split(",")):
        args = [to(batched(x, batch), torch.float16) for x in examples]
        r = run(models, args, streams, batch, o.threads, o.duration, o.warmup)
        print(f"torch_throughput: batch {batch}: {r['itemsPerSecond']} items/s, p50 {r['p50Ms']:.4f} ms", file=sys.stderr)
        results.append(r)
    gpu = torch.cuda.get_device_name()
    report = {"mode": "throughput", "runner": "torch-eager-fp16", "model": o.model, "gpu": gpu, "torch": torch.__version__, "results": results}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
