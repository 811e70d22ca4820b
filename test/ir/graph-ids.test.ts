/** Graph.newNodeId: unique ids in O(1) amortized time, whatever the passes do to graph.nodes. */
import { strict as assert } from 'node:assert';
import { Graph, Node } from '../../compiler/ir/graph';

function node(id: string): Node {
  return { id, op: 'Relu', domain: '', name: id, inputs: [], outputs: [], attrs: {}, sourceNodes: [], scope: [] };
}

/** A node whose id reads are counted. */
function countedNode(id: string, reads: { n: number }): Node {
  const n = node(id);
  Object.defineProperty(n, 'id', {
    get: () => {
      reads.n++;
      return id;
    },
  });
  return n;
}

describe('Graph.newNodeId', () => {
  it('never hands out an id in use: after removals, array replacement, and nodes added with ids of their own', () => {
    const g = new Graph('g');
    for (let i = 0; i < 10; i++) g.nodes.push(node(g.newNodeId()));
    // a pass drops nodes and replaces the array; another adds nodes with foreign ids that the counter will reach
    g.nodes = g.nodes.filter((_, i) => i % 2 === 0);
    g.nodes.push(node('n10'), node('n12'));
    g.nodes = [...g.nodes, node('n11')];
    const fresh = Array.from({ length: 20 }, () => g.newNodeId());
    const used = new Set(g.nodes.map((n) => n.id));
    for (const id of fresh) assert.ok(!used.has(id), `${id} is already used`);
    assert.equal(new Set(fresh).size, fresh.length);
    // ids of removed nodes are not handed out again either (graph.json ids stay unambiguous across dumps)
    assert.ok(!fresh.includes('n1'));
  });

  it('does not read every node per call (10,000 appends read each id a bounded number of times)', () => {
    const g = new Graph('g');
    const reads = { n: 0 };
    for (let i = 0; i < 10_000; i++) g.nodes.push(countedNode(g.newNodeId(), reads));
    assert.ok(reads.n <= 10_000, `${reads.n} id reads`);
    assert.equal(new Set(g.nodes.map((n) => n.id)).size, 10_000);
  });
});
