/**
 * The ROCm backend (rocm:gfx90a, rocm:gfx942): the shared GPU sources compiled as HIP (backends/rocm/README.md).
 * Code generation is the CUDA generator's walk (cuda/codegen/index.ts generateGpu) over this backend's lowerings
 * (lowerings.ts), shipping the runtime, our kernels and the HIP portability headers, with a hipcc Makefile.
 */
import { error } from '../../diagnostics';
import { registerBackend } from '../backend';
import { needsLowering, runtimeDimErrors } from '../cuda/codegen/context';
import { benchSource } from '../cuda/codegen/build-files';
import { GpuPlatform, emptySummary, generateGpu } from '../cuda/codegen/index';
import { noLoweringReason } from '../cuda/codegen/lower';
import { RocmArch, hipMakefile } from './build-files';
import { CkLibrary } from './ck/library';
import { ckProfilerFiles } from './ck/profiling';
import { ROCM_BACKEND } from './lowerings';

const TARGETS: { id: string; arch: RocmArch; detail: string }[] = [
  { id: 'rocm:gfx90a', arch: 'gfx90a', detail: 'AMD CDNA 2 (MI210, MI250, MI250X)' },
  { id: 'rocm:gfx942', arch: 'gfx942', detail: 'AMD CDNA 3 (MI300X, MI300A)' },
];

export function rocmPlatform(arch: RocmArch): GpuPlatform {
  return {
    backend: ROCM_BACKEND,
    shipsSource: (file) =>
      file.startsWith('runtime/') || file.startsWith('kernels/') || file.startsWith('hip/') ? `src/${file}` : undefined,
    buildFiles: (modelName, instanceFiles) => [
      ['Makefile', hipMakefile(modelName, arch, instanceFiles)],
      ['src/ait_bench.cu', benchSource()],
    ],
    profiler: (ops) => ckProfilerFiles(ops, arch),
    library: (ctx) => new CkLibrary(ctx, arch),
  };
}

registerBackend({
  id: ROCM_BACKEND,
  name: 'ROCm',
  kernelLibrary: 'CK',
  targets: TARGETS.map((t) => ({ id: t.id, label: t.id, detail: t.detail })),
  host: { compiler: 'hipcc', libraryDir: 'CK_DIR', visibleDevices: 'HIP_VISIBLE_DEVICES' },
  needsLowering,
  noLoweringReason: (op) => noLoweringReason(op, ROCM_BACKEND),
  runtimeDimErrors,
  generate(graph, options) {
    const arch = TARGETS.find((t) => t.id === options.target)?.arch;
    if (!arch)
      return { files: new Map(), diagnostics: [error('rocm.target', `'${options.target}' is not a ROCm target`)], summary: emptySummary() };
    return generateGpu(graph, options, rocmPlatform(arch));
  },
});
