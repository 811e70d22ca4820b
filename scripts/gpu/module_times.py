#!/usr/bin/env python3
# PyTorch eager time per module: the reference side of the per-module table of 'ait remote verify --per-node
# --torch-model FILE.py:FUNCTION' (docs/remote.md). The agent writes this file into the verify job (the agent bundle
# carries it inline: remote-agent/agent/module-times-script.ts).
#
# The model goes to CUDA in float16 (channels_last when an input is 4-D); forward pre/post hooks on every named
# submodule record CUDA events around each call. After --warmup runs, each module's time per forward (all its calls
# summed) is the median over --runs runs. Output: {"format": "ait-torch-module-times", "modules": {path: ms}, ...},
# paths as named_modules() names them ('' is the whole model, hooks included; totalMs is the forward without hooks).
#
#   python3 module_times.py --torch-model FILE.py:FUNCTION [--inputs a.npy b.npy] --out times.json
#   python3 module_times.py --model vitmatte | --model timm:resnet50 [--batch 8] --out times.json
#
# FUNCTION() returns the nn.Module, or (module, example_inputs). Inputs: the .npy files when given (verify's, in the
# ONNX model's input order), else the example inputs. check_models.py imports time_modules() and document().
import argparse, importlib.util, json, os, statistics, sys


def vitmatte():
    """VitMatte as shared/tools/export_models.py exports vitmatte.onnx: same wrapper (module paths are its ONNX scopes,
    m.backbone...), same construction after torch.manual_seed(0), so the weights are those of an export with seed 0."""
    import torch
    from transformers import VitDetConfig, VitMatteConfig, VitMatteForImageMatting
    torch.manual_seed(0)
    bb = VitDetConfig(num_channels=4, hidden_size=384, num_attention_heads=6, out_features=["stage12"])
    m = VitMatteForImageMatting(VitMatteConfig(backbone_config=bb, hidden_size=384, fusion_hidden_sizes=[256, 128, 64, 32]))

    class W(torch.nn.Module):
        def __init__(s, m):
            super().__init__()
            s.m = m

        def forward(s, x):
            return s.m(pixel_values=x).alphas

    return W(m), (torch.randn(1, 4, 512, 512),)


def timm_model(name, size=None):
    """A timm model by name (random weights), with an input of its default size."""
    import timm, torch
    torch.manual_seed(0)
    m = timm.create_model(name, pretrained=False)
    size = size or m.default_cfg.get("input_size", (3, 224, 224))[-1]
    return m, (torch.randn(1, 3, size, size),)


def load_factory(spec):
    file, _, function = spec.rpartition(":")
    if not file or not function:
        sys.exit("--torch-model takes FILE.py:FUNCTION, got %r" % spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(file)))  # the factory's own imports next to it
    loaded = importlib.util.spec_from_file_location("ait_torch_model", file)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    if not callable(getattr(module, function, None)):
        sys.exit("%s has no function %r" % (file, function))
    return getattr(module, function)


def median_ms(run, runs, warmup):
    """Median of 'runs' CUDA-event timings of run() after 'warmup' untimed calls."""
    import torch
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def time_modules(model, xs, runs=20, warmup=5):
    """Times model(*xs) (model and inputs already on CUDA) as a whole without hooks, then every named submodule through
    forward hooks; returns {"totalMs", "modules": {path: median ms}, "calls": {path: calls per forward}}."""
    import torch
    with torch.inference_mode():
        total = median_ms(lambda: model(*xs), runs, warmup)
        started, spans = {}, []

        def pre(name):
            def hook(module, args):
                e = torch.cuda.Event(enable_timing=True)
                e.record()
                started.setdefault(name, []).append(e)
            return hook

        def post(name):
            def hook(module, args, output):
                e = torch.cuda.Event(enable_timing=True)
                e.record()
                spans.append((name, started[name].pop(), e))
            return hook

        handles = []
        for name, module in model.named_modules():
            handles.append(module.register_forward_pre_hook(pre(name)))
            handles.append(module.register_forward_hook(post(name)))
        per_run, calls = [], {}
        try:
            for i in range(warmup + runs):
                spans.clear()
                model(*xs)
                torch.cuda.synchronize()
                if i < warmup:
                    continue
                times, calls = {}, {}
                for name, start, end in spans:
                    times[name] = times.get(name, 0.0) + start.elapsed_time(end)
                    calls[name] = calls.get(name, 0) + 1
                per_run.append(times)
        finally:
            for h in handles:
                h.remove()
    modules = {name: statistics.median([r.get(name, 0.0) for r in per_run]) for name in calls}
    return {"totalMs": total, "modules": modules, "calls": calls}


def document(times, xs, runs, warmup, channels_last):
    """The output file: module times with how they were measured (format ait-torch-module-times)."""
    import torch
    return {"format": "ait-torch-module-times", "version": 1, "torch": torch.__version__,
            "device": torch.cuda.get_device_name(), "dtype": "float16", "channelsLast": channels_last,
            "inputs": [list(x.shape) for x in xs], "runs": runs, "warmupRuns": warmup, **times}


def main():
    p = argparse.ArgumentParser(description="PyTorch eager time per module (see the comment at the top)")
    p.add_argument("--torch-model", help="FILE.py:FUNCTION returning the nn.Module or (module, example_inputs)")
    p.add_argument("--model", help="a factory of this file: vitmatte, or timm:NAME")
    p.add_argument("--inputs", nargs="*", default=[], help=".npy inputs in the model's order (default: the example inputs)")
    p.add_argument("--batch", type=int, help="repeat the example inputs to this batch (no --inputs)")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    import torch
    if not torch.cuda.is_available():
        sys.exit("torch %s sees no CUDA device: module times need a GPU" % torch.__version__)
    if a.torch_model:
        made = load_factory(a.torch_model)()
    elif a.model == "vitmatte":
        made = vitmatte()
    elif a.model and a.model.startswith("timm:"):
        made = timm_model(a.model[5:])
    else:
        sys.exit("give --torch-model FILE.py:FUNCTION or --model vitmatte|timm:NAME")
    model, example = made if isinstance(made, tuple) else (made, None)
    if a.inputs:
        import numpy as np
        xs = [torch.from_numpy(np.load(f)) for f in a.inputs]
    elif example is not None:
        xs = list(example) if isinstance(example, (tuple, list)) else [example]
        if a.batch:
            xs = [x[:1].expand(a.batch, *x.shape[1:]).contiguous() for x in xs]
    else:
        sys.exit("the factory gave no example inputs and no --inputs were given")
    channels_last = any(x.dim() == 4 for x in xs)

    def prepare(x):
        x = x.to("cuda")
        x = x.half() if x.is_floating_point() else x
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    xs = [prepare(x) for x in xs]
    model = model.eval().to("cuda", torch.float16)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    result = document(time_modules(model, xs, a.runs, a.warmup), xs, a.runs, a.warmup, channels_last)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print("module times: %d modules, whole forward %.3f ms (%s)" % (len(result["modules"]), result["totalMs"], a.out), flush=True)


if __name__ == "__main__":
    main()
