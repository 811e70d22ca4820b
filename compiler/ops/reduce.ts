/** Op family: reduce. */
import { registerOps } from './registry';

registerOps([]);
