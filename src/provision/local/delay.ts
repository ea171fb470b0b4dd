/**
 * Slow links between two hosts of a running local fleet (issue 13: distance, measured).
 *
 * This kernel has no netem (no `delay` qdisc, not even `prio`), so the delay is a userspace
 * relay: hosts talk over WireGuard, and WireGuard rides UDP over the uplinks, so a slow link
 * A–B is a delaying UDP relay (delay-relay-main.ts) in the internet namespace, with A's
 * endpoint for B and B's endpoint for A pointed at it live (`wg set … peer … endpoint`). Each
 * direction is delayed by half the round trip, in arrival order. Everything A and B exchange
 * over the VPN (etcd raft, client requests, p2p, privval) is slowed; their public-address
 * traffic outside WireGuard is not.
 *
 * WireGuard roams: an authenticated packet from a new source address moves the peer's
 * endpoint there. A packet that still went the direct way (sent before the endpoint changed,
 * or by the other end not yet switched) would move the endpoint back and silently undo the
 * delay, so while a link is slow a table of the bridge family in the internet namespace drops
 * direct WireGuard datagrams between A and B; only the relay's path is left. Healing stops the
 * relay first (its queued datagrams would otherwise arrive after the switch back and roam the
 * endpoint onto a dead relay), then restores the direct endpoints and deletes that table.
 *
 * The relay process is in the run record (`vigil destroy --local` stops it; the internet
 * namespace and its table go with the fleet); the link's settings are kept in
 * `<runDir>/delay/<a>--<b>.json` so that another process (vigil chaos, a bench) can heal it.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { RelayReadySchema, type RelayConfig, type RelayReady } from './delay-config.js';
import { LocalFleetError, inNetns, run, tryRun } from './exec.js';
import { INTERNET_ADDRESS } from './network.js';
import { startInNetns, stopProcess, waitFor } from './processes.js';
import { RunRecordFile, type Created, type RunRecord } from './run-record.js';
import { controlName } from './wireguard.js';

const RELAY_MAIN = fileURLToPath(new URL('./delay-relay-main.js', import.meta.url));

/** Round trips accepted, in ms: a link slower than 10 s round trip is an outage, not distance. */
export const MAX_RTT_MS = 10_000;

const SlowLinkStateSchema = z.strictObject({
  a: z.string().min(1),
  b: z.string().min(1),
  rttMs: z.number().positive(),
  /** The bridge-family table in the internet namespace that drops direct A–B WireGuard. */
  table: z.string().min(1),
  relay: z.strictObject({
    pid: z.number().int().positive(),
    startTime: z.string().min(1),
    address: z.string().min(1),
    portForA: z.number().int(),
    portForB: z.number().int(),
  }),
  /** The direct endpoints restored on heal: `address:port` of A's and B's WireGuard. */
  directA: z.string().min(1),
  directB: z.string().min(1),
  /** WireGuard public keys: heal restores one end even when the other end's host is lost. */
  publicKeyA: z.string().min(1),
  publicKeyB: z.string().min(1),
});
export type SlowLinkState = z.infer<typeof SlowLinkStateSchema>;

export interface SlowLinkInfo {
  readonly a: string;
  readonly b: string;
  readonly rttMs: number;
}

/** The run record file of `record`: `<state>/local/run.json`, beside `<state>/local/run/`. */
export function runRecordPathOf(record: RunRecord): string {
  return resolve(dirname(record.runDir), 'run.json');
}

function loadRecordFile(record: RunRecord): RunRecordFile {
  const file = RunRecordFile.load(runRecordPathOf(record));
  if (file.record.fleetId !== record.fleetId)
    throw new LocalFleetError(
      `${file.path} is the record of fleet ${file.record.fleetId}, not ${record.fleetId}`,
      'the fleet was destroyed and applied again: use the new run record',
    );
  return file;
}

function hostIndex(record: RunRecord, name: string): number {
  const i = record.hosts.findIndex((h) => h.name === name);
  if (i < 0)
    throw new LocalFleetError(
      `no host ${name} in local fleet ${record.fleet}`,
      `its hosts: ${record.hosts.map((h) => h.name).join(', ')}`,
    );
  return i;
}

/** The name `wg` reaches host `i`'s interface by (wireguard-go's socket name, or wg0). */
function wgControlOf(record: RunRecord, i: number): string {
  const userspace = controlName(record.fleetId, i, false);
  if (existsSync(`/var/run/wireguard/${userspace}.sock`)) return userspace;
  const kernel = controlName(record.fleetId, i, true);
  const ns = record.hosts[i]!.netns;
  if (tryRun(inNetns(ns, ['wg', 'show', kernel, 'public-key'])) === undefined) return kernel;
  throw new LocalFleetError(
    `host ${record.hosts[i]!.name} has no WireGuard interface`,
    'a slow link delays the WireGuard traffic between two hosts of the mesh',
  );
}

interface WgEnd {
  readonly name: string;
  readonly netns: string;
  readonly control: string;
  readonly publicKey: string;
  readonly publicAddress: string;
  readonly listenPort: number;
}

function wgEnd(record: RunRecord, i: number): WgEnd {
  const h = record.hosts[i]!;
  const control = wgControlOf(record, i);
  const publicKey = run(inNetns(h.netns, ['wg', 'show', control, 'public-key'])).trim();
  const listenPort = Number(run(inNetns(h.netns, ['wg', 'show', control, 'listen-port'])).trim());
  if (!Number.isInteger(listenPort) || listenPort <= 0)
    throw new LocalFleetError(`host ${h.name}'s WireGuard has no listen port`);
  return {
    name: h.name,
    netns: h.netns,
    control,
    publicKey,
    publicAddress: h.publicAddress,
    listenPort,
  };
}

/** A link is the same whichever end is named first. */
function orderedPair(record: RunRecord, a: string, b: string): [number, number] {
  const ia = hostIndex(record, a);
  const ib = hostIndex(record, b);
  if (ia === ib) throw new LocalFleetError(`a slow link needs two hosts, got ${a} twice`);
  return ia < ib ? [ia, ib] : [ib, ia];
}

function delayDir(record: RunRecord): string {
  return join(record.runDir, 'delay');
}

function stateFileOf(record: RunRecord, a: string, b: string): string {
  return join(delayDir(record), `${a}--${b}.json`);
}

/** What the run record calls the relay of link a–b. */
export function relayWhat(a: string, b: string): string {
  return `delay relay ${a} <-> ${b}`;
}

/** Pure: the nft script that drops direct WireGuard datagrams between the two ends. */
export function directDropRuleset(
  table: string,
  a: { address: string; port: number },
  b: { address: string; port: number },
): string {
  return (
    `table bridge ${table} {\n` +
    `  chain forward {\n` +
    `    type filter hook forward priority -200; policy accept;\n` +
    `    ip saddr ${a.address} ip daddr ${b.address} udp dport ${b.port} drop\n` +
    `    ip saddr ${b.address} ip daddr ${a.address} udp dport ${a.port} drop\n` +
    `  }\n` +
    `}\n`
  );
}

function setEndpoint(end: WgEnd, peer: WgEnd, endpoint: string): void {
  run(inNetns(end.netns, ['wg', 'set', end.control, 'peer', peer.publicKey, 'endpoint', endpoint]));
}

function readState(file: string): SlowLinkState | undefined {
  if (!existsSync(file)) return undefined;
  const parsed = SlowLinkStateSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success)
    throw new LocalFleetError(
      `${file} is damaged: ${parsed.error.issues[0]?.message ?? ''}`,
      'vigil destroy --local removes the relay and its table with the fleet',
    );
  return parsed.data;
}

/** Records a created thing in the run record file and in the caller's copy of the record. */
function addCreated(record: RunRecord, file: RunRecordFile, item: Created): void {
  if (file.record !== record) record.created.push(item);
}

function removeProcess(record: RunRecord, pid: number, startTime: string): void {
  const keep = (c: Created) =>
    !(c.kind === 'process' && c.pid === pid && c.startTime === startTime);
  const file = loadRecordFile(record);
  file.record.created = file.record.created.filter(keep);
  file.save();
  const mine = record.created.filter(keep);
  record.created.splice(0, record.created.length, ...mine);
}

/**
 * Adds `rttMs` to the round trip between hosts `a` and `b` over the VPN (`rttMs / 2` each
 * way), replacing an earlier slow link between them. Resolves once both hosts send to the
 * relay. Calls for different links may overlap: each record update is one synchronous
 * load-change-save.
 */
export async function slowLink(
  record: RunRecord,
  a: string,
  b: string,
  rttMs: number,
): Promise<void> {
  if (!Number.isFinite(rttMs) || rttMs <= 0 || rttMs > MAX_RTT_MS)
    throw new LocalFleetError(
      `a slow link's round trip must be more than 0 and at most ${MAX_RTT_MS} ms, got ${rttMs}`,
      'give the round trip to add in milliseconds, e.g. 80',
    );
  const [ia, ib] = orderedPair(record, a, b);
  const endA = wgEnd(record, ia);
  const endB = wgEnd(record, ib);
  await healSlowLink(record, endA.name, endB.name);

  const dir = delayDir(record);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const base = join(dir, `${endA.name}--${endB.name}`);
  const readyFile = `${base}.ready.json`;
  rmSync(readyFile, { force: true });
  const config: RelayConfig = {
    bindAddress: INTERNET_ADDRESS,
    a: { address: endA.publicAddress, port: endA.listenPort },
    b: { address: endB.publicAddress, port: endB.listenPort },
    oneWayMs: rttMs / 2,
    readyFile,
  };
  writeFileSync(`${base}.relay.json`, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  const file = loadRecordFile(record);
  const proc = startInNetns(
    file,
    record.internetNetns,
    relayWhat(endA.name, endB.name),
    [process.execPath, RELAY_MAIN, `${base}.relay.json`],
    `${base}.relay.log`,
  );
  const entry = file.record.created.at(-1)!;
  addCreated(record, file, entry);
  if (entry.kind !== 'process') throw new Error('unreachable: the relay was recorded last');
  let ready: RelayReady;
  try {
    await waitFor(
      `the delay relay ${endA.name} <-> ${endB.name}`,
      () => existsSync(readyFile),
      proc,
    );
    ready = RelayReadySchema.parse(JSON.parse(readFileSync(readyFile, 'utf8')));
  } catch (err) {
    // Nothing was switched yet: the relay alone is undone.
    await stopProcess(entry.pid, entry.startTime);
    removeProcess(record, entry.pid, entry.startTime);
    throw err;
  }
  const table = `vigil-delay-${ia}-${ib}`;
  const state: SlowLinkState = {
    a: endA.name,
    b: endB.name,
    rttMs,
    table,
    relay: {
      pid: entry.pid,
      startTime: entry.startTime,
      address: INTERNET_ADDRESS,
      portForA: ready.portForA,
      portForB: ready.portForB,
    },
    directA: `${endA.publicAddress}:${endA.listenPort}`,
    directB: `${endB.publicAddress}:${endB.listenPort}`,
    publicKeyA: endA.publicKey,
    publicKeyB: endB.publicKey,
  };
  // Written before anything is switched: a failure below leaves a state heal can undo.
  writeFileSync(stateFileOf(record, endA.name, endB.name), JSON.stringify(state, null, 2) + '\n', {
    mode: 0o600,
  });
  try {
    run(
      inNetns(record.internetNetns, ['nft', '-f', '-']),
      directDropRuleset(
        table,
        { address: endA.publicAddress, port: endA.listenPort },
        { address: endB.publicAddress, port: endB.listenPort },
      ),
    );
    setEndpoint(endA, endB, `${INTERNET_ADDRESS}:${ready.portForA}`);
    setEndpoint(endB, endA, `${INTERNET_ADDRESS}:${ready.portForB}`);
  } catch (err) {
    await healSlowLink(record, endA.name, endB.name).catch(() => undefined);
    throw err;
  }
}

/**
 * Restores the direct link between `a` and `b`: stops the relay, points each end's endpoint
 * back at the other's WireGuard, removes the drop table. Nothing to do if the link is not slow.
 */
export async function healSlowLink(record: RunRecord, a: string, b: string): Promise<void> {
  const [ia, ib] = orderedPair(record, a, b);
  const nameA = record.hosts[ia]!.name;
  const nameB = record.hosts[ib]!.name;
  const stateFile = stateFileOf(record, nameA, nameB);
  const state = readState(stateFile);
  if (!state) return;
  // The relay first: datagrams still queued in it would arrive after the switch back and roam
  // the endpoints onto a relay about to be gone.
  await stopProcess(state.relay.pid, state.relay.startTime);
  removeProcess(record, state.relay.pid, state.relay.startTime);
  // An end whose WireGuard is gone (its host lost: every process killed) has nothing to
  // restore; the other end is still pointed back.
  const restore = (i: number, peerKey: string, endpoint: string) => {
    const ns = record.hosts[i]!.netns;
    let control: string;
    try {
      control = wgControlOf(record, i);
    } catch {
      return;
    }
    const err = tryRun(inNetns(ns, ['wg', 'set', control, 'peer', peerKey, 'endpoint', endpoint]));
    // wireguard-go killed with its host leaves its socket file; its wg0 went with it.
    if (err !== undefined && tryRun(inNetns(ns, ['ip', 'link', 'show', 'wg0'])) === undefined)
      throw new LocalFleetError(`cannot restore ${record.hosts[i]!.name}'s endpoint: ${err}`);
  };
  restore(ia, state.publicKeyB, state.directB);
  restore(ib, state.publicKeyA, state.directA);
  tryRun(inNetns(record.internetNetns, ['nft', 'delete', 'table', 'bridge', state.table]));
  const base = join(delayDir(record), `${nameA}--${nameB}`);
  for (const f of [stateFile, `${base}.ready.json`, `${base}.relay.json`])
    rmSync(f, { force: true });
}

/** The slow links of the fleet now. */
export function slowLinksOf(record: RunRecord): SlowLinkInfo[] {
  const dir = delayDir(record);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^[^.]+--[^.]+\.json$/.test(f))
    .flatMap((f) => {
      const s = readState(join(dir, f));
      return s ? [{ a: s.a, b: s.b, rttMs: s.rttMs }] : [];
    });
}

export async function healAllSlowLinks(record: RunRecord): Promise<void> {
  for (const link of slowLinksOf(record)) await healSlowLink(record, link.a, link.b);
}

/**
 * Whether the kernel offers netem (`tc qdisc add … netem`), probed in `netns` on a throwaway
 * veth pair. Reported by tests and benches next to their figures; the relay is used either way.
 */
export function kernelHasNetem(netns: string): boolean {
  const probe = 'vgldlyprobe';
  if (
    tryRun(
      inNetns(netns, ['ip', 'link', 'add', probe, 'type', 'veth', 'peer', 'name', `${probe}p`]),
    ) !== undefined
  )
    return false;
  try {
    return (
      tryRun(
        inNetns(netns, ['tc', 'qdisc', 'add', 'dev', probe, 'root', 'netem', 'delay', '1ms']),
      ) === undefined
    );
  } finally {
    tryRun(inNetns(netns, ['ip', 'link', 'del', probe]));
  }
}
