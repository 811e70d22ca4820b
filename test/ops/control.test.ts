import { strict as assert } from 'node:assert';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { makeTensor } from '../../compiler/ir/tensor';
import { GraphSpec, ModelSpec, inferModel } from '../helpers/onnx-builder';

/** then: x sliced to its first 3 columns (Slice of an outer-scope tensor); else: x concatenated with itself. */
function ifModel(cond: { input: boolean } | { constant: boolean }): ModelSpec {
  const thenBranch: GraphSpec = {
    name: 'then',
    inputs: [],
    initializers: [
      { name: 'starts', dtype: 'int64', dims: [1], values: [0] },
      { name: 'ends', dtype: 'int64', dims: [1], values: [3] },
      { name: 'axes', dtype: 'int64', dims: [1], values: [1] },
    ],
    nodes: [{ op: 'Slice', inputs: ['x', 'starts', 'ends', 'axes'], outputs: ['t'] }],
    outputs: ['t'],
  };
  const elseBranch: GraphSpec = {
    name: 'else',
    inputs: [],
    nodes: [{ op: 'Concat', inputs: ['x', 'x'], outputs: ['e'], attrs: { axis: 1 } }],
    outputs: ['e'],
  };
  const condInput = 'input' in cond;
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 4] }, ...(condInput ? [{ name: 'c', dtype: 'bool' as const, dims: [] }] : [])],
    initializers: condInput ? [] : [{ name: 'c', dtype: 'bool', dims: [], values: [Number(cond.constant)] }],
    nodes: [{ op: 'If', name: 'choose', inputs: ['c'], outputs: ['y'], attrs: { then_branch: thenBranch, else_branch: elseBranch } }],
    outputs: ['y'],
  };
}

/**
 * for i in range(M): acc = acc + i; rows = concat(rows, [[i, i]]); scan out i * 2. `exit` adds an early exit
 * (cond = i < 2).
 */
function loopModel(trip: number | 'B', exit = false): ModelSpec {
  const body: GraphSpec = {
    name: 'body',
    inputs: [
      { name: 'i', dtype: 'int64', dims: [] },
      { name: 'cond_in', dtype: 'bool', dims: [] },
      { name: 'acc_in', dtype: 'int64', dims: [] },
      { name: 'rows_in', dtype: 'float32', dims: [null, 2] },
    ],
    initializers: [
      { name: 'two', dtype: 'int64', dims: [], values: [2] },
      { name: 'shape12', dtype: 'int64', dims: [2], values: [1, 2] },
      { name: 'limit', dtype: 'int64', dims: [], values: [2] },
    ],
    nodes: [
      { op: 'Add', inputs: ['acc_in', 'i'], outputs: ['acc_out'] },
      { op: 'Cast', inputs: ['i'], outputs: ['i_f'], attrs: { to: 1 } },
      { op: 'Expand', inputs: ['i_f', 'shape12'], outputs: ['row'] },
      { op: 'Concat', inputs: ['rows_in', 'row'], outputs: ['rows_out'], attrs: { axis: 0 } },
      { op: 'Mul', inputs: ['i', 'two'], outputs: ['scan'] },
      exit ? { op: 'Less', inputs: ['i', 'limit'], outputs: ['cond_out'] } : { op: 'Identity', inputs: ['cond_in'], outputs: ['cond_out'] },
    ],
    outputs: ['cond_out', 'acc_out', 'rows_out', 'scan'],
  };
  const tripNodes =
    trip === 'B'
      ? [
          { op: 'Shape', inputs: ['x'], outputs: ['xs'] },
          { op: 'Gather', inputs: ['xs', 'zero'], outputs: ['M'], attrs: { axis: 0 } },
        ]
      : [];
  return {
    inputs: trip === 'B' ? [{ name: 'x', dtype: 'float32', dims: ['B'] }] : [],
    initializers: [
      { name: 'zero', dtype: 'int64', dims: [], values: [0] },
      { name: 'acc0', dtype: 'int64', dims: [], values: [0] },
      { name: 'rows0', dtype: 'float32', dims: [0, 2], values: [] },
      { name: 'true', dtype: 'bool', dims: [], values: [1] },
      ...(trip === 'B' ? [] : [{ name: 'M', dtype: 'int64' as const, dims: [], values: [trip] }]),
    ],
    nodes: [
      ...tripNodes,
      { op: 'Loop', name: 'loop', inputs: ['M', 'true', 'acc0', 'rows0'], outputs: ['acc', 'rows', 'scans'], attrs: { body } },
    ],
    outputs: ['acc', 'rows', 'scans'],
  };
}

describe('ops/control', () => {
  describe('If', () => {
    it('a constant condition gives the taken branch its types', () => {
      assert.equal(inferModel(ifModel({ constant: true })).shape('y'), '[B, 3]');
      assert.equal(inferModel(ifModel({ constant: false })).shape('y'), '[B, 8]');
    });

    it('a run-time condition merges the branches: equal dims kept, differing dims a symbol bounding both', () => {
      const m = inferModel(ifModel({ input: true }));
      assert.deepEqual(m.errors, []);
      const [b, cols] = m.tensor('y').shape!;
      assert.equal(String(b), 'B');
      assert.match(String(cols), /^if_/);
      assert.deepEqual(m.graph.symbols.bounds(cols), { min: 3, max: 8 });
      // the branch bodies are shaped too, reading x from the outer scope
      const thenBody = m.graph.nodes[0].attrs.then_branch;
      assert.equal(thenBody.type, 'graph');
      if (thenBody.type === 'graph') assert.equal(String(thenBody.value.tensor('t').shape), 'B,3');
    });

    it('evaluates the branch the condition picks', () => {
      const m = inferModel(ifModel({ input: true }));
      const x = makeTensor('float32', [1, 4], [1, 2, 3, 4]);
      const [t] = runGraph(m.graph, [x, makeTensor('bool', [], [1])]);
      assert.deepEqual(Array.from(t.data as Float32Array), [1, 2, 3]);
      const [e] = runGraph(m.graph, [x, makeTensor('bool', [], [0])]);
      assert.deepEqual(e.shape, [1, 8]);
    });

    it('branches of different rank are an error naming the node', () => {
      const spec = ifModel({ input: true });
      const elseBranch = spec.nodes[0].attrs!.else_branch as GraphSpec;
      elseBranch.nodes = [
        { op: 'Flatten', inputs: ['x'], outputs: ['e'], attrs: { axis: 0 } },
        { op: 'Squeeze', inputs: ['e'], outputs: ['e2'] },
      ];
      elseBranch.outputs = ['e2'];
      const m = inferModel(spec);
      assert.match(m.errors[0].message, /If node 'choose': output 'y' has rank 2 in one case and 1 in the other/);
    });
  });

  describe('Loop', () => {
    it('a constant trip count without early exit: concrete scan length, carried dims that grow by a row per iteration', () => {
      const m = inferModel(loopModel(5));
      assert.deepEqual(m.errors, []);
      assert.equal(m.shape('acc'), '[]');
      assert.equal(m.shape('scans'), '[5]');
      assert.equal(m.shape('rows'), '[5, 2]');
      // the body was typed: iteration number int64 [], carried rows a per-iteration symbol
      const body = m.graph.nodes.find((n) => n.op === 'Loop')!.attrs.body;
      assert.equal(body.type, 'graph');
      if (body.type === 'graph') {
        assert.equal(body.value.tensor('i').dtype, 'int64');
        assert.deepEqual(body.value.tensor('i').shape, []);
        const [rowsIn] = body.value.tensor('rows_in').shape!;
        assert.deepEqual(m.graph.symbols.bounds(rowsIn), { min: 0, max: 5 });
        assert.equal(String(body.value.tensor('rows_out').shape![0]), `${rowsIn} + 1`);
      }
    });

    it('a symbolic trip count carries through: scans [B], rows [B, 2]', () => {
      const m = inferModel(loopModel('B'));
      assert.deepEqual(m.errors, []);
      assert.equal(m.shape('scans'), '[B]');
      assert.equal(m.shape('rows'), '[B, 2]');
    });

    it('an early exit makes the trip count a symbol bounded by M', () => {
      const m = inferModel(loopModel(10, true));
      assert.deepEqual(m.errors, []);
      const [trips] = m.tensor('scans').shape!;
      assert.match(String(trips), /^trips_/);
      assert.deepEqual(m.graph.symbols.bounds(trips), { min: 0, max: 10 });
    });

    it('evaluates: carried values, stacked scans, early exit', () => {
      const m = inferModel(loopModel('B'));
      const [acc, rows, scans] = runGraph(m.graph, [makeTensor('float32', [4], [0, 0, 0, 0])]);
      assert.deepEqual(Array.from(acc.data as Float64Array), [6]);
      assert.deepEqual(rows.shape, [4, 2]);
      assert.deepEqual(Array.from(rows.data as Float32Array), [0, 0, 1, 1, 2, 2, 3, 3]);
      assert.deepEqual(Array.from(scans.data as Float64Array), [0, 2, 4, 6]);
      const early = inferModel(loopModel(10, true));
      const [acc2, , scans2] = runGraph(early.graph, []);
      // iterations 0, 1, 2 run (the condition i < 2 is checked after each body run)
      assert.deepEqual(Array.from(acc2.data as Float64Array), [3]);
      assert.deepEqual(Array.from(scans2.data as Float64Array), [0, 2, 4]);
    });
  });
});
