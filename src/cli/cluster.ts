/** `vigil cluster status`: etcd members, leader, health, role holders and every watermark. */
import { Command } from 'commander';
import { InputError } from '../errors.js';
import { formatPosition } from '../guard/position.js';
import type { EtcdStoreConfigInput } from '../store/etcd.js';
import type { StoreIdentity } from '../store/types.js';
import { clusterMemberCommand } from './cluster-member.js';
import { configOption, resolveConfigPath } from './config-location.js';

/** The etcd client (grpc) and zod are loaded when the command runs, not at every `vigil` start. */
const etcdStore = () => import('../store/etcd.js');

async function etcdStoreOf(file: string): Promise<EtcdStoreConfigInput> {
  const [{ z }, { loadYamlFile }, { EtcdStoreConfigSchema }] = await Promise.all([
    import('zod'),
    import('../config/yaml-file.js'),
    etcdStore(),
  ]);
  const FileSchema = z.looseObject({ store: EtcdStoreConfigSchema });
  const EngineSchema = z.looseObject({ store: z.looseObject({ engine: z.string() }) });
  // A valid SQLite config is not an invalid etcd config: say which command fits it instead.
  const engine = loadYamlFile(file, z.unknown()) as unknown;
  const parsed = EngineSchema.safeParse(engine);
  if (parsed.success && parsed.data.store.engine !== 'etcd') {
    throw new InputError(
      `${file} uses store engine ${JSON.stringify(parsed.data.store.engine)}; cluster status is for the etcd guard cluster`,
      'for a SQLite store, `vigil state show --config <file>` lists the watermarks',
      'NOT_AN_ETCD_CONFIG',
    );
  }
  return loadYamlFile(file, FileSchema).store;
}

export interface ClusterConnectionOptions {
  config?: string;
  endpoints?: string;
  ca?: string;
  cert?: string;
  key?: string;
  prefix?: string;
  json?: boolean;
}
type Options = ClusterConnectionOptions;

/** The etcd connection of a `vigil cluster` command: --endpoints/--ca/--cert/--key or --config. */
export async function storeConfig(o: Options): Promise<EtcdStoreConfigInput> {
  // --endpoints stands alone; otherwise the agent config, found as every command finds it.
  if (o.config !== undefined || !o.endpoints) return etcdStoreOf(resolveConfigPath(o.config));
  const tls = o.ca || o.cert || o.key;
  if (tls && !(o.ca && o.cert && o.key))
    throw new InputError('--ca, --cert and --key go together (etcd requires a client certificate)');
  return {
    endpoints: o.endpoints.split(',').map((e) => e.trim()),
    ...(tls ? { tls: { ca: o.ca!, cert: o.cert!, key: o.key! } } : {}),
    ...(o.prefix ? { prefix: o.prefix } : {}),
    timeouts: { callMs: 2000, updateMs: 4000 },
  };
}

export function clusterCommand(): Command {
  const cluster = new Command('cluster').description('the etcd guard cluster');
  cluster
    .command('status')
    .description('members, raft leader, per-endpoint health, role holders and watermarks')
    .addOption(configOption('agent config file with `store: { engine: etcd, … }`'))
    .option('--endpoints <list>', 'comma-separated client endpoints (instead of --config)')
    .option('--ca <file>', 'cluster CA certificate')
    .option('--cert <file>', 'client certificate')
    .option('--key <file>', 'client key')
    .option('--prefix <prefix>', 'key prefix', '/vigil/v1/')
    .option('--json', 'machine-readable output')
    .action(async (o: Options) => {
      // Not openEtcdStore: status must also work on a cluster without quorum or identity.
      const { connectEtcd, listEtcdWatermarks, identityKey, readEtcdIdentity } = await etcdStore();
      const store = connectEtcd(await storeConfig(o));
      const prefix = store.config.prefix;
      try {
        const statuses = await store.client.statusAll();
        const healthy = statuses.filter((s) => 'memberId' in s);
        let members: Awaited<ReturnType<typeof store.client.memberList>> = [];
        let watermarks: Awaited<ReturnType<typeof listEtcdWatermarks>> = [];
        let identity: StoreIdentity | undefined;
        let clusterId: bigint | undefined;
        let leaders: Array<{ role: string; holder: string; token: bigint }> = [];
        const problems: string[] = [];
        try {
          members = await store.client.memberList();
          identity = await readEtcdIdentity(store.client, prefix);
          clusterId = (await store.client.get(identityKey(prefix))).clusterId;
          watermarks = await listEtcdWatermarks(store.client, prefix);
          leaders = (await store.client.getPrefix(`${prefix}leaders/`)).map((kv) => ({
            role: decodeURIComponent(kv.key.slice(`${prefix}leaders/`.length)),
            holder: kv.value.toString(),
            token: kv.createRevision,
          }));
        } catch (err) {
          problems.push((err as Error).message);
        }
        const leaderId = healthy.find((s) => 'leaderId' in s && s.leaderId !== '0');
        const report = {
          leader: leaderId && 'leaderId' in leaderId ? leaderId.leaderId : undefined,
          // A restore from a snapshot under a new --initial-cluster-token shows up here.
          clusterId: clusterId?.toString(16),
          endpoints: statuses.map((s) =>
            'error' in s
              ? { endpoint: s.endpoint, healthy: false, error: s.error }
              : {
                  endpoint: s.endpoint,
                  healthy: true,
                  memberId: s.memberId,
                  isLeader: s.memberId === s.leaderId,
                  version: s.version,
                  raftTerm: s.raftTerm.toString(),
                  raftIndex: s.raftIndex.toString(),
                  dbSize: s.dbSize.toString(),
                },
          ),
          members,
          store: identity ?? null,
          roles: leaders.map((l) => ({ ...l, token: l.token.toString() })),
          watermarks: watermarks.map((w) => ({
            chainId: w.scope.chainId,
            keyId: w.scope.keyId,
            family: w.scope.family,
            position: formatPosition(w.watermark.position),
            writer: w.watermark.writer,
            updatedAt:
              w.watermark.updatedAtMs !== undefined
                ? new Date(w.watermark.updatedAtMs).toISOString()
                : undefined,
          })),
          problems,
        };
        if (o.json) {
          process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        } else {
          const out: string[] = [];
          const memberName = (id: string | undefined) =>
            members.find((m) => m.id === id)?.name ?? id ?? '(none)';
          out.push(
            `leader: ${report.leader ? memberName(report.leader) : '(no leader: no quorum?)'}`,
          );
          out.push(`cluster id: ${report.clusterId ?? '(no answer)'}`);
          out.push('members:');
          for (const m of members)
            out.push(
              `  ${m.name.padEnd(12)} ${m.id}  ${m.clientUrls.join(',')}${m.isLearner ? ' (learner)' : ''}`,
            );
          out.push('endpoints:');
          for (const e of report.endpoints)
            out.push(
              e.healthy
                ? `  ${e.endpoint.padEnd(28)} healthy  ${memberName(e.memberId)}${e.isLeader ? ' [leader]' : ''}  term ${e.raftTerm} index ${e.raftIndex}`
                : `  ${e.endpoint.padEnd(28)} DOWN     ${e.error}`,
            );
          out.push(
            identity
              ? `store: ${identity.storeId} (initialised ${identity.createdAt})`
              : `store: not initialised under ${prefix} (vigil state init)`,
          );
          out.push('roles:');
          for (const r of report.roles)
            out.push(`  ${r.role.padEnd(24)} held by ${r.holder} (token ${r.token})`);
          if (report.roles.length === 0) out.push('  (none held)');
          out.push('watermarks:');
          for (const w of report.watermarks)
            out.push(
              `  ${w.chainId} ${w.keyId.slice(0, 16)}… ${w.family.padEnd(8)} ${w.position.padEnd(28)} ${w.writer ?? ''} ${w.updatedAt ?? ''}`,
            );
          if (report.watermarks.length === 0) out.push('  (none)');
          for (const p of problems) out.push(`problem: ${p}`);
          process.stdout.write(out.join('\n') + '\n');
        }
        if (healthy.length * 2 <= statuses.length || problems.length > 0) process.exitCode = 2;
      } finally {
        store.client.close();
      }
    });
  cluster.addCommand(clusterMemberCommand());
  return cluster;
}
