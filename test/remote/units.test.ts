/** The remote runner's pure parts: quoting, known_hosts matching, build-log parsing, log chunking. */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseNvidiaSmi, parseRocmSmi } from '../../remote-agent/agent/hello';
import { parseBuildLog, lastJsonObject } from '../../remote-agent/agent/job-results';
import { utf8CompleteLength } from '../../remote-agent/agent/jobs';
import { parseKnownHosts, patternsMatch, verifyHostKey } from '../../remote-agent/client/known-hosts';
import { shellCommand } from '../../remote-agent/client/shell-quote';
import { resolveHost } from '../../remote-agent/client/ssh-config';

describe('remote runner units', () => {
  it('shellCommand quotes every argument so the shell gives back exactly the argv', () => {
    const argv = ['printf', '%s|', "it's", 'a b', '$HOME', '`id`', '"q"', '; rm -rf /', '*', ''];
    const echoed = execFileSync('sh', ['-c', shellCommand(argv)], { encoding: 'utf8' });
    assert.equal(
      echoed,
      argv
        .slice(2)
        .map((a) => `${a}|`)
        .join(''),
    );
  });

  it('known_hosts: hashed names (ssh-keygen -H), [host]:port, wildcards and negation', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-kh-'));
    const key = path.join(dir, 'k');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const [type, b64] = fs.readFileSync(`${key}.pub`, 'utf8').split(' ');
    const file = path.join(dir, 'known_hosts');
    fs.writeFileSync(file, `[gpu.example.org]:2222 ${type} ${b64}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'pipe' });
    const entries = parseKnownHosts(fs.readFileSync(file, 'utf8'), file);
    assert.match(entries[0].patterns, /^\|1\|/);
    const blob = Buffer.from(b64, 'base64');
    assert.equal(verifyHostKey(entries, 'gpu.example.org', 2222, blob).status, 'known');
    assert.equal(verifyHostKey(entries, 'gpu.example.org', 22, blob).status, 'unknown');
    assert.equal(patternsMatch('*.example.org,!bad.example.org', 'gpu.example.org'), true);
    assert.equal(patternsMatch('*.example.org,!bad.example.org', 'bad.example.org'), false);
    assert.equal(patternsMatch('gpu?', 'gpu1'), true);
    const revoked = parseKnownHosts(`@revoked * ${type} ${b64}\n`, 'r');
    assert.equal(verifyHostKey([...revoked, ...entries], 'gpu.example.org', 2222, blob).status, 'revoked');
  });

  it('ssh config: alias with HostName, User, Port, IdentityFile (~), ProxyJump chain', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-sshcfg-'));
    fs.mkdirSync(path.join(dir, '.ssh'));
    fs.writeFileSync(path.join(dir, '.ssh', 'id_gpu'), 'key');
    const config = path.join(dir, 'config');
    fs.writeFileSync(
      config,
      'Host gpu\n  HostName 10.1.2.3\n  Port 2200\n  IdentityFile ~/.ssh/id_gpu\n  ProxyJump bastion,inner\nHost *\n  User alice\n',
    );
    const h = resolveHost('gpu', { configPath: config, homeDir: dir });
    assert.deepEqual(
      [h.hostName, h.port, h.user, h.identityFiles, h.proxyJump],
      ['10.1.2.3', 2200, 'alice', [path.join(dir, '.ssh', 'id_gpu')], ['bastion', 'inner']],
    );
    const direct = resolveHost('bob@other:2022', { configPath: config, homeDir: dir });
    assert.deepEqual([direct.hostName, direct.port, direct.user, direct.proxyJump], ['other', 2022, 'bob', []]);
  });

  it('build logs: nvcc, gcc and linker diagnostics with file and line, relative to the build directory', () => {
    const log = [
      'nvcc -c kernels/gemm_0.cu -o gemm_0.o',
      '/work/b/kernels/gemm_0.cu(123): error: identifier "tile_m" is undefined',
      'kernels/conv_1.cu(7): warning #177-D: variable "unused" was declared but never referenced',
      'model.cpp:42:10: fatal error: cutlass/gemm/device/gemm.h: No such file or directory',
      "/usr/bin/ld: model.o: undefined reference to `ait_run'",
      'make: *** [Makefile:12: gemm_0.o] Error 1',
    ].join('\n');
    const ds = parseBuildLog(log, '/work/b');
    assert.deepEqual(
      ds.map((d) => [d.code, d.location?.file, d.location?.line]),
      [
        ['build.compile-error', 'kernels/gemm_0.cu', 123],
        ['build.compile-warning', 'kernels/conv_1.cu', 7],
        ['build.compile-error', 'model.cpp', 42],
        ['build.link-error', undefined, undefined],
      ],
    );
    assert.match(ds[0].message, /identifier "tile_m" is undefined/);
  });

  it('bench output: the last JSON object line wins over other lines', () => {
    assert.deepEqual(lastJsonObject('warming up\n{"a":1}\n{not json\n{"b":2}\ndone\n'), { b: 2 });
    assert.equal(lastJsonObject('no json here\n'), null);
  });

  it('log chunks never split a UTF-8 character', () => {
    const text = Buffer.from('ok ✓ 😀', 'utf8');
    for (let cut = 0; cut <= text.length; cut++) {
      const n = utf8CompleteLength(text.subarray(0, cut));
      assert.ok(n <= cut);
      assert.ok(!text.subarray(0, n).toString('utf8').includes('\ufffd'), `cut ${cut} -> ${n}`);
      assert.ok(cut - n < 4);
    }
    assert.equal(utf8CompleteLength(text), text.length);
  });

  it('GPU lists from nvidia-smi CSV and rocm-smi JSON', () => {
    assert.deepEqual(parseNvidiaSmi('0, NVIDIA H200, 143771, 9.0\n1, NVIDIA H200, 143771, 9.0\n'), [
      { index: 0, name: 'NVIDIA H200', memoryMiB: 143771, computeCapability: '9.0' },
      { index: 1, name: 'NVIDIA H200', memoryMiB: 143771, computeCapability: '9.0' },
    ]);
    const rocm = JSON.stringify({
      card0: { 'Card series': 'AMD Instinct MI300X', 'VRAM Total Memory (B)': '206141652992', 'GFX Version': 'gfx942' },
    });
    assert.deepEqual(parseRocmSmi(rocm), [{ index: 0, name: 'AMD Instinct MI300X', memoryMiB: 196592, gfxArch: 'gfx942' }]);
  });
});
