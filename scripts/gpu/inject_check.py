"""GPU host: inject a compiled module (ait compile --module) into a torchvision detection model, compare it with the
original module and time both.

    python3 scripts/gpu/inject_check.py MODEL MODULE BUILD_DIR [--runs N] [--json FILE]

MODEL: maskrcnn_resnet50_fpn, fasterrcnn_resnet50_fpn or retinanet_resnet50_fpn, built as shared/tools/export_models.py
does (weights=None, weights_backbone=None, min_size=448, max_size=608; torch.manual_seed(0)). MODULE: its module path
(backbone, rpn.head, roi_heads.box_head, ...). BUILD_DIR: the module's build, made (or the `ait compile --module`
output directory holding it). On the developer machine:
    ait compile ../shared/models/maskrcnn_resnet50_fpn.onnx --target cuda:sm90 --module backbone,rpn.head -o build/inject
then here: make -C build/inject/backbone -j CUTLASS_DIR=... (as check-models.sh builds).

Weights: the build comes from a graph-only ONNX, so the script exports this very model instance to ONNX (TorchScript,
opset 17, as export_models.py: the same initializer names) and binds the module's weights from the state dict and from
that export (the exporter folds BatchNorm into convs under onnx::Conv_… names, which no state dict has).

Checks, on one seeded 3x448x608 image:
  - module outputs: the AITModule on the original module's recorded arguments against the original module in fp32;
    in fp16 (arguments and the original module in half) both against the fp32 original (max abs, relative L2); the
    fp32 check fails the run above --tolerance (default 2e-2 relative L2);
  - detections of the whole model with the module injected against the original model (fp32): boxes kept, largest box
    and score difference over the common top boxes (random weights: few confident boxes, NMS may reorder near-ties);
  - times (CUDA events, median of --runs after warm-up): the original module fp32 and fp16, the AITModule on fp32
    arguments (fp16 conversions included) and on fp16 ones, and the whole model with and without the injection.
"""
import argparse
import copy
import importlib.util
import json
import os
import sys
import tempfile

import torch

MODELS = ("maskrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn", "retinanet_resnet50_fpn")


def load_inject(build_dir):
    spec = importlib.util.spec_from_file_location("ait_inject", os.path.join(build_dir, "ait_inject.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_model(name):
    import torchvision
    torch.manual_seed(0)
    return getattr(torchvision.models.detection, name)(weights=None, weights_backbone=None, min_size=448, max_size=608).eval()


def export_weights(model, image, ait_inject):
    """The model's ONNX initializers, exported as export_models.py does."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        with torch.no_grad():
            torch.onnx.export(model, ([image],), path, dynamo=False, opset_version=17, input_names=["image"])
        return ait_inject.onnx_weights(path)


def to_half(x):
    if isinstance(x, torch.Tensor):
        return x.half() if x.is_floating_point() else x
    if isinstance(x, dict):
        return type(x)((k, to_half(v)) for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return type(x)(to_half(v) for v in x)
    return x


def errors(got, want):
    got, want = got.float(), want.float()
    diff = (got - want).abs()
    return dict(shape=list(want.shape), maxAbs=diff.max().item() if diff.numel() else 0.0,
                relativeL2=((got - want).norm() / want.norm().clamp_min(1e-12)).item() if want.numel() else 0.0)


def compare(ait_inject, got, want):
    """Per tensor errors of two results of the same structure (flattened in order)."""
    a, b = ait_inject.flatten(got), ait_inject.flatten(want)
    if len(a) != len(b):
        raise SystemExit("the compiled module returned %d tensors, the original %d" % (len(a), len(b)))
    return [errors(x, y) for x, y in zip(a, b)]


def timed(fn, runs):
    """Median milliseconds of fn() over `runs` (CUDA events), after 3 warm-up calls."""
    with torch.no_grad():
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(runs):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def detections_diff(got, want, top=20):
    """Boxes kept and the largest box / score difference over the common top boxes (both sorted by score)."""
    out = {}
    for key in ("boxes", "scores", "labels"):
        if key not in want:
            return out
    n = min(len(got["scores"]), len(want["scores"]), top)
    out.update(boxes=len(got["scores"]), boxesOriginal=len(want["scores"]), compared=n)
    if n:
        out["maxBoxDiff"] = (got["boxes"][:n] - want["boxes"][:n]).abs().max().item()
        out["maxScoreDiff"] = (got["scores"][:n] - want["scores"][:n]).abs().max().item()
        out["labelsEqual"] = float((got["labels"][:n] == want["labels"][:n]).float().mean().item())
    return out


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", choices=MODELS)
    p.add_argument("module")
    p.add_argument("build_dir")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--tolerance", type=float, default=2e-2)
    p.add_argument("--json")
    args = p.parse_args(argv)
    build_dir = os.path.abspath(args.build_dir)
    if os.path.exists(os.path.join(build_dir, "modules.json")):
        build_dir = os.path.join(build_dir, args.module)
    ait_inject = load_inject(build_dir)
    info = ait_inject.read_module_json(build_dir)
    if info["module"] != args.module:
        print("note: %s is the build of module '%s', injected at '%s'" % (build_dir, info["module"], args.module))

    model = make_model(args.model)
    torch.manual_seed(1)
    image = torch.rand(3, 448, 608)
    weights = export_weights(model, image, ait_inject)
    missing = [w for w in info["weights"] if w not in weights and w not in model.state_dict()]
    if missing:
        raise SystemExit("%d weights of the build are neither in the export nor in the state dict (another torch version?): %s"
                         % (len(missing), ", ".join(missing[:8])))
    model = model.cuda()
    image = image.cuda()
    original = model.get_submodule(args.module)

    recorded = {}
    def record(_module, inputs, result):
        recorded.setdefault("call", (inputs, result))  # returns None: a hook's value would replace the output

    hook = original.register_forward_hook(record)
    with torch.no_grad():
        detections = model([image])[0]
    hook.remove()
    module_args, module_result = recorded["call"]

    replaced = ait_inject.inject(model, {args.module: build_dir}, weights=weights, example=([image],))
    compiled = model.get_submodule(args.module)
    report = dict(model=args.model, module=args.module, build=build_dir, gpu=torch.cuda.get_device_name())
    with torch.no_grad():
        report["fp32"] = compare(ait_inject, compiled(*module_args), module_result)
        args16 = to_half(module_args)
        original16 = copy.deepcopy(original).half()
        report["fp16"] = compare(ait_inject, compiled(*args16), module_result)
        report["fp16TorchVsFp32"] = compare(ait_inject, original16(*args16), module_result)
        report["detections"] = detections_diff(model([image])[0], detections)
    report["ms"] = dict(
        torchFp32=timed(lambda: original(*module_args), args.runs),
        torchFp16=timed(lambda: original16(*args16), args.runs),
        aitFp32Args=timed(lambda: compiled(*module_args), args.runs),
        aitFp16Args=timed(lambda: compiled(*args16), args.runs),
        modelInjected=timed(lambda: model([image]), max(5, args.runs // 5)),
    )
    ait_inject.restore(model, replaced)
    report["ms"]["modelOriginal"] = timed(lambda: model([image]), max(5, args.runs // 5))

    worst = max(e["relativeL2"] for e in report["fp32"])
    report["ok"] = worst <= args.tolerance
    print(json.dumps(report, indent=2))
    ms = report["ms"]
    print("%s %s on %s: fp32 rel L2 %.2e (fp16 %.2e, torch fp16 %.2e); module %.3f ms torch fp32, %.3f torch fp16, "
          "%.3f AIT (fp32 args), %.3f AIT (fp16 args); model %.2f ms -> %.2f ms injected; detections %s"
          % (args.model, args.module, report["gpu"], worst, max(e["relativeL2"] for e in report["fp16"]),
             max(e["relativeL2"] for e in report["fp16TorchVsFp32"]), ms["torchFp32"], ms["torchFp16"], ms["aitFp32Args"],
             ms["aitFp16Args"], ms["modelOriginal"], ms["modelInjected"], report["detections"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
