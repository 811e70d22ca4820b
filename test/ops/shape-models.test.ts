import { strict as assert } from 'node:assert';
import '../../compiler/ops/index';
import { shapeToString } from '../../compiler/ir/symbolic';
import { importOnnxFile } from '../../compiler/onnx/import';
import { inferShapes } from '../../compiler/passes/shape-inference';
import { sharedModel } from '../helpers/models';

describe('shape arithmetic in real models', () => {
  for (const name of ['vit_base_patch16_224_legacy', 'vit_base_patch16_224'] as const) {
    it(`${name}: every Reshape target resolves (constant or symbolic), q/k/v reshape to [batch, 197, 3, 12, 64]`, function () {
      const { graph } = importOnnxFile(sharedModel(name, this));
      const result = inferShapes(graph);
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error'),
        [],
      );
      const reshapes = graph.nodes.filter((n) => n.op === 'Reshape');
      assert.ok(reshapes.length >= 25);
      const unresolved = reshapes.filter((n) => {
        const target = graph.tensor(n.inputs[1]);
        return !target.value && !target.shapeValue;
      });
      assert.deepEqual(
        unresolved.map((n) => n.name),
        [],
      );
      const shapes = reshapes.map((n) => shapeToString(graph.tensor(n.outputs[0]).shape));
      assert.equal(shapes.filter((s) => s === '[batch, 197, 3, 12, 64]').length, 12);
      assert.equal(shapes.filter((s) => s === '[batch, 197, 768]').length, 12);
      if (name === 'vit_base_patch16_224_legacy') {
        // The TorchScript export's Shape → Gather → Unsqueeze → Concat chains fold into constants or shape values.
        const shapeNodes = graph.nodes.filter((n) => n.op === 'Shape');
        assert.ok(shapeNodes.length >= 39);
        for (const n of shapeNodes) assert.ok(graph.tensor(n.outputs[0]).shapeValue, `${n.name} has a shape value`);
        assert.ok(result.foldedNodes.size > 300, `${result.foldedNodes.size} nodes folded`);
      }
    });
  }
});
