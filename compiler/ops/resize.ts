/** Op family: resize. */
import { registerOps } from './registry';

registerOps([]);
