import type { Plugin } from 'esbuild';
export declare const cudaSourcesPlugin: Plugin;
