/**
 * Parsed outcomes of ended jobs, computed from the log and exit status on disk (so a restarted agent computes the
 * same result): compiler diagnostics of builds, the JSON line of bench/profile runs.
 */
import * as path from 'node:path';
import type { Diagnostic, Severity } from '../../compiler/diagnostics';
import type { JobInfo, JobResult } from '../protocol';

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
