import type { Plugin } from 'esbuild';
export declare const nativeSourcesPlugin: Plugin;
