/** Op family: shape. */
import { registerOps } from './registry';

registerOps([]);
