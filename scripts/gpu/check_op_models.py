"""GPU host: builds are made by check-op-models.sh; this runs each op-model build (scripts/gpu/prepare-op-models.ts)
through its ait_model.py with its own weights.safetensors and compares every output with onnxruntime (CPU, fp32) on
the same inputs (fp16-rounded, seeded) at each listed batch size. Relative L2 tolerance 2e-2 (fp16 storage).
Writes OUT/check-op-models.json and prints a table; exits 1 if any build fails."""
import argparse, importlib.util, json, os, sys

import numpy as np
import onnxruntime as ort

TOLERANCE = 2e-2


def rel_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    manifest = json.load(open(os.path.join(args.dir, "manifest.json")))
    rows, results, ok_all = [], [], True
    for entry in manifest["builds"]:
        build = os.path.join(args.dir, entry["build"])
        result = {**entry, "batches": {}, "error": None}
        results.append(result)
        try:
            libs = [f for f in os.listdir(build) if f.startswith("lib") and f.endswith(".so")]
            if not libs:
                raise RuntimeError(f"no library in {build} (build failed)")
            spec = importlib.util.spec_from_file_location(f"ait_{entry['build']}", os.path.join(build, "ait_model.py"))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            ait = module.AITModel(os.path.join(build, libs[0]))
            if ait.num_unbound_weights:
                raise RuntimeError(f"{ait.num_unbound_weights} weights unbound")
            session = ort.InferenceSession(os.path.join(args.dir, entry["onnx"]), providers=["CPUExecutionProvider"])
            for batch in entry["batches"]:
                rng = np.random.default_rng(batch)
                feeds = {}
                for i in session.get_inputs():
                    shape = [batch if not isinstance(d, int) else d for d in i.shape]
                    feeds[i.name] = rng.standard_normal(shape).astype(np.float16).astype(np.float32)
                want = session.run(None, feeds)
                got = ait.run([feeds[i.name] for i in session.get_inputs()])
                errors = [rel_l2(g, w) for g, w in zip(got, want)]
                shapes_ok = all(list(np.shape(g)) == list(np.shape(w)) for g, w in zip(got, want))
                finite = all(bool(np.isfinite(g).all()) for g in got)
                ok = shapes_ok and finite and max(errors) <= TOLERANCE
                result["batches"][batch] = {"relL2": errors, "ok": ok}
                ok_all &= ok
                rows.append([entry["build"], str(batch), " ".join(f"{e:.1e}" for e in errors), "ok" if ok else "FAIL"])
        except Exception as ex:  # reported per build; the others still run
            result["error"] = f"{type(ex).__name__}: {ex}"
            ok_all = False
            rows.append([entry["build"], "-", result["error"][:80], "FAIL"])
    json.dump({"tolerance": TOLERANCE, "results": results}, open(os.path.join(args.out, "check-op-models.json"), "w"), indent=2)
    header = ["build", "batch", "rel. L2 vs onnxruntime (per output)", "check"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    print(f"op models: tolerance {TOLERANCE}; overall {'ok' if ok_all else 'FAIL'}")
    for r in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
