/**
 * The agent's path policy (remote-agent/agent/paths.ts): insideRoot() on its own, then through the agent over the
 * local transport: sync, build, profile, verify and job requests whose paths would leave the work directory are
 * refused, naming the path, and nothing is written outside it.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CompileError, type Diagnostic } from '../../compiler/diagnostics';
import { AgentError } from '../../remote-agent/agent/errors';
import { insideRoot } from '../../remote-agent/agent/paths';
import { isWithin } from '../../compiler/paths';
import { openSession, type RemoteSession } from '../../remote-agent/client';
import { agentBundle, fixtureCopy } from './helpers/agent-bundle';

/** Every entry under `dir` (files, directories, links), relative, sorted. */
function tree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

function refusedWith(code: string, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof AgentError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  };
}

describe('agent path policy: insideRoot', () => {
  let tmp: string;
  let root: string;
  let outside: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-paths-'));
    root = path.join(tmp, 'root');
    outside = path.join(tmp, 'outside');
    fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
    fs.mkdirSync(outside);
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('joins plain relative paths, existing or not', () => {
    assert.equal(insideRoot(root, 'a.txt'), path.join(root, 'a.txt'));
    assert.equal(insideRoot(root, 'sub/new/deeper.cu'), path.join(root, 'sub', 'new', 'deeper.cu'));
    assert.equal(insideRoot(root, '..hidden/x..y'), path.join(root, '..hidden', 'x..y'), "'..' only as a whole segment");
    assert.equal(insideRoot(path.join(root, 'not-yet'), 'x'), path.join(root, 'not-yet', 'x'), 'a root that does not exist yet');
  });

  it("refuses absolute paths, '..' escapes, NUL bytes, backslashes and empty or '.' segments, naming the path", () => {
    const cases: [unknown, RegExp][] = [
      ['/etc/x', /^path "\/etc\/x" is absolute/],
      ['../x', /^path "\.\.\/x" leaves .* through '\.\.'/],
      ['sub/../../x', /through '\.\.'/],
      ['sub/../a', /through '\.\.'/],
      ['..', /through '\.\.'/],
      ['a\0b', /holds a NUL byte/],
      ['a\\..\\..\\x', /holds a backslash/],
      ['C:/x', /is absolute/],
      ['', /is empty/],
      ['./a', /not a plain relative path/],
      ['a//b', /not a plain relative path/],
      ['a/', /not a plain relative path/],
      [42, /is not a string/],
    ];
    for (const [rel, pattern] of cases)
      assert.throws(() => insideRoot(root, rel as string), refusedWith('path.outside-root', pattern), JSON.stringify(rel));
    assert.throws(
      () => insideRoot(root, '../x', { what: 'manifest path', code: 'sync.bad-path' }),
      refusedWith('sync.bad-path', /^manifest path/),
    );
  });

  it('refuses escapes through symlinks: a directory link, a file link, a link that leads nowhere', () => {
    fs.symlinkSync(outside, path.join(root, 'out'));
    fs.symlinkSync('/etc/passwd', path.join(root, 'passwd'));
    fs.symlinkSync(path.join(outside, 'missing', 'dir'), path.join(root, 'dangling'));
    fs.symlinkSync('../../outside', path.join(root, 'sub', 'up'));
    for (const rel of ['out', 'out/x', 'out/new/deeper/x', 'sub/up/x'])
      assert.throws(() => insideRoot(root, rel), refusedWith('path.outside-root', /leaves .* through a symlink \(it resolves to /), rel);
    assert.throws(() => insideRoot(root, 'passwd'), refusedWith('path.outside-root', /resolves to \/etc\/passwd/));
    for (const rel of ['dangling', 'dangling/x'])
      assert.throws(() => insideRoot(root, rel), refusedWith('path.outside-root', /symlink that leads nowhere/), rel);
    assert.deepEqual(tree(outside), []);
  });

  it('accepts symlinks that stay inside, and a root that is itself reached through a symlink', () => {
    fs.symlinkSync('sub', path.join(root, 'alias'));
    assert.equal(insideRoot(root, 'alias/x'), path.join(root, 'alias', 'x'));
    const linkedRoot = path.join(tmp, 'linked-root');
    fs.symlinkSync(root, linkedRoot);
    assert.equal(insideRoot(linkedRoot, 'sub/x'), path.join(linkedRoot, 'sub', 'x'));
    assert.ok(isWithin('/a/b', '/a/b') && isWithin('/a/b', '/a/b/..c') && !isWithin('/a/b', '/a/bc') && !isWithin('/a/b', '/a'));
  });
});

describe('agent path policy through the agent (local transport)', function () {
  this.timeout(60_000);
  let session: RemoteSession;
  let tmp: string;
  let workDir: string;
  let outside: string;
  let local: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-agent-paths-'));
    workDir = path.join(tmp, 'work');
    outside = path.join(tmp, 'outside');
    fs.mkdirSync(outside);
    session = await openSession('local', { agentBundlePath: await agentBundle(), remoteWorkDir: workDir });
    local = fixtureCopy('good-build');
  });
  after(() => {
    session?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    if (local) fs.rmSync(local, { recursive: true, force: true });
  });

  async function refused(p: Promise<unknown>, code: string, pattern: RegExp): Promise<Diagnostic> {
    let diagnostic: Diagnostic | undefined;
    await assert.rejects(p, (e: CompileError) => {
      assert.ok(e instanceof CompileError, String(e));
      diagnostic = e.diagnostics[0];
      assert.equal(diagnostic.code, code, diagnostic.message);
      assert.match(diagnostic.message, pattern);
      return true;
    });
    return diagnostic!;
  }

  /** Everything under the temp dir but the work directory: must stay as it was. */
  const outsideWork = () => tree(tmp).filter((p) => p !== 'work' && !p.startsWith(`work${path.sep}`));

  it("refuses a sync whose manifest holds '../x', '/etc/x' or a symlink escape; nothing is written outside", async () => {
    const before = outsideWork();
    const evil = path.join(local, 'Makefile');
    const builds = path.join(workDir, 'builds');
    await refused(session.sync(local, 'b1', [{ path: '../x', localFile: evil }]), 'sync.bad-path', /manifest path "\.\.\/x" leaves/);
    await refused(
      session.sync(local, 'b2', [{ path: '/etc/x', localFile: evil }]),
      'sync.bad-path',
      /manifest path "\/etc\/x" is absolute/,
    );
    await refused(session.sync(local, 'b3', [{ path: 'sub/../../../x', localFile: evil }]), 'sync.bad-path', /leaves/);
    // A refused manifest leaves no trace, not even its build directory.
    assert.ok(!fs.existsSync(path.join(builds, 'x')) && !fs.existsSync(path.join(workDir, 'x')));
    for (const b of ['b1', 'b2', 'b3']) assert.ok(!fs.existsSync(path.join(builds, b)), b);

    // A build directory that holds a symlink out of it (left by an earlier build, say).
    const synced = await session.sync(local, 'linked');
    fs.symlinkSync(outside, path.join(synced.buildDir, 'out'));
    const d = await refused(
      session.sync(local, 'linked', [{ path: 'out/evil.txt', localFile: evil }]),
      'sync.bad-path',
      /manifest path "out\/evil\.txt" leaves .* through a symlink/,
    );
    assert.equal(d.location?.host, 'local');
    // A build directory that is itself a symlink out of the work directory.
    fs.symlinkSync(outside, path.join(builds, 'escaped'));
    await refused(session.sync(local, 'escaped'), 'sync.bad-name', /build directory "builds\/escaped" leaves .* through a symlink/);
    await refused(session.startBuild({ buildName: 'escaped' }), 'sync.bad-name', /through a symlink/);

    assert.deepEqual(tree(outside), [], 'nothing written through the symlinks');
    assert.deepEqual(outsideWork(), before);
  });

  it('refuses make options, profile executables, verify models and job ids that leave the build or jobs directory', async () => {
    const synced = await session.sync(local, 'plain');
    await refused(session.startBuild({ buildName: 'plain', makeArgs: ['-C', outside] }), 'build.bad-make-args', /"-C" is refused/);
    await refused(session.startBuild({ buildName: 'plain', makeArgs: [`--directory=${outside}`] }), 'build.bad-make-args', /refused/);
    await refused(session.startProfile({ buildName: 'plain', executable: '../../../../bin/true' }), 'profile.bad-executable', /leaves/);
    await refused(session.startProfile({ buildName: 'plain', executable: '/bin/true' }), 'profile.bad-executable', /is absolute/);
    fs.symlinkSync('/bin/true', path.join(synced.buildDir, 'true'));
    await refused(session.startProfile({ buildName: 'plain', executable: 'true' }), 'profile.bad-executable', /through a symlink/);
    await refused(
      session.startVerify({ buildName: 'plain', model: '/etc/passwd', batchSizes: [1] }),
      'verify.bad-model-path',
      /is absolute/,
    );
    await refused(session.startVerify({ buildName: 'plain', model: 'a\0b.onnx', batchSizes: [1] }), 'verify.bad-model-path', /NUL byte/);
    for (const id of ['../builds', '/etc', 'x/../../y']) await refused(session.jobResult(id), 'job.unknown', /no job/);
    assert.deepEqual(tree(outside), []);
    assert.deepEqual(await session.jobs(), [], 'no job was started');
  });
});
