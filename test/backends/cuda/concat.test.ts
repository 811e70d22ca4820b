/**
 * Concat of any number of inputs through the CUDA backend: more than 8 inputs are ceil(N / 8) launches of the concat
 * kernel, each into its slab of the output (codegen/lower.ts concatLaunches). The offset arithmetic on the host
 * (concrete and symbolic sizes), the launches a 20-input Concat lowers to along the last axis (NHWC channels) and a
 * middle axis, that Concats of up to 8 inputs keep their one launch, and that nvcc compiles the generated model.cu for
 * sm80 and sm90 (skipped without nvcc).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel } from '../../../compiler/compile';
import { CONCAT_INPUTS_PER_LAUNCH, concatLaunches } from '../../../compiler/backends/cuda/codegen/lower';
import { SymDim, dimToString, evaluateDim } from '../../../compiler/ir/symbolic';
import { buildModel, input, nodeModel } from '../../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

const f32 = (...dims: (number | string)[]) => input('float32', dims);

/** Channel counts of the 20 inputs: uneven, so an offset that skips or repeats an input shows. */
const SIZES = Array.from({ length: 20 }, (_, k) => 1 + ((k * 7) % 11));

function compileConcat(name: string, inputs: ReturnType<typeof f32>[], axis: number, target: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-concat-'));
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, buildModel(nodeModel('Concat', inputs, { attrs: { axis } })));
  const out = path.join(dir, 'out');
  const result = compileModel(file, { out, target, maxBatch: 8 });
  assert.deepEqual(
    result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
    [],
  );
  assert.ok(result.ok);
  return { out, modelCu: fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8') };
}

/** The concat launches of model.cu, each as its `args.` assignments (name → value). */
function concatLaunchArgs(modelCu: string): Map<string, string>[] {
  const launches: Map<string, string>[] = [];
  let current = new Map<string, string>();
  for (const line of modelCu.split('\n')) {
    const assignment = /^\s*args\.(\w+(?:\[\d+\])?) = (.*);$/.exec(line);
    if (assignment) current.set(assignment[1], assignment[2]);
    if (line.includes('ait::kernels::launch_concat(')) {
      launches.push(current);
      current = new Map();
    }
    if (line.includes('ConcatArgs<')) current = new Map();
  }
  return launches;
}

function prefixSums(sizes: number[]): number[] {
  const sums = [0];
  for (const s of sizes) sums.push(sums[sums.length - 1] + s);
  return sums;
}

describe('cuda backend: Concat of any number of inputs', function () {
  this.timeout(600_000);

  describe('concatLaunches (host-side offsets)', () => {
    it('launches take as many inputs as the kernel (kMaxConcatInputs in tensor_ops.cuh)', () => {
      const header = fs.readFileSync(path.resolve(__dirname, '../../../compiler/backends/cuda/kernels/tensor_ops.cuh'), 'utf8');
      assert.equal(Number(/constexpr int kMaxConcatInputs = (\d+);/.exec(header)?.[1]), CONCAT_INPUTS_PER_LAUNCH);
    });

    it('ceil(N / 8) launches of consecutive inputs, each at the sum of the sizes before it', () => {
      for (const n of [1, 7, 8, 9, 16, 17, 20, 32, 100]) {
        const sizes = Array.from({ length: n }, (_, k) => 1 + ((k * 13) % 5));
        const launches = concatLaunches(sizes);
        const sums = prefixSums(sizes);
        assert.equal(launches.length, Math.ceil(n / CONCAT_INPUTS_PER_LAUNCH), `n=${n}`);
        let next = 0;
        for (const { first, count, offset } of launches) {
          assert.equal(first, next);
          assert.ok(count >= 1 && count <= CONCAT_INPUTS_PER_LAUNCH);
          assert.equal(offset, sums[first]);
          next = first + count;
        }
        assert.equal(next, n);
      }
    });

    it('symbolic sizes accumulate symbolically', () => {
      const batch = SymDim.symbol('batch');
      const sizes = [...Array.from({ length: 8 }, () => batch), 3, ...Array.from({ length: 8 }, () => 2)];
      const launches = concatLaunches(sizes);
      assert.deepEqual(
        launches.map((l) => [l.first, l.count]),
        [
          [0, 8],
          [8, 8],
          [16, 1],
        ],
      );
      assert.equal(launches[0].offset, 0);
      for (const b of [1, 5]) {
        const value = (symbol: string) => (symbol === 'batch' ? b : NaN);
        assert.equal(evaluateDim(launches[1].offset, value), 8 * b, dimToString(launches[1].offset));
        assert.equal(evaluateDim(launches[2].offset, value), 8 * b + 3 + 7 * 2, dimToString(launches[2].offset));
      }
    });
  });

  const cases = [
    { name: 'concat20_nhwc', axis: 3, inputs: SIZES.map((c) => f32('B', 4, 5, c)), outer: (o: string) => /batch/.test(o), inner: '1' },
    { name: 'concat20_axis1', axis: 1, inputs: SIZES.map((c) => f32('B', c, 4, 5)), outer: (o: string) => o === 'batch', inner: '20' },
  ];
  for (const target of ['cuda:sm90', 'cuda:sm80']) {
    for (const { name, axis, inputs, outer, inner } of cases) {
      it(`a 20-input Concat along axis ${axis} lowers to 3 launches into slabs of the output (${target}), and nvcc compiles it`, () => {
        const { out, modelCu } = compileConcat(name, inputs, axis, target);
        const launches = concatLaunchArgs(modelCu);
        assert.equal(launches.length, 3, modelCu);
        const sums = prefixSums(SIZES);
        const outputs = new Set(launches.map((l) => l.get('output')));
        assert.equal(outputs.size, 1, 'every launch writes the one output');
        launches.forEach((launch, j) => {
          const first = j * 8;
          const count = Math.min(8, SIZES.length - first);
          assert.equal(launch.get('num_inputs'), String(count));
          for (let k = 0; k < count; ++k) assert.equal(launch.get(`axis_sizes[${k}]`), String(SIZES[first + k]), `launch ${j} input ${k}`);
          assert.equal(launch.get(`axis_sizes[${count}]`), undefined);
          assert.equal(launch.get('output_axis'), String(sums[sums.length - 1]));
          assert.equal(launch.get('output_axis_offset'), String(sums[first]));
          assert.ok(outer(launch.get('outer') ?? ''), `outer ${launch.get('outer')}`);
          assert.equal(launch.get('inner'), inner);
        });
        // the inputs in order: each model input once
        const pointers = launches.flatMap((l) => Array.from({ length: Number(l.get('num_inputs')) }, (_, k) => l.get(`inputs[${k}]`)));
        assert.deepEqual(
          pointers,
          SIZES.map((_, k) => `static_cast<const __half*>(c.inputs[${k}])`),
        );
        if (haveNvcc())
          nvccCompileGenerated(out, ['src/model.cu'], target === 'cuda:sm90' ? 'arch=compute_90,code=sm_90' : 'arch=compute_80,code=sm_80');
      });
    }
  }

  it('a Concat of 8 inputs stays one launch with no output_axis (the code before more inputs were taken)', () => {
    const { modelCu } = compileConcat(
      'concat8',
      SIZES.slice(0, 8).map((c) => f32('B', c, 3)),
      1,
      'cuda:sm90',
    );
    const launches = concatLaunchArgs(modelCu);
    assert.equal(launches.length, 1);
    assert.equal(launches[0].get('num_inputs'), '8');
    assert.equal(launches[0].has('output_axis'), false);
    assert.equal(launches[0].has('output_axis_offset'), false);
  });
});
