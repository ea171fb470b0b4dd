/**
 * The local fleet's network: one "internet" namespace holding a bridge, and one namespace per
 * planned host joined to it by a veth pair, with a routed public address per host. Both veth
 * ends are created directly inside their namespaces, so no interface of this machine's own
 * namespace is ever named or touched.
 */
import { inNetns, run } from './exec.js';
import type { RunRecordFile } from './run-record.js';

/** RFC 2544's benchmarking range: never routed on the real internet, so no clash with it. */
export const PUBLIC_PREFIX = '198.18.0';
export const INTERNET_ADDRESS = `${PUBLIC_PREFIX}.254`;
export const BRIDGE = 'br0';
/** Inside each host namespace the uplink is named as a cloud machine's usually is. */
export const HOST_UPLINK = 'eth0';

export function internetNetns(fleetId: string): string {
  return `vgl-${fleetId}-net`;
}

export function hostNetns(fleetId: string, host: string): string {
  return `vgl-${fleetId}-${host}`;
}

/** The i-th host's public address (i from 0). */
export function publicAddressOf(i: number): string {
  if (i < 0 || i > 252) throw new RangeError(`host index ${i} outside the local /24`);
  return `${PUBLIC_PREFIX}.${i + 1}`;
}

function addNetns(record: RunRecordFile, name: string): void {
  run(['ip', 'netns', 'add', name]);
  record.add({ kind: 'netns', name });
  run(inNetns(name, ['ip', 'link', 'set', 'lo', 'up']));
}

export function createInternet(record: RunRecordFile): void {
  const ns = record.record.internetNetns;
  addNetns(record, ns);
  run(inNetns(ns, ['ip', 'link', 'add', BRIDGE, 'type', 'bridge']));
  record.add({ kind: 'link', name: BRIDGE, netns: ns });
  run(inNetns(ns, ['ip', 'addr', 'add', `${INTERNET_ADDRESS}/24`, 'dev', BRIDGE]));
  run(inNetns(ns, ['ip', 'link', 'set', BRIDGE, 'up']));
}

/** Creates host `index`'s namespace and its uplink; its public address routes via the bridge. */
export function createHost(record: RunRecordFile, index: number): void {
  const host = record.record.hosts[index]!;
  const inet = record.record.internetNetns;
  addNetns(record, host.netns);
  const bridgePort = `h${index}`;
  run([
    'ip',
    'link',
    'add',
    HOST_UPLINK,
    'netns',
    host.netns,
    'type',
    'veth',
    'peer',
    'name',
    bridgePort,
    'netns',
    inet,
  ]);
  record.add({ kind: 'link', name: HOST_UPLINK, netns: host.netns });
  record.add({ kind: 'link', name: bridgePort, netns: inet });
  run(inNetns(inet, ['ip', 'link', 'set', bridgePort, 'master', BRIDGE, 'up']));
  run(inNetns(host.netns, ['ip', 'addr', 'add', `${host.publicAddress}/24`, 'dev', HOST_UPLINK]));
  run(inNetns(host.netns, ['ip', 'link', 'set', HOST_UPLINK, 'up']));
  run(inNetns(host.netns, ['ip', 'route', 'add', 'default', 'via', INTERNET_ADDRESS]));
}
