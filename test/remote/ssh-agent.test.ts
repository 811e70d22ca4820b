/**
 * The remote runner end to end through a real OpenSSH server on 127.0.0.1 (throwaway host and user keys): the client
 * connects with ssh2, uploads the agent over SFTP, and drives it over JSON-RPC.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CompileError } from '../../compiler/diagnostics';
import { openSession, type OpenSessionOptions, type RemoteSession } from '../../remote-agent/client';
import { agentBundle, fixtureCopy, pidAlive, waitFor } from './helpers/agent-bundle';
import { type TestSshd, requireSshd, startSshd } from './helpers/sshd';
import { syncMirrorScenario } from './helpers/sync-mirror';

describe('remote agent over SSH (real sshd on 127.0.0.1)', function () {
  this.timeout(90_000);
  let sshd: TestSshd;
  let bundle: string;
  const sessions: RemoteSession[] = [];

  before(async function () {
    requireSshd(this);
    bundle = await agentBundle();
    sshd = await startSshd();
  });
  after(() => {
    for (const s of sessions) s.close();
    sshd?.stop();
  });

  /** Options for a session to the test server; each test gets its own remote work directory. */
  function options(extra: Partial<OpenSessionOptions> = {}): OpenSessionOptions {
    return {
      agentBundlePath: bundle,
      nodePath: process.execPath,
      remoteWorkDir: fs.mkdtempSync(path.join(os.tmpdir(), 'ait-remote-work-')),
      reconnect: { attempts: 5, initialDelayMs: 100, maxDelayMs: 1000 },
      ...extra,
      ssh: { configPath: sshd.sshConfig, agentSocket: null, ...extra.ssh },
    };
  }

  async function open(host: string, extra: Partial<OpenSessionOptions> = {}): Promise<RemoteSession> {
    const s = await openSession(host, options(extra));
    sessions.push(s);
    return s;
  }

  async function refusal(host: string, extra: Partial<OpenSessionOptions>): Promise<CompileError> {
    try {
      const s = await openSession(host, options(extra));
      s.close();
    } catch (e) {
      return e as CompileError;
    }
    throw new Error('the connection was not refused');
  }

  it('hello through an ssh config alias (HostName, Port, User, IdentityFile, UserKnownHostsFile)', async () => {
    const s = await open('gpubox');
    const h = await s.hello();
    assert.equal(h.agentVersion, '0.1.0');
    assert.equal(h.host.user, sshd.user);
    assert.deepEqual(h.gpus, []);
    assert.match(h.gpuProbe.note, /no GPU found/);
    assert.equal(s.hostLabel, 'gpubox');
    // The agent went up over SFTP into WORK/bin/agent-<hash>.js.
    assert.equal(fs.readdirSync(path.join(h.workDir, 'bin')).filter((f) => /^agent-[0-9a-f]{16}\.js$/.test(f)).length, 1);
  });

  it('hello through a ProxyJump hop', async () => {
    const s = await open('viajump');
    assert.equal((await s.hello()).agentVersion, '0.1.0');
  });

  it('sync sends every file once, then only the changed and new ones', async () => {
    const s = await open('gpubox');
    const local = fixtureCopy('good-build');
    const first = await s.sync(local);
    assert.deepEqual(first.uploaded.sort(), ['Makefile', 'ait_bench.c']);
    assert.equal(first.unchangedCount, 0);
    fs.appendFileSync(path.join(local, 'ait_bench.c'), '/* edited */\n');
    fs.mkdirSync(path.join(local, 'kernels'));
    fs.writeFileSync(path.join(local, 'kernels', 'gemm.cu'), '// new\n');
    const second = await s.sync(local);
    assert.deepEqual(second.uploaded.sort(), ['ait_bench.c', 'kernels/gemm.cu']);
    assert.equal(second.unchangedCount, 1);
    assert.equal(second.buildDir, first.buildDir);
    assert.equal(
      fs.readFileSync(path.join(second.buildDir, 'ait_bench.c'), 'utf8'),
      fs.readFileSync(path.join(local, 'ait_bench.c'), 'utf8'),
    );
    const third = await s.sync(local);
    assert.deepEqual(third.uploaded, []);
    assert.equal(third.unchangedCount, 3);
  });

  it('sync mirrors the local directory over SSH: another model in the same directory leaves nothing of the first', async () => {
    await syncMirrorScenario(await open('gpubox'));
  });

  it('a build with a compile error reports the file and line', async () => {
    const s = await open('gpubox');
    const local = fixtureCopy('bad-build');
    let streamed = '';
    const outcome = await s.build(local, await s.sync(local), (t) => (streamed += t));
    assert.equal(outcome.result.ok, false);
    assert.match(streamed, /undeclared_value/);
    const err = outcome.result.diagnostics.find((d) => d.code === 'build.compile-error');
    assert.ok(err, JSON.stringify(outcome.result.diagnostics));
    assert.deepEqual([err.location?.file, err.location?.line, err.location?.host], [path.join(local, 'main.c'), 4, 'gpubox']);
    assert.ok(outcome.result.diagnostics.some((d) => d.code === 'job.failed' && /Error 1/.test(d.message)));
  });

  it('a job keeps running while the connection is cut and is re-attached with nothing lost', async () => {
    const logs: string[] = [];
    const s = await open('gpubox', { log: (l) => logs.push(l) });
    const local = fixtureCopy('good-build');
    const summary = await s.sync(local);
    const lineCount = 40;
    const job = await s.startBuild({ buildName: summary.buildName, makeArgs: ['slow', `LINES=${lineCount}`, 'DELAY=0.05'] });
    let received = '';
    let killedPids: number[] = [];
    let jobAliveWhenCut = false;
    const followed = s.followJob(job.id, (t) => {
      received += t;
      if (killedPids.length === 0 && /line 5\n/.test(received)) {
        jobAliveWhenCut = pidAlive(job.pgid);
        killedPids = sshd.killConnections();
      }
    });
    const ended = await followed;
    assert.ok(killedPids.length > 0, 'no sshd connection process was killed');
    assert.ok(jobAliveWhenCut, 'the job was not running when the connection was cut');
    assert.ok(
      logs.some((l) => /reconnected to gpubox/.test(l)),
      logs.join('\n'),
    );
    assert.ok(
      logs.some((l) => /re-attaching from byte \d+/.test(l)),
      logs.join('\n'),
    );
    assert.equal(ended.state, 'exited');
    assert.equal(ended.exitCode, 0);
    const expected = Array.from({ length: lineCount }, (_, i) => `line ${i + 1}\n`).join('');
    assert.equal(received, expected);
    // The jobs list of the new agent process still has it.
    assert.ok((await s.jobs()).some((j) => j.id === job.id && j.state === 'exited'));
  });

  it('cancel kills the whole remote process group', async () => {
    const s = await open('gpubox');
    const local = fixtureCopy('good-build');
    const summary = await s.sync(local);
    const pids = path.join(local, 'pids');
    const job = await s.startBuild({ buildName: summary.buildName, makeArgs: ['tree', `PIDS=${pids}`] });
    await waitFor('the job to write its pids', () => fs.existsSync(`${pids}.grandchild`) && fs.existsSync(`${pids}.shell`));
    const grandchild = Number(fs.readFileSync(`${pids}.grandchild`, 'utf8'));
    const shell = Number(fs.readFileSync(`${pids}.shell`, 'utf8'));
    assert.ok(pidAlive(grandchild) && pidAlive(shell) && pidAlive(job.pgid));
    assert.equal((await s.cancel(job.id)).signalled, true);
    await waitFor('every process of the job to end', () => !pidAlive(grandchild) && !pidAlive(shell) && !pidAlive(job.pgid));
    const ended = await s.followJob(job.id, () => undefined);
    assert.equal(ended.state, 'cancelled');
  });

  it('refuses an unknown host key, with its fingerprint, unless it is accepted', async () => {
    const empty = path.join(sshd.dir, 'known_hosts.empty');
    fs.writeFileSync(empty, '');
    const e = await refusal('gpubox', { ssh: { knownHostsFiles: [empty] } });
    const fingerprint = execFileSync('ssh-keygen', ['-l', '-f', path.join(sshd.dir, 'host_ed25519.pub')], { encoding: 'utf8' }).split(
      ' ',
    )[1];
    assert.equal(e.diagnostics[0].code, 'remote.host-key-unknown');
    assert.ok(e.diagnostics[0].message.includes(fingerprint), e.message);
    assert.match(e.diagnostics[0].message, /\[127\.0\.0\.1\]:\d+ is not in/);
    assert.equal(fs.readFileSync(empty, 'utf8'), '');

    const asked: string[] = [];
    const s = await open('gpubox', { ssh: { knownHostsFiles: [empty], acceptUnknownHostKey: (k) => (asked.push(k.fingerprint), true) } });
    assert.equal((await s.hello()).agentVersion, '0.1.0');
    assert.deepEqual(asked, [fingerprint]);
    assert.match(fs.readFileSync(empty, 'utf8'), new RegExp(`^\\[127\\.0\\.0\\.1\\]:${sshd.port} ssh-ed25519 `));
  });

  it('refuses a changed host key, naming the host and the known_hosts line', async () => {
    const other = path.join(sshd.dir, 'other_host_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const stale = path.join(sshd.dir, 'known_hosts.stale');
    const [type, key] = fs.readFileSync(`${other}.pub`, 'utf8').split(' ');
    fs.writeFileSync(stale, `# stale entry\n[127.0.0.1]:${sshd.port} ${type} ${key}\n`);
    const e = await refusal('gpubox', { ssh: { knownHostsFiles: [stale], acceptUnknownHostKey: () => true } });
    assert.equal(e.diagnostics[0].code, 'remote.host-key-changed');
    assert.match(e.diagnostics[0].message, /HOST KEY CHANGED for \[127\.0\.0\.1\]:\d+/);
    assert.deepEqual(
      [e.diagnostics[0].location?.file, e.diagnostics[0].location?.line, e.diagnostics[0].location?.host],
      [stale, 2, 'gpubox'],
    );
  });

  it('refuses a key the server does not know', async () => {
    const e = await refusal(`${sshd.user}@127.0.0.1:${sshd.port}`, {
      ssh: { configPath: path.join(sshd.dir, 'no-such-config'), knownHostsFiles: [sshd.knownHosts], identityFiles: [sshd.wrongKey] },
    });
    assert.equal(e.diagnostics[0].code, 'remote.auth-failed');
    assert.ok(e.diagnostics[0].message.includes(sshd.wrongKey), e.message);
    assert.ok(e.diagnostics[0].message.includes(`authentication as ${sshd.user}`), e.message);
  });

  it('an encrypted user key: the passphrase comes from the prompt callback, a wrong one is refused clearly, none is written', async () => {
    const passphrase = 'pass-Zq8v-7f3e-unique';
    const key = path.join(sshd.dir, 'encrypted_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'encrypted', '-f', key]);
    fs.appendFileSync(path.join(sshd.dir, 'authorized_keys'), fs.readFileSync(`${key}.pub`));
    const target = `${sshd.user}@127.0.0.1:${sshd.port}`;
    const ssh = { configPath: path.join(sshd.dir, 'no-such-config'), knownHostsFiles: [sshd.knownHosts], identityFiles: [key] };
    const logs: string[] = [];
    const asked: string[] = [];
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-remote-work-'));
    const s = await open(target, {
      remoteWorkDir: workDir,
      log: (l) => logs.push(l),
      ssh: { ...ssh, passphrase: async (file) => (asked.push(file), passphrase) },
    });
    const h = await s.hello();
    assert.equal(h.host.user, sshd.user);
    assert.deepEqual(asked, [key]);
    // Something runs there too (sync + a job), so the work directory holds agent, build and job files to search.
    const local = fixtureCopy('good-build');
    await s.build(local, await s.sync(local), (t) => logs.push(t));

    const wrong = await refusal(target, { ssh: { ...ssh, passphrase: async () => 'not-the-passphrase' } });
    assert.equal(wrong.diagnostics[0].code, 'remote.auth-failed');
    assert.ok(wrong.diagnostics[0].message.includes(`skipped: ${key} (wrong passphrase)`), wrong.message);
    assert.equal(wrong.diagnostics[0].location?.host, target);
    const none = await refusal(target, { ssh: { ...ssh, passphrase: async () => undefined } });
    assert.ok(none.diagnostics[0].message.includes(`${key} (encrypted, no passphrase given)`), none.message);

    // The passphrase is in no file of the remote work directory, the local build directory, the sshd directory (but
    // the key itself, which holds it only in encrypted form), nor in any log line or error message.
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (entry.isFile()) files.push(full);
      }
    };
    for (const dir of [workDir, local, sshd.dir]) walk(dir);
    assert.ok(
      files.some((f) => f.startsWith(path.join(workDir, 'jobs'))),
      'no job files were written to search',
    );
    for (const file of files) assert.ok(!fs.readFileSync(file).includes(passphrase), `the passphrase is in ${file}`);
    for (const text of [...logs, sshd.log(), wrong.message, none.message]) assert.ok(!text.includes(passphrase), text);
  });

  it('reports a host without node clearly, and runs with a Node binary it uploads', async () => {
    const noNode = await refusal('gpubox', { nodePath: '/nonexistent/bin/node' });
    assert.equal(noNode.diagnostics[0].code, 'remote.no-node');
    assert.match(noNode.diagnostics[0].message, /no Node\.js ≥ 18 on the host \(\/nonexistent\/bin\/node: not found/);
    assert.equal(noNode.diagnostics[0].location?.host, 'gpubox');

    const oldNode = path.join(sshd.dir, 'node16');
    fs.writeFileSync(oldNode, '#!/bin/sh\necho v16.20.2\n', { mode: 0o755 });
    const tooOld = await refusal('gpubox', { nodePath: oldNode });
    assert.match(tooOld.diagnostics[0].message, /node16 is v16\.20\.2, too old/);

    // The "Node build" to upload: a launcher of this machine's node (the real one is 100 MB; the path is the same).
    const launcher = path.join(sshd.dir, 'node-launcher');
    fs.writeFileSync(launcher, `#!/bin/sh\nexec ${process.execPath} "$@"\n`, { mode: 0o755 });
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-remote-work-'));
    const s = await open('gpubox', { nodePath: '/nonexistent/bin/node', nodeBinaryToUpload: launcher, remoteWorkDir: workDir });
    assert.equal((await s.hello()).agentVersion, '0.1.0');
    assert.equal(fs.readFileSync(path.join(workDir, 'node', 'bin', 'node'), 'utf8'), fs.readFileSync(launcher, 'utf8'));
  });
});
