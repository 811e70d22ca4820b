/**
 * PyTorch eager time per module for `ait remote verify --per-node --torch-model FILE.py:FUNCTION`: the agent writes
 * scripts/gpu/module_times.py (moduleTimesScript(): the agent bundle carries it inline) into the job and runs it with python3 on the debug run's inputs, when python3 imports torch and sees a GPU; the
 * module times join our per-op profile in the per-module table (compiler/verify/module-times.ts). Otherwise the
 * report says why the PyTorch column is empty.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseTorchTimes, type TorchModuleTimes } from '../../compiler/verify/module-times';
import { moduleTimesScript } from './module-times-script';

export const MODULE_TIMES_FILE = 'module_times.py';

export interface TorchTimesRequest {
  /** FILE.py:FUNCTION, FILE an absolute path on this host. */
  factory: string;
  /** The debug run's inputs (.npy, float32), in the ONNX model's input order. */
  inputs: string[];
  /** Where the script and its output go. */
  scratchDir: string;
  runs?: number;
  warmup?: number;
  log: (line: string) => void;
}

/** PyTorch's module times, or why there are none (never throws for a host without torch or a failing factory). */
export async function runTorchTimes(request: TorchTimesRequest): Promise<{ times: TorchModuleTimes } | { missing: string }> {
  const probe = spawnSync('python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 120_000 });
  if (probe.error) return { missing: `python3 does not run (${(probe.error as NodeJS.ErrnoException).code ?? probe.error.message})` };
  if (probe.status !== 0) return { missing: `python3 has no torch (${lastLine(probe.stderr)})` };
  const script = path.join(request.scratchDir, MODULE_TIMES_FILE);
  const out = path.join(request.scratchDir, 'torch-module-times.json');
  fs.writeFileSync(script, moduleTimesScript());
  const args = [
    script,
    '--torch-model',
    request.factory,
    '--runs',
    String(request.runs ?? 20),
    '--warmup',
    String(request.warmup ?? 5),
    '--out',
    out,
    '--inputs',
    ...request.inputs,
  ];
  request.log(`module times: PyTorch ${probe.stdout.trim()} eager, ${request.factory}`);
  // Its output goes to the job's log as it comes (same process group: cancel ends it too).
  const child = spawn('python3', args, { stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-8000);
    process.stderr.write(d);
  });
  const code = await new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(null));
    child.on('close', (c) => resolve(c));
  });
  if (code !== 0)
    return { missing: `python3 ${MODULE_TIMES_FILE} --torch-model ${request.factory} exited with ${code}: ${lastLine(stderr)}` };
  try {
    return { times: parseTorchTimes(JSON.parse(fs.readFileSync(out, 'utf8')), out) };
  } catch (e) {
    return { missing: (e as Error).message };
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] || '(no message)';
}
