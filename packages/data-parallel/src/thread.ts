/**
 * The main thread's handle on one worker: numbered requests, each answered by one reply. A
 * worker error, crash or exit rejects what is pending (and everything after). The worker keeps
 * the process alive only while a request is pending.
 */
import type { Worker } from 'node:worker_threads';
import type { Reply, Unsent } from './protocol';

interface Pending {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

export class Thread {
  /** Resolves with the worker's reply to the end of its setup. */
  readonly ready: Promise<Reply>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | null = null;
  private closing = false;

  constructor(
    readonly worker: Worker,
    readonly index: number,
  ) {
    this.ready = new Promise((resolve, reject) => this.pending.set(0, { resolve, reject }));
    worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (!this.pending.size) worker.unref();
      if (r.error === undefined) p.resolve(r);
      else p.reject(new Error(`@vlm/data-parallel: worker ${index} failed: ${r.error}`));
    });
    worker.on('error', (e) => this.fail(new Error(`@vlm/data-parallel: worker ${index} crashed: ${e.stack ?? e}`)));
    worker.on('exit', (code) => {
      const hint = this.pending.has(0) ? ' before its setup ended (does the worker module call serveDataParallel?)' : '';
      this.fail(new Error(`@vlm/data-parallel: worker ${index} ${this.closing ? 'was closed' : `exited unexpectedly (exit code ${code})${hint}`}`));
    });
  }

  /** Sends `req` (moving the buffers in `transfer`) and resolves with the worker's reply. */
  request(req: Unsent, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  /** Ends the worker (at once, even mid-computation). */
  async terminate(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
  }

  private fail(e: Error) {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }
}

/** Like `Promise.all`, but waits for every promise before rejecting with the first failure. */
export async function settleAll<T>(promises: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}
