/** Small models for the per-node verify tests (the extension's unit tests and the VS Code end-to-end test). */
import { tensor, type ModelSpec } from './onnx-builder';

/** Three blocks of 1×1 conv (×40) + Relu over 8 channels: ~160, ~6.4e3, ~2.6e5 — block 3 leaves fp16. */
export function overflowChain(): ModelSpec {
  const c = 8;
  const nodes: ModelSpec['nodes'] = [];
  const initializers = [];
  let x = 'x';
  for (let b = 1; b <= 3; b++) {
    const w = new Array<number>(c * c).fill(0);
    for (let i = 0; i < c; i++) w[i * c + i] = 40;
    initializers.push({ ...tensor('float32', [c, c, 1, 1], w), name: `w${b}` });
    nodes.push({ op: 'Conv', inputs: [x, `w${b}`], outputs: [`c${b}`], name: `/block${b}/conv/Conv` });
    nodes.push({ op: 'Relu', inputs: [`c${b}`], outputs: [`r${b}`], name: `/block${b}/act/Relu` });
    x = `r${b}`;
  }
  return { inputs: [{ name: 'x', dtype: 'float32', dims: ['B', c, 6, 6] }], initializers, nodes, outputs: [x] };
}
