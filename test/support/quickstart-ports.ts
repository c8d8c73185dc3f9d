/**
 * The quickstart on free ports. The examples in gateways/ and the README use fixed ports (the
 * Gateway's 8080 and 8443, the demo upstreams' 19081…, the status, metrics and admin defaults);
 * tests never bind fixed ones, so each is mapped to a free port, and one map rewrites both a copy
 * of the config and the commands that address it.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadResources } from '../../src/config/index.ts';
import { demoServicesOf } from '../../src/cli/demo-upstreams.ts';
import { envName, parseOptions } from '../../src/cli/flags.ts';
import type { GatewaySpec } from '../../src/model/networking.ts';
import { readConfigPaths } from '../../src/providers/file.ts';
import { freePorts } from './pebble.ts';

export type PortMap = ReadonlyMap<number, number>;

const DEFAULTS = parseOptions('quickstart', [], {});

/** Every port the quickstart binds on the config in `dir`: Gateway servers, demo upstreams, status, metrics, admin. */
export async function quickstartPorts(dir: string): Promise<number[]> {
  const { inputs } = await readConfigPaths([dir]);
  const resources = loadResources(inputs, { defaultNamespace: 'default' }).resources.resources;
  const gateway = resources.flatMap((r) =>
    r.kind === 'Gateway' ? (r.spec as GatewaySpec).servers.map((s) => s.port.number) : [],
  );
  const demo = demoServicesOf(resources).map((s) => s.port);
  return [...new Set([...gateway, ...demo, DEFAULTS.statusPort, DEFAULTS.metricsPort, DEFAULTS.adminPort])];
}

/** Each of `ports` to a distinct free port on 127.0.0.1. */
export async function freePortMap(ports: readonly number[]): Promise<PortMap> {
  const free = await freePorts(ports.length);
  return new Map(ports.map((p, i) => [p, free[i]!]));
}

/** A whole number of 2–5 digits, not part of a longer number, a dotted address or a version. */
const NUMBER = /(?<![\d.])\d{2,5}(?![\d.])/g;

/** `text` with every mapped port number replaced by its free port. */
export function mapPorts(text: string, map: PortMap): string {
  return text.replace(NUMBER, (n) => String(map.get(Number(n)) ?? n));
}

/** Ports a command addresses (`:8080`, `:8443:127.0.0.1`) that `map` does not move. */
export function unmappedPorts(command: string, map: PortMap): number[] {
  return [...command.matchAll(/:(\d{2,5})(?![\d.])/g)].map((m) => Number(m[1])).filter((p) => !map.has(p));
}

/** Rewrites every file directly in `dir` with mapPorts. */
export async function mapPortsInDir(dir: string, map: PortMap): Promise<void> {
  for (const name of await readdir(dir)) {
    const file = path.join(dir, name);
    await writeFile(file, mapPorts(await readFile(file, 'utf8'), map));
  }
}

/** The flags that move the status, metrics and admin ports, as arguments and as SLUICE_* variables. */
export function controlPortFlags(map: PortMap): { args: string[]; env: Record<string, string> } {
  const moved = {
    'status-port': map.get(DEFAULTS.statusPort),
    'metrics-port': map.get(DEFAULTS.metricsPort),
    'admin-port': map.get(DEFAULTS.adminPort),
  };
  const args: string[] = [];
  const env: Record<string, string> = {};
  for (const [flag, port] of Object.entries(moved)) {
    if (port === undefined) throw new Error(`no free port mapped for --${flag}`);
    args.push(`--${flag}`, String(port));
    env[envName(flag)] = String(port);
  }
  return { args, env };
}
