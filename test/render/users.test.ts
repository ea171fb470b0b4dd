/**
 * Issue 12: the chain node and the Vigil agent ran as one user, so a node compromised through
 * its p2p or RPC surface could read the validator key and the watermark store. Every example,
 * every host: the node runs as its own user, which owns nothing of Vigil's and can read none
 * of Vigil's files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NODE_USER, SERVICE_USER } from '../../src/render/chains.js';
import { exampleNames, hostSetup, planExample, removeDir, tempDir } from './helpers.js';

interface CloudConfig {
  users: Array<{ name: string; homedir?: string }>;
  write_files: Array<{ path: string; owner: string; permissions: string; content: string }>;
  runcmd: Array<string | string[]>;
}

for (const name of exampleNames()) {
  test(`${name}: chain nodes run as ${NODE_USER}, apart from the agent's files`, () => {
    const state = tempDir(`users-${name}`);
    try {
      const { plan, files } = planExample(name, state);
      for (const host of plan!.hosts) {
        const cc = hostSetup(files!, host.name) as CloudConfig;
        const units = cc.write_files.filter((f) => f.path.startsWith('/etc/systemd/system/'));
        const userOf = (f: { content: string }) => /^User=(.*)$/m.exec(f.content)?.[1];
        for (const unit of units) {
          const user = userOf(unit);
          if (/vigil-agent\.service$/.test(unit.path)) assert.equal(user, SERVICE_USER);
          if (/-node\.service$|dcrd\.service$|dcrwallet\.service$/.test(unit.path))
            assert.equal(user, NODE_USER, `${host.name}: ${unit.path} runs as ${user}`);
        }
        if (host.chain)
          assert.ok(
            cc.users.some((u) => u.name === NODE_USER),
            host.name,
          );
        for (const f of cc.write_files) {
          const [owner, group] = f.owner.split(':');
          if (f.path.startsWith('/etc/vigil/')) {
            // Vigil's files: never the node's, never readable by others.
            assert.notEqual(owner, NODE_USER, `${host.name}: ${f.path}`);
            assert.notEqual(group, NODE_USER, `${host.name}: ${f.path}`);
            assert.equal(
              Number.parseInt(f.permissions, 8) & 0o007,
              0,
              `${host.name}: ${f.path} ${f.permissions}`,
            );
          }
          if (owner === NODE_USER)
            assert.ok(
              !f.path.startsWith('/etc/vigil/') && !f.path.startsWith('/var/lib/vigil'),
              f.path,
            );
        }
        if (host.key !== undefined) {
          const dir = cc.runcmd.find((c) => Array.isArray(c) && c.includes('/var/lib/vigil'));
          assert.deepEqual(dir, [
            'install',
            '-d',
            '-m',
            '0700',
            '-o',
            SERVICE_USER,
            '-g',
            SERVICE_USER,
            '/var/lib/vigil',
          ]);
        }
      }
    } finally {
      removeDir(state);
    }
  });
}
