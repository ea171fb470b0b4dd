/** The documented recipes and the guard-cluster example must stay valid agent configuration. */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { loadAgentConfig } from '../../src/agent/config.js';
import { etcdArgs } from '../../src/etcd/member.js';
import { loadWatchdogConfig } from '../../src/watchdog/config.js';

const examples = resolve(process.cwd(), 'examples');

describe('documented examples', () => {
  for (const name of ['cardano', 'polkadot']) {
    it(`supervisor/${name}.yaml is a valid agent config with one supervised role`, () => {
      const config = loadAgentConfig(resolve(examples, 'supervisor', `${name}.yaml`));
      assert.equal(config.supervisors.length, 1);
      const [role] = config.supervisors;
      assert.ok(role!.watchdog || (role!.activate?.length && role!.deactivate?.length));
      assert.equal(config.store.engine, 'etcd');
    });
  }

  for (const name of ['cardano', 'polkadot']) {
    it(`supervisor/${name}-watchdog.yaml is a valid watchdog config for the same role`, () => {
      const watchdog = loadWatchdogConfig(resolve(examples, 'supervisor', `${name}-watchdog.yaml`));
      const agent = loadAgentConfig(resolve(examples, 'supervisor', `${name}.yaml`));
      assert.equal(watchdog.role, agent.supervisors[0]!.role);
      assert.equal(watchdog.socket, agent.supervisors[0]!.watchdog?.socket);
    });
  }

  it('etcd/member-a.yaml is one file for the agent and its etcd member, with mutual TLS', () => {
    const config = loadAgentConfig(resolve(examples, 'etcd', 'member-a.yaml'));
    assert.ok(config.etcd);
    const args = etcdArgs(config.etcd);
    assert.ok(args.includes('--client-cert-auth=true'));
    assert.ok(args.includes('--peer-client-cert-auth=true'));
    assert.equal(config.store.engine, 'etcd');
    if (config.store.engine === 'etcd') assert.equal(config.store.endpoints.length, 3);
  });

  it('agent/agent.yaml is a valid agent config', () => {
    const config = loadAgentConfig(resolve(examples, 'agent', 'agent.yaml'));
    assert.equal(config.store.engine, 'sqlite');
  });
});
