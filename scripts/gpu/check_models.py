"""GPU host: numerical check and timing of the compiled models (called by check-models.sh; see its header).

For each build directory NAME_ARCH under --check-dir: load lib<NAME>.so through its ait_model.py, bind the weights of
--exports/NAME/model.onnx(+.data) by ONNX initializer name, run at batch 1 and 8 on fp16 inputs, and compare the
logits with PyTorch fp32 (timm model re-created with torch.manual_seed(0), like export_models.py) and onnxruntime
CPU. Time ait_bench (CUDA graphs on) against PyTorch eager channels-last fp16 at batch 1, 8, 64 and 256 (those up to
the build's max batch). Writes OUT/check-models.json and per-op profiles at batch 8 (OUT/profiles); prints a compact table last.
"""
import argparse, importlib.util, json, os, subprocess, sys, time

import numpy as np
import torch

TOLERANCE = 2e-2
CHECK_BATCHES = [1, 8]
TIMING_BATCHES = [1, 8, 64, 256]
RESOLUTION = {"resnet50": 224, "vit_base_patch16_224": 224, "vit_large_patch16_384": 384}


def timm_name(model):
    return model[: -len("_legacy")] if model.endswith("_legacy") else model


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


def iterations_at(batch):
    """Fewer timed iterations at large batches (each takes milliseconds): keeps the whole check within minutes."""
    return 50 if batch <= 8 else 20


def torch_eager_ms(model, x, iterations=30, warmup=5):
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        torch.cuda.synchronize()
        times = []
        for _ in range(iterations):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record(); model(x); e.record(); e.synchronize()
            times.append(s.elapsed_time(e))
    return float(np.median(times))


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-dir", required=True)
    ap.add_argument("--exports", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import onnxruntime as ort
    import timm
    rows, report = [], {"gpu": torch.cuda.get_device_name(), "tolerance": TOLERANCE, "models": []}
    for build_name in sorted(os.listdir(args.check_dir)):
        build = os.path.join(args.check_dir, build_name)
        if not os.path.isdir(build):
            continue
        name, arch = build_name.rsplit("_", 1)
        entry = {"build": build_name, "model": name, "arch": arch, "batches": {}, "errors": []}
        report["models"].append(entry)
        t0 = time.time()
        try:
            lib = [f for f in os.listdir(build) if f.startswith("lib") and f.endswith(".so")]
            if not lib:
                raise RuntimeError(f"no library in {build} (build failed: see logs/build_{build_name}.log)")
            onnx_path = os.path.join(args.exports, name, "model.onnx")
            weights = onnx_weights(onnx_path)
            ait = load_module(os.path.join(build, "ait_model.py")).AITModel(os.path.join(build, lib[0]))
            bound = ait.bind_weights(weights)
            entry["weightsBound"] = len(bound)
            if ait.num_unbound_weights:
                raise RuntimeError(f"{ait.num_unbound_weights} weights still unbound after binding {len(bound)} ONNX initializers")
            torch.manual_seed(0)
            reference = timm.create_model(timm_name(name), pretrained=False).eval().cuda()
            session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
            hw = RESOLUTION.get(timm_name(name), 224)
            for batch in CHECK_BATCHES:
                x = torch.randn(batch, 3, hw, hw, generator=torch.Generator().manual_seed(batch))
                with torch.no_grad():
                    want = reference(x.cuda()).float().cpu().numpy()
                ort_logits = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
                got = ait.run([x.cuda().half()])[0]
                torch.cuda.synchronize()
                got = got.float().cpu().numpy()
                e = {"relL2VsTorch": rel_l2(got, want), "relL2VsOrt": rel_l2(got, ort_logits), "ortVsTorch": rel_l2(ort_logits, want),
                     "finite": bool(np.isfinite(got).all())}
                e["ok"] = e["finite"] and e["relL2VsTorch"] <= TOLERANCE and e["relL2VsOrt"] <= TOLERANCE
                entry["batches"][batch] = e
            # per-op profile at the largest checked batch (op by op, events around each op): OUT/profiles/BUILD-bN.json
            os.makedirs(os.path.join(args.out, "profiles"), exist_ok=True)
            with open(os.path.join(args.out, "profiles", f"{build_name}-b{batch}.json"), "w") as f:
                json.dump(ait.profile([x.cuda().half()], iterations=5), f)
            max_batch = ait.max_batch
            del ait
            timing_batches = [b for b in TIMING_BATCHES if b <= max_batch]
            timing, err = ait_bench_ms(build, timing_batches)
            if err:
                entry["errors"].append(f"ait_bench: {err}")
            eager = reference.half().to(memory_format=torch.channels_last)
            for batch in timing_batches:
                xe = torch.randn(batch, 3, hw, hw, device="cuda", dtype=torch.half).to(memory_format=torch.channels_last)
                e = entry["batches"].setdefault(batch, {})
                e["aitMs"] = timing.get(batch)
                e["eagerMs"] = torch_eager_ms(eager, xe, iterations=iterations_at(batch) * 3 // 5)
            del eager, reference
            torch.cuda.empty_cache()
        except Exception as ex:  # reported per model; the other models still run
            import traceback
            entry["errors"].append(f"{type(ex).__name__}: {ex}")
            traceback.print_exc()
        entry["seconds"] = round(time.time() - t0, 1)
        for batch, e in sorted(entry["batches"].items()):
            checked = "relL2VsTorch" in e
            speedup = e["eagerMs"] / e["aitMs"] if e.get("aitMs") and e.get("eagerMs") else None
            rows.append([build_name, str(batch), f"{e['relL2VsTorch']:.1e}" if checked else "-", f"{e['relL2VsOrt']:.1e}" if checked else "-",
                         ("ok" if e.get("ok") else "FAIL") if checked else "-", f"{e['aitMs']:.3f}" if e.get("aitMs") else "-",
                         f"{e['eagerMs']:.3f}" if e.get("eagerMs") else "-", f"{speedup:.2f}x" if speedup else "-",
                         f"{batch * 1000 / e['aitMs']:.0f}" if e.get("aitMs") else "-"])
        if not any("relL2VsTorch" in e for e in entry["batches"].values()):
            rows.append([build_name, "-", "-", "-", "FAIL", "-", "-", "-", "-"])
    with open(os.path.join(args.out, "check-models.json"), "w") as f:
        json.dump(report, f, indent=2)
    ok = all(any("relL2VsTorch" in e for e in m["batches"].values())
             and all(e.get("ok") for e in m["batches"].values() if "relL2VsTorch" in e) and not m["errors"] for m in report["models"])
    for m in report["models"]:
        for err in m["errors"]:
            print(f"{m['build']}: {err[:500]}")
    header = ["build", "batch", "vs torch", "vs ort", "check", "ait ms", "eager ms", "speedup", "ait img/s"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    print()
    print(f"GPU: {report['gpu']}   relative L2 tolerance {TOLERANCE} (batch {', '.join(map(str, CHECK_BATCHES))})   "
          f"ait: CUDA graphs; eager: PyTorch fp16 channels-last   overall: {'ok' if ok else 'FAIL'}")
    for r in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
