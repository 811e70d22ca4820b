/**
 * Hostile and careless options of `ait inspect|compile|graph` (issue #12): each is refused with one diagnostic line on
 * stderr naming the cause, a non-zero exit code, no stack trace, and (for compile) nothing written. Runs dist/cli.js
 * (built by `npm run build`); the last-resort handler of main() runs in-process.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { reportError } from '../compiler/cli/main';
import { buildModel } from './helpers/onnx-builder';

const CLI = path.resolve(__dirname, '..', 'dist', 'cli.js');

function ait(args: string[], cwd?: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The one line on stderr; fails when there is more, or a stack trace. */
function oneLine(r: { status: number | null; stderr: string; stdout: string }): string {
  assert.notEqual(r.status, 0, `expected a failure:\n${r.stdout}${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  const lines = r.stderr.split('\n').filter((l) => l.trim());
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  return lines[0];
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ait-options-'));
}

/** y = Relu(x · W): one GEMM over a symbolic batch (fast to compile). */
function gemmModel(): string {
  const dir = tmpDir();
  const file = path.join(dir, 'gemm.onnx');
  fs.writeFileSync(
    file,
    buildModel({
      inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 64] }],
      initializers: [{ name: 'w', dtype: 'float32', dims: [64, 64], values: new Float32Array(64 * 64).fill(0.01) }],
      nodes: [
        { op: 'MatMul', inputs: ['x', 'w'], outputs: ['h'] },
        { op: 'Relu', inputs: ['h'], outputs: ['y'] },
      ],
      outputs: ['y'],
    }),
  );
  return file;
}

describe('ait options (hostile input, one-line errors)', function () {
  this.timeout(60_000);
  let model: string;
  before(() => {
    assert.ok(fs.existsSync(CLI), 'dist/cli.js is built (npm run build)');
    model = gemmModel();
  });

  describe('--dim', () => {
    it('refuses a zero bound (it crashed with a TypeError), for inspect and compile', () => {
      for (const command of ['inspect', 'compile']) {
        const out = path.join(tmpDir(), 'out');
        const line = oneLine(ait([command, model, '--dim', 'batch=0..0', ...(command === 'compile' ? ['--out', out] : [])]));
        assert.equal(
          line,
          "error [cli.bad-option]: option '--dim <name=min..max>' argument 'batch=0..0' is invalid. " +
            "--dim batch=0..0: bounds are integers from 1 to 2147483647, got '0' (see ait --help)",
        );
        assert.ok(!fs.existsSync(out));
      }
    });

    it('refuses bounds that are not integers up to 2^31-1: 1e20, 2^31, 1.5, -1', () => {
      for (const [value, bad] of [
        ['batch=1..1e20', '1e20'],
        ['batch=1..2147483648', '2147483648'],
        ['batch=1.5', '1.5'],
        ['batch=-1..4', '-1'],
      ]) {
        const line = oneLine(ait(['inspect', model, '--dim', value]));
        assert.match(line, /^error \[cli\.bad-option\]: /);
        assert.ok(line.includes(`got '${bad}'`) || line.includes('expected NAME=MIN..MAX'), line);
      }
    });

    it('names a dim the model does not have and lists the ones it has (it was ignored)', () => {
      const expected =
        "error [cli.unknown-dim]: --dim nosuchdim: the model has no symbolic input dim 'nosuchdim'; its symbolic input dims are batch";
      assert.equal(oneLine(ait(['inspect', model, '--dim', 'nosuchdim=1..4'])), expected);
      const out = path.join(tmpDir(), 'out');
      assert.equal(oneLine(ait(['compile', model, '--dim', 'nosuchdim=1..4', '--out', out])), expected);
      assert.ok(!fs.existsSync(out), 'nothing written');
    });

    it('accepts the bounds of a dim the model has', () => {
      const r = ait(['inspect', model, '--dim', 'batch=2..8', '--json']);
      assert.equal(r.status, 0, r.stderr);
      const batch = JSON.parse(r.stdout).symbols.find((s: { name: string }) => s.name === 'batch');
      assert.deepEqual([batch.min, batch.max], [2, 8]);
    });
  });

  describe('--max-batch', () => {
    it('refuses 1e12, 100000 and 0 with one line', () => {
      assert.equal(
        oneLine(ait(['compile', model, '--max-batch', '1e12', '--out', path.join(tmpDir(), 'o')])),
        "error [cli.bad-option]: option '--max-batch <n>' argument '1e12' is invalid. --max-batch takes a positive integer, got '1e12' (see ait --help)",
      );
      assert.equal(
        oneLine(ait(['compile', model, '--max-batch', '100000', '--out', path.join(tmpDir(), 'o')])),
        "error [cli.bad-option]: option '--max-batch <n>' argument '100000' is invalid. --max-batch 100000: a build serves at most batch 65536 (see ait --help)",
      );
      assert.match(oneLine(ait(['compile', model, '--max-batch', '0'])), /--max-batch takes a positive integer, got '0'/);
    });

    it('refuses a batch dim bounded above 65536 when no --max-batch is given', () => {
      const out = path.join(tmpDir(), 'out');
      assert.equal(
        oneLine(ait(['compile', model, '--dim', 'batch=1..100000', '--out', out])),
        'error [cli.bad-option]: --dim batch=..100000: a build serves at most batch 65536; lower the bound or give --max-batch N (N ≤ 65536)',
      );
      assert.ok(!fs.existsSync(out));
    });

    it('compiles --max-batch 65536 in seconds (the batch ranges do not visit every batch)', () => {
      const out = path.join(tmpDir(), 'out');
      const t0 = Date.now();
      const r = ait(['compile', model, '--max-batch', '65536', '--out', out]);
      assert.equal(r.status, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /max batch 65536/);
      assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
    });
  });

  describe('--target', () => {
    it("refuses '', an unknown target and an unknown architecture of a backend before compiling: one line, nothing written", () => {
      const all = 'cuda:sm90, cuda:sm80, rocm:gfx90a, rocm:gfx942';
      const cases: [string, string][] = [
        ['', `error [compile.bad-target]: no target given: use one of ${all}`],
        ['cuda:sm70', "error [compile.bad-target]: unknown CUDA target 'cuda:sm70': use one of cuda:sm90, cuda:sm80"],
        ['rocm:gfx1100', "error [compile.bad-target]: unknown ROCm target 'rocm:gfx1100': use one of rocm:gfx90a, rocm:gfx942"],
        ['tpu:v5', `error [compile.bad-target]: unknown target 'tpu:v5': use one of ${all}`],
      ];
      for (const [target, expected] of cases) {
        const out = path.join(tmpDir(), 'out');
        assert.equal(oneLine(ait(['compile', model, '--target', target, '--out', out])), expected);
        assert.ok(!fs.existsSync(out), `nothing written for --target '${target}'`);
      }
    });

    it('compiles for each known target', () => {
      for (const target of ['cuda:sm90', 'cuda:sm80']) {
        const r = ait(['compile', model, '--target', target, '--out', path.join(tmpDir(), 'out')]);
        assert.equal(r.status, 0, r.stderr + r.stdout);
      }
    });
  });

  describe('--verify, --bench, --build without --remote', () => {
    it('is one line (it was a commander stack), nothing written', () => {
      const out = path.join(tmpDir(), 'out');
      assert.equal(
        oneLine(ait(['compile', model, '--verify', '--out', out])),
        "error [cli.bad-option]: --verify needs --remote HOST (a GPU host, or 'local')",
      );
      assert.match(
        oneLine(ait(['compile', model, '--bench', '1,8', '--out', out])),
        /^error \[cli\.bad-option\]: --bench needs --remote HOST/,
      );
      assert.match(oneLine(ait(['compile', model, '--build', '--out', out])), /^error \[cli\.bad-option\]: --build needs --remote HOST/);
      assert.ok(!fs.existsSync(out));
    });
  });

  describe('usage errors', () => {
    it('an unknown option or a missing argument is one line; --help still prints the help and exits 0', () => {
      assert.equal(oneLine(ait(['compile', model, '--zzzz'])), "error [cli.bad-option]: unknown option '--zzzz' (see ait --help)");
      assert.equal(oneLine(ait(['inspect'])), "error [cli.bad-option]: missing required argument 'model' (see ait --help)");
      const help = ait(['compile', '--help']);
      assert.equal(help.status, 0);
      assert.match(help.stdout, /--max-batch <n>\s+largest batch the build serves, at most 65536/);
      assert.match(help.stdout, /--target <target>\s+target: cuda:sm90, cuda:sm80/);
    });
  });

  describe('main() last resort', () => {
    it('prints any other exception as one `error [internal]` line and returns exit code 1', () => {
      const lines: string[] = [];
      const code = reportError(new TypeError("Cannot read properties of undefined (reading 'source')\n    at x (y.js:1:1)"), (s) =>
        lines.push(s),
      );
      assert.equal(code, 1);
      assert.deepEqual(lines, [
        "error [internal] an unexpected failure (a defect of ait; please report it): TypeError: Cannot read properties of undefined (reading 'source') at x (y.js:1:1)",
      ]);
      assert.equal(
        reportError('a string', () => {}),
        1,
      );
    });
  });
});
