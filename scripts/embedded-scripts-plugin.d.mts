import type { Plugin } from 'esbuild';
export declare const embeddedScriptsPlugin: Plugin;
