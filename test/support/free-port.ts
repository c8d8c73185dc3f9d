/**
 * Ports for tests that must name a port before something binds it (a Gateway's server port, a
 * child process's flags). Taken below the kernel's ephemeral range: a port from `listen(0)` comes
 * from that range, and between its release and the re-bind an outgoing connection of any process
 * (other tests open hundreds to their upstreams) could take it as its local port, failing the
 * bind with EADDRINUSE. Below the range only another test choosing the same number can race.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

const LOWEST = 10_000;

/** The first port of the ephemeral range (Linux; the IANA range's start elsewhere). */
function ephemeralStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > LOWEST + 1000) return low;
  } catch {
    // not Linux
  }
  return 49_152;
}

const END = ephemeralStart();

function tryListen(port: number): Promise<Server | null> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(null));
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

/**
 * `n` distinct ports free on 127.0.0.1 right now, each held until all are found (ports asked for
 * one after another could otherwise come back equal).
 */
export async function freePorts(n: number): Promise<number[]> {
  const held: Server[] = [];
  const ports: number[] = [];
  try {
    for (let tries = 0; ports.length < n; tries++) {
      if (tries > 1000) throw new Error(`no free port below ${END} after ${tries} tries`);
      const port = LOWEST + Math.floor(Math.random() * (END - LOWEST));
      if (ports.includes(port)) continue;
      const s = await tryListen(port);
      if (s === null) continue;
      held.push(s);
      ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(held.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** One port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}
