/**
 * Per-CPU time over an interval, from /proc/stat: shows which core was the bottleneck and how
 * much of each core went to processes other than the benchmark's. Interrupt and softirq time is
 * kept apart: on loopback it is mostly the benchmark's own network traffic, and the kernel does
 * not charge it to any process.
 */
import { readFileSync } from 'node:fs';

interface CpuCounters {
  /** user + nice + system: time charged to processes */
  readonly tasks: number;
  /** irq + softirq */
  readonly irq: number;
  /** time the hypervisor ran something else */
  readonly steal: number;
  readonly total: number;
}

export type CpuTimes = ReadonlyMap<number, CpuCounters>;

export interface CpuShare {
  /** everything but idle and iowait, 0..1 */
  readonly busy: number;
  readonly tasks: number;
  readonly irq: number;
  readonly steal: number;
}

export function readCpuTimes(): CpuTimes {
  const times = new Map<number, CpuCounters>();
  try {
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (!m) continue;
      // user nice system idle iowait irq softirq steal
      const f = (m[2] as string).trim().split(/\s+/).map(Number);
      const at = (i: number): number => f[i] ?? 0;
      times.set(Number(m[1]), {
        tasks: at(0) + at(1) + at(2),
        irq: at(5) + at(6),
        steal: at(7),
        total: f.slice(0, 8).reduce((a, b) => a + b, 0),
      });
    }
  } catch {
    // not Linux: no per-core figures
  }
  return times;
}

/** Shares (0..1) per CPU between two readings. */
export function sharesBetween(before: CpuTimes, after: CpuTimes): Map<number, CpuShare> {
  const out = new Map<number, CpuShare>();
  for (const [cpu, a] of after) {
    const b = before.get(cpu);
    if (!b || a.total === b.total) continue;
    const span = a.total - b.total;
    const tasks = (a.tasks - b.tasks) / span;
    const irq = (a.irq - b.irq) / span;
    const steal = (a.steal - b.steal) / span;
    out.set(cpu, { busy: tasks + irq + steal, tasks, irq, steal });
  }
  return out;
}

/**
 * Busy share per CPU over one second before anything starts (other work on the machine); with
 * waitS > 0, keeps sampling until no CPU is more than `calmBelow` busy or waitS has passed.
 */
export async function busyNow(
  waitS: number,
  log: (line: string) => void,
  calmBelow = 0.1,
): Promise<Record<string, number>> {
  const end = Date.now() + waitS * 1000;
  for (;;) {
    const before = readCpuTimes();
    await new Promise((r) => setTimeout(r, 1000));
    const busy = [...sharesBetween(before, readCpuTimes())].map(([c, s]) => [String(c), s.busy] as const);
    const calm = busy.every(([, f]) => f <= calmBelow);
    if (calm || Date.now() >= end) {
      if (waitS > 0) log(calm ? 'machine is calm' : `still busy after ${waitS} s; starting anyway`);
      return Object.fromEntries(busy);
    }
  }
}
