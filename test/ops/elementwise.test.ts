import * as assert from 'node:assert/strict';
import { dimMul, dimToString } from '../../compiler/ir/symbolic';
import { erf } from '../../compiler/ops/elementwise';
import { assertClose, attrs, f32, i64, infer, randomTensor, runOp, singleNodeGraph } from './fixtures';

describe('ops/elementwise', () => {
  it('Add broadcasts [2,3] + [3] and [2,1] + [1,3]', () => {
    const [y] = runOp('Add', [f32([2, 3], [1, 2, 3, 4, 5, 6]), f32([3], [10, 20, 30])]);
    assert.deepEqual(y.shape, [2, 3]);
    assert.deepEqual([...(y.data as Float32Array)], [11, 22, 33, 14, 25, 36]);
    const [z] = runOp('Mul', [f32([2, 1], [2, 3]), f32([1, 3], [1, 10, 100])]);
    assert.deepEqual([...(z.data as Float32Array)], [2, 20, 200, 3, 30, 300]);
  });

  it('broadcasts a middle dim against a random reference', () => {
    const a = randomTensor([2, 3, 4], 1);
    const b = randomTensor([2, 1, 4], 2);
    const [y] = runOp('Sub', [a, b]);
    const ad = a.data as Float32Array;
    const bd = b.data as Float32Array;
    const expected: number[] = [];
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) expected.push(Math.fround(ad[i * 12 + j * 4 + k] - bd[i * 4 + k]));
    assertClose(y.data as Float32Array, expected, 0);
  });

  it('integer Div truncates toward zero; Mod follows fmod', () => {
    const [q] = runOp('Div', [i64([4], [7, -7, 7, -7]), i64([4], [2, 2, -2, -2])]);
    assert.deepEqual([...(q.data as Float64Array)], [3, -3, -3, 3]);
    const [python] = runOp('Mod', [i64([2], [-7, 7]), i64([2], [3, -3])]);
    assert.deepEqual([...(python.data as Float64Array)], [2, -2]);
    const [c] = runOp('Mod', [f32([2], [-7, 7]), f32([2], [3, -3])], { attrs: attrs({ fmod: 1 }) });
    assert.deepEqual([...(c.data as Float32Array)], [-1, 1]);
  });

  it('Erf matches reference values to float32 precision', () => {
    const cases: [number, number][] = [
      [0, 0],
      [1e-4, 1.1283791633342594e-4],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [-3, -0.9999779095030014],
      [3.9, 0.9999999652077514],
    ];
    for (const [x, e] of cases) assert.ok(Math.abs(erf(x) - e) <= 1e-15 + 1e-13 * Math.abs(e), `erf(${x}) = ${erf(x)}, expected ${e}`);
  });

  it('Gelu exact and tanh approximation', () => {
    const x = f32([4], [-2, -0.5, 0.5, 3]);
    const [exact] = runOp('Gelu', [x], { opset: 20 });
    assertClose(exact.data as Float32Array, [-0.04550026389635842, -0.15426876902045958, 0.3457312309795404, 2.995950012268217], 1e-6);
    const [tanh] = runOp('Gelu', [x], { opset: 20, attrs: attrs({ approximate: 'tanh' }) });
    const expected = [-2, -0.5, 0.5, 3].map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    assertClose(tanh.data as Float32Array, expected, 1e-6);
  });

  it('activations match their formulas', () => {
    const values = [-3, -1, -0.25, 0, 0.25, 1, 3];
    const x = f32([7], values);
    const check = (op: string, f: (v: number) => number, a = {}) => {
      const [y] = runOp(op, [x], { attrs: attrs(a) });
      assertClose(y.data as Float32Array, values.map(f), 1e-6, op);
    };
    check('Relu', (v) => Math.max(0, v));
    check('Sigmoid', (v) => 1 / (1 + Math.exp(-v)));
    check('LeakyRelu', (v) => (v < 0 ? 0.1 * v : v), { alpha: { float: 0.1 } });
    check('Elu', (v) => (v < 0 ? Math.exp(v) - 1 : v));
    check('HardSigmoid', (v) => Math.min(1, Math.max(0, 0.2 * v + 0.5)));
    check('HardSwish', (v) => (v * Math.min(6, Math.max(0, v + 3))) / 6);
    check('Softplus', (v) => Math.log(1 + Math.exp(v)));
    check('Selu', (v) => 1.0507009873554805 * (v > 0 ? v : 1.6732632423543772 * (Math.exp(v) - 1)));
    check('Sign', (v) => Math.sign(v));
    check('Tanh', Math.tanh);
  });

  it('Round rounds half to even', () => {
    const [y] = runOp('Round', [f32([6], [0.5, 1.5, 2.5, -0.5, -1.5, 2.4])]);
    assert.deepEqual([...(y.data as Float32Array)], [0, 2, 2, -0, -2, 2]);
  });

  it('Clip reads attributes before opset 11 and inputs after', () => {
    const x = f32([4], [-2, -0.5, 0.5, 2]);
    const [old] = runOp('Clip', [x], { opset: 6, attrs: attrs({ min: { float: -1 }, max: { float: 1 } }) });
    assert.deepEqual([...(old.data as Float32Array)], [-1, -0.5, 0.5, 1]);
    const [lowOnly] = runOp('Clip', [x, f32([], [0])], { opset: 13, constants: [false, true] });
    assert.deepEqual([...(lowOnly.data as Float32Array)], [0, 0, 0.5, 2]);
    const [highOnly] = runOp('Clip', [x, undefined, f32([], [0])], { opset: 13, constants: [false, false, true] });
    assert.deepEqual([...(highOnly.data as Float32Array)], [-2, -0.5, 0, 0]);
  });

  it('variadic Max/Mean broadcast all inputs; PRelu uses per-channel slopes', () => {
    const [m] = runOp('Max', [f32([2], [1, 5]), f32([2, 1], [3, 0]), f32([], [2])]);
    assert.deepEqual([...(m.data as Float32Array)], [3, 5, 2, 5]);
    const [mean] = runOp('Mean', [f32([2], [1, 5]), f32([2], [3, 1]), f32([2], [2, 0])]);
    assert.deepEqual([...(mean.data as Float32Array)], [2, 2]);
    const [p] = runOp('PRelu', [f32([1, 2, 2], [-1, 1, -1, 1]), f32([2, 1], [0.5, 0.25])]);
    assert.deepEqual([...(p.data as Float32Array)], [-0.5, 1, -0.25, 1]);
  });

  it('infers symbolic broadcast shapes', () => {
    const g = singleNodeGraph('Add', [
      { name: 'a', shape: [1, 197, 768] },
      { name: 'b', shape: [768] },
    ]);
    const gB = g.symbols.define('B', 1, 64, 'test');
    g.tensor('a').shape = [gB, 197, 768];
    infer(g);
    assert.equal(g.tensor('y0').shape!.map(dimToString).join(','), 'B,197,768');
  });

  it('keeps integer shape arithmetic symbolic (B*197, then /197 = B)', () => {
    const g = singleNodeGraph('Mul', [
      { name: 'n', dtype: 'int64', shape: [1] },
      { name: 'k', shape: [1], value: i64([1], [197]) },
    ]);
    const B = g.symbols.define('B', 1, 64, 'test');
    g.tensor('n').shapeValue = [B];
    infer(g);
    const product = g.tensor('y0').shapeValue!;
    assert.equal(dimToString(product[0]), '197*B');

    const d = singleNodeGraph('Div', [
      { name: 'n', dtype: 'int64', shape: [2] },
      { name: 'k', shape: [1], value: i64([1], [197]) },
    ]);
    const dB = d.symbols.define('B', 1, 64, 'test');
    d.tensor('n').shapeValue = [dimMul(dB, 197), 394];
    infer(d);
    assert.deepEqual(d.tensor('y0').shapeValue!.map(dimToString), ['B', '2']);
  });

  it('errors name the node: shapes that do not broadcast, mixed dtypes, Erf on integers', () => {
    const bad = singleNodeGraph(
      'Add',
      [
        { name: 'a', shape: [2, 3] },
        { name: 'b', shape: [4] },
      ],
      { name: 'encoder/add_7' },
    );
    assert.throws(() => infer(bad), /Add node 'encoder\/add_7'.*do not broadcast/);
    const mixed = singleNodeGraph(
      'Mul',
      [
        { name: 'a', shape: [2] },
        { name: 'b', dtype: 'int64', shape: [2] },
      ],
      { name: 'scale' },
    );
    assert.throws(() => infer(mixed), /Mul node 'scale': input 1 is int64 but input 0 is float32/);
    const erfInt = singleNodeGraph('Erf', [{ name: 'a', dtype: 'int32', shape: [2] }], { name: 'gelu_erf' });
    assert.throws(() => infer(erfInt), /Erf node 'gelu_erf': needs a floating-point input/);
  });
});
