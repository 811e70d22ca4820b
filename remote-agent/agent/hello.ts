/** `hello`: what this host offers. Every probe runs a tool with a time limit and no shell. */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { AGENT_VERSION, type GpuInfo, type HelloResult, type PythonInfo, type ToolVersion } from '../protocol';
import { loadNativeBinding } from './native-binding';

interface ToolRun {
  ok: boolean;
  stdout: string;
  stderr: string;
  /** Set when the tool could not be started at all (ENOENT: not installed). */
  missing: boolean;
}

const PROBE_TIMEOUT_MS = 20_000;

export function runTool(file: string, args: string[], timeoutMs = PROBE_TIMEOUT_MS): Promise<ToolRun> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 4 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      resolve({ ok: !err, stdout, stderr, missing: code === 'ENOENT' });
    });
  });
}

export async function probeGpus(): Promise<Pick<HelloResult, 'gpus' | 'gpuProbe'>> {
  const smi = await runTool('nvidia-smi', ['--query-gpu=index,name,memory.total,compute_cap', '--format=csv,noheader,nounits']);
  if (smi.ok) {
    const gpus = parseNvidiaSmi(smi.stdout);
    return { gpus, gpuProbe: { tool: 'nvidia-smi', note: `nvidia-smi lists ${gpus.length} GPU(s)` } };
  }
  const rocm = await runTool('rocm-smi', ['--showproductname', '--showmeminfo', 'vram', '--json']);
  if (rocm.ok) {
    const gpus = parseRocmSmi(rocm.stdout);
    return { gpus, gpuProbe: { tool: 'rocm-smi', note: `rocm-smi lists ${gpus.length} GPU(s)` } };
  }
  const why = [
    smi.missing ? 'nvidia-smi not found' : `nvidia-smi failed: ${firstLine(smi.stderr || smi.stdout)}`,
    rocm.missing ? 'rocm-smi not found' : `rocm-smi failed: ${firstLine(rocm.stderr || rocm.stdout)}`,
  ];
  return { gpus: [], gpuProbe: { tool: null, note: `no GPU found (${why.join('; ')})` } };
}

/** nvidia-smi --query-gpu=index,name,memory.total,compute_cap --format=csv,noheader,nounits */
export function parseNvidiaSmi(stdout: string): GpuInfo[] {
  return stdout
    .split('\n')
    .map((l) => l.split(',').map((f) => f.trim()))
    .filter((f) => f.length >= 4 && /^\d+$/.test(f[0]))
    .map(([index, name, mem, cc]) => ({
      index: Number(index),
      name,
      memoryMiB: /^\d+$/.test(mem) ? Number(mem) : null,
      computeCapability: cc,
    }));
}

/** rocm-smi --json: { "card0": { "Card series": ..., "VRAM Total Memory (B)": ..., "GFX Version": ... }, ... } */
export function parseRocmSmi(stdout: string): GpuInfo[] {
  let parsed: Record<string, Record<string, string>>;
  try {
    parsed = JSON.parse(stdout) as Record<string, Record<string, string>>;
  } catch {
    return [];
  }
  return Object.entries(parsed)
    .filter(([k]) => /^card\d+$/.test(k))
    .map(([k, v]) => {
      const bytes = Number(v['VRAM Total Memory (B)']);
      return {
        index: Number(k.slice(4)),
        name: v['Card series'] ?? v['Card model'] ?? k,
        memoryMiB: Number.isFinite(bytes) ? Math.round(bytes / 2 ** 20) : null,
        gfxArch: v['GFX Version'],
      };
    });
}

async function toolVersion(file: string): Promise<ToolVersion | null> {
  const r = await runTool(file, ['--version']);
  if (!r.ok) return null;
  const line = r.stdout.split('\n').find((l) => /release|version/i.test(l)) ?? firstLine(r.stdout);
  const which = await runTool('sh', ['-c', 'command -v "$1"', 'sh', file]);
  return { path: which.ok ? which.stdout.trim() : file, version: line.trim() };
}

const PYTHON_PROBE = `
import json, sys
info = {"version": sys.version.split()[0], "path": sys.executable, "torch": None, "torchCuda": False, "onnxruntime": None}
try:
    import torch
    info["torch"] = torch.__version__
    info["torchCuda"] = bool(torch.cuda.is_available())
except Exception:
    pass
try:
    import onnxruntime
    info["onnxruntime"] = onnxruntime.__version__
except Exception:
    pass
print(json.dumps(info))
`;

async function probePython(): Promise<PythonInfo | null> {
  const r = await runTool('python3', ['-c', PYTHON_PROBE], 60_000);
  if (!r.ok) return null;
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as PythonInfo;
  } catch {
    return null;
  }
}

function dirFromEnv(name: string): { path: string; exists: boolean } | null {
  const value = process.env[name];
  if (!value) return null;
  return { path: value, exists: fs.existsSync(value) };
}

export async function hello(workDir: string): Promise<HelloResult> {
  const [gpuPart, nvcc, hipcc, python] = await Promise.all([probeGpus(), toolVersion('nvcc'), toolVersion('hipcc'), probePython()]);
  const lookup = loadNativeBinding(workDir);
  const result: HelloResult = {
    agentVersion: AGENT_VERSION,
    node: { version: process.version, execPath: process.execPath },
    host: { hostname: os.hostname(), platform: os.platform(), arch: os.arch(), user: os.userInfo().username },
    workDir,
    ...gpuPart,
    nvcc,
    hipcc,
    cutlassDir: dirFromEnv('CUTLASS_DIR'),
    ckDir: dirFromEnv('CK_DIR'),
    python,
    nativeBinding: 'unavailable' in lookup ? { unavailable: lookup.unavailable } : { path: lookup.path },
    notes: [],
  };
  if (result.gpus.length === 0) result.notes.push(result.gpuProbe.note);
  if (!nvcc && !hipcc) result.notes.push('neither nvcc nor hipcc is on PATH: builds cannot run here');
  if (!result.cutlassDir) result.notes.push('CUTLASS_DIR is not set (CUDA builds need the CUTLASS headers)');
  else if (!result.cutlassDir.exists) result.notes.push(`CUTLASS_DIR=${result.cutlassDir.path} does not exist`);
  if (result.ckDir && !result.ckDir.exists) result.notes.push(`CK_DIR=${result.ckDir.path} does not exist`);
  if (!python?.onnxruntime) {
    result.notes.push(
      `${python ? 'python3 has no onnxruntime' : 'python3 not found'}: verify's reference is onnxruntime-node when installed in ${workDir}, else the (slow) interpreter`,
    );
  }
  if ('unavailable' in lookup) result.notes.push(`bench falls back to ait_bench: ${lookup.unavailable}`);
  return result;
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0] ?? '';
}
