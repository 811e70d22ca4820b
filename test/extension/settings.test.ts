import * as assert from 'node:assert/strict';
import { checkHostTarget, readSettings, validateRemotes } from '../../extension/settings';
import { memoryStore } from './fakes';
import { TARGETS } from '../../extension/targets';

const store = (data: Record<string, unknown>) => {
  const m = memoryStore(data);
  return { get: (k: string) => m.data[k], update: async () => {} };
};

describe('extension settings', () => {
  it('accepts local, ssh aliases, user@host and user@host:port', () => {
    for (const h of ['local', 'gpu-box', 'me@10.0.0.7', 'me@h200.example.org:2222', 'me@[::1]:22'])
      assert.equal(checkHostTarget(h), undefined, h);
  });

  it('rejects empty hosts, shell words and ports outside 1..65535', () => {
    assert.match(checkHostTarget('  ')!, /give a host/);
    assert.match(checkHostTarget('gpu; rm -rf ~')!, /not an ssh target/);
    assert.match(checkHostTarget('me@gpu:70000')!, /port 70000/);
  });

  it('validates ait.remotes entry by entry, naming the bad setting, and keeps the good ones', () => {
    const { remotes, problems } = validateRemotes([
      { name: 'h200', host: 'me@h200:22', workDir: 'ait' },
      { host: 'local' },
      { name: 'h200', host: 'other' },
      { name: 'bad', host: 'a b' },
      { name: 'up', host: 'x', workDir: '../etc' },
      'gpu',
    ]);
    assert.deepEqual(
      remotes.map((r) => [r.name, r.host]),
      [
        ['h200', 'me@h200:22'],
        ['local', 'local'],
        ['up', 'x'],
      ],
    );
    assert.deepEqual(
      problems.map((p) => p.setting),
      ['ait.remotes[2].name', 'ait.remotes[3].host', 'ait.remotes[4].workDir', 'ait.remotes[5]'],
    );
    assert.match(validateRemotes({ host: 'x' }).problems[0].message, /list of hosts/);
  });

  it('falls back to defaults for unknown targets and bad batch sizes, and says so', () => {
    const { settings, problems } = readSettings(
      store({ defaultTarget: 'cuda:sm100x', benchBatchSizes: [1, 0], outputDirectory: '../out' }),
    );
    assert.equal(settings.defaultTarget, 'cuda:sm90');
    assert.deepEqual(settings.benchBatchSizes, [1, 8, 64]);
    assert.equal(settings.outputDirectory, 'build');
    assert.deepEqual(
      problems.map((p) => p.setting),
      ['ait.defaultTarget', 'ait.outputDirectory', 'ait.benchBatchSizes'],
    );
    const ok = readSettings(store({ defaultTarget: 'cuda:sm80', benchBatchSizes: [2, 4] }));
    assert.deepEqual([ok.settings.defaultTarget, ok.settings.benchBatchSizes, ok.problems], ['cuda:sm80', [2, 4], []]);
  });

  it('ait.verifyTorchModel: FILE.py:FUNCTION, else reported and unused', () => {
    assert.equal(
      readSettings(store({ verifyTorchModel: 'tools/torch_model.py:make' })).settings.verifyTorchModel,
      'tools/torch_model.py:make',
    );
    const bad = readSettings(store({ verifyTorchModel: 'tools/torch_model.py:os.system' }));
    assert.equal(bad.settings.verifyTorchModel, '');
    assert.deepEqual(
      bad.problems.map((p) => p.setting),
      ['ait.verifyTorchModel'],
    );
  });

  it('throughput bench settings: defaults to a latency bench; threads above instances, bad values reported', () => {
    const d = readSettings(store({})).settings;
    assert.deepEqual([d.benchInstances, d.benchThreads, d.benchDuration], [0, 1, 10]);
    const ok = readSettings(store({ benchInstances: 4, benchThreads: 2, benchDuration: 2.5 }));
    assert.deepEqual([ok.settings.benchInstances, ok.settings.benchThreads, ok.settings.benchDuration, ok.problems], [4, 2, 2.5, []]);
    const clamped = readSettings(store({ benchInstances: 2, benchThreads: 3 }));
    assert.equal(clamped.settings.benchThreads, 2);
    assert.match(clamped.problems[0].message, /must not exceed ait\.benchInstances \(2\)/);
    const bad = readSettings(store({ benchInstances: 1.5, benchThreads: 0, benchDuration: -1 }));
    assert.deepEqual([bad.settings.benchInstances, bad.settings.benchThreads, bad.settings.benchDuration], [0, 1, 10]);
    assert.deepEqual(
      bad.problems.map((p) => p.setting),
      ['ait.benchInstances', 'ait.benchThreads', 'ait.benchDuration'],
    );
  });

  it('package.json declares the schema of every setting that readSettings reads', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pkg = require('../../package.json') as {
      contributes: { configuration: { properties: Record<string, { enum?: string[]; enumDescriptions?: string[] }> } };
    };
    const props = pkg.contributes.configuration.properties;
    for (const key of ['remotes', 'defaultTarget', 'cutlassDir', 'outputDirectory', 'benchBatchSizes', 'sshConfig', 'verifyTorchModel'])
      assert.ok(props[`ait.${key}`], key);
    // the static schema lists exactly the backends' targets (the registry the picker and the CLI read)
    assert.deepEqual(
      props['ait.defaultTarget'].enum,
      TARGETS.map((t) => t.id),
    );
    assert.deepEqual(
      props['ait.defaultTarget'].enumDescriptions,
      TARGETS.map((t) => t.detail),
    );
  });
});
