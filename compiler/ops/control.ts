/** Op family: control. */
import { registerOps } from './registry';

registerOps([]);
