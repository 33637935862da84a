/** Timing helpers: the same statistics and neighbour-load estimate as bench_torch.py. */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/stat (Linux USER_HZ, 100 on every mainstream kernel). */
const HZ = 100;

/** Busy ticks of the whole machine (all CPUs, minus idle and iowait), or null off Linux. */
function machineBusyTicks(): number | null {
  try {
    const v = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return v.reduce((a, b) => a + b, 0) - v[3]! - v[4]!;
  } catch {
    return null;
  }
}

/** CPU seconds used by this process, all threads (worker threads included). */
function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Result of {@link timeIt}, in milliseconds. */
export interface Timing {
  median: number;
  min: number;
  max: number;
  /** Average number of cores busy with other processes while timing (null off Linux). */
  otherProcsCores: number | null;
}

/** Runs `step` `warmup` times untimed, then `iters` times timed; median as bench_torch.py. */
export async function timeIt(step: () => Promise<void>, warmup: number, iters: number): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await step();
  const ts: number[] = [];
  const b0 = machineBusyTicks();
  const c0 = ownCpuSeconds();
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) {
    const t = performance.now();
    await step();
    ts.push(performance.now() - t);
  }
  const wall = (performance.now() - t0) / 1e3;
  const b1 = machineBusyTicks();
  const c1 = ownCpuSeconds();
  const other = b0 !== null && b1 !== null ? Math.round(Math.max(0, ((b1 - b0) / HZ - (c1 - c0)) / wall) * 100) / 100 : null;
  ts.sort((a, b) => a - b);
  const n = ts.length;
  const median = n % 2 ? ts[(n - 1) / 2]! : 0.5 * (ts[n / 2 - 1]! + ts[n / 2]!);
  return { median, min: ts[0]!, max: ts[n - 1]!, otherProcsCores: other };
}

/** Rounds to 3 decimals, as the PyTorch script does. */
export const round3 = (x: number) => Math.round(x * 1e3) / 1e3;
