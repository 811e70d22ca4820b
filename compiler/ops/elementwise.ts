/** Op family: elementwise. */
import { registerOps } from './registry';

registerOps([]);
