import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ConvProblem,
  chooseConv,
  chooseGroupConv,
  convEpilogueSteps,
  convEpilogueTree,
  convSourceFile,
  emitConv,
  emitSm80Conv,
  emitSm90Conv,
  groupConvEpilogue,
  sm80ConvName,
  sm90ConvName,
} from '../../../compiler/backends/cuda/cutlass/conv';
import { evtArguments } from '../../../compiler/backends/cuda/cutlass/gemm';
import { CompileError } from '../../../compiler/diagnostics';
import { haveNvcc, instanceSource, nvccCompileCutlass, nvccCompileGenerated, requireCutlassOptIn } from '../../helpers/nvcc';
import { compileModel } from '../../../compiler/compile';
import { buildModel } from '../../helpers/onnx-builder';

// Golden files: regenerate with AIT_UPDATE_GOLDEN=1 after a deliberate change, and review the diff.
const GOLDEN = path.join(__dirname, 'golden');

function matchGolden(file: string, text: string) {
  const target = path.join(GOLDEN, file);
  if (process.env.AIT_UPDATE_GOLDEN === '1') {
    fs.mkdirSync(GOLDEN, { recursive: true });
    fs.writeFileSync(target, text);
  }
  assert.ok(fs.existsSync(target), `golden file ${file} is missing (run with AIT_UPDATE_GOLDEN=1)`);
  assert.equal(text, fs.readFileSync(target, 'utf8'), `emitted text differs from golden/${file}`);
}

function isUnsupported(e: unknown): boolean {
  return e instanceof CompileError && e.diagnostics[0].code === 'cuda.cutlass-unsupported';
}

/** ResNet-50 layers (NHWC) at a batch size. */
const resnet = {
  conv3x3_64: (n: number): ConvProblem => ({
    n,
    h: 56,
    w: 56,
    c: 64,
    k: 64,
    r: 3,
    s: 3,
    p: 56,
    q: 56,
    pads: [1, 1, 1, 1],
    strides: [1, 1],
    dilations: [1, 1],
    group: 1,
  }),
  conv1x1_256_64: (n: number): ConvProblem => ({
    n,
    h: 56,
    w: 56,
    c: 256,
    k: 64,
    r: 1,
    s: 1,
    p: 56,
    q: 56,
    pads: [0, 0, 0, 0],
    strides: [1, 1],
    dilations: [1, 1],
    group: 1,
  }),
  conv3x3_512: (n: number): ConvProblem => ({
    n,
    h: 7,
    w: 7,
    c: 512,
    k: 512,
    r: 3,
    s: 3,
    p: 7,
    q: 7,
    pads: [1, 1, 1, 1],
    strides: [1, 1],
    dilations: [1, 1],
    group: 1,
  }),
  stem: (n: number): ConvProblem => ({
    n,
    h: 224,
    w: 224,
    c: 3,
    k: 64,
    r: 7,
    s: 7,
    p: 112,
    q: 112,
    pads: [3, 3, 3, 3],
    strides: [2, 2],
    dilations: [1, 1],
    group: 1,
  }),
};

/** Grouped layers (NHWC): ResNeXt-50 32x4d's first-stage 3x3 (4 channels per group), a strided one, and 4 wide groups. */
const grouped = {
  resnext_g32_4: (n: number): ConvProblem => ({ ...resnet.conv3x3_64(n), h: 14, w: 14, p: 14, q: 14, c: 128, k: 128, group: 32 }),
  resnext_g32_8_stride2: (n: number): ConvProblem => ({
    ...resnet.conv3x3_64(n),
    h: 28,
    w: 28,
    p: 14,
    q: 14,
    c: 256,
    k: 256,
    strides: [2, 2],
    group: 32,
  }),
  g4_64: (n: number): ConvProblem => ({ ...resnet.conv3x3_64(n), h: 10, w: 10, p: 10, q: 10, c: 256, k: 256, group: 4 }),
};

describe('cuda backend: CUTLASS conv instances', () => {
  it('names instances like CUTLASS procedural names, with the epilogue appended', () => {
    assert.equal(
      sm90ConvName({ arch: 'sm90', tile: [128, 128, 64], cluster: [1, 1, 1], alignment: 8 }, ['bias', 'residual_add', 'relu']),
      'cutlass3x_sm90_tensorop_fprop_f16_f16_f32_f16_f16_128x128x64_1x1x1_0_nhwc_align8_warpspecialized_epi_tma_bias_residual_relu',
    );
    assert.match(
      sm90ConvName({ arch: 'sm90', tile: [64, 128, 64], cluster: [1, 1, 1], alignment: 8 }, []),
      /_f32_void_f16_64x128x64_1x1x1_0_nhwc_align8_warpspecialized_epi_tma_identity$/,
    );
    assert.equal(
      sm80ConvName(
        {
          arch: 'sm80',
          tile: [128, 64, 32],
          warps: [64, 32, 32],
          stages: 2,
          iterator: 'few_channels',
          inputAlignment: 1,
          outputAlignment: 8,
        },
        ['bias', 'relu'],
      ),
      'cutlass_tensorop_f16_s16816fprop_few_channels_f16_128x64_32x2_nhwc_align1_bias_relu',
    );
  });

  it('builds the epilogue tree in step order, scale and residual included', () => {
    const tree = convEpilogueTree(['bias', 'scale', 'residual_add', 'relu']);
    // relu(plus(multiplies(plus(acc, bias), scale), C)): children's arguments first, then the node's own {}.
    assert.equal(evtArguments(tree), '{{{{{}, {operands.bias}, {}}, {operands.scale}, {}}, {}, {}}, {}}');
    assert.equal(evtArguments(convEpilogueTree([])), '{{}, {}}');
    const text = emitSm90Conv({ arch: 'sm90', tile: [128, 128, 64], cluster: [1, 1, 1], alignment: 8 }, ['scale', 'bias'], 'test').code;
    // scale comes before bias here: the multiply is the inner node.
    assert.ok(text.indexOf('cutlass::plus') < text.indexOf('cutlass::multiplies'), text);
  });

  it('checks fused.ts epilogue steps', () => {
    assert.deepEqual(convEpilogueSteps(['bias', 'residual_add', 'relu']), ['bias', 'residual_add', 'relu']);
    assert.throws(() => convEpilogueSteps(['bias', 'leaky_relu:0.1']), isUnsupported);
  });

  it('picks sm90 tiles from the measured table: 64x128 at batch 1, 128x64 for K=64, 128x128 deep, never 128x256', () => {
    assert.deepEqual(chooseConv(resnet.conv3x3_64(1), 'sm90').config.tile, [64, 128, 64]);
    // N·P·Q ≥ 65,536: CUTLASS 2.x multistage, measured faster on the H200 than the sm90 conv schedule
    const large = chooseConv(resnet.conv3x3_64(256), 'sm90');
    assert.equal(large.config.arch, 'sm80');
    assert.match(large.reason, /large problem \(N·P·Q=802816\)/);
    // strides above 8 cannot use TMA im2col (ViT's 16×16/16 patch embedding, channels padded to 8)
    const patch = chooseConv(
      { ...resnet.conv3x3_512(1), c: 8, k: 768, r: 16, s: 16, h: 224, w: 224, p: 14, q: 14, strides: [16, 16], pads: [0, 0, 0, 0] },
      'sm90',
    );
    assert.equal(patch.config.arch, 'sm80');
    assert.match(patch.reason, /stride 16x16: TMA im2col supports strides up to 8/);
    assert.deepEqual(chooseConv(resnet.conv3x3_64(8), 'sm90').config.tile, [128, 64, 64]);
    assert.deepEqual(chooseConv(resnet.conv3x3_512(256), 'sm90').config.tile, [128, 128, 64]);
    assert.deepEqual(chooseConv(resnet.conv3x3_512(1), 'sm90').config.tile, [64, 128, 64]);
    for (const make of Object.values(resnet))
      for (const n of [1, 8, 64, 256]) {
        const { config } = chooseConv(make(n), 'sm90');
        assert.notDeepEqual(config.tile.slice(0, 2), [128, 256]);
      }
    const small = chooseConv(resnet.conv1x1_256_64(1), 'sm90');
    assert.match(small.reason, /N·P·Q=3136/);
  });

  it('gives the 3-channel stem a CUTLASS 2.x few-channels kernel on both targets, without padding C', () => {
    for (const target of ['sm90', 'sm80'] as const) {
      const { config, reason } = chooseConv(resnet.stem(8), target);
      assert.equal(config.arch, 'sm80');
      if (config.arch !== 'sm80') return;
      assert.equal(config.iterator, 'few_channels');
      assert.equal(config.inputAlignment, 1);
      assert.equal(config.outputAlignment, 8);
      assert.match(reason, target === 'sm90' ? /C=3, K=64: TMA needs multiples of 8/ : /C=3 < 8/);
    }
    // 4 input channels (VitMatte) read 4 at a time; K=81 classes gets a 1-element epilogue.
    const four = chooseConv({ ...resnet.stem(1), c: 4 }, 'sm80').config;
    assert.ok(four.arch === 'sm80' && four.inputAlignment === 4);
    const classes = chooseConv({ ...resnet.conv1x1_256_64(1), k: 81 }, 'sm90');
    assert.ok(classes.config.arch === 'sm80' && classes.config.iterator === 'optimized' && classes.config.outputAlignment === 1);
    assert.match(classes.reason, /K=81/);
  });

  it('refuses depthwise convolution (AIT kernel) and unsupported sm80 epilogues with diagnostics', () => {
    assert.throws(
      () => chooseConv({ ...resnet.conv3x3_64(1), group: 64 }, 'sm90'),
      (e: unknown) => {
        assert.ok(isUnsupported(e));
        assert.match((e as CompileError).diagnostics[0].message, /depthwise convolution \(group=C=64\).*AIT's depthwise kernel/);
        return true;
      },
    );
    const { config } = chooseConv(resnet.conv3x3_64(8), 'sm80');
    assert.ok(config.arch === 'sm80');
    if (config.arch !== 'sm80') return;
    assert.throws(() => emitSm80Conv(config, ['bias', 'scale', 'relu'], ''), isUnsupported);
    assert.throws(() => emitSm80Conv(config, ['relu', 'bias'], ''), isUnsupported);
    assert.throws(() => emitSm80Conv(config, ['residual_add', 'relu', 'residual_add'], ''), isUnsupported);
    // The shapes it does take: act2(act1(acc + bias) + residual).
    assert.match(
      emitSm80Conv(config, ['bias', 'relu', 'residual_add'], '').code,
      /LinearCombinationResidualBlock<.*ReLu, cutlass::plus, cutlass::epilogue::thread::Identity>/,
    );
    assert.match(emitSm80Conv(config, ['residual_add'], '').code, /nullptr, nullptr, 0, o\.k\)/);
  });

  it('grouped convs: CUTLASS kMultipleGroup when the N tile holds whole groups, kSingleGroup when a group spans N tiles', () => {
    const resnext = chooseGroupConv(grouped.resnext_g32_4(8));
    assert.ok(resnext.config.arch === 'sm80');
    if (resnext.config.arch !== 'sm80') return;
    // 4 output channels per group: the smallest N tile (32) holds 8 groups; 4 input channels: 8-byte accesses
    assert.equal(resnext.config.groupMode, 'multiple_group');
    assert.equal(resnext.config.iterator, 'analytic');
    assert.deepEqual(resnext.config.tile, [64, 32, 32]);
    assert.equal(resnext.config.inputAlignment, 4);
    assert.match(resnext.reason, /C\/group=4, K\/group=4, .*kMultipleGroup \(8 groups per 32-wide N tile\)/);
    assert.equal(
      sm80ConvName(resnext.config, ['bias', 'relu']),
      'cutlass_tensorop_f16_s16816fprop_analytic_f16_64x32_32x4_nhwc_multiple_group_align4_bias_relu',
    );
    const wide = chooseGroupConv(grouped.g4_64(8)).config;
    assert.ok(wide.arch === 'sm80' && wide.groupMode === 'single_group' && wide.iterator === 'optimized' && wide.tile[1] === 64);
    assert.equal(wide.arch === 'sm80' && wide.inputAlignment, 8);
    // sm90 takes the same 2.x kernel and says why
    const onSm90 = chooseConv(grouped.resnext_g32_4(8), 'sm90');
    assert.deepEqual(onSm90.config, resnext.config);
    assert.match(onSm90.reason, /^grouped: the sm90 conv collective has no group mode, so a CUTLASS 2.x kernel; /);
    // the large batch uses 128-row tiles
    assert.equal(chooseGroupConv(grouped.resnext_g32_8_stride2(256)).config.tile[0], 128);
  });

  it('grouped convs the group kernels cannot take are refused with the rule: odd C/group, K/group = 48', () => {
    const message = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        assert.ok(isUnsupported(e), String(e));
        return (e as CompileError).diagnostics[0].message;
      }
      return assert.fail('not refused');
    };
    assert.match(
      message(() => chooseGroupConv({ ...grouped.g4_64(1), c: 12, k: 96, group: 4 })),
      /3 input channels per group.*odd C\/group/,
    );
    assert.match(
      message(() => chooseGroupConv({ ...grouped.g4_64(1), c: 192, k: 192, group: 4 })),
      /K\/group=48: .*multiple of the N tile/,
    );
  });

  it('grouped epilogues: the group kernel fuses act(acc + bias) or act(acc + residual); the rest is split off', () => {
    assert.deepEqual(groupConvEpilogue(['bias', 'relu']), { fused: ['bias', 'relu'], rest: [] });
    assert.deepEqual(groupConvEpilogue(['bias', 'residual_add', 'relu']), { fused: ['bias'], rest: ['residual_add', 'relu'] });
    assert.deepEqual(groupConvEpilogue(['residual_add', 'silu']), { fused: ['residual_add', 'silu'], rest: [] });
    assert.deepEqual(groupConvEpilogue(['bias', 'clip:0:6']), { fused: ['bias'], rest: ['clip:0:6'] });
    assert.deepEqual(groupConvEpilogue(['scale', 'bias']), { fused: [], rest: ['scale', 'bias'] });
    const { config } = chooseGroupConv(grouped.g4_64(1));
    assert.ok(config.arch === 'sm80');
    if (config.arch !== 'sm80') return;
    assert.throws(() => emitSm80Conv(config, ['bias', 'residual_add'], ''), isUnsupported);
    // the residual as C (packed NHWC), the bias as C with zero strides
    assert.match(emitSm80Conv(config, ['residual_add', 'relu'], '').code, /\{const_cast<cutlass::half_t\*>\(o\.residual\), Layout::packed/);
    assert.match(emitSm80Conv(config, ['bias'], '').code, /\{const_cast<cutlass::half_t\*>\(o\.bias\), Layout\(Layout::Stride\(0\)\)\}/);
  });

  it('emits the grouped ResNeXt and wide-group instances as in the golden file', () => {
    const text = convSourceFile([
      emitConv(chooseConv(grouped.resnext_g32_4(8), 'sm80'), ['bias', 'relu']),
      emitConv(chooseConv(grouped.g4_64(8), 'sm90'), ['residual_add', 'relu']),
    ]);
    matchGolden('sm80_grouped_conv.cu', text);
  });

  it('emits the ResNet-50 bottleneck convs for sm90 as in the golden file', () => {
    const text = convSourceFile([
      emitConv(chooseConv(resnet.conv1x1_256_64(8), 'sm90'), ['bias', 'relu']),
      emitConv(chooseConv(resnet.conv3x3_512(1), 'sm90'), ['bias', 'residual_add', 'relu']),
    ]);
    matchGolden('sm90_resnet_conv.cu', text);
  });

  it('emits the ResNet-50 stem and a residual conv for sm80 as in the golden file', () => {
    const text = convSourceFile([
      emitConv(chooseConv(resnet.stem(8), 'sm80'), ['bias', 'relu']),
      emitConv(chooseConv(resnet.conv3x3_64(8), 'sm80'), ['bias', 'residual_add', 'relu']),
    ]);
    matchGolden('sm80_resnet_conv.cu', text);
  });
});

// Opt-in (AIT_TEST_CUTLASS=1; on 2 cores about 10-40 s per sm80 instance and 90 s per sm90 instance): the emitted
// text compiles against CUTLASS headers from CUTLASS_DIR (default: .deps/cutlass, see /work/shared/gpu-host/README.md).
describe('cuda backend: CUTLASS conv instances compile with nvcc (AIT_TEST_CUTLASS=1)', function () {
  before(requireCutlassOptIn);

  const cases = [
    {
      label: 'ResNet-50 3x3 conv',
      arch: 'arch=compute_80,code=sm_80',
      instance: () => emitConv(chooseConv(resnet.conv3x3_64(8), 'sm80'), ['bias', 'residual_add', 'relu']),
    },
    {
      label: 'ResNet-50 3x3 conv',
      arch: 'arch=compute_90a,code=sm_90a', // wgmma and im2col TMA need the arch-specific target
      instance: () => emitConv(chooseConv(resnet.conv3x3_64(8), 'sm90'), ['bias', 'residual_add', 'relu']),
    },
    {
      label: 'grouped ResNeXt 3x3 conv',
      arch: 'arch=compute_80,code=sm_80', // grouped: CUTLASS 2.x kMultipleGroup (ResNeXt, 4 channels per group)
      instance: () => emitConv(chooseConv(grouped.resnext_g32_4(8), 'sm80'), ['bias', 'relu']),
    },
  ];
  for (const c of cases) {
    it(`compiles the ${c.label} instance for ${c.arch}`, function () {
      this.timeout(900_000);
      const instance = c.instance();
      const source = instanceSource(convSourceFile([instance]), instance.name, 'AitConvOperands');
      const seconds = nvccCompileCutlass(source, `-gencode=${c.arch}`);
      console.log(`      ${instance.name}: nvcc ${seconds.toFixed(1)} s`);
    });
  }
});

// The GPU check (compiler/backends/cuda/tests/conv_check.cu) runs the instances these emitters produce for three
// ResNet-50 layers and three grouped layers at batch 1 and 8 on both targets; its header is generated here and must
// match the emitters.
function convCheckInstances(): string {
  const layers = [
    { layer: '3x3 64->64 56x56', make: resnet.conv3x3_64, residual: false },
    { layer: '1x1 256->64 56x56', make: resnet.conv1x1_256_64, residual: true },
    { layer: '7x7/2 3->64 stem', make: resnet.stem, residual: false },
    { layer: '3x3 g32 128 4/g', make: grouped.resnext_g32_4, residual: false },
    { layer: '3x3/2 g32 256 8/g', make: grouped.resnext_g32_8_stride2, residual: false },
    { layer: '3x3 g4 256 64/g', make: grouped.g4_64, residual: false },
  ];
  const instances = new Map<string, ReturnType<typeof emitConv>>();
  const rows: string[] = [];
  for (const target of ['sm90', 'sm80'] as const)
    for (const { layer, make, residual } of layers)
      for (const n of [1, 8]) {
        const problem = make(n);
        const instance = emitConv(chooseConv(problem, target), residual ? ['bias', 'residual_add', 'relu'] : ['bias', 'relu']);
        instances.set(instance.name, instance);
        const p = problem;
        rows.push(
          `    {"${layer}", "${target}", ${residual}, ${p.n}, ${p.h}, ${p.w}, ${p.c}, ${p.k}, ${p.r}, ${p.s}, ${p.p}, ${p.q}, ` +
            `{${p.pads.join(', ')}}, {${p.strides.join(', ')}}, ${p.group}, "${instance.name}", &${instance.name}::run},`,
        );
      }
  return `// Generated by test/backends/cuda/cutlass-conv.test.ts (AIT_UPDATE_GOLDEN=1 rewrites it): the CUTLASS conv
// instances that tests/conv_check.cu runs, and one row per case.
${convSourceFile([...instances.values()])}
using AitConvRunFn = const char* (*)(const AitConvOperands&, void*, size_t, cudaStream_t);
struct AitConvCheckCase {
  const char* layer;
  const char* target;
  bool residual;  // epilogue relu(conv + bias + residual), else relu(conv + bias)
  int n, h, w, c, k, r, s, p, q;
  int pads[4];
  int strides[2];
  int groups;  // weight [k, r, s, c / groups]
  const char* name;
  AitConvRunFn run;
};
static const AitConvCheckCase kConvCheckCases[] = {
${rows.join('\n')}
};
`;
}

describe('cuda backend: conv GPU check program', () => {
  it('tests/conv_check_instances.cuh is what the emitters produce now', () => {
    const file = path.resolve(__dirname, '..', '..', '..', 'compiler/backends/cuda/tests/conv_check_instances.cuh');
    const text = convCheckInstances();
    if (process.env.AIT_UPDATE_GOLDEN === '1') fs.writeFileSync(file, text);
    assert.equal(fs.readFileSync(file, 'utf8'), text, 'conv_check_instances.cuh is stale (run with AIT_UPDATE_GOLDEN=1)');
  });
});

describe('cuda backend: a conv whose activations pass 2^31 bytes at the max batch', () => {
  /** x [B, C, 65, 65] → 1×1 Conv to K channels (+ Relu): DeepLabV3's head sizes. */
  function compileHead(c: number, k: number, maxBatch: number, size = 65) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-conv-chunk-'));
    const file = path.join(dir, 'head.onnx');
    fs.writeFileSync(
      file,
      buildModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', c, size, size] }],
        initializers: [
          { name: 'w', dtype: 'float32', dims: [k, c, 1, 1], values: Array.from({ length: k * c }, (_, i) => ((i % 7) - 3) / 64) },
        ],
        nodes: [
          { op: 'Conv', name: 'conv', inputs: ['x', 'w'], outputs: ['h'], attrs: { kernel_shape: [1, 1] } },
          { op: 'Relu', name: 'relu', inputs: ['h'], outputs: ['y'] },
        ],
        outputs: [{ name: 'y', dtype: 'float32', dims: ['B', k, size, size] }],
      }),
    );
    const out = path.join(dir, 'out');
    const r = compileModel(file, { out, target: 'cuda:sm90', maxBatch });
    const errors = r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message);
    const model = errors.length === 0 ? fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8') : '';
    return { out, model, errors };
  }

  it('runs over chunks of images that fit CUTLASS 32-bit byte offsets, each on its slices of input and output', () => {
    // 256 × 65 × 65 × 2048 fp16 = 4.4e9 output bytes: chunks of floor((2^31 - 1) / (2·65·65·2048)) = 124 images
    const { model, errors } = compileHead(1024, 2048, 256);
    assert.deepEqual(errors, []);
    assert.match(model, /const int64_t images = batch, in_image = 65 \* 65 \* 1024, out_image = 65 \* 65 \* 2048;/);
    assert.match(model, /for \(int64_t first = 0; first < images; first \+= 124\) \{/);
    assert.match(model, /const int64_t batch = std::min<int64_t>\(124, images - first\);/);
    assert.match(model, /\+ first \* in_image, static_cast<const __half\*>/);
    assert.match(model, /reinterpret_cast<__half\*>\(c\.arena \+ \d+\) \+ first \* out_image\};/);
  });

  it("chunks at 2^31 bytes, not 2^31 elements (DeepLabV3's stem at batch 256: 1.1e9 elements, 2.2e9 bytes)", () => {
    // 256 × 260 × 260 × 64 output elements (the 7×7 stem's at 520²; here a 1×1 conv of the same output size)
    const { model, errors } = compileHead(8, 64, 256, 260);
    assert.deepEqual(errors, []);
    // floor((2^31 - 1) / (2 · 260 · 260 · 64)) = 248 images
    assert.match(model, /for \(int64_t first = 0; first < images; first \+= 248\) \{/);
  });

  it('refuses a conv whose single image passes 2^31 bytes, naming the node', () => {
    const { errors } = compileHead(8, 64, 1, 4200);
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0], /conv/);
    assert.match(errors[0], /one image's activation takes 2257920000 bytes, past the 2\^31 - 1 that CUTLASS's conv addresses/);
  });

  it('launches once when the max batch fits (no loop in the usual case)', () => {
    const { model } = compileHead(1024, 2048, 64);
    assert.doesNotMatch(model, /first \* in_image|const int64_t images/);
    assert.match(model, /const AitConvArgs conv\{static_cast<int>\(batch\), 65, 65, 1024, 2048,/);
  });

  it('the chunked launch compiles with nvcc for sm_90a', function () {
    if (!haveNvcc()) this.skip();
    this.timeout(180_000);
    const { out } = compileHead(1024, 2048, 256);
    nvccCompileGenerated(out, ['src/model.cu'], 'arch=compute_90a,code=sm_90a');
  });
});
