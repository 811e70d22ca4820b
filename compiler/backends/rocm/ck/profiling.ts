/**
 * Kernel profiling on ROCm, through the CUDA backend's mechanism (cuda/profiling/selection.ts): each CK op (GEMM,
 * batched GEMM, convolution, layernorm, softmax, attention) records a signature with its candidates — every tile of
 * its device operation (instances.ts CK_TILES, norm-instances.ts CK_ROW_TILES / CK_ATTENTION_TILES) at the op's vector
 * widths and epilogue — and takes the fastest measured one per batch range (KernelProfiling.choose), else the
 * heuristic's. `ait compile --profile-sources` writes the profiler (ckProfilerFiles) into profile/:
 *
 *  - src/ck_<k>.cu: one candidate instance per translation unit, the same text as in a model build (named after its
 *    hash), declared weak in src/ait_ck.h: a candidate that does not compile is left out of the link and reported
 *    build-failed, never fatal;
 *  - src/profile_table.cu: every signature's problems by batch (the instance's argument struct without pointers),
 *    its candidates, and its fp32 reference: the reference kernels of hip-profiler/ait_ck_profiler.h instantiated with
 *    the signature's epilogue (the instances' own `ew::` steps);
 *  - src/ait_ck_profiler.cu, src/ait_ck_profiler.h, src/device_info.cu (cuda/hip-profiler/): the runner (hip events,
 *    median of timed launches, output checked against the reference) and the host's cache key, in the CUDA
 *    profiler's output formats, so `--measurements` and `--profile HOST` read them unchanged.
 */
import { cString } from '../../generated-text';
import { cudaSourceFiles } from '../../cuda/codegen/sources';
import type { Candidate } from '../../cuda/profiling/candidates';
import type { ProfiledOp } from '../../cuda/profiling/selection';
import type { RocmArch } from '../build-files';
import { CK_MAX_OPERANDS, CkAnySpec, CkInstance, CkInstanceSpec, ckHeader } from './instances';
import type { CkRowSpec } from './norm-instances';

/** The CK release the instances are written for (../README.md). */
export const CK_RELEASE = 'b22ebd448';

/** A CK instance as a candidate names it (measurements name candidates by the instance's symbol). */
export type CkNamedInstance = CkInstance & { name: string };

/** A CK candidate: the instance and its spec as graph.json and the profiler show it. */
export type CkCandidate = Candidate<CkAnySpec, CkNamedInstance>;

export function ckCandidate(instance: CkInstance): CkCandidate {
  return { config: instance.spec, instance: { ...instance, name: instance.symbol }, description: describeCk(instance.spec) };
}

/** One line of a candidate's configuration (graph.json kernel.candidates[].config). */
export function describeCk(spec: CkAnySpec): string {
  if (spec.kind === 'attention')
    return `${spec.tile.m}x${spec.tile.n} block, ${spec.tile.o} head-dim columns, ${spec.tile.xdl}x${spec.tile.xdl} XDL`;
  if (spec.kind === 'layernorm' || spec.kind === 'softmax') {
    const row = spec as CkRowSpec;
    return `${row.tile.mCluster}x${row.tile.kCluster} threads x ${row.tile.kSlice}, vector ${row.vector}`;
  }
  spec = spec as CkInstanceSpec;
  return `${spec.tile.m}x${spec.tile.n}x32, ${spec.tile.block} threads, vectors ${spec.vectors.a}/${spec.vectors.b}/${spec.vectors.cde}`;
}

/** Candidates with distinct instances (two tiles can give one text after vector fitting). */
export function dedupeCandidates(list: readonly CkInstance[]): CkCandidate[] {
  const bySymbol = new Map<string, CkInstance>();
  for (const i of list) if (!bySymbol.has(i.symbol)) bySymbol.set(i.symbol, i);
  return [...bySymbol.values()].map(ckCandidate);
}

const KIND_CODE: Record<string, string> = {
  gemm: 'kAitCkGemm',
  batched_gemm: 'kAitCkBatchedGemm',
  conv: 'kAitCkConv',
  layernorm: 'kAitCkLayernorm',
  softmax: 'kAitCkSoftmax',
  attention: 'kAitCkAttention',
};

/** A problem's argument values (the instance's args struct without its pointers), as ../library.ts records them. */
type Args = Record<string, number | boolean[]>;

const int = (args: Args, name: string) => {
  const v = args[name];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`CK profile problem without ${name}`);
  return v;
};
const flags = (args: Args) =>
  ((args.d_per_channel as boolean[] | undefined) ?? []).concat(Array(CK_MAX_OPERANDS).fill(false)).slice(0, CK_MAX_OPERANDS);
const nulls = (n: number) => Array(n).fill('nullptr').join(', ');

/** The AitCkProfileProblem initializer of one problem (ait_ck_profiler.h). */
function problemRow(op: ProfiledOp, index: number): string {
  const batch = op.batches[index];
  const a = op.problems[index] as Args;
  const d = `{${nulls(CK_MAX_OPERANDS)}}, {${flags(a).join(', ')}}`;
  switch (op.kind) {
    case 'gemm':
    case 'batched_gemm':
      return `  {${batch}, {{${['batch', 'm', 'n', 'k'].map((f) => int(a, f)).join(', ')}, nullptr, nullptr, ${d}, nullptr}, {}, {}, {}}, {0, 0, 0}},`;
    case 'conv': {
      const fields = ['n', 'h', 'w', 'c', 'k', 'r', 's', 'p', 'q', 'group', 'stride_h', 'stride_w', 'dilation_h', 'dilation_w'];
      const pads = ['pad_top', 'pad_left', 'pad_bottom', 'pad_right'];
      return `  {${batch}, {{}, {${[...fields, ...pads].map((f) => int(a, f)).join(', ')}, nullptr, nullptr, ${d}, nullptr}, {}, {}}, {0, 0, 0}},`;
    }
    case 'layernorm':
    case 'softmax':
      return `  {${batch}, {{}, {}, {${int(a, 'rows')}, ${int(a, 'n')}, ${Math.fround(int(a, 'epsilon')).toExponential(9)}f, ${nulls(4)}}, {}}, {0, 0, 0}},`;
    case 'attention': {
      const [b, s, h, hd] = ['batch', 'sequence', 'heads', 'head_dim'].map((f) => int(a, f));
      const stride = int(a, 'token_stride');
      // packed: q|k|v in each token row; separate: three [b, s, h·d] tensors one after another
      const offsets = stride === 3 * h * hd ? [0, h * hd, 2 * h * hd] : [0, b * s * h * hd, 2 * b * s * h * hd];
      return `  {${batch}, {{}, {}, {}, {${b}, ${s}, ${h}, ${hd}, ${stride}, ${Math.fround(int(a, 'scale')).toExponential(9)}f, ${nulls(4)}}}, {${offsets.join(', ')}}},`;
    }
    default:
      throw new Error(`no CK profiler table row for ${op.kind}`);
  }
}

/** The reference function of op i: the reference kernel of its kind, with its epilogue where it has one. */
function referenceOf(op: ProfiledOp, i: number): string[] {
  const launch = (kernel: string, args: string, size: string) => [
    `static void reference_${i}(const AitCkProfileArgs& args, float* out, hipStream_t stream) {`,
    `  ${kernel}<<<ait_ck_grid(${size}), 256, 0, stream>>>(${args}, out);`,
    '}',
  ];
  const epilogue = [
    `struct Epilogue_${i} {`,
    '  __device__ float operator()(const float* in) const {',
    '    namespace ew = ait::kernels::ew;',
    '    float v = in[0];',
    ...op.steps.map((f) => `    v = ${f}(v, in);`),
    '    return v;',
    '  }',
    '};',
  ];
  switch (op.kind) {
    case 'gemm':
    case 'batched_gemm': {
      const row = op.layoutB === 'row' ? 'true' : 'false';
      const batched = op.kind === 'batched_gemm' ? 'true' : 'false';
      return [
        ...epilogue,
        ...launch(
          `ait_ck_reference_gemm<Epilogue_${i}, ${row}, ${batched}>`,
          'args.gemm',
          'size_t(args.gemm.batch) * args.gemm.m * args.gemm.n',
        ),
      ];
    }
    case 'conv':
      return [
        ...epilogue,
        ...launch(`ait_ck_reference_conv<Epilogue_${i}>`, 'args.conv', 'size_t(args.conv.n) * args.conv.p * args.conv.q * args.conv.k'),
      ];
    case 'layernorm':
    case 'softmax':
      return launch(`ait_ck_reference_row<${op.kind === 'layernorm'}>`, 'args.row', 'size_t(args.row.rows)');
    case 'attention':
      return launch(
        'ait_ck_reference_attention',
        'args.attention',
        'size_t(args.attention.batch) * args.attention.sequence * args.attention.heads * args.attention.head_dim',
      );
    default:
      throw new Error(`no CK reference for ${op.kind}`);
  }
}

/** The entry-point fields of a candidate (gemm, conv, row, attention), the one of its kind set. */
function candidateFns(op: ProfiledOp, symbol: string): string {
  const slot = op.kind === 'gemm' || op.kind === 'batched_gemm' ? 0 : op.kind === 'conv' ? 1 : op.kind === 'attention' ? 3 : 2;
  return [0, 1, 2, 3].map((i) => (i === slot ? symbol : 'nullptr')).join(', ');
}

/** profile/…: the ROCm profiler's files for `ops` (every collected signature, or the ones still to measure). */
export function ckProfilerFiles(ops: readonly ProfiledOp[], arch: RocmArch): Map<string, string> {
  const files = new Map<string, string>();
  const instances = new Map<string, { instance: CkInstance; file: string }>();
  for (const op of ops)
    for (const c of op.candidates) {
      const instance = c.instance as unknown as CkInstance; // ROCm signatures have CK candidates only
      if (!instances.has(instance.symbol)) instances.set(instance.symbol, { instance, file: `src/ck_${instances.size}.cu` });
    }
  // weak: a candidate whose translation unit fails to build is a null entry point, reported build-failed
  const header = ckHeader([...instances.values()].map((i) => i.instance)).replace(
    /^const char\* (ait_ck_\w+\()/gm,
    '__attribute__((weak)) const char* $1',
  );
  files.set('profile/src/ait_ck.h', header);
  for (const { instance, file } of instances.values()) files.set(`profile/${file}`, instance.code);

  const t: string[] = [
    '// Generated by AIT: the signatures, problems, references and candidates ait_profiler times (ait_ck_profiler.h).',
    '#include "ait_ck_profiler.h"',
    '#include "elementwise.cuh"',
    '',
    '// the references: their kernels are instantiated in both compilation passes',
  ];
  ops.forEach((op, i) => t.push(`// ${op.signature.replace(/[^\x20-\x7e]/g, '?')}`, ...referenceOf(op, i), ''));
  // clang's device pass would emit these const tables as implicit __constant__ data pointing at host functions
  t.push('#if !defined(__HIP_DEVICE_COMPILE__)', '');
  ops.forEach((op, i) => {
    t.push(`static const AitCkProfileProblem problems_${i}[] = {`, ...op.problems.map((_, j) => problemRow(op, j)), '};');
    t.push(`static const AitCkProfileCandidate candidates_${i}[] = {`);
    for (const c of op.candidates) {
      const instance = c.instance as unknown as CkInstance;
      t.push(`  {${cString(instance.symbol)}, ${cString(JSON.stringify(c.config))}, ${candidateFns(op, instance.symbol)}},`);
    }
    t.push('};', '');
  });
  t.push('const AitCkProfileOp ait_ck_profile_ops[] = {');
  ops.forEach((op, i) => {
    const operands =
      op.kind === 'gemm' || op.kind === 'batched_gemm' || op.kind === 'conv' ? op.steps.filter((s) => /Input</.test(s)).length : 0;
    t.push(
      `  {${cString(op.signature)}, ${KIND_CODE[op.kind]}, ${operands}, problems_${i}, ${op.problems.length}, reference_${i}, candidates_${i}, ${op.candidates.length}},`,
    );
  });
  if (ops.length === 0) t.push('  {"", 0, 0, nullptr, 0, nullptr, nullptr, 0},');
  t.push('};', `const int ait_ck_profile_num_ops = ${ops.length};`, '', '#endif', '');
  files.set('profile/src/profile_table.cu', t.join('\n'));

  for (const [file, text] of cudaSourceFiles())
    if (file.startsWith('hip-profiler/')) files.set(`profile/src/${file.slice('hip-profiler/'.length)}`, text);
  files.set(
    'profile/Makefile',
    ckProfilerMakefile(
      arch,
      [...instances.values()].map((i) => i.file),
    ),
  );
  return files;
}

function ckProfilerMakefile(arch: RocmArch, instanceSources: readonly string[]): string {
  return [
    `# Generated by AIT: builds ait_profiler (every candidate CK instance of the model's ops) for ${arch} with hipcc.`,
    '# Usage: make -j$(nproc) CK_DIR=...; run ./ait_profiler [--worker K --workers N]',
    'HIPCC ?= hipcc',
    'export HIP_PLATFORM := amd',
    `OFFLOAD_ARCH ?= ${arch}`,
    'ARCH_FLAGS := --offload-arch=$(OFFLOAD_ARCH)',
    `HIPFLAGS := -std=c++17 -O3 -DNDEBUG $(ARCH_FLAGS) -Wno-unused-result -DAIT_CK_RELEASE='"${CK_RELEASE}"' -Isrc -I../src/hip -I../src/kernels`,
    'CK_FLAGS := -I$(CK_DIR)/include -I$(CK_DIR)/library/include',
    `INSTANCE_SOURCES := ${instanceSources.join(' ')}`,
    'INSTANCE_OBJECTS := $(INSTANCE_SOURCES:src/%.cu=build/%.o)',
    '',
    '.PHONY: all clean instances',
    'all: ait_profiler',
    '',
    '# A candidate that does not compile (or no CK_DIR) is left out: its entry point is a weak null, reported as',
    '# build-failed, so the instances are built with -k and failures ignored; the link takes the objects that exist.',
    'instances: $(INSTANCE_OBJECTS)',
    '',
    '# the profile cache key of this host (GPU, CUs, driver, HIP, CK release): seconds to build, no CK instance',
    'device_info: src/device_info.cu',
    '\t$(HIPCC) -x hip $(HIPFLAGS) $< -o $@',
    '',
    'build:',
    '\tmkdir -p build',
    '',
    'build/ck_%.o: src/ck_%.cu | build',
    '\t@test -f $(CK_DIR)/include/ck/ck.hpp || { echo "CK_DIR=$(CK_DIR) has no include/ck/ck.hpp: set CK_DIR to a composable_kernel checkout"; exit 1; }',
    '\t$(HIPCC) -x hip $(HIPFLAGS) $(CK_FLAGS) -c $< -o $@',
    '',
    'build/%.o: src/%.cu | build',
    '\t$(HIPCC) -x hip $(HIPFLAGS) -c $< -o $@',
    '',
    'ait_profiler: build/ait_ck_profiler.o build/profile_table.o',
    '\t-@$(MAKE) -k instances',
    '\t$(HIPCC) $(ARCH_FLAGS) $^ $$(ls $(INSTANCE_OBJECTS) 2>/dev/null) -o $@',
    '',
    'clean:',
    '\trm -rf build ait_profiler device_info',
    '',
  ].join('\n');
}
