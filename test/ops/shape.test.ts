import { strict as assert } from 'node:assert';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { makeTensor } from '../../compiler/ir/tensor';
import { ModelSpec, attr, inferModel, input, nodeModel, tensor } from '../helpers/onnx-builder';

const INT64_MAX = 2 ** 63; // as a double; the builder writes it as 2^63 - 1

const i64 = (dims: number[], values: number[]) => tensor('int64', dims, values);
const f32 = (dims: number[], values: number[]) => tensor('float32', dims, values);
const iota = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Folds one node over constant inputs and returns its outputs' shapes and values. */
function fold(...args: Parameters<typeof nodeModel>) {
  const m = inferModel(nodeModel(...args));
  assert.deepEqual(m.errors, []);
  return m;
}

describe('ops/shape', () => {
  describe('Shape → Gather → Unsqueeze → Concat → Reshape chains', () => {
    // The TorchScript exporter's x.reshape(x.shape[0], x.shape[1], 3, 12, 64), with a symbolic batch.
    const chain = (opset: number): ModelSpec => {
      const unsqueeze = (name: string, from: string) =>
        opset >= 13
          ? { op: 'Unsqueeze', inputs: [from, 'axes0'], outputs: [name] }
          : { op: 'Unsqueeze', inputs: [from], outputs: [name], attrs: { axes: [0] } };
      return {
        opset,
        inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 197, 2304] }],
        initializers: [
          { name: 'zero', dtype: 'int64', dims: [], values: [0] },
          { name: 'one', dtype: 'int64', dims: [], values: [1] },
          { name: 'axes0', dtype: 'int64', dims: [1], values: [0] },
          { name: 'tail', dtype: 'int64', dims: [3], values: [3, 12, 64] },
        ],
        nodes: [
          { op: 'Shape', inputs: ['x'], outputs: ['s'] },
          { op: 'Gather', inputs: ['s', 'zero'], outputs: ['b'], attrs: { axis: 0 } },
          { op: 'Gather', inputs: ['s', 'one'], outputs: ['t'], attrs: { axis: 0 } },
          unsqueeze('b1', 'b'),
          unsqueeze('t1', 't'),
          { op: 'Concat', inputs: ['b1', 't1', 'tail'], outputs: ['target'], attrs: { axis: 0 } },
          { op: 'Reshape', inputs: ['x', 'target'], outputs: ['qkv'], name: '/attn/Reshape' },
        ],
        outputs: ['qkv'],
      };
    };

    for (const opset of [11, 13]) {
      it(`resolves the reshape target symbolically (opset ${opset}, Unsqueeze axes as ${opset >= 13 ? 'input' : 'attribute'})`, () => {
        const m = inferModel(chain(opset));
        assert.deepEqual(m.errors, []);
        assert.equal(m.shape('s'), '[3]');
        assert.equal(m.tensor('s').shapeValue!.map(String).join(','), 'batch,197,2304');
        // Gather of a concrete entry folds to a constant; of a symbolic one keeps the symbol.
        assert.deepEqual(m.values('t'), [197]);
        assert.equal(m.tensor('b').value, undefined);
        assert.equal(m.tensor('target').shapeValue!.map(String).join(','), 'batch,197,3,12,64');
        assert.equal(m.shape('qkv'), '[batch, 197, 3, 12, 64]');
      });
    }

    it('folds the whole chain to constants when the input shape is concrete', () => {
      const spec = chain(13);
      spec.inputs[0].dims = [2, 197, 2304];
      const m = inferModel(spec);
      assert.deepEqual(m.values('target'), [2, 197, 3, 12, 64]);
      assert.equal(m.shape('qkv'), '[2, 197, 3, 12, 64]');
      assert.ok([...m.foldedNodes].some((n) => n.op === 'Concat'));
    });
  });

  it('Shape with start/end (opset 15) takes a symbolic slice of the dims; on concrete dims it folds', () => {
    const m = fold('Shape', [input('float32', ['B', 3, 'H', 'W'])], { opset: 15, attrs: { start: 1, end: -1 } });
    assert.equal(m.shape('out0'), '[2]');
    assert.equal(m.tensor('out0').shapeValue!.map(String).join(), '3,H');
    assert.deepEqual(fold('Shape', [input('float32', [2, 3, 4])], { opset: 15, attrs: { start: -2 } }).values('out0'), [3, 4]);
  });

  describe('Reshape', () => {
    it('infers -1 from symbolic dims and copies 0 entries', () => {
      const m = fold('Reshape', [input('float32', ['B', 12, 197, 64]), i64([3], [-1, 197, 64])]);
      assert.equal(m.shape('out0'), '[12*B, 197, 64]');
      const back = fold('Reshape', [input('float32', ['B', 197, 768]), i64([4], [0, 0, 12, -1])]);
      assert.equal(back.shape('out0'), '[B, 197, 12, 64]');
    });

    it('keeps a 0 entry as a zero-sized dim with allowzero', () => {
      const m = fold('Reshape', [f32([0, 4], []), i64([2], [4, 0])], { attrs: { allowzero: 1 } });
      assert.equal(m.shape('out0'), '[4, 0]');
    });

    it('evaluates: the data is unchanged, the shape is the target', () => {
      const m = fold('Reshape', [f32([2, 3], iota(6)), i64([2], [3, -1])]);
      assert.equal(m.shape('out0'), '[3, 2]');
      assert.deepEqual(m.values('out0'), iota(6));
    });

    it('reports an incompatible size with the node name', () => {
      const m = inferModel(nodeModel('Reshape', [input('float32', [2, 3, 5]), i64([2], [4, -1])], { name: '/blocks.0/attn/Reshape' }));
      assert.equal(m.errors.length, 1);
      const [e] = m.errors;
      assert.equal(e.code, 'shape.reshape-size');
      assert.equal(e.location?.onnxNode, '/blocks.0/attn/Reshape');
      assert.match(e.message, /Reshape node '\/blocks\.0\/attn\/Reshape': cannot reshape \[2, 3, 5\] \(30 elements\) to \[4, -1\]/);
      const noInferred = inferModel(nodeModel('Reshape', [input('float32', [2, 3]), i64([2], [4, 2])], { name: 'r' }));
      assert.match(noInferred.errors[0].message, /Reshape node 'r'.*the target has 8 elements/);
    });

    it('gives data-dependent dims, bounded by the element count, when the target is only known at run time', () => {
      const m = inferModel({
        inputs: [
          { name: 'x', dtype: 'float32', dims: [4, 6] },
          { name: 'target', dtype: 'int64', dims: [2] },
        ],
        nodes: [{ op: 'Reshape', inputs: ['x', 'target'], outputs: ['y'] }],
        outputs: ['y'],
      });
      const shape = m.tensor('y').shape!;
      assert.equal(shape.length, 2);
      for (const d of shape) assert.deepEqual(m.graph.symbols.bounds(d), { min: 0, max: 24 });
    });
  });

  describe('Squeeze, Unsqueeze, Flatten, Transpose, Size', () => {
    it('Squeeze/Unsqueeze take axes from the attribute before opset 13 and from the input after', () => {
      assert.equal(fold('Squeeze', [input('float32', ['B', 1, 5, 1])], { opset: 11, attrs: { axes: [1, -1] } }).shape('out0'), '[B, 5]');
      assert.equal(fold('Squeeze', [input('float32', ['B', 1, 5, 1]), i64([1], [3])], { opset: 13 }).shape('out0'), '[B, 1, 5]');
      assert.equal(fold('Squeeze', [input('float32', [1, 5, 1])], { opset: 13 }).shape('out0'), '[5]');
      assert.equal(fold('Unsqueeze', [input('float32', ['B', 5]), i64([2], [0, -1])], { opset: 13 }).shape('out0'), '[1, B, 5, 1]');
      assert.equal(fold('Unsqueeze', [input('float32', ['B', 5])], { opset: 11, attrs: { axes: [1] } }).shape('out0'), '[B, 1, 5]');
    });

    it('Squeeze of a dim that is not 1 names the node', () => {
      const m = inferModel(nodeModel('Squeeze', [input('float32', [2, 3]), i64([1], [0])], { opset: 13, name: 'sq' }));
      assert.match(m.errors[0].message, /Squeeze node 'sq': cannot squeeze axis 0: its size is 2/);
    });

    it('Flatten multiplies symbolic dims', () => {
      assert.equal(fold('Flatten', [input('float32', ['B', 3, 4, 5])], { attrs: { axis: 2 } }).shape('out0'), '[3*B, 20]');
      assert.equal(fold('Flatten', [input('float32', ['B', 2048, 1, 1])]).shape('out0'), '[B, 2048]');
    });

    it('Transpose permutes shapes and values', () => {
      assert.equal(
        fold('Transpose', [input('float32', ['B', 197, 12, 64])], { attrs: { perm: [0, 2, 1, 3] } }).shape('out0'),
        '[B, 12, 197, 64]',
      );
      const m = fold('Transpose', [f32([2, 3], iota(6))]);
      assert.equal(m.shape('out0'), '[3, 2]');
      assert.deepEqual(m.values('out0'), [0, 3, 1, 4, 2, 5]);
    });

    it('Size is the symbolic element count', () => {
      const m = fold('Size', [input('float32', ['B', 3, 4])]);
      assert.equal(m.tensor('out0').shapeValue!.map(String).join(), '12*B');
      assert.deepEqual(fold('Size', [input('float32', [2, 3, 4])]).values('out0'), [24]);
    });
  });

  describe('Concat, Split', () => {
    it('Concat adds symbolic dims on the axis and evaluates blocks in order', () => {
      assert.equal(
        fold('Concat', [input('float32', ['B', 1, 768]), input('float32', ['B', 196, 768])], { attrs: { axis: 1 } }).shape('out0'),
        '[B, 197, 768]',
      );
      const m = fold('Concat', [f32([2, 1], [1, 2]), f32([2, 2], [3, 4, 5, 6])], { attrs: { axis: -1 } });
      assert.deepEqual(m.values('out0'), [1, 3, 4, 2, 5, 6]);
    });

    it('Split: sizes from the input (13+), even split of a symbolic dim, and opset 18 num_outputs with a smaller last part', () => {
      const given = fold('Split', [f32([5], iota(5)), i64([2], [2, 3])], { outputs: 2, opset: 13 });
      assert.deepEqual(given.values('out0'), [0, 1]);
      assert.deepEqual(given.values('out1'), [2, 3, 4]);
      const sym = fold('Split', [input('float32', ['B', 2304])], { outputs: 3, attrs: { axis: 1 } });
      assert.equal(sym.shape('out2'), '[B, 768]');
      const uneven = fold('Split', [f32([7], iota(7))], { outputs: 3, opset: 18, attrs: { num_outputs: 3 } });
      assert.deepEqual([uneven.values('out0'), uneven.values('out1'), uneven.values('out2')], [[0, 1, 2], [3, 4, 5], [6]]);
      const attrSplit = fold('Split', [input('float32', [6, 'B'])], { outputs: 2, opset: 11, attrs: { split: [1, 5] } });
      assert.equal(attrSplit.shape('out1'), '[5, B]');
    });
  });

  describe('Slice', () => {
    it('slices symbolic dims: to INT64_MAX keeps them symbolic, negative starts count from the end', () => {
      const x = input('float32', ['B', 'T', 64]);
      const m = fold('Slice', [x, i64([2], [1, -4]), i64([2], [INT64_MAX, INT64_MAX]), i64([2], [0, 1])]);
      assert.equal(m.shape('out0'), '[B - 1, 4, 64]');
      // An end within the bounds of the symbol (B >= 1) is exact.
      assert.equal(fold('Slice', [x, i64([1], [0]), i64([1], [1]), i64([1], [0])]).shape('out0'), '[1, T, 64]');
      assert.equal(fold('Slice', [x, i64([1], [0]), i64([1], [-1]), i64([1], [1])]).shape('out0'), '[B, T - 1, 64]');
    });

    it('evaluates steps, negative steps and clamping (opset 10+ inputs and opset 1 attributes)', () => {
      const m = fold('Slice', [f32([2, 5], iota(10)), i64([2], [0, 4]), i64([2], [2, -INT64_MAX]), i64([2], [0, 1]), i64([2], [1, -2])]);
      assert.equal(m.shape('out0'), '[2, 3]');
      assert.deepEqual(m.values('out0'), [4, 2, 0, 9, 7, 5]);
      const old = fold('Slice', [f32([6], iota(6))], { opset: 9, attrs: { starts: [1], ends: [100] } });
      assert.deepEqual(old.values('out0'), [1, 2, 3, 4, 5]);
    });

    it('slices shape values: Shape(x)[2:] keeps the symbolic entries', () => {
      const m = inferModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3, 'H', 'W'] }],
        initializers: [
          { name: 'start', dtype: 'int64', dims: [1], values: [2] },
          { name: 'end', dtype: 'int64', dims: [1], values: [INT64_MAX] },
        ],
        nodes: [
          { op: 'Shape', inputs: ['x'], outputs: ['s'] },
          { op: 'Slice', inputs: ['s', 'start', 'end'], outputs: ['hw'] },
        ],
        outputs: ['hw'],
      });
      assert.equal(m.shape('hw'), '[2]');
      assert.equal(m.tensor('hw').shapeValue!.map(String).join(), 'H,W');
    });

    it('makes the sliced length data-dependent, bounded by the dim, when the bounds are run-time values', () => {
      const m = inferModel({
        inputs: [
          { name: 'x', dtype: 'float32', dims: [448, 608] },
          { name: 'start', dtype: 'int64', dims: [1] },
          { name: 'end', dtype: 'int64', dims: [1] },
        ],
        initializers: [{ name: 'axis', dtype: 'int64', dims: [1], values: [1] }],
        nodes: [{ op: 'Slice', inputs: ['x', 'start', 'end', 'axis'], outputs: ['y'] }],
        outputs: ['y'],
      });
      const [rows, cols] = m.tensor('y').shape!;
      assert.equal(rows, 448);
      assert.deepEqual(m.graph.symbols.bounds(cols), { min: 0, max: 608 });
    });
  });

  describe('Gather, GatherElements, GatherND', () => {
    it('Gather: shapes, negative indices, values', () => {
      assert.equal(fold('Gather', [input('float32', ['B', 197, 768]), i64([], [0])], { attrs: { axis: 1 } }).shape('out0'), '[B, 768]');
      const m = fold('Gather', [f32([3, 2], iota(6)), i64([2, 2], [2, 0, -1, 1])]);
      assert.equal(m.shape('out0'), '[2, 2, 2]');
      assert.deepEqual(m.values('out0'), [4, 5, 0, 1, 4, 5, 2, 3]);
    });

    it('Gather of an out-of-range index on a shape value names the node', () => {
      const m = inferModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3] }],
        initializers: [{ name: 'i', dtype: 'int64', dims: [], values: [2] }],
        nodes: [
          { op: 'Shape', inputs: ['x'], outputs: ['s'] },
          { op: 'Gather', inputs: ['s', 'i'], outputs: ['g'], name: 'pick' },
        ],
        outputs: ['g'],
      });
      assert.match(m.errors[0].message, /Gather node 'pick': index 2 is out of range for axis size 2/);
    });

    it('GatherElements and GatherND evaluate per the ONNX examples', () => {
      const ge = fold('GatherElements', [f32([2, 2], [1, 2, 3, 4]), i64([2, 2], [0, 0, 1, 0])], { attrs: { axis: 1 } });
      assert.deepEqual(ge.values('out0'), [1, 1, 4, 3]);
      const nd = fold('GatherND', [f32([2, 2], [0, 1, 2, 3]), i64([2, 1], [1, 0])]);
      assert.equal(nd.shape('out0'), '[2, 2]');
      assert.deepEqual(nd.values('out0'), [2, 3, 0, 1]);
      const batched = fold('GatherND', [f32([2, 2, 2], iota(8)), i64([2, 1], [1, 0])], { attrs: { batch_dims: 1 } });
      assert.deepEqual(batched.values('out0'), [2, 3, 4, 5]);
    });
  });

  describe('Expand, Tile, ConstantOfShape, Range', () => {
    it('Expand broadcasts to a symbolic target shape', () => {
      const m = inferModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 197, 768] }],
        initializers: [
          { name: 'cls', dtype: 'float32', dims: [1, 1, 768], external: 'weights.bin' },
          { name: 'zero', dtype: 'int64', dims: [1], values: [0] },
          { name: 'rest', dtype: 'int64', dims: [2], values: [1, 1] },
        ],
        nodes: [
          { op: 'Shape', inputs: ['x'], outputs: ['s'] },
          { op: 'Gather', inputs: ['s', 'zero'], outputs: ['b'] },
          { op: 'Concat', inputs: ['b', 'rest'], outputs: ['target'], attrs: { axis: 0 } },
          { op: 'Expand', inputs: ['cls', 'target'], outputs: ['y'] },
        ],
        outputs: ['y'],
      });
      assert.deepEqual(m.errors, []);
      assert.equal(m.shape('y'), '[B, 1, 768]');
      const v = fold('Expand', [f32([2, 1], [1, 2]), i64([2], [2, 3])]);
      assert.deepEqual(v.values('out0'), [1, 1, 1, 2, 2, 2]);
    });

    it('Tile repeats', () => {
      const m = fold('Tile', [f32([2], [1, 2]), i64([1], [3])]);
      assert.deepEqual(m.values('out0'), [1, 2, 1, 2, 1, 2]);
      assert.equal(fold('Tile', [input('float32', ['B', 4]), i64([2], [2, 1])]).shape('out0'), '[2*B, 4]');
    });

    it('ConstantOfShape takes a symbolic shape and the value attribute dtype', () => {
      const m = inferModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 7] }],
        nodes: [
          { op: 'Shape', inputs: ['x'], outputs: ['s'] },
          { op: 'ConstantOfShape', inputs: ['s'], outputs: ['y'], attrs: { value: tensor('int64', [1], [5]) } },
        ],
        outputs: ['y'],
      });
      assert.equal(m.shape('y'), '[B, 7]');
      assert.equal(m.tensor('y').dtype, 'int64');
      assert.deepEqual(fold('ConstantOfShape', [i64([2], [2, 2])]).values('out0'), [0, 0, 0, 0]);
    });

    it('Range folds constants; over Shape(x)[0] it has the symbolic length; otherwise a bounded data-dependent symbol', () => {
      assert.deepEqual(fold('Range', [i64([], [1]), i64([], [10]), i64([], [3])]).values('out0'), [1, 4, 7]);
      assert.deepEqual(fold('Range', [f32([], [0]), f32([], [1]), f32([], [0.25])]).values('out0'), [0, 0.25, 0.5, 0.75]);
      const sym = inferModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 7] }],
        initializers: [
          { name: 'zero', dtype: 'int64', dims: [], values: [0] },
          { name: 'one', dtype: 'int64', dims: [], values: [1] },
        ],
        nodes: [
          { op: 'Shape', inputs: ['x'], outputs: ['s'] },
          { op: 'Gather', inputs: ['s', 'zero'], outputs: ['n'] },
          { op: 'Range', inputs: ['zero', 'n', 'one'], outputs: ['r'] },
          { op: 'Range', inputs: ['one', 'n', 'one'], outputs: ['r1'] },
        ],
        outputs: ['r', 'r1'],
      });
      assert.equal(sym.shape('r'), '[B]');
      const [len] = sym.tensor('r1').shape!;
      assert.match(String(len), /^range_/);
      assert.deepEqual(sym.graph.symbols.bounds(len), { min: 0, max: 256 });
    });
  });

  describe('Constant, Identity, Dropout', () => {
    it('Constant reads every value_* attribute', () => {
      const one = (attrs: NonNullable<Parameters<typeof nodeModel>[2]>['attrs']) => fold('Constant', [], { attrs });
      let m = one({ value: tensor('float32', [2], [1.5, 2]) });
      assert.deepEqual([m.tensor('out0').dtype, m.shape('out0'), m.values('out0')], ['float32', '[2]', [1.5, 2]]);
      m = one({ value_float: attr.float(1) });
      assert.deepEqual([m.tensor('out0').dtype, m.shape('out0'), m.values('out0')], ['float32', '[]', [1]]);
      m = one({ value_floats: attr.floats([1, 2]) });
      assert.deepEqual([m.tensor('out0').dtype, m.shape('out0'), m.values('out0')], ['float32', '[2]', [1, 2]]);
      m = one({ value_int: 7 });
      assert.deepEqual([m.tensor('out0').dtype, m.shape('out0'), m.values('out0')], ['int64', '[]', [7]]);
      m = one({ value_ints: [3, 4] });
      assert.deepEqual([m.tensor('out0').dtype, m.values('out0'), m.tensor('out0').shapeValue], ['int64', [3, 4], [3, 4]]);
      m = one({ value_string: 'a' });
      assert.deepEqual([m.tensor('out0').dtype, m.tensor('out0').value!.data], ['string', ['a']]);
      m = one({ value_strings: ['a', 'b'] });
      assert.deepEqual([m.shape('out0'), m.tensor('out0').value!.data], ['[2]', ['a', 'b']]);
      const none = inferModel(nodeModel('Constant', [], { name: 'c' }));
      assert.match(none.errors[0].message, /Constant node 'c': has none of the value attributes/);
    });

    it('Identity keeps shape values; Dropout is the identity with an all-true mask', () => {
      const m = inferModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3] }],
        nodes: [
          { op: 'Shape', inputs: ['x'], outputs: ['s'] },
          { op: 'Identity', inputs: ['s'], outputs: ['t'] },
        ],
        outputs: ['t'],
      });
      assert.equal(m.tensor('t').shapeValue!.map(String).join(), 'B,3');
      const d = fold('Dropout', [f32([3], [1, 2, 3])], { outputs: 2 });
      assert.deepEqual([d.values('out0'), d.values('out1'), d.tensor('out1').dtype], [[1, 2, 3], [1, 1, 1], 'bool']);
    });
  });

  describe('Pad, ScatterElements, ScatterND, CumSum, Trilu', () => {
    it('Pad: pads as input (11+) or attribute (before 11), constant/edge/reflect', () => {
      assert.equal(
        fold('Pad', [input('float32', ['B', 3, 'H', 'W']), i64([8], [0, 0, 1, 2, 0, 0, 3, 4])]).shape('out0'),
        '[B, 3, H + 4, W + 6]',
      );
      const c = fold('Pad', [f32([2], [1, 2]), i64([2], [1, 2]), f32([], [9])]);
      assert.deepEqual(c.values('out0'), [9, 1, 2, 9, 9]);
      const edge = fold('Pad', [f32([3], [1, 2, 3]), i64([2], [2, 1])], { attrs: { mode: 'edge' } });
      assert.deepEqual(edge.values('out0'), [1, 1, 1, 2, 3, 3]);
      const reflect = fold('Pad', [f32([3], [1, 2, 3]), i64([2], [2, 2])], { attrs: { mode: 'reflect' } });
      assert.deepEqual(reflect.values('out0'), [3, 2, 1, 2, 3, 2, 1]);
      const old = fold('Pad', [f32([2], [1, 2])], { opset: 10, attrs: { pads: [1, 0], value: attr.float(5) } });
      assert.deepEqual(old.values('out0'), [5, 1, 2]);
    });

    it('ScatterElements and ScatterND write updates (with reductions)', () => {
      const se = fold('ScatterElements', [f32([1, 5], [1, 2, 3, 4, 5]), i64([1, 2], [1, 3]), f32([1, 2], [1.1, 2.1])], {
        attrs: { axis: 1 },
      });
      assert.deepEqual(
        se.values('out0').map((v) => Math.round(v * 10) / 10),
        [1, 1.1, 3, 2.1, 5],
      );
      const add = fold('ScatterElements', [f32([3], [1, 1, 1]), i64([2], [0, 0]), f32([2], [2, 3])], {
        opset: 16,
        attrs: { reduction: 'add' },
      });
      assert.deepEqual(add.values('out0'), [6, 1, 1]);
      const nd = fold('ScatterND', [f32([8], [1, 2, 3, 4, 5, 6, 7, 8]), i64([4, 1], [4, 3, 1, 7]), f32([4], [9, 10, 11, 12])]);
      assert.deepEqual(nd.values('out0'), [1, 11, 3, 10, 9, 6, 7, 12]);
    });

    it('CumSum: plain, exclusive, reverse', () => {
      assert.deepEqual(fold('CumSum', [f32([4], [1, 2, 3, 4]), i64([], [0])]).values('out0'), [1, 3, 6, 10]);
      assert.deepEqual(
        fold('CumSum', [f32([4], [1, 2, 3, 4]), i64([], [0])], { attrs: { exclusive: 1, reverse: 1 } }).values('out0'),
        [9, 7, 4, 0],
      );
    });

    it('Trilu keeps the upper or lower triangle', () => {
      assert.deepEqual(fold('Trilu', [f32([2, 3], [1, 2, 3, 4, 5, 6])]).values('out0'), [1, 2, 3, 0, 5, 6]);
      assert.deepEqual(
        fold('Trilu', [f32([2, 3], [1, 2, 3, 4, 5, 6]), i64([], [-1])], { attrs: { upper: 0 } }).values('out0'),
        [0, 0, 0, 4, 0, 0],
      );
    });
  });

  it('runs in the interpreter on run-time inputs (Transpose → Reshape → Slice)', () => {
    const m = inferModel({
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 2, 3] }],
      initializers: [
        { name: 'target', dtype: 'int64', dims: [2], values: [0, -1] },
        { name: 's', dtype: 'int64', dims: [1], values: [1] },
        { name: 'e', dtype: 'int64', dims: [1], values: [INT64_MAX] },
        { name: 'ax', dtype: 'int64', dims: [1], values: [1] },
      ],
      nodes: [
        { op: 'Transpose', inputs: ['x'], outputs: ['t'], attrs: { perm: [0, 2, 1] } },
        { op: 'Reshape', inputs: ['t', 'target'], outputs: ['r'] },
        { op: 'Slice', inputs: ['r', 's', 'e', 'ax'], outputs: ['y'] },
      ],
      outputs: ['y'],
    });
    assert.equal(m.shape('y'), '[B, 5]');
    const [y] = runGraph(m.graph, [makeTensor('float32', [1, 2, 3], iota(6))]);
    assert.deepEqual(y.shape, [1, 5]);
    assert.deepEqual(Array.from(y.data as Float32Array), [3, 1, 4, 2, 5]);
  });
});
