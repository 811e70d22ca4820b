/** Op family: detection. */
import { registerOps } from './registry';

registerOps([]);
