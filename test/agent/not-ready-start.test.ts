/**
 * Issue 10: an agent whose store is unreachable at start (etcd down) still starts: it warns
 * "agent started, not ready: …" instead of logging "agent ready", serves /healthz (200) and
 * /readyz (503 with the failing conditions), refuses with store_unavailable, and becomes ready
 * by itself once the cluster is back. A real etcd member, killed and restarted.
 */
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  babeSignBody,
  initAgentStore,
  startAgentProcess,
  writeAgentConfig,
  writeRigKeyFiles,
  type AgentProcess,
} from '../helpers/agent-process.js';
import { EtcdTestCluster, etcdSkip, sleep } from '../helpers/etcd-cluster.js';
import { tempDir, writePrivValidatorKey } from '../helpers/guard-fixtures.js';
import { CLI_ENTRY } from '../helpers/paths.js';

test('a data dir that cannot be created stops the start: typed error with a hint, no stack', () => {
  const { dir, cleanup } = tempDir('vigil-nodatadir-');
  try {
    const keyFile = join(dir, 'key.json');
    writePrivValidatorKey(keyFile, 5);
    writeFileSync(join(dir, 'a-file'), '');
    const config = writeAgentConfig(
      { dir, keyFile, dataDir: join(dir, 'a-file', 'data'), storePath: join(dir, 'store.db') },
      'no-data-dir',
    );
    const r = spawnSync(process.execPath, [CLI_ENTRY, 'agent', '--config', config], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr,
      /^vigil: error \[LOCAL_WATERMARK_UNAVAILABLE\]: cannot create the agent's data directory/,
    );
    assert.match(r.stderr, /agent\.dataDir/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    cleanup();
  }
});

interface Readyz {
  status: string;
  reason?: string;
  conditions: Array<{ name: string; ready: boolean; reason?: string; since: string }>;
}

describe('agent start with its etcd store down', { skip: etcdSkip() }, () => {
  let cluster: EtcdTestCluster;
  let dir: string;
  let cleanup: () => void;
  let agent: AgentProcess | undefined;
  before(async () => {
    ({ dir, cleanup } = tempDir('vigil-notready-'));
    cluster = await EtcdTestCluster.start({ size: 1 });
  });
  after(async () => {
    await agent?.kill('SIGKILL');
    await cluster.close();
    cleanup();
  });

  it('starts not ready, serves health, refuses, and becomes ready when etcd is back', async () => {
    const keys = writeRigKeyFiles(dir);
    const configPath = join(dir, 'agent.yaml');
    writeFileSync(
      configPath,
      [
        'agent:',
        '  id: etcd-down',
        `  dataDir: ${JSON.stringify(join(dir, 'data'))}`,
        'store:',
        '  engine: etcd',
        `  endpoints: ${JSON.stringify(cluster.endpoints)}`,
        '  prefix: /vigil-notready/',
        '  timeouts: { callMs: 300, updateMs: 600 }',
        '  retries: 1',
        'keys:',
        ...keys.map((k) => `  - ${JSON.stringify(k)}`),
        'log: { level: info }',
        '',
      ].join('\n'),
    );
    initAgentStore(configPath);
    await cluster.killMember(0);
    agent = await startAgentProcess(configPath, 30_000, { acceptNotReady: true });
    assert.equal(agent.startedReady, false);
    const lines = agent
      .output()
      .split('\n')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as { msg?: string; level?: number }];
        } catch {
          return [];
        }
      });
    assert.equal(lines.filter((l) => l.msg === 'agent ready').length, 0);
    const started = lines.find((l) => l.msg?.startsWith('agent started, not ready: store:'));
    assert.ok(started, agent.output());
    assert.equal(started.level, 40);

    assert.equal((await agent.client.get('/healthz')).status, 200);
    const res = await agent.client.get('/readyz');
    assert.equal(res.status, 503);
    const body = res.body as Readyz;
    assert.deepEqual(
      body.conditions.filter((c) => !c.ready).map((c) => c.name),
      ['store'],
    );
    assert.match(body.reason ?? '', /^store: /);
    const metrics = (await agent.client.get<string>('/metrics')).body;
    assert.match(metrics, /vigil_ready\{condition="store",agent="etcd-down"\} 0/);
    assert.match(metrics, /vigil_ready\{condition="local_watermark",agent="etcd-down"\} 1/);

    const sign = () => agent!.client.request('POST', '/v1/sign', babeSignBody(1));
    const refused = await sign();
    assert.equal(refused.status, 503);
    assert.equal((refused.body as { reason: string }).reason, 'store_unavailable');

    cluster.startMember(0);
    await cluster.waitHealthy();
    // Nobody signs: the readiness probe alone must notice (bounded wait).
    let ready: { status: number } | undefined;
    for (let i = 0; i < 100; i++) {
      ready = await agent.client.get('/readyz');
      if (ready.status === 200) break;
      await sleep(100);
    }
    assert.equal(ready?.status, 200);
    assert.equal((await sign()).status, 200);
    assert.match(agent.output(), /"msg":"ready again: store"/);
  });
});
