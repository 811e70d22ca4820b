"""GPU host: numerical check and timing of compiled models (called by check-models.sh; see its header).

For each build directory NAME_ARCH under --check-dir: load lib<NAME>.so through its ait_model.py, bind the weights of
--exports/NAME/model.onnx(+.data) by ONNX initializer name, and make inputs from the compiled model's signature
(float inputs: seeded normal values; integer inputs: ones for a name holding 'mask', else seeded ids below 1000). At
batch 1 and 8, compare every output with onnxruntime (CPU) on the exported model (a model with input dims besides the
batch, a text model's seq, also at a shorter seq with padding in its masks: `seqChecks`), and with PyTorch fp32 where the
model's constructor is known (CONSTRUCTORS: timm names, torchvision segmentation, DistilBERT; else families.py's table;
re-created with torch.manual_seed(0) like the exporters). Time ait_bench (CUDA graphs) against PyTorch eager fp16 (channels-last for
image inputs) and torch.compile (AIT_TORCH_COMPILE modes, default reduce-overhead; 'none' to skip; at AIT_COMPILE_BATCHES) in the
same run, at batch 1, 8, 64 and 256 (AIT_TIMING_BATCHES; those up to the build's max batch). Writes OUT/check-models.json,
per-op profiles (ait-profile format) at batch 8 (OUT/profiles) and PyTorch eager's time per module at batch 8
(module_times.py, OUT/module-times: `ait modules` joins the two); prints a compact table last.
"""
import argparse, copy, importlib.util, json, os, subprocess, sys, time

import numpy as np
import torch

TOLERANCE = 2e-2
CHECK_BATCHES = [1, 8]
TIMING_BATCHES = [int(b) for b in os.environ.get("AIT_TIMING_BATCHES", "1,8,64,256").split(",")]
COMPILE_MODES = [m for m in os.environ.get("AIT_TORCH_COMPILE", "reduce-overhead").split(",") if m and m != "none"]
# torch.compile compiles (and captures CUDA graphs) again for every batch size: time it at these only
COMPILE_BATCHES = [int(b) for b in os.environ.get("AIT_COMPILE_BATCHES", ",".join(map(str, TIMING_BATCHES))).split(",")]


def _timm(name):
    import timm
    return timm.create_model(name, pretrained=False)


def _tv_seg(name):
    import torchvision

    class Out(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x)["out"]

    return Out(getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, aux_loss=False))


def _distilbert():
    from transformers import DistilBertConfig, DistilBertModel

    class Hidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, ids, mask):
            return self.m(input_ids=ids, attention_mask=mask).last_hidden_state

    return Hidden(DistilBertModel(DistilBertConfig()))


TIMM = ["resnet50", "vit_base_patch16_224", "vit_large_patch16_384", "mobilenetv2_100", "efficientnet_b2", "regnetx_016",
        "convnext_small", "swin_small_patch4_window7_224", "densenet121", "inception_v3"]
CONSTRUCTORS = {**{n: (lambda n=n: _timm(n)) for n in TIMM}, "deeplabv3_resnet50": lambda: _tv_seg("deeplabv3_resnet50"),
                "distilbert_base": _distilbert}


def pytorch_model(name):
    """The PyTorch module the export came from, with the export's weights (seed 0), or None when unknown."""
    base = name[: -len("_legacy")] if name.endswith("_legacy") else name
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import families
    ctor = CONSTRUCTORS.get(base)
    # the breadth families (scripts/gpu/families.py), exported by check-models.sh from the same table; its table wins
    # where both know a name (Inception-v3 with calibrated BatchNorm statistics)
    if ctor is None or base in families.FAMILIES:
        return families.pytorch_model(base)
    torch.manual_seed(0)
    return ctor().eval()


def rel_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def load_module(path):
    spec = importlib.util.spec_from_file_location(f"ait_model_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def onnx_weights(model_path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(model_path)  # external data next to the file
    return {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}


def make_inputs(specs, batch, seed, input_dims=(), seq=None):
    """Inputs (CPU torch tensors, fp32 or int64) for the compiled model's input specs at `batch`; with `seq`, every
    input dim besides the batch (ait_model.py's input_dims) at that value, and masks with the last quarter of the
    first row's positions padded (0)."""
    g = torch.Generator().manual_seed(seed)
    xs = []
    for k, s in enumerate(specs):
        shape = list(s["max_shape"])
        if s["batch_axis"] >= 0:
            shape[s["batch_axis"]] = batch
        if seq is not None:
            for d in input_dims:
                if d["input"] == k:
                    shape[d["axis"]] = seq
        if s["dtype"] in (1, 2, 3):  # float16 / float32 / bfloat16 (the runtime's DType codes): float data
            xs.append(torch.randn(*shape, generator=g))
        elif "mask" in s["name"].lower():
            mask = torch.ones(*shape, dtype=torch.int64)
            if seq is not None and len(shape) == 2 and shape[1] > 1:
                mask[0, shape[1] - max(1, shape[1] // 4):] = 0
            xs.append(mask)
        else:
            xs.append(torch.randint(0, 1000, shape, generator=g, dtype=torch.int64))
    return xs


def iterations_at(batch):
    """Fewer timed iterations at large batches (each takes milliseconds): keeps the whole check within minutes."""
    return 50 if batch <= 8 else 20


def median_ms(fn, iterations, warmup=5):
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(iterations):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record(); fn(); e.record(); e.synchronize()
            times.append(s.elapsed_time(e))
    return float(np.median(times))


def torch_inputs(xs):
    """Device inputs for PyTorch timing: fp16 (channels-last for images) floats, ints as they are."""
    out = []
    for x in xs:
        x = x.cuda()
        if x.is_floating_point():
            x = x.half()
            if x.dim() == 4:
                x = x.to(memory_format=torch.channels_last)
        out.append(x)
    return out


def ait_bench_ms(build, batches):
    timing = {}
    for iterations in sorted({iterations_at(b) for b in batches}, reverse=True):
        group = [b for b in batches if iterations_at(b) == iterations]
        r = subprocess.run([os.path.join(build, "ait_bench"), "--batch-sizes", ",".join(map(str, group)), "--iterations",
                            str(iterations), "--warmup", "3", "--graph", "on"], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            return timing, r.stderr[-2000:]
        line = [l for l in r.stdout.splitlines() if l.startswith("{")][-1]
        timing.update({e["batchSize"]: e["p50Ms"] for e in json.loads(line)["results"]})
    return timing, None


def check_build(build_name, build, exports, out, ort):
    name, arch = build_name.rsplit("_", 1)
    entry = {"build": build_name, "model": name, "arch": arch, "batches": {}, "errors": [], "reference": []}
    lib = [f for f in os.listdir(build) if f.startswith("lib") and f.endswith(".so")]
    if not lib:
        raise RuntimeError(f"no library in {build} (build failed: see logs/build_{build_name}.log)")
    onnx_path = os.path.join(exports, name, "model.onnx")
    ait = load_module(os.path.join(build, "ait_model.py")).AITModel(os.path.join(build, lib[0]))
    weights = onnx_weights(onnx_path)
    bound = ait.bind_weights(weights)
    entry["weightsBound"] = len(bound)
    # initializers of the export the build has no weight for: small ones are shape constants the compiler folded; a
    # large one means the build was compiled from another export (another graph: e.g. BatchNorm folded into biases
    # the build lacks), whose result would be wrong without any error
    skipped = sorted((n for n in weights if n not in set(bound) and weights[n].size > 64), key=lambda n: -weights[n].size)
    if skipped:
        raise RuntimeError(f"{len(skipped)} initializers of the export are no weights of the build ({', '.join(skipped[:4])}, ...): "
                           "it was compiled from another export of the model")
    if ait.num_unbound_weights:
        raise RuntimeError(f"{ait.num_unbound_weights} weights still unbound after binding {len(bound)} ONNX initializers")
    specs = ait.inputs
    reference = pytorch_model(name)
    entry["reference"] = ["onnxruntime"] + (["pytorch"] if reference is not None else [])
    # the eager fp16 timing takes a copy made before any forward: modules that cache tensors in eval mode (timm's
    # LeViT caches its attention biases) would otherwise keep the fp32 cache of the reference run after .half()
    pristine = copy.deepcopy(reference) if reference is not None else None
    if reference is not None:
        reference = reference.cuda()
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    ort_names = [i.name for i in session.get_inputs()]
    for batch in CHECK_BATCHES:
        xs = make_inputs(specs, batch, seed=batch)
        ort_outs = session.run(None, dict(zip(ort_names, [x.numpy() for x in xs])))
        got = [o.float().cpu().numpy() for o in ait.run([x.cuda().half() if x.is_floating_point() else x.cuda() for x in xs])]
        torch.cuda.synchronize()
        e = {"relL2VsOrt": max(rel_l2(g, w) for g, w in zip(got, ort_outs)), "finite": all(bool(np.isfinite(g).all()) for g in got),
             "maxAbs": max(float(np.abs(g).max()) for g in got)}
        if reference is not None:
            with torch.no_grad():
                want = reference(*[x.cuda() for x in xs])
            want = [want] if torch.is_tensor(want) else list(want)
            e["relL2VsTorch"] = max(rel_l2(g, w.float().cpu().numpy()) for g, w in zip(got, want))
            e["ortVsTorch"] = max(rel_l2(o, w.float().cpu().numpy()) for o, w in zip(ort_outs, want))
        e["ok"] = e["finite"] and e["relL2VsOrt"] <= TOLERANCE and e.get("relL2VsTorch", 0) <= TOLERANCE
        entry["batches"][batch] = e
    # input dims besides the batch (a text model's seq): also below their max, with padding in the mask (the runtime
    # takes seq from the arrays' shapes; a stride at the max seq anywhere would show here, never at the max)
    input_dims = getattr(ait, "input_dims", [])
    if input_dims:
        top = min(d["max"] for d in input_dims)
        seq = 77 if top > 77 else max(min(d["min"] for d in input_dims), top // 2 + 1)
        entry["seqChecks"] = {}
        for batch in CHECK_BATCHES:
            xs = make_inputs(specs, batch, seed=batch + 1, input_dims=input_dims, seq=seq)
            ort_outs = session.run(None, dict(zip(ort_names, [x.numpy() for x in xs])))
            got = [o.float().cpu().numpy() for o in ait.run([x.cuda().half() if x.is_floating_point() else x.cuda() for x in xs])]
            torch.cuda.synchronize()
            shapes_ok = all(list(g.shape) == list(o.shape) for g, o in zip(got, ort_outs))
            e = {"seq": seq, "shapesMatch": shapes_ok,
                 "relL2VsOrt": max(rel_l2(g, w) for g, w in zip(got, ort_outs)) if shapes_ok else None,
                 "finite": all(bool(np.isfinite(g).all()) for g in got)}
            e["ok"] = shapes_ok and e["finite"] and e["relL2VsOrt"] <= TOLERANCE
            entry["seqChecks"][f"batch {batch}, seq {seq}"] = e
            if not e["ok"]:
                entry["errors"].append(f"at batch {batch}, seq {seq} (below the max {top}): {json.dumps(e)}")
    os.makedirs(os.path.join(out, "profiles"), exist_ok=True)
    xs = make_inputs(specs, CHECK_BATCHES[-1], seed=0)
    ait.profile([x.cuda().half() if x.is_floating_point() else x.cuda() for x in xs], iterations=5,
                path=os.path.join(out, "profiles", f"{build_name}-b{CHECK_BATCHES[-1]}.json"))
    max_batch = ait.max_batch
    del ait
    timing_batches = [b for b in TIMING_BATCHES if b <= max_batch]
    timing, err = ait_bench_ms(build, timing_batches)
    if err:
        entry["errors"].append(f"ait_bench: {err}")
    for batch in timing_batches:
        entry["batches"].setdefault(batch, {})["aitMs"] = timing.get(batch)
    if reference is None:
        return entry
    torch.backends.cudnn.benchmark = True
    del reference
    reference = pristine.cuda()
    eager = reference.half()
    if any(len(s["max_shape"]) == 4 for s in specs):
        eager = eager.to(memory_format=torch.channels_last)
    for batch in timing_batches:
        xs = torch_inputs(make_inputs(specs, batch, seed=batch))
        entry["batches"][batch]["eagerMs"] = median_ms(lambda: eager(*xs), iterations_at(batch) * 3 // 5)
    # PyTorch eager's time per module at the profile's batch (module_times.py), beside our per-op profile: on the
    # developer machine `ait modules BUILD --profile OUT/profiles/B-b8.json --torch-times OUT/module-times/B-b8.json`
    try:
        module_times = load_module(os.path.join(os.path.dirname(os.path.abspath(__file__)), "module_times.py"))
        xs = torch_inputs(make_inputs(specs, CHECK_BATCHES[-1], seed=0))
        times = module_times.time_modules(eager, xs, runs=10, warmup=3)
        os.makedirs(os.path.join(out, "module-times"), exist_ok=True)
        with open(os.path.join(out, "module-times", f"{build_name}-b{CHECK_BATCHES[-1]}.json"), "w") as f:
            json.dump(module_times.document(times, xs, 10, 3, any(x.dim() == 4 for x in xs)), f, indent=1)
    except Exception as ex:  # reported, the other timings stand
        entry["errors"].append(f"module times: {type(ex).__name__}: {str(ex)[:300]}")
    for mode in COMPILE_MODES:
        torch._dynamo.reset()
        compiled = torch.compile(eager, mode=mode)
        for batch in [b for b in timing_batches if b in COMPILE_BATCHES]:
            xs = torch_inputs(make_inputs(specs, batch, seed=batch))
            try:
                t0 = time.time()
                with torch.no_grad():
                    compiled(*xs); compiled(*xs)
                entry["batches"][batch].setdefault("compileS", {})[mode] = round(time.time() - t0, 1)
                entry["batches"][batch].setdefault("torchCompileMs", {})[mode] = median_ms(lambda: compiled(*xs), iterations_at(batch) * 3 // 5)
            except Exception as ex:  # reported, the other timings stand
                entry["errors"].append(f"torch.compile {mode} batch {batch}: {type(ex).__name__}: {str(ex)[:300]}")
    del eager, reference
    torch.cuda.empty_cache()
    return entry


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-dir", required=True)
    ap.add_argument("--exports", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--builds", help="comma-separated build folder names to check, in this order (default: every one)")
    args = ap.parse_args()
    only = [b for b in args.builds.split(",") if b] if args.builds else None
    import onnxruntime as ort
    rows, report = [], {"gpu": torch.cuda.get_device_name(), "tolerance": TOLERANCE, "torchCompileModes": COMPILE_MODES, "models": []}
    for build_name in only or sorted(os.listdir(args.check_dir)):  # --builds: in its order
        build = os.path.join(args.check_dir, build_name)
        if not os.path.isdir(build):
            if only:
                print(f"{build_name}: no build folder", flush=True)
            continue
        t0 = time.time()
        try:
            entry = check_build(build_name, build, args.exports, args.out, ort)
        except Exception as ex:  # reported per model; the other models still run
            import traceback
            traceback.print_exc()
            name, arch = build_name.rsplit("_", 1)
            entry = {"build": build_name, "model": name, "arch": arch, "batches": {}, "errors": [f"{type(ex).__name__}: {ex}"]}
        entry["seconds"] = round(time.time() - t0, 1)
        report["models"].append(entry)
        mode = COMPILE_MODES[0] if COMPILE_MODES else None
        for batch, e in sorted(entry["batches"].items()):
            checked = "relL2VsOrt" in e
            tc = (e.get("torchCompileMs") or {}).get(mode)
            fmt = lambda v, f="{:.3f}": f.format(v) if v is not None else "-"
            rows.append([build_name, str(batch), fmt(e.get("relL2VsOrt"), "{:.1e}"), fmt(e.get("relL2VsTorch"), "{:.1e}"),
                         ("ok" if e.get("ok") else "FAIL") if checked else "-", fmt(e.get("aitMs")), fmt(e.get("eagerMs")), fmt(tc),
                         fmt(e["eagerMs"] / e["aitMs"] if e.get("aitMs") and e.get("eagerMs") else None, "{:.2f}x"),
                         fmt(tc / e["aitMs"] if e.get("aitMs") and tc else None, "{:.2f}x")])
        if not any("relL2VsOrt" in e for e in entry["batches"].values()):
            rows.append([build_name, "-", "-", "-", "FAIL", "-", "-", "-", "-", "-"])
        with open(os.path.join(args.out, "check-models.json"), "w") as f:  # after each model: a run cut short keeps what it measured
            json.dump(report, f, indent=2)
        print("ROW " + json.dumps([r for r in rows if r[0] == build_name]), flush=True)
    ok = all(any("relL2VsOrt" in e for e in m["batches"].values())
             and all(e.get("ok") for e in m["batches"].values() if "relL2VsOrt" in e) and not m["errors"] for m in report["models"])
    for m in report["models"]:
        for err in m["errors"]:
            print(f"{m['build']}: {err[:500]}")
    header = ["build", "batch", "vs ort", "vs torch", "check", "ait ms", "eager ms", f"compile ms", "vs eager", "vs compile"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    print()
    print(f"GPU: {report['gpu']}   relative L2 tolerance {TOLERANCE} (batch {', '.join(map(str, CHECK_BATCHES))}, worst output)   "
          f"ait: CUDA graphs; eager: PyTorch fp16; compile: torch.compile {COMPILE_MODES[0] if COMPILE_MODES else '-'}   "
          f"overall: {'ok' if ok else 'FAIL'}")
    for r in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
