/**
 * Runs fuzz cases in a worker_threads Worker with a bounded heap and a per-case timeout. The worker is reused
 * across cases and recreated after it is killed (hang, out of memory) or dies.
 *
 * TypeScript in the worker: the worker is started from a small eval'd script that registers tsx's CommonJS hook
 * (the hook mocha uses, `tsx/cjs`) and then requires worker.ts.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CaseRequest, CaseResponse } from './worker';

export interface PoolOptions {
  /** Per-case time limit; the worker is terminated after it (default 10 s). */
  timeoutMs?: number;
  /** V8 old-generation heap limit of the worker (default 512 MB). */
  heapMb?: number;
  /** Limit on the process's RSS growth over the start value, for memory outside the heap (typed arrays). */
  rssMb?: number;
}

export type RunResult = CaseResponse | { id: number; killed: 'hang' | 'oom' | 'exit'; detail: string };

const WORKER_FILE = path.join(__dirname, 'worker.ts');

export class FuzzPool {
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private nextId = 1;
  private readonly baseRss = process.memoryUsage().rss;
  /** Workers started (1 + restarts). */
  started = 0;

  constructor(private readonly options: PoolOptions = {}) {}

  private start(): Promise<void> {
    this.started++;
    const worker = new Worker(`require('tsx/cjs'); require(${JSON.stringify(WORKER_FILE)});`, {
      eval: true,
      resourceLimits: { maxOldGenerationSizeMb: this.options.heapMb ?? 512, maxYoungGenerationSizeMb: 64, stackSizeMb: 4 },
      stdout: false,
      stderr: false,
    });
    this.worker = worker;
    return new Promise((resolve, reject) => {
      const onMessage = (m: { ready?: boolean }) => {
        if (m.ready) {
          worker.off('message', onMessage);
          worker.off('error', reject);
          resolve();
        }
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
  }

  private async kill(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.ready = undefined;
    if (w) await w.terminate();
  }

  async run(req: Omit<CaseRequest, 'id'>): Promise<RunResult> {
    const id = this.nextId++;
    if (!this.ready) this.ready = this.start();
    try {
      await this.ready;
    } catch (e) {
      // the worker died while loading (e.g. its heap limit is too small to load the compiler)
      const err = e as Error & { code?: string };
      await this.kill();
      return { id, killed: err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'oom' : 'exit', detail: `worker start: ${err.message}` };
    }
    const worker = this.worker!;
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    const rssLimit = this.baseRss + (this.options.rssMb ?? 1536) * 2 ** 20;
    const result = await new Promise<RunResult>((resolve) => {
      let done = false;
      const finish = (r: RunResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(watch);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        resolve(r);
      };
      const onMessage = (m: CaseResponse) => {
        if (m.id === id) finish(m);
      };
      const onError = (e: Error & { code?: string }) =>
        finish({ id, killed: e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'oom' : 'exit', detail: `${e.name}: ${e.message}` });
      const onExit = (code: number) => finish({ id, killed: 'exit', detail: `worker exited with code ${code}` });
      const timer = setTimeout(() => finish({ id, killed: 'hang', detail: `no result after ${timeoutMs} ms` }), timeoutMs);
      const watch = setInterval(() => {
        const rss = process.memoryUsage().rss;
        if (rss > rssLimit) finish({ id, killed: 'oom', detail: `process RSS ${(rss / 2 ** 20).toFixed(0)} MB over the limit` });
      }, 50);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.postMessage({ id, ...req } satisfies CaseRequest);
    });
    if ('killed' in result) await this.kill();
    return result;
  }

  async close(): Promise<void> {
    await this.kill();
  }
}
