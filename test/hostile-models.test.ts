/**
 * Hostile and malformed models (issue #12): each is built here, written to a temporary file and run through the
 * entry points the CLI uses (inspectModel / runInspect and compileModel). Each must be refused with a one-line
 * diagnostic naming the cause and the tensor or node (or warned about, where stated): never a stack trace, never
 * an allocation the size of what the model declares.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runInspect } from '../compiler/cli/inspect-command';
import { compileModel } from '../compiler/compile';
import { CompileError, Diagnostic } from '../compiler/diagnostics';
import { inspectModel } from '../compiler/inspect';
import { MAX_OPSET, MIN_OPSET } from '../compiler/onnx/import';
import { ModelProtoType } from '../compiler/onnx/schema';
import { seededRandom } from '../compiler/ir/tensor';
import { ModelSpec, buildModel, tensor } from './helpers/onnx-builder';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-hostile-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function write(bytes: Uint8Array): string {
  const file = path.join(dir, `m${counter++}.onnx`);
  fs.writeFileSync(file, bytes);
  return file;
}

type ProtoObject = Record<string, unknown> & { graph: Record<string, unknown[]> };

/** The model of `spec`, with its protobuf object edited by `edit` (for what the builder refuses to write). */
function edited(spec: ModelSpec, edit: (model: ProtoObject) => void): Uint8Array {
  const model = ModelProtoType.toObject(ModelProtoType.decode(buildModel(spec)), { defaults: false }) as ProtoObject;
  edit(model);
  return ModelProtoType.encode(ModelProtoType.fromObject(model)).finish();
}

const reluSpec = (extra: Partial<ModelSpec> = {}): ModelSpec => ({
  inputs: [{ name: 'x', dtype: 'float32', dims: [2, 4] }],
  nodes: [{ op: 'Relu', name: 'relu', inputs: ['x'], outputs: ['y'] }],
  outputs: ['y'],
  ...extra,
});

/** The CompileError that `run` throws. */
function thrown(run: () => unknown): CompileError {
  try {
    run();
  } catch (e) {
    assert.ok(e instanceof CompileError, `expected a CompileError, got ${(e as Error).stack}`);
    return e;
  }
  assert.fail('expected an error');
}

/** Refused by inspect and by compile alike, with one diagnostic of `code` whose message matches `message`. */
function refused(file: string, code: string, message: RegExp, location: Diagnostic['location'] = {}): void {
  for (const run of [() => inspectModel(file), () => compileModel(file, { out: path.join(dir, `out${counter++}`) })]) {
    const e = thrown(run);
    const d = e.diagnostics.find((x) => x.code === code);
    assert.ok(d, `no ${code} among ${e.message}`);
    assert.equal(d.severity, 'error');
    assert.match(d.message, message);
    for (const [k, v] of Object.entries(location)) assert.equal(d.location?.[k as keyof typeof location], v, `location.${k}`);
    assert.doesNotMatch(e.message, /\n\s+at /);
    assert.equal(e.message.split('\n').length, e.diagnostics.length, 'one line per diagnostic');
  }
}

/** Inspect reports an error diagnostic of `code` (after import, from shape inference), and exits non-zero. */
function inferenceError(file: string, code: string, message: RegExp, onnxNode: string): void {
  const { summary } = inspectModel(file);
  const d = summary.diagnostics.find((x) => x.code === code && x.severity === 'error');
  assert.ok(d, `no ${code} among ${JSON.stringify(summary.diagnostics)}`);
  assert.match(d.message, message);
  assert.equal(d.location?.onnxNode, onnxNode);
  assert.equal(
    runInspect(file, {}, () => {}),
    1,
  );
  const result = compileModel(file, { out: path.join(dir, `out${counter++}`) });
  assert.equal(result.ok, false);
  assert.ok(result.diagnostics.some((x) => x.code === code && x.location?.onnxNode === onnxNode));
}

describe('hostile models: refused with a diagnostic naming the cause', () => {
  it('an initializer of [60000, 60000] with no data: too large, refused before allocating it', () => {
    const file = write(
      edited(reluSpec(), (m) => {
        m.graph.initializer = [{ name: 'huge', dims: [60000, 60000], data_type: 1 }];
      }),
    );
    refused(file, 'onnx.bad-tensor', /initializer 'huge'.*3600000000 elements, more than the supported 2\^31/, { tensor: 'huge' });
  });

  it('raw_data longer than the dims need (the ONNX checker refuses it)', () => {
    const file = write(
      edited(reluSpec(), (m) => {
        m.graph.initializer = [{ name: 'w', dims: [2], data_type: 1, raw_data: new Uint8Array(4096) }];
      }),
    );
    refused(file, 'onnx.bad-tensor', /initializer 'w': its raw data has 4096 bytes, but 2 float32 elements \(dims \[2\]\) need 8/, {
      tensor: 'w',
    });
  });

  it('a graph output that no node produces', () => {
    const file = write(buildModel(reluSpec({ outputs: ['y', 'zzz'] })));
    refused(file, 'graph.missing-output', /output 'zzz' of the graph is not produced by any node/, { tensor: 'zzz' });
  });

  it('a graph with no outputs', () => {
    const file = write(buildModel(reluSpec({ outputs: [] })));
    refused(file, 'graph.no-outputs', /the graph has no outputs/);
  });

  it('duplicate graph outputs, inputs and initializers', () => {
    refused(write(buildModel(reluSpec({ outputs: ['y', 'y'] }))), 'graph.duplicate-name', /output 'y' is listed twice/, { tensor: 'y' });
    const twoInputs = reluSpec();
    twoInputs.inputs = [twoInputs.inputs[0], { name: 'x', dtype: 'float32', dims: [8] }];
    refused(write(buildModel(twoInputs)), 'graph.duplicate-name', /input 'x' is listed twice/, { tensor: 'x' });
    const twoInits = reluSpec({
      initializers: [
        { ...tensor('float32', [1], [1]), name: 'w' },
        { ...tensor('float32', [2], [1, 2]), name: 'w' },
      ],
    });
    refused(write(buildModel(twoInits)), 'graph.duplicate-name', /initializer 'w' is listed twice/, { tensor: 'w' });
  });

  it('a declared dim of 2^40 (an arena of 2.9e25 bytes before): refused, naming the input', () => {
    const file = write(buildModel(reluSpec({ inputs: [{ name: 'x', dtype: 'float32', dims: [2 ** 40, 2 ** 40] }] })));
    refused(file, 'onnx.bad-shape', /the declared shape of 'x' is invalid: dim 0 is 1099511627776, above the largest supported dim/, {
      tensor: 'x',
    });
  });

  it('Relu on a declared negative dim', () => {
    const file = write(buildModel(reluSpec({ inputs: [{ name: 'x', dtype: 'float32', dims: [-3, 4] }] })));
    refused(file, 'onnx.bad-shape', /'x' is invalid: dim 0 is -3: dims must be non-negative integers/, { tensor: 'x' });
  });

  it('Expand to [2^31, 2^31]: a shape inference error naming the node', () => {
    const file = write(
      buildModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: [1] }],
        initializers: [{ ...tensor('int64', [2], [2 ** 31, 2 ** 31]), name: 'shape' }],
        nodes: [{ op: 'Expand', name: 'boom', inputs: ['x', 'shape'], outputs: ['y'] }],
        outputs: ['y'],
      }),
    );
    inferenceError(
      file,
      'shape.invalid',
      /Expand node 'boom': output 0 \('y'\): dim 0 is 2147483648, above the largest supported dim/,
      'boom',
    );
  });

  it('MaxPool kernel [0, 0], Conv strides 0 and a negative dilation: errors naming the node and the attribute', () => {
    const pool = write(
      buildModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: [1, 1, 4, 4] }],
        nodes: [{ op: 'MaxPool', name: 'pool', inputs: ['x'], outputs: ['y'], attrs: { kernel_shape: [0, 0] } }],
        outputs: ['y'],
      }),
    );
    inferenceError(
      pool,
      'op.bad-attribute',
      /MaxPool node 'pool': attribute 'kernel_shape' is \[0, 0\]: each value must be an integer of at least 1/,
      'pool',
    );
    const conv = (attrs: Record<string, number[]>) =>
      write(
        buildModel({
          inputs: [{ name: 'x', dtype: 'float32', dims: [1, 1, 4, 4] }],
          initializers: [{ ...tensor('float32', [1, 1, 1, 1], [1]), name: 'w' }],
          nodes: [{ op: 'Conv', name: 'conv', inputs: ['x', 'w'], outputs: ['y'], attrs }],
          outputs: ['y'],
        }),
      );
    inferenceError(conv({ strides: [0, 1] }), 'op.bad-attribute', /attribute 'strides' is \[0, 1\]/, 'conv');
    inferenceError(conv({ dilations: [1, -2] }), 'op.bad-attribute', /attribute 'dilations' is \[1, -2\]/, 'conv');
    inferenceError(
      conv({ pads: [0, 0, -1, 0] }),
      'op.bad-attribute',
      /attribute 'pads' is \[0, 0, -1, 0\]: each value must be an integer of at least 0/,
      'conv',
    );
  });

  it('an activation arena over 1 TiB at the planning batch: memory.too-large naming the tensor, no code generated', () => {
    const big = write(
      buildModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 1 << 20] }],
        nodes: [
          { op: 'Sigmoid', name: 's', inputs: ['x'], outputs: ['a'] },
          { op: 'Tanh', name: 'u', inputs: ['x'], outputs: ['b'] },
          { op: 'MatMul', name: 'mm', inputs: ['a', 'w'], outputs: ['c'] },
          { op: 'MatMul', name: 'mm2', inputs: ['b', 'w'], outputs: ['d'] },
          { op: 'Add', name: 'add', inputs: ['c', 'd'], outputs: ['y'] },
        ],
        initializers: [{ name: 'w', dtype: 'float32', dims: [1 << 20, 1], external: 'absent.bin' }],
        outputs: ['y'],
      }),
    );
    const result = compileModel(big, { out: path.join(dir, `out${counter++}`), batch: 1 << 20, dimBounds: { batch: [1, 1 << 20] } });
    assert.equal(result.ok, false);
    const d = result.diagnostics.find((x) => x.code === 'memory.too-large');
    assert.ok(d, JSON.stringify(result.diagnostics));
    assert.match(d.message, /arena of .* bytes at batch 1048576, more than the supported .* \(1 TiB\); the largest is '[ab]'/);
    assert.ok(d.location?.tensor === 'a' || d.location?.tensor === 'b', JSON.stringify(d.location));
    assert.equal(result.codegen, undefined);
  });
});

describe('hostile models: warnings and causes named right', () => {
  for (const opset of [1, 99]) {
    it(`opset ${opset}: a warning naming the opset and the supported range`, () => {
      const file = write(buildModel(reluSpec({ opset })));
      const { summary } = inspectModel(file);
      const d = summary.diagnostics.find((x) => x.code === 'onnx.opset');
      assert.ok(d, JSON.stringify(summary.diagnostics));
      assert.equal(d.severity, 'warning');
      assert.match(d.message, new RegExp(`opset ${opset}; the compiler implements opsets ${MIN_OPSET} to ${MAX_OPSET}`));
    });
  }

  it('no warning for the opsets the compiler implements', () => {
    for (const opset of [MIN_OPSET, 17, MAX_OPSET]) {
      const { summary } = inspectModel(write(buildModel(reluSpec({ opset }))));
      assert.equal(summary.diagnostics.filter((d) => d.code === 'onnx.opset').length, 0);
    }
  });

  it('a 10-byte random file is "not an ONNX model", not "has no graph"', () => {
    const random = seededRandom(12);
    for (let i = 0; i < 20; i++) {
      const file = write(Uint8Array.from({ length: 10 }, () => Math.floor(random() * 256)));
      const e = thrown(() => inspectModel(file));
      assert.ok(['onnx.not-onnx', 'onnx.truncated'].includes(e.diagnostics[0].code), e.message);
      if (e.diagnostics[0].code === 'onnx.not-onnx')
        assert.match(e.message, /not an ONNX model: .*(does|do) not decode as an ONNX ModelProto/);
      assert.doesNotMatch(e.message, /has no graph/);
    }
  });

  it('a ModelProto without a graph or without an opset import says what is missing', () => {
    const bytes = ModelProtoType.encode(ModelProtoType.fromObject({ ir_version: 8, opset_import: [{ domain: '', version: 17 }] })).finish();
    const e = thrown(() => inspectModel(write(bytes)));
    assert.match(
      e.message,
      /onnx\.not-onnx.*not an ONNX model: its \d+ bytes do not decode as an ONNX ModelProto with a graph \(no graph\)/,
    );
    const noOpset = edited(reluSpec(), (m) => {
      m.opset_import = [];
    });
    assert.match(thrown(() => inspectModel(write(noOpset))).message, /not a complete ONNX model: its ModelProto has no opset import/);
  });
});
