import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WorkerCompileRunner } from '../../extension/compile/service';
import { sharedModel } from '../helpers/models';
import { buildDist, FakeCancellation, REPO_ROOT } from './fakes';

describe('extension compile service (worker thread)', function () {
  let tmp: string;
  let runner: WorkerCompileRunner;
  before(() => {
    buildDist();
    runner = new WorkerCompileRunner(path.join(REPO_ROOT, 'dist', 'compile-worker.js'));
  });
  beforeEach(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ext-compile-'))));
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('compiles ResNet-50 in the worker, reporting stages as they run, and writes graph.json', async function () {
    const model = sharedModel('resnet50', this);
    const out = path.join(tmp, 'build', 'resnet50');
    const stages: string[] = [];
    const outcome = await runner.compile({ file: model, out, target: 'cuda:sm90' }, { onStage: (name) => stages.push(name) });
    assert.equal(outcome.kind, 'done');
    assert.ok(outcome.kind === 'done' && outcome.result.ok);
    assert.equal(stages[0], 'import');
    assert.ok(stages.includes('shape-inference') && stages.length > 4, stages.join(','));
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')).format, 'ait-graph');
  });

  it('cancelled after its first stage, leaves neither the output directory nor a staging directory', async function () {
    const model = sharedModel('maskrcnn_resnet50_fpn', this);
    const out = path.join(tmp, 'build', 'maskrcnn');
    const cancel = new FakeCancellation();
    const stages: string[] = [];
    const outcome = await runner.compile(
      { file: model, out, target: 'cuda:sm90' },
      {
        onStage: (name) => {
          stages.push(name);
          cancel.cancel();
        },
      },
      cancel,
    );
    assert.equal(outcome.kind, 'cancelled');
    // The flag is read at the next stage boundary the worker reaches after the message crossed threads.
    assert.ok(!stages.includes('memory-plan'), `the compile stopped early (stages run: ${stages.join(', ')})`);
    assert.equal(fs.existsSync(out), false);
    assert.deepEqual(fs.readdirSync(path.dirname(out)), [], 'no staging directory left');
  });

  it('a cancelled recompile keeps the previous output as it was', async function () {
    const model = sharedModel('resnet50', this);
    const out = path.join(tmp, 'resnet50');
    assert.equal((await runner.compile({ file: model, out, target: 'cuda:sm90' }, {})).kind, 'done');
    const before = fs.readFileSync(path.join(out, 'graph.json'), 'utf8');
    const cancel = new FakeCancellation();
    const outcome = await runner.compile(
      { file: model, out, force: true, target: 'cuda:sm80' },
      { onStage: () => cancel.cancel() },
      cancel,
    );
    assert.equal(outcome.kind, 'cancelled');
    assert.equal(fs.readFileSync(path.join(out, 'graph.json'), 'utf8'), before);
    assert.deepEqual(fs.readdirSync(tmp), ['resnet50']);
  });

  it('a model that does not import fails with a diagnostic naming the file, and writes nothing', async () => {
    const bad = path.join(tmp, 'broken.onnx');
    fs.writeFileSync(bad, Buffer.from([0x08, 0x07, 0x12, 0xff, 0xff]));
    const out = path.join(tmp, 'out');
    const outcome = await runner.compile({ file: bad, out, target: 'cuda:sm90' }, {});
    assert.equal(outcome.kind, 'failed');
    assert.ok(
      outcome.kind === 'failed' && outcome.diagnostics.some((d) => d.severity === 'error' && d.location?.file === bad),
      JSON.stringify(outcome),
    );
    assert.equal(fs.existsSync(out), false);
  });
});
