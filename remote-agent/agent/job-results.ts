/**
 * Parsed outcomes of ended jobs, computed from the log and exit status on disk (so a restarted agent computes the
 * same result): compiler diagnostics of builds, the JSON line of bench/profile runs.
 */
import * as path from 'node:path';
import type { Diagnostic, Severity } from '../../compiler/diagnostics';
import { perNodeDiagnostics } from '../../compiler/verify/per-node';
import type { JobInfo, JobResult, VerifyJobResult, VerifyReport } from '../protocol';

// gcc / clang / g++ as called by nvcc for host code:  file:line[:col]: error: message
const GCC_RE = /^(.+?):(\d+)(?::(\d+))?:\s+(fatal error|error|warning):\s+(.*)$/;
// nvcc / cudafe:  file(line): error: message   or   file(line): error #20011-D: message
const NVCC_RE = /^(.+?)\((\d+)\):\s+(error|warning)(?:\s+#[\w-]+)?:\s+(.*)$/;
// GNU ld: undefined references and the like.
const LD_RE = /^(?:\S*\/)?(?:ld|collect2)(?:\.\w+)?:\s+(.*)$/;
const MAKE_RE = /^make(?:\[\d+\])?: \*\*\* (.*)$/;

/** Compiler/linker diagnostics of a build log; files inside `buildDir` become relative to it. */
export function parseBuildLog(log: string, buildDir: string): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  const add = (d: Diagnostic) => {
    const key = JSON.stringify(d);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(d);
    }
  };
  const rel = (file: string) => {
    const abs = path.resolve(buildDir, file);
    const r = path.relative(buildDir, abs);
    return r.startsWith('..') || path.isAbsolute(r) ? abs : r;
  };
  for (const raw of log.split('\n')) {
    const line = raw.trimEnd();
    let m = NVCC_RE.exec(line);
    if (m) {
      const severity: Severity = m[3] === 'warning' ? 'warning' : 'error';
      add({ code: `build.compile-${severity}`, severity, message: m[4], location: { file: rel(m[1]), line: Number(m[2]) } });
      continue;
    }
    m = GCC_RE.exec(line);
    if (m) {
      const severity: Severity = m[4] === 'warning' ? 'warning' : 'error';
      add({ code: `build.compile-${severity}`, severity, message: m[5], location: { file: rel(m[1]), line: Number(m[2]) } });
      continue;
    }
    m = LD_RE.exec(line);
    if (m) add({ code: 'build.link-error', severity: 'error', message: m[1] });
  }
  return out;
}

/** The last line of `log` that parses as a JSON object. */
export function lastJsonObject(log: string): unknown {
  const lines = log.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const t = lines[i].trim();
    if (!t.startsWith('{')) continue;
    try {
      return JSON.parse(t) as unknown;
    } catch {
      // not JSON: keep looking further up
    }
  }
  return null;
}

function endedDiagnostic(job: JobInfo, log: string): Diagnostic | null {
  if (job.state === 'exited' && job.exitCode === 0) return null;
  const what =
    job.state === 'cancelled'
      ? 'was cancelled'
      : job.state === 'lost'
        ? 'ended without recording its exit status (its supervisor was killed)'
        : job.signal
          ? `was killed by ${job.signal}`
          : `exited with code ${job.exitCode}`;
  const makeFailure = log
    .split('\n')
    .map((l) => MAKE_RE.exec(l.trimEnd()))
    .find((m) => m !== null);
  return {
    code: `job.${job.state === 'exited' ? 'failed' : job.state}`,
    severity: 'error',
    message: `${job.kind} job ${job.id} (${job.argv.join(' ')}) ${what}${makeFailure ? `: ${makeFailure[1]}` : ''}`,
    location: { file: job.logPath },
  };
}

export function jobResult(job: JobInfo, log: string): JobResult {
  const ok = job.state === 'exited' && job.exitCode === 0;
  const failure = endedDiagnostic(job, log);
  if (job.kind === 'build') {
    const diagnostics = parseBuildLog(log, job.cwd);
    if (failure) diagnostics.push(failure);
    return { kind: 'build', ok, exitCode: job.exitCode, diagnostics };
  }
  if (job.kind === 'verify') return verifyJobResult(job, log, failure);
  const json = lastJsonObject(log);
  const diagnostics: Diagnostic[] = failure ? [failure] : [];
  if (ok && json === null) {
    diagnostics.push({
      code: `${job.kind}.no-json`,
      severity: 'error',
      message: `${job.argv.join(' ')} printed no JSON object line`,
      location: { file: job.logPath },
    });
  }
  return { kind: job.kind, ok: ok && json !== null, exitCode: job.exitCode, gpu: job.gpu, json, diagnostics };
}

/**
 * A verify job's outcome: its report (the last JSON line), one error per failing output and batch (located at the
 * ONNX model file and the output), the report's own error, and how the job ended when it printed no report.
 */
function verifyJobResult(job: JobInfo, log: string, failure: Diagnostic | null): VerifyJobResult {
  const json = lastJsonObject(log) as Partial<VerifyReport> | null;
  const report = json && typeof json.ok === 'boolean' && Array.isArray(json.results) ? (json as VerifyReport) : null;
  const diagnostics: Diagnostic[] = [];
  if (report?.error) diagnostics.push(report.error);
  for (const r of report?.results ?? []) {
    if (r.pass) continue;
    diagnostics.push({
      code: 'verify.mismatch',
      severity: 'error',
      message: `output '${r.output}' at batch ${r.batchSize} does not match the reference (${report!.reference?.kind ?? 'unknown'}): ${r.failure ?? 'failed'}`,
      location: { file: report!.onnxModel, tensor: r.output },
    });
  }
  if (report?.perNode) diagnostics.push(...perNodeDiagnostics(report.perNode, report.onnxModel));
  // A job that ran to its report exits 1 when an output fails: the report says why, the exit code adds nothing.
  if (failure && (!report || job.state !== 'exited' || job.exitCode !== 1)) diagnostics.push(failure);
  if (!report && !failure) {
    diagnostics.push({
      code: 'verify.no-report',
      severity: 'error',
      message: `verify job ${job.id} printed no report`,
      location: { file: job.logPath },
    });
  }
  return {
    kind: 'verify',
    ok: job.state === 'exited' && job.exitCode === 0 && !!report?.ok,
    exitCode: job.exitCode,
    gpu: job.gpu,
    report,
    diagnostics,
  };
}
