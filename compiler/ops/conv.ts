/** Op family: conv. */
import { registerOps } from './registry';

registerOps([]);
