"""GPU host: model families beyond ../shared/models, for breadth checks of the compiler on models it was never tuned on.

One table (FAMILIES) says how each model is built (timm, torchvision or transformers, random weights after
torch.manual_seed(0)), what its inputs are and which exporter writes it; check_models.py uses the same table to build
the PyTorch reference, so the export and the reference always agree.

  python3 scripts/gpu/families.py list
  python3 scripts/gpu/families.py export OUTDIR NAME[,NAME...]   # OUTDIR/NAME.onnx graph only (weights stripped);
                                                                 # KEEP_WEIGHTS=1: also OUTDIR/NAME/model.onnx(+.data)
Exports mirror ../shared/tools/export_models.py: the dynamo exporter with a dynamic batch (1..256) where it works,
else the TorchScript exporter (opset 17, dynamic batch axis); one JSON line per model (ops histogram or the failure).
"""
import json, os, shutil, sys, traceback

import torch


def _timm(name, **kw):
    import timm
    return timm.create_model(name, pretrained=False, **kw)


def _tv(name, sub=None, **kw):
    import torchvision
    mod = getattr(torchvision.models, sub) if sub else torchvision.models
    return getattr(mod, name)(weights=None, **kw)


class _Out(torch.nn.Module):
    """Keeps one tensor of a model whose forward returns a dict or a ModelOutput."""

    def __init__(self, m, key, **kwargs):
        super().__init__()
        self.m, self.key, self.kwargs = m, key, kwargs

    def forward(self, *xs):
        out = self.m(*xs, **self.kwargs)
        return out[self.key]


def _hf(config_cls, model_cls, key, **config):
    import transformers
    cfg = getattr(transformers, config_cls)(**config)
    return _Out(getattr(transformers, model_cls)(cfg), key)


class _HfText(torch.nn.Module):
    """A transformers encoder/decoder taking (input_ids, attention_mask)."""

    def __init__(self, m, key):
        super().__init__()
        self.m, self.key = m, key

    def forward(self, ids, mask):
        return self.m(input_ids=ids, attention_mask=mask)[self.key]


def _hf_text(config_cls, model_cls, key, **config):
    import transformers
    return _HfText(getattr(transformers, model_cls)(getattr(transformers, config_cls)(**config)), key)


def _calibrated(model, hw, batches=4, batch=8):
    """BatchNorm statistics from a few seeded random batches, as training would leave them. timm's random init with
    the default statistics (mean 0, var 1) lets Inception-v3's activations grow to ~1e12, past fp16's range: with
    calibrated statistics each BatchNorm normalizes what reaches it, as in a trained network."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # a cumulative average over the calibration batches
    g = torch.Generator().manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(batch, 3, hw, hw, generator=g))
    return model.eval()


def image(hw):
    return {"inputs": [("input", [2, 3, hw, hw], "float")], "outputs": ["logits"]}


TEXT = {"inputs": [("input_ids", [2, 128], "ids"), ("attention_mask", [2, 128], "mask")], "outputs": ["hidden"], "seq": True}


def video(frames, hw):
    """A clip [B, 3, T, H, W] (torchvision's video classifiers)."""
    return {"inputs": [("input", [2, 3, frames, hw, hw], "float")], "outputs": ["logits"]}


# name: (constructor, input spec, exporter). 'dynamo' falls back to 'torchscript' when the dynamo export fails.
FAMILIES = {
    # CNNs: grouped/bottleneck, squeeze-excitation, hard-swish, ghost modules, channel shuffle, fire modules, ...
    "resnext50_32x4d": (lambda: _timm("resnext50_32x4d"), image(224), "dynamo"),
    "regnety_016": (lambda: _timm("regnety_016"), image(224), "dynamo"),
    "mobilenetv3_large_100": (lambda: _timm("mobilenetv3_large_100"), image(224), "dynamo"),
    "ghostnet_100": (lambda: _timm("ghostnet_100"), image(224), "dynamo"),
    "dla34": (lambda: _timm("dla34"), image(224), "dynamo"),
    "cspdarknet53": (lambda: _timm("cspdarknet53"), image(256), "dynamo"),
    "ecaresnet50d": (lambda: _timm("ecaresnet50d"), image(224), "dynamo"),
    "repvgg_a2": (lambda: _timm("repvgg_a2"), image(224), "dynamo"),
    "shufflenet_v2_x1_0": (lambda: _tv("shufflenet_v2_x1_0"), image(224), "dynamo"),
    "squeezenet1_1": (lambda: _tv("squeezenet1_1"), image(224), "dynamo"),
    "googlenet": (lambda: _tv("googlenet", aux_logits=False, init_weights=True), image(224), "dynamo"),
    "vgg16_bn": (lambda: _tv("vgg16_bn"), image(224), "dynamo"),
    # token mixers other than attention; hybrids
    "poolformer_s12": (lambda: _timm("poolformer_s12"), image(224), "dynamo"),
    "mixer_b16_224": (lambda: _timm("mixer_b16_224"), image(224), "dynamo"),
    "convmixer_768_32": (lambda: _timm("convmixer_768_32"), image(224), "dynamo"),
    "mobilevit_s": (lambda: _timm("mobilevit_s"), image(256), "dynamo"),
    "levit_128s": (lambda: _timm("levit_128s"), image(224), "dynamo"),
    "edgenext_small": (lambda: _timm("edgenext_small"), image(256), "dynamo"),
    "efficientformer_l1": (lambda: _timm("efficientformer_l1"), image(224), "dynamo"),
    # vision transformers other than ViT
    "beit_base_patch16_224": (lambda: _timm("beit_base_patch16_224"), image(224), "dynamo"),
    "deit_small_patch16_224": (lambda: _timm("deit_small_patch16_224"), image(224), "dynamo"),
    "pvt_v2_b0": (lambda: _timm("pvt_v2_b0"), image(224), "dynamo"),
    "cait_xxs24_224": (lambda: _timm("cait_xxs24_224"), image(224), "dynamo"),
    # video: 3-D convolution and pooling (NDHWC conv3d / pool3d), r2plus1d's (2+1)-D factorized convs
    "r3d_18": (lambda: _tv("r3d_18", "video"), video(16, 112), "dynamo"),
    "r2plus1d_18": (lambda: _tv("r2plus1d_18", "video"), video(16, 112), "dynamo"),
    # segmentation
    "lraspp_mobilenet_v3_large": (lambda: _Out(_tv("lraspp_mobilenet_v3_large", "segmentation", weights_backbone=None), "out"),
                                  {"inputs": [("input", [2, 3, 512, 512], "float")], "outputs": ["out"]}, "dynamo"),
    "segformer_b0": (lambda: _hf("SegformerConfig", "SegformerForSemanticSegmentation", "logits"),
                     {"inputs": [("input", [2, 3, 512, 512], "float")], "outputs": ["logits"]}, "torchscript"),
    # the zoo's Inception-v3 with calibrated BatchNorm statistics (its random-init activations overflow fp16); the
    # graph is the same as ../shared/models/zoo/inception_v3.onnx, only the statistics' values differ
    "inception_v3": (lambda: _calibrated(_timm("inception_v3"), 299), image(299), "dynamo"),
    # a third set, compiled by nobody before (exported graph-only to find what the compiler lacks): split attention,
    # selective kernels, mixed kernel sizes, reparameterized blocks, global response norm, cross-covariance and
    # linear attention, rotary embeddings, MLP-only mixers, anti-aliased / space-to-depth stems
    "resnest14d": (lambda: _timm("resnest14d"), image(224), "dynamo"),
    "skresnet18": (lambda: _timm("skresnet18"), image(224), "dynamo"),
    "mixnet_s": (lambda: _timm("mixnet_s"), image(224), "dynamo"),
    "rexnet_100": (lambda: _timm("rexnet_100"), image(224), "dynamo"),
    "mobileone_s0": (lambda: _timm("mobileone_s0"), image(224), "dynamo"),
    "fastvit_t8": (lambda: _timm("fastvit_t8"), image(256), "dynamo"),
    "repvit_m1": (lambda: _timm("repvit_m1"), image(224), "dynamo"),
    "convnextv2_atto": (lambda: _timm("convnextv2_atto"), image(224), "dynamo"),
    "inception_next_tiny": (lambda: _timm("inception_next_tiny"), image(224), "dynamo"),
    "xcit_tiny_12_p16_224": (lambda: _timm("xcit_tiny_12_p16_224"), image(224), "dynamo"),
    "efficientvit_b0": (lambda: _timm("efficientvit_b0"), image(224), "dynamo"),
    "eva02_tiny_patch14_224": (lambda: _timm("eva02_tiny_patch14_224.mim_in22k"), image(224), "dynamo"),
    "coat_lite_tiny": (lambda: _timm("coat_lite_tiny"), image(224), "dynamo"),
    "resmlp_12_224": (lambda: _timm("resmlp_12_224"), image(224), "dynamo"),
    "gmlp_s16_224": (lambda: _timm("gmlp_s16_224"), image(224), "dynamo"),
    "tresnet_m": (lambda: _timm("tresnet_m"), image(224), "dynamo"),
    "hrnet_w18_small": (lambda: _timm("hrnet_w18_small"), image(224), "dynamo"),
    "dpn68": (lambda: _timm("dpn68"), image(224), "dynamo"),
    "mnasnet1_0": (lambda: _tv("mnasnet1_0"), image(224), "dynamo"),
    "efficientnet_v2_s": (lambda: _tv("efficientnet_v2_s"), image(224), "dynamo"),
    "swin_v2_t": (lambda: _tv("swin_v2_t"), image(256), "dynamo"),
    "maxvit_t": (lambda: _tv("maxvit_t"), image(224), "dynamo"),
    "fcn_resnet50": (lambda: _Out(_tv("fcn_resnet50", "segmentation", weights_backbone=None, aux_loss=False), "out"),
                     {"inputs": [("input", [2, 3, 512, 512], "float")], "outputs": ["out"]}, "dynamo"),
    "roberta_base": (lambda: _hf_text("RobertaConfig", "RobertaModel", "last_hidden_state"), TEXT, "torchscript"),
    "albert_base": (lambda: _hf_text("AlbertConfig", "AlbertModel", "last_hidden_state"), TEXT, "torchscript"),
    "t5_small_encoder": (lambda: _HfText(__import__("transformers").T5EncoderModel(__import__("transformers").T5Config()),
                                         "last_hidden_state"), TEXT, "torchscript"),
    "clip_vision": (lambda: _hf("CLIPVisionConfig", "CLIPVisionModel", "pooler_output"), image(224), "dynamo"),
    # a fourth set, exported graph-only to find what the compiler lacks: weight standardization, halo / bottleneck /
    # lambda attention, outlookers (Unfold/Fold), cross-scale attention, gated positional attention, LSTM mixers,
    # focal modulation, dual attention, hierarchical ViTs, reparameterized and one-shot NAS CNNs, RMSNorm + rotary +
    # gated-SiLU decoders, relative-position encoders; torchvision's single-stage detectors and keypoint R-CNN
    "nfnet_l0": (lambda: _timm("nfnet_l0"), image(224), "dynamo"),
    "regnetz_b16": (lambda: _timm("regnetz_b16"), image(224), "dynamo"),
    "halonet26t": (lambda: _timm("halonet26t"), image(256), "dynamo"),
    "botnet26t_256": (lambda: _timm("botnet26t_256"), image(256), "dynamo"),
    "lambda_resnet26t": (lambda: _timm("lambda_resnet26t"), image(256), "dynamo"),
    "volo_d1_224": (lambda: _timm("volo_d1_224"), image(224), "dynamo"),
    "crossvit_tiny_240": (lambda: _timm("crossvit_tiny_240"), image(240), "dynamo"),
    "twins_pcpvt_small": (lambda: _timm("twins_pcpvt_small"), image(224), "dynamo"),
    "pit_ti_224": (lambda: _timm("pit_ti_224"), image(224), "dynamo"),
    "convit_tiny": (lambda: _timm("convit_tiny"), image(224), "dynamo"),
    "sequencer2d_s": (lambda: _timm("sequencer2d_s"), image(224), "dynamo"),
    "focalnet_tiny_srf": (lambda: _timm("focalnet_tiny_srf"), image(224), "dynamo"),
    "davit_tiny": (lambda: _timm("davit_tiny"), image(224), "dynamo"),
    "hiera_tiny_224": (lambda: _timm("hiera_tiny_224"), image(224), "dynamo"),
    "vit_small_patch14_reg4_dinov2": (lambda: _timm("vit_small_patch14_reg4_dinov2", img_size=224), image(224), "dynamo"),
    "ese_vovnet19b_dw": (lambda: _timm("ese_vovnet19b_dw"), image(224), "dynamo"),
    "res2net50_26w_4s": (lambda: _timm("res2net50_26w_4s"), image(224), "dynamo"),
    "hgnetv2_b0": (lambda: _timm("hgnetv2_b0"), image(224), "dynamo"),
    "ghostnetv2_100": (lambda: _timm("ghostnetv2_100"), image(224), "dynamo"),
    "mobilenetv4_conv_small": (lambda: _timm("mobilenetv4_conv_small"), image(224), "dynamo"),
    "gcvit_xxtiny": (lambda: _timm("gcvit_xxtiny"), image(224), "dynamo"),
    "mvitv2_tiny": (lambda: _timm("mvitv2_tiny"), image(224), "dynamo"),
    "efficientformerv2_s0": (lambda: _timm("efficientformerv2_s0"), image(224), "dynamo"),
    "starnet_s1": (lambda: _timm("starnet_s1"), image(224), "dynamo"),
    "wide_resnet50_2": (lambda: _tv("wide_resnet50_2"), image(224), "dynamo"),
    "mobilenet_v3_small": (lambda: _tv("mobilenet_v3_small"), image(224), "dynamo"),
    "s3d": (lambda: _tv("s3d", "video"), video(16, 224), "dynamo"),  # its AvgPool3d (2, 7, 7) needs 224²
    "llama_tiny": (lambda: _hf_text("LlamaConfig", "LlamaModel", "last_hidden_state", hidden_size=256, intermediate_size=688,
                                    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=1000),
                   TEXT, "torchscript"),
    "qwen2_tiny": (lambda: _hf_text("Qwen2Config", "Qwen2Model", "last_hidden_state", hidden_size=256, intermediate_size=688,
                                    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=1000),
                   TEXT, "torchscript"),
    "electra_small": (lambda: _hf_text("ElectraConfig", "ElectraModel", "last_hidden_state"), TEXT, "torchscript"),
    "mpnet_base": (lambda: _hf_text("MPNetConfig", "MPNetModel", "last_hidden_state"), TEXT, "torchscript"),
    "deberta_v2_small": (lambda: _hf_text("DebertaV2Config", "DebertaV2Model", "last_hidden_state", hidden_size=384,
                                          num_hidden_layers=4, num_attention_heads=6, intermediate_size=1536), TEXT, "torchscript"),
    "dinov2_small": (lambda: _hf("Dinov2Config", "Dinov2Model", "pooler_output", hidden_size=384, num_attention_heads=6,
                                 image_size=224), image(224), "dynamo"),
    "siglip_vision": (lambda: _hf("SiglipVisionConfig", "SiglipVisionModel", "pooler_output"), image(224), "dynamo"),
    # text and audio (TorchScript exporter, dynamic batch and sequence like ../shared's DistilBERT)
    "bert_base": (lambda: _hf_text("BertConfig", "BertModel", "last_hidden_state"), TEXT, "torchscript"),
    "gpt2": (lambda: _hf_text("GPT2Config", "GPT2Model", "last_hidden_state", use_cache=False), TEXT, "torchscript"),
    "wav2vec2_base": (lambda: _hf("Wav2Vec2Config", "Wav2Vec2Model", "last_hidden_state"),
                      {"inputs": [("input_values", [2, 16000], "float")], "outputs": ["hidden"]}, "torchscript"),
    "whisper_tiny_encoder": (lambda: _Out(__import__("transformers").WhisperModel(__import__("transformers").WhisperConfig()).encoder,
                                          "last_hidden_state"),
                             {"inputs": [("input_features", [2, 80, 3000], "float")], "outputs": ["hidden"]}, "torchscript"),
}


def pytorch_model(name):
    """The PyTorch module a FAMILIES export came from (seed 0, eval mode), or None when the name is not here."""
    if name not in FAMILIES:
        return None
    torch.manual_seed(0)
    return FAMILIES[name][0]().eval()


def example_inputs(name, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs = []
    for _, shape, kind in FAMILIES[name][1]["inputs"]:
        shape = [batch] + shape[1:]
        if kind == "float":
            xs.append(torch.randn(*shape, generator=g))
        elif kind == "mask":
            xs.append(torch.ones(*shape, dtype=torch.int64))
        else:
            xs.append(torch.randint(0, 1000, shape, generator=g, dtype=torch.int64))
    return tuple(xs)


def export(name, out):
    import onnx
    ctor, spec, exporter = FAMILIES[name]
    torch.manual_seed(0)
    model = ctor().eval()
    xs = example_inputs(name)
    in_names = [i[0] for i in spec["inputs"]]
    out_names = spec["outputs"]
    tmp = f"/tmp/ait-families/{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    p = f"{tmp}/model.onnx"
    used = exporter
    with torch.no_grad():
        if exporter == "dynamo":
            try:
                B = torch.export.Dim("batch", min=1, max=256)
                torch.onnx.export(model, xs, p, dynamo=True, external_data=True, dynamic_shapes=tuple({0: B} for _ in xs),
                                  input_names=in_names, output_names=out_names, opset_version=18)
            except Exception as ex:  # some models do not export with a symbolic batch: the TorchScript exporter then
                print(json.dumps(dict(name=name, dynamoFailed=str(ex)[:200])), file=sys.stderr, flush=True)
                used = "torchscript"
        if used == "torchscript":
            axes = {n: {0: "batch", **({1: "seq"} if spec.get("seq") else {})} for n in in_names}
            axes.update({n: {0: "batch"} for n in out_names})
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
            torch.onnx.export(model, xs, p, dynamo=False, opset_version=17, dynamic_axes=axes, input_names=in_names,
                              output_names=out_names)
            m = onnx.load(p)
            onnx.save(m, p, save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx.data")
    if os.environ.get("KEEP_WEIGHTS") == "1":
        shutil.rmtree(f"{out}/{name}", ignore_errors=True)
        shutil.copytree(tmp, f"{out}/{name}")
    # graph only: float weights point at an absent model.onnx.data (ait fills them with seeded random values); integer
    # ones (relative-position indices, shapes) and tiny float ones (a Pad value, Resize scales: parameters of the
    # graph, not weights) stay inline, since no random value can stand for them
    m = onnx.load(p)
    from onnx import TensorProto, external_data_helper
    keep = {TensorProto.INT64, TensorProto.INT32, TensorProto.INT8, TensorProto.UINT8, TensorProto.BOOL}
    for t in m.graph.initializer:
        numel = 1
        for d in t.dims:
            numel *= d
        if t.data_type in keep or not t.HasField("raw_data") or numel <= 8:
            continue
        external_data_helper.set_external_data(t, location="model.onnx.data")
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
    onnx.save(m, f"{out}/{name}.onnx")
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return dict(name=name, exporter=used, bytes=os.path.getsize(f"{out}/{name}.onnx"), nodes=len(m.graph.node), ops=ops)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("list", "export"):
        sys.exit(__doc__)
    if sys.argv[1] == "list":
        print("\n".join(FAMILIES))
        return
    out, names = sys.argv[2], sys.argv[3].split(",")
    os.makedirs(out, exist_ok=True)
    for name in names:
        try:
            print(json.dumps(export(name, out)), flush=True)
        except Exception as ex:
            traceback.print_exc(file=sys.stderr)
            print(json.dumps(dict(name=name, failed=f"{type(ex).__name__}: {str(ex)[:300]}")), flush=True)


if __name__ == "__main__":
    main()
