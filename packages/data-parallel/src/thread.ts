/**
 * The main thread's handle on one worker: numbered requests, each answered by one reply. A
 * worker error, crash, exit or a reply that does not come in time rejects what is pending (and
 * everything after). The worker keeps the process alive only while a request is pending.
 */
import type { Worker } from 'node:worker_threads';
import type { Reply, Unsent } from './protocol';

interface Pending {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
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
      clearTimeout(p.timer);
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

  /**
   * Sends `req` (moving the buffers in `transfer`) and resolves with the worker's reply. Without
   * a reply within `timeoutMs`, the thread fails with `timeoutError()` (this and every later request reject).
   */
  request(req: Unsent, transfer: ArrayBuffer[] = [], timeoutMs = Infinity, timeoutError?: () => Error): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.expireAfter(id, timeoutMs, timeoutError);
      this.worker.ref();
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  /** Fails the thread with `timeoutError()` unless request `id` (0 = setup) is answered within `timeoutMs`. */
  expireAfter(id: number, timeoutMs: number, timeoutError?: () => Error): void {
    const p = this.pending.get(id);
    if (!p || !Number.isFinite(timeoutMs)) return;
    clearTimeout(p.timer);
    p.timer = setTimeout(() => {
      if (this.pending.get(id) === p) this.fail(timeoutError?.() ?? new Error(`@vlm/data-parallel: worker ${this.index} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    p.timer.unref?.();
  }

  /** Ends the worker (at once, even mid-computation); what is pending rejects with `reason`. */
  async terminate(reason?: Error): Promise<void> {
    this.closing = true;
    if (reason) this.fail(reason);
    await this.worker.terminate();
  }

  private fail(e: Error) {
    this.failure ??= e;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(this.failure);
    }
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
