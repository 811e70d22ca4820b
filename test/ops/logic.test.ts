import { strict as assert } from 'node:assert';
import { dtypeToOnnx } from '../../compiler/ir/dtype';
import { inferModel, input, nodeModel, tensor } from '../helpers/onnx-builder';

const i64 = (dims: number[], values: number[]) => tensor('int64', dims, values);
const f32 = (dims: number[], values: number[]) => tensor('float32', dims, values);
const bool = (dims: number[], values: number[]) => tensor('bool', dims, values);

function fold(...args: Parameters<typeof nodeModel>) {
  const m = inferModel(nodeModel(...args));
  assert.deepEqual(m.errors, []);
  return m;
}

describe('ops/logic', () => {
  it('Cast converts values (float → int truncates, → bool is non-zero) and keeps shape values', () => {
    const m = fold('Cast', [f32([4], [1.7, -1.7, 0, 3])], { attrs: { to: dtypeToOnnx('int64') } });
    assert.deepEqual([m.tensor('out0').dtype, m.values('out0')], ['int64', [1, -1, 0, 3]]);
    assert.deepEqual(fold('Cast', [f32([3], [0, 2, -1])], { attrs: { to: dtypeToOnnx('bool') } }).values('out0'), [0, 1, 1]);
    const sym = inferModel({
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3] }],
      nodes: [
        { op: 'Shape', inputs: ['x'], outputs: ['s'] },
        { op: 'Cast', inputs: ['s'], outputs: ['f'], attrs: { to: dtypeToOnnx('float32') } },
      ],
      outputs: ['f'],
    });
    assert.equal(sym.tensor('f').dtype, 'float32');
    assert.equal(sym.tensor('f').shapeValue!.map(String).join(), 'B,3');
    const bad = inferModel(nodeModel('Cast', [input('float32', [2])], { attrs: { to: 99 }, name: 'c' }));
    assert.match(bad.errors[0].message, /Cast node 'c': 'to' is 99/);
  });

  it('CastLike takes the dtype of its second input', () => {
    const m = fold('CastLike', [f32([2], [1.5, 2.5]), i64([1], [0])]);
    assert.deepEqual([m.tensor('out0').dtype, m.values('out0')], ['int64', [1, 2]]);
  });

  it('comparisons broadcast and evaluate', () => {
    const a = f32([2, 1], [1, 3]);
    const b = f32([3], [1, 2, 3]);
    assert.deepEqual(fold('Equal', [a, b]).values('out0'), [1, 0, 0, 0, 0, 1]);
    assert.deepEqual(fold('Less', [a, b]).values('out0'), [0, 1, 1, 0, 0, 0]);
    assert.deepEqual(fold('LessOrEqual', [a, b]).values('out0'), [1, 1, 1, 0, 0, 1]);
    assert.deepEqual(fold('Greater', [a, b]).values('out0'), [0, 0, 0, 1, 1, 0]);
    assert.deepEqual(fold('GreaterOrEqual', [a, b]).values('out0'), [1, 0, 0, 1, 1, 1]);
    const shape = fold('Equal', [input('float32', ['B', 1, 5]), input('float32', [4, 1])]);
    assert.equal(shape.shape('out0'), '[B, 4, 5]');
    assert.equal(shape.tensor('out0').dtype, 'bool');
  });

  it('Not, And, Or, Xor, IsNaN, IsInf', () => {
    const p = bool([4], [0, 0, 1, 1]);
    const q = bool([4], [0, 1, 0, 1]);
    assert.deepEqual(fold('Not', [p]).values('out0'), [1, 1, 0, 0]);
    assert.deepEqual(fold('And', [p, q]).values('out0'), [0, 0, 0, 1]);
    assert.deepEqual(fold('Or', [p, q]).values('out0'), [0, 1, 1, 1]);
    assert.deepEqual(fold('Xor', [p, q]).values('out0'), [0, 1, 1, 0]);
    const x = f32([4], [NaN, Infinity, -Infinity, 1]);
    assert.deepEqual(fold('IsNaN', [x]).values('out0'), [1, 0, 0, 0]);
    assert.deepEqual(fold('IsInf', [x]).values('out0'), [0, 1, 1, 0]);
    assert.deepEqual(fold('IsInf', [x], { attrs: { detect_negative: 0 } }).values('out0'), [0, 1, 0, 0]);
  });

  it('Where selects with broadcasting', () => {
    const m = fold('Where', [bool([2], [1, 0]), f32([2, 2], [1, 2, 3, 4]), f32([], [9])]);
    assert.deepEqual(m.values('out0'), [1, 9, 3, 9]);
  });

  it("folds the exporter's expand(-1) idiom Where(Equal(shape, -1), 1, shape) on a symbolic shape", () => {
    // torch: cls_token.expand(x.shape[0], -1, -1) exports as Where(Equal(target, -1), ones, target) → Expand.
    const m = inferModel({
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 196, 768] }],
      initializers: [
        { name: 'cls', dtype: 'float32', dims: [1, 1, 768], external: 'weights.bin' },
        { name: 'zero', dtype: 'int64', dims: [1], values: [0] },
        { name: 'rest', dtype: 'int64', dims: [2], values: [-1, -1] },
        { name: 'minus1', dtype: 'int64', dims: [3], values: [-1, -1, -1] },
        { name: 'ones', dtype: 'int64', dims: [3], values: [1, 1, 1] },
      ],
      nodes: [
        { op: 'Shape', inputs: ['x'], outputs: ['s'] },
        { op: 'Gather', inputs: ['s', 'zero'], outputs: ['b'] },
        { op: 'Concat', inputs: ['b', 'rest'], outputs: ['target'], attrs: { axis: 0 } },
        { op: 'Equal', inputs: ['target', 'minus1'], outputs: ['is_default'] },
        { op: 'Where', inputs: ['is_default', 'ones', 'target'], outputs: ['fixed'] },
        { op: 'Expand', inputs: ['cls', 'fixed'], outputs: ['y'] },
      ],
      outputs: ['y'],
    });
    assert.deepEqual(m.errors, []);
    // B is in [1, 256], so B == -1 is decided false without knowing B.
    assert.deepEqual(m.values('is_default'), [0, 1, 1]);
    assert.equal(m.tensor('fixed').shapeValue!.map(String).join(), 'B,1,1');
    assert.equal(m.shape('y'), '[B, 1, 768]');
  });

  it('leaves a comparison undecided when the bounds do not decide it', () => {
    const m = inferModel(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3] }],
        initializers: [{ name: 'eight', dtype: 'int64', dims: [2], values: [8, 3] }],
        nodes: [
          { op: 'Shape', inputs: ['x'], outputs: ['s'] },
          { op: 'Less', inputs: ['s', 'eight'], outputs: ['lt'] },
          { op: 'Equal', inputs: ['s', 'eight'], outputs: ['eq'] },
        ],
        outputs: ['lt', 'eq'],
      },
      { dimBounds: { B: [1, 4] } },
    );
    assert.deepEqual(m.values('lt'), [1, 0]); // B <= 4 < 8
    assert.deepEqual(m.values('eq'), [0, 1]); // B <= 4 cannot be 8
    const u = inferModel(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B'] }],
        initializers: [{ name: 'two', dtype: 'int64', dims: [1], values: [2] }],
        nodes: [
          { op: 'Shape', inputs: ['x'], outputs: ['s'] },
          { op: 'Equal', inputs: ['s', 'two'], outputs: ['eq'] },
        ],
        outputs: ['eq'],
      },
      { dimBounds: { B: [1, 4] } },
    );
    assert.equal(u.tensor('eq').value, undefined);
    assert.equal(u.shape('eq'), '[1]');
  });
});
