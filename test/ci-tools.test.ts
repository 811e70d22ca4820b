/**
 * Strict CI: without chromium, sshd, nvcc or hipcc, the tests that need them skip on a developer machine but fail under
 * CI=true, naming the tool; .ci/check-tools (run by .ci/run) fails naming each missing tool.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requireTool, toolPresent } from './helpers/tools';

const ROOT = path.resolve(__dirname, '..');

describe('strict CI: tools the tests need', () => {
  const saved = process.env.CI;
  afterEach(() => {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  });
  /** A Mocha context whose skip() is recorded (and, like mocha's, ends the test by throwing). */
  const fakeContext = () => {
    const ctx = { skipped: false, skip: () => ((ctx.skipped = true), assert.fail('skipped')) };
    return ctx;
  };

  it('a missing tool skips the test, saying so, when CI is not set', () => {
    delete process.env.CI;
    const ctx = fakeContext();
    assert.throws(() => requireTool(ctx as unknown as Mocha.Context, 'sshd', false, 'apt-get install openssh-server'), /skipped/);
    assert.equal(ctx.skipped, true);
    assert.equal(toolPresent('nvcc', false, 'x'), false);
  });

  it('a missing tool fails the test under CI=true, naming the tool', () => {
    process.env.CI = 'true';
    for (const tool of ['chromium', 'sshd', 'nvcc', 'hipcc']) {
      const ctx = fakeContext();
      assert.throws(
        () => requireTool(ctx as unknown as Mocha.Context, tool, false, 'how to get it'),
        new RegExp(`^Error: ${tool} is missing \\(how to get it\\); CI=true requires it`),
      );
      assert.equal(ctx.skipped, false);
      assert.throws(() => toolPresent(tool, false, 'how'), new RegExp(`${tool} is missing`));
    }
    requireTool(fakeContext() as unknown as Mocha.Context, 'nvcc', true, 'x'); // present: nothing happens
  });

  it('.ci/check-tools fails naming each missing tool, and passes when all are here', () => {
    // The same lookups the tests make.
    const chromium = process.env.AIT_CHROMIUM ?? '/usr/bin/chromium';
    const present = {
      chromium: fs.existsSync(chromium),
      sshd: fs.existsSync('/usr/sbin/sshd'),
      nvcc: spawnSync('nvcc', ['--version']).status === 0,
      hipcc: spawnSync('sh', ['-c', 'command -v hipcc']).status === 0,
    };
    const r = spawnSync(path.join(ROOT, '.ci', 'check-tools'), { encoding: 'utf8' });
    const output = `${r.stdout}${r.stderr}`;
    for (const [tool, here] of Object.entries(present))
      assert.equal(new RegExp(`^check-tools: ${tool} is missing`, 'm').test(output), !here, `${tool}: ${output}`);
    assert.equal(r.status, Object.values(present).every(Boolean) ? 0 : 1, output);

    // A PATH without nvcc or hipcc, a chromium that does not exist: both named (sshd depends on the machine).
    const bare = spawnSync('/bin/bash', [path.join(ROOT, '.ci', 'check-tools')], {
      encoding: 'utf8',
      env: { PATH: '/nonexistent', AIT_CHROMIUM: '/nonexistent/chromium' },
    });
    assert.equal(bare.status, 1);
    assert.match(bare.stderr, /^check-tools: chromium is missing: \/nonexistent\/chromium not found/m);
    assert.match(bare.stderr, /^check-tools: nvcc is missing/m);
    assert.match(bare.stderr, /^check-tools: hipcc is missing/m);
  });
});
