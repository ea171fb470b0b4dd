/** Properties of the plan model over random fleets: who may reach which port. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { ETCD_CLIENT_PORT, buildPlan, type PlannedHost } from '../../src/topology/plan.js';
import { PlanState } from '../../src/render/state.js';
import { renderNftables, renderWireguard } from '../../src/render/network.js';
import { artifact, baseInput, cosmosApp, genesis, topology } from '../topology/fixtures.js';
import { removeDir, tempDir } from './helpers.js';

let root = '';
let run = 0;
before(() => {
  root = tempDir('model');
});
after(() => removeDir(root));

const fleetArb = fc.record({
  validators: fc.integer({ min: 1, max: 2 }),
  sentries: fc.integer({ min: 0, max: 4 }),
  producers: fc.integer({ min: 0, max: 2 }),
  relays: fc.integer({ min: 0, max: 3 }),
  guards: fc.integer({ min: 0, max: 5 }),
  monitors: fc.integer({ min: 0, max: 2 }),
  store: fc.constantFrom('sqlite' as const, 'etcd' as const),
});

test('property: public exposure and VPN sources follow the roles, for any fleet', () => {
  fc.assert(
    fc.property(fleetArb, (n) => {
      const entry = (name: string, role: string, count: number, chain?: string) =>
        count === 0
          ? []
          : [
              {
                name,
                role,
                count,
                provider: 'hetzner',
                region: 'fsn1',
                size: 'cx22',
                ...(chain ? { chain } : {}),
              },
            ];
      const t = topology({
        ...baseInput(),
        vigil: { ...baseInput().vigil, store: n.store },
        spread: false,
        chains: [
          {
            name: 'hub',
            kind: 'cometbft',
            chainId: 'hub-1',
            binary: artifact('gaiad'),
            genesis: genesis(),
            app: cosmosApp(),
            guarded: true,
          },
          { name: 'ada', kind: 'cardano', network: 'mainnet', binary: artifact('cardano') },
        ],
        hosts: [
          ...entry('val', 'validator', n.validators, 'hub'),
          ...entry('sen', 'sentry', n.sentries, 'hub'),
          ...entry('prod', 'producer', n.producers, 'ada'),
          ...entry('rel', 'relay', n.relays, 'ada'),
          ...entry('guard', 'guard-member', n.guards),
          ...entry('mon', 'monitor', n.monitors),
        ] as never,
      });
      const plan = buildPlan(t, new PlanState(join(root, `s${run++}`)));
      const addr = (hs: PlannedHost[]) => hs.map((h) => h.vpnAddress).sort();
      const ofRole = (r: string) => plan.hosts.filter((h) => h.role === r);
      const monitors = addr(ofRole('monitor'));
      assert.equal(new Set(plan.hosts.map((h) => h.vpnAddress)).size, plan.hosts.length);
      for (const h of plan.hosts) {
        for (const rule of h.ports) {
          if (rule.from === 'any' || rule.from === 'ssh') {
            assert.equal(rule.vpnOnly, false);
            // Only these are ever public: ssh, wireguard, and p2p on sentries/relays.
            assert.ok(
              ['ssh', 'wireguard'].includes(rule.purpose) || ['sentry', 'relay'].includes(h.role),
              `${h.name} (${h.role}) exposes ${rule.purpose}`,
            );
          } else {
            assert.equal(rule.vpnOnly, true);
            assert.ok(!rule.from.includes(h.vpnAddress), `${h.name}: ${rule.purpose} lists itself`);
          }
          if (/metrics|node_exporter/.test(rule.purpose) && !/vigil/.test(rule.purpose))
            assert.deepEqual(
              [...(rule.from as string[])].sort(),
              monitors.filter((a) => a !== h.vpnAddress),
            );
        }
        const p2p = (port: number) =>
          h.ports.find((r) => r.port === port && /p2p|node-to-node/.test(r.purpose));
        if (h.role === 'validator')
          assert.deepEqual([...(p2p(26656)!.from as string[])].sort(), addr(ofRole('sentry')));
        if (h.role === 'producer')
          assert.deepEqual([...(p2p(3001)!.from as string[])].sort(), addr(ofRole('relay')));
        // etcd's client port: the guard's other members, and the agents when their store is
        // etcd (validators and producers); never sentries, relays or monitors.
        const etcd = h.ports.find((r) => r.port === ETCD_CLIENT_PORT);
        assert.equal(etcd !== undefined, h.role === 'guard-member');
        if (etcd) {
          const clients = plan.hosts.filter(
            (x) =>
              x.name !== h.name &&
              (x.role === 'guard-member' ||
                (n.store === 'etcd' && ['validator', 'producer'].includes(x.role))),
          );
          assert.deepEqual([...(etcd.from as string[])].sort(), addr(clients));
          const nft = renderNftables(plan, h)
            .split('\n')
            .filter((l) => l.includes(`dport ${ETCD_CLIENT_PORT} `));
          for (const x of plan.hosts.filter((y) => ['sentry', 'relay', 'monitor'].includes(y.role)))
            for (const l of nft)
              assert.ok(
                !l.includes(`${x.vpnAddress},`) && !l.includes(`${x.vpnAddress} }`),
                `${x.name} reaches etcd on ${h.name}: ${l}`,
              );
        }
        const wg = renderWireguard(plan, h);
        assert.equal((wg.match(/\[Peer\]/g) ?? []).length, plan.hosts.length - 1);
        assert.doesNotMatch(renderNftables(plan, h), /saddr \{ \}/);
      }
    }),
    { numRuns: 60 },
  );
});
