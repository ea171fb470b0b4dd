/** The documented recipes and the guard-cluster example must stay valid configuration. */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { loadYamlFile } from '../../src/config/yaml-file.js';
import { EtcdMemberConfigSchema, etcdArgs } from '../../src/etcd/member.js';
import { EtcdStoreConfigSchema } from '../../src/store/etcd.js';
import { SupervisorConfigSchema } from '../../src/supervisor/supervisor.js';

const examples = resolve(process.cwd(), 'examples');

describe('documented examples', () => {
  for (const name of ['cardano', 'polkadot']) {
    it(`supervisor/${name}.yaml is a valid supervisor config`, () => {
      const { supervisor } = loadYamlFile(
        resolve(examples, 'supervisor', `${name}.yaml`),
        z.object({ supervisor: SupervisorConfigSchema }),
      );
      assert.ok(supervisor.activate.length > 0 && supervisor.deactivate.length > 0);
    });
  }

  it('etcd/member-a.yaml has a valid member and etcd store section, with mutual TLS', () => {
    const file = loadYamlFile(
      resolve(examples, 'etcd', 'member-a.yaml'),
      z.object({ etcd: EtcdMemberConfigSchema, store: EtcdStoreConfigSchema }),
    );
    const args = etcdArgs(file.etcd);
    assert.ok(args.includes('--client-cert-auth=true'));
    assert.ok(args.includes('--peer-client-cert-auth=true'));
    assert.equal(file.store.endpoints.length, 3);
  });
});
