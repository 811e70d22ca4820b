/** Op family: normalization. */
import { registerOps } from './registry';

registerOps([]);
