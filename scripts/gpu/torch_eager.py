"""GPU host: PyTorch eager latency at batch 1 of models named as in shared/tools/export_models.py (timm names, vitmatte,
torchvision detection models), fp32 and fp16, for comparison in the same run as ait_bench.
usage: python3 torch_eager.py OUT.json NAME,...
Median of CUDA-event-timed runs after warm-up; random weights (torch.manual_seed(0)). fp16 is the model in half with
channels-last 4-D inputs; a mode that fails is recorded with its error, never fatal."""
import json
import sys

import numpy as np
import torch

torch.backends.cudnn.benchmark = True
DETECTION = ("retinanet_resnet50_fpn", "maskrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn")


def build(name):
    """(module, example inputs) at batch 1, constructed as export_models.py does."""
    torch.manual_seed(0)
    if name == "vitmatte":
        from transformers import VitDetConfig, VitMatteConfig, VitMatteForImageMatting

        backbone = VitDetConfig(num_channels=4, hidden_size=384, num_attention_heads=6, out_features=["stage12"])
        model = VitMatteForImageMatting(VitMatteConfig(backbone_config=backbone, hidden_size=384, fusion_hidden_sizes=[256, 128, 64, 32]))

        class Alphas(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m(pixel_values=x).alphas

        return Alphas(model), (torch.randn(1, 4, 512, 512),)
    if name in DETECTION:
        import torchvision

        ctor = getattr(torchvision.models.detection, name)
        return ctor(weights=None, weights_backbone=None, min_size=448, max_size=608), ([torch.rand(3, 448, 608)],)
    import timm

    model = timm.create_model(name, pretrained=False)
    return model, (torch.randn(1, *model.pretrained_cfg["input_size"]),)


def to(x, dtype):
    if isinstance(x, (list, tuple)):
        return type(x)(to(v, dtype) for v in x)
    x = x.cuda().to(dtype)
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def median_ms(fn, iterations=50):
    with torch.no_grad():
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(iterations):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    return float(np.median(times))


def main():
    report = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "models": {}}
    for name in sys.argv[2].split(","):
        row = report["models"].setdefault(name, {})
        for mode, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
            try:
                model, inputs = build(name)
                model = model.eval().cuda().to(dtype)
                if dtype == torch.float16:
                    model = model.to(memory_format=torch.channels_last)
                args = to(inputs, dtype)
                row[f"eager{mode.upper()}Ms"] = median_ms(lambda: model(*args))
            except Exception as e:  # noqa: BLE001 - a failing mode is a result
                row[f"eager{mode.upper()}Error"] = str(e)[:300]
        print(name, json.dumps(row), flush=True)
    json.dump(report, open(sys.argv[1], "w"), indent=1)


if __name__ == "__main__":  # torch_throughput.py imports build() and to()
    main()
