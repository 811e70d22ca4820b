/**
 * Registers every op family. Import this module (for its side effect) before inferring or running graphs.
 * One file per family; each file calls registerOps with its definitions.
 */
import './elementwise';
import './shape';
import './logic';
import './conv';
import './gemm';
import './pool';
import './normalization';
import './reduce';
import './resize';
import './detection';
import './control';
import './recurrent';

export { findOp, knownOps } from './registry';
import './fused';
