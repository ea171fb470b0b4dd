/**
 * The guard cluster of a local fleet: each guard host's etcd member runs in its namespace from
 * its RENDERED etcd.yaml, with the paths moved under the host's directory (as agents' are) and
 * the URLs kept as rendered (VPN addresses, which exist inside the namespaces).
 *
 * The plan names certificates at `/etc/vigil/pki/<host>.{crt,key}` and `ca.crt` but never
 * holds them (an operator issues them with `vigil pki`). A local run does the same with a CA of
 * its own under the run dir: a server+peer certificate for each member, dialled at its VPN
 * address, and a client certificate for each agent whose store is etcd. The CA key stays in the
 * run dir (0600) and goes with it at destroy.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { initCa, issueCert } from '../../etcd/pki.js';
import { pkiPaths } from '../../render/services.js';
import { LocalFleetError } from './exec.js';
import { rerootPaths } from './agents.js';
import { startInNetns, waitFor, type StartedProcess } from './processes.js';
import type { RunRecordFile } from './run-record.js';

/** The fields of a rendered etcd.yaml a local run reads (the rest is passed to etcd as is). */
const RenderedEtcdSchema = z.object({
  name: z.string().min(1),
  'data-dir': z.string().min(1),
  'listen-client-urls': z.string().min(1),
  'listen-peer-urls': z.string().min(1),
  'listen-metrics-urls': z.string().optional(),
});

export interface PkiHost {
  readonly name: string;
  readonly vpnAddress: string;
  /** `member`: server and peer usage, dialled at its VPN address; `client`: an agent. */
  readonly kind: 'member' | 'client';
  /** The host's re-rooted `/`: its files go to `<root>/etc/vigil/pki/`. */
  readonly root: string;
}

/** Creates the run's CA and issues each host the files its rendered configs name. */
export async function issueLocalPki(caDir: string, hosts: readonly PkiHost[]): Promise<void> {
  await initCa(caDir, { commonName: 'Vigil local fleet etcd CA', days: 30 });
  for (const h of hosts) {
    const want = pkiPaths(h.name);
    const dir = join(h.root, dirname(want.cert));
    await issueCert(caDir, {
      name: h.name,
      kind: h.kind === 'member' ? 'server' : 'client',
      ...(h.kind === 'member' ? { ips: [h.vpnAddress] } : {}),
      days: 30,
      outDir: dir,
    });
    copyFileSync(join(caDir, 'ca.crt'), join(h.root, want.ca));
  }
}

export interface PreparedEtcd {
  readonly name: string;
  readonly configFile: string;
  readonly dataDir: string;
  /** `https://<vpn>:2379`, as rendered. */
  readonly clientUrl: string;
}

/** Writes the member's config with its paths under `hostRoot`; the data dir is made 0700. */
export function prepareEtcd(renderedYaml: string, hostRoot: string): PreparedEtcd {
  const raw: unknown = parse(renderedYaml);
  const parsed = RenderedEtcdSchema.safeParse(raw);
  if (!parsed.success)
    throw new LocalFleetError(
      `the rendered etcd.yaml is not usable: ${parsed.error.issues[0]?.message ?? ''}`,
      'run vigil plan and read the host file it reports',
    );
  const doc = rerootPaths(raw, hostRoot) as Record<string, unknown>;
  const dataDir = doc['data-dir'] as string;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const configFile = join(hostRoot, 'etc/vigil/etcd.yaml');
  mkdirSync(dirname(configFile), { recursive: true });
  writeFileSync(configFile, stringify(doc), { mode: 0o600 });
  return {
    name: parsed.data.name,
    configFile,
    dataDir,
    clientUrl: parsed.data['listen-client-urls'],
  };
}

export function startEtcd(
  record: RunRecordFile,
  netns: string,
  prepared: PreparedEtcd,
  logFile: string,
): StartedProcess {
  return startInNetns(
    record,
    netns,
    `etcd member ${prepared.name}`,
    ['etcd', '--config-file', prepared.configFile],
    logFile,
  );
}

/**
 * Resolves once the member has joined a cluster with a quorum: etcd logs "ready to serve
 * client requests" only after it has published itself through raft, which needs a majority,
 * so every member must be started before any of these can resolve.
 */
export async function waitEtcdReady(
  name: string,
  proc: StartedProcess,
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(
    `etcd member ${name}`,
    () => {
      try {
        return /ready to serve client requests/.test(readFileSync(proc.logFile, 'utf8'));
      } catch {
        return false;
      }
    },
    proc,
    timeoutMs,
  );
}
