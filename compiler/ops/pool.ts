/** Op family: pool. */
import { registerOps } from './registry';

registerOps([]);
