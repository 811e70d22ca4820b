/** Op family: gemm. */
import { registerOps } from './registry';

registerOps([]);
