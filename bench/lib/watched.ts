/**
 * One measured phase of a side-by-side benchmark: what it returned, the CPU time the proxy's
 * process tree used, and the share of the proxy core other processes took meanwhile (a round
 * above a threshold is measured again by the caller).
 */
import { readCpuTimes, sharesBetween } from './cpu.ts';
import { treeCpuSeconds } from './procs.ts';

export async function watched<T>(
  pid: number,
  proxyCpu: number | null,
  phase: () => Promise<T>,
): Promise<{ value: T; other: number; cpuS: number }> {
  const before = readCpuTimes();
  const cpu0 = treeCpuSeconds(pid);
  const t0 = performance.now();
  const value = await phase();
  const cpuS = treeCpuSeconds(pid) - cpu0;
  const share = proxyCpu === null ? undefined : sharesBetween(before, readCpuTimes()).get(proxyCpu);
  const wallS = (performance.now() - t0) / 1000;
  const other = share === undefined ? 0 : Math.max(0, share.tasks - cpuS / wallS);
  return { value, other, cpuS };
}
