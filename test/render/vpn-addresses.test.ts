/**
 * VPN addresses are allocated once per host and kept in the state directory: adding or
 * removing a host moves no other host's address, and a removed host's address is not handed
 * to a newcomer while it is recorded.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { planFleet } from '../../src/render/fleet.js';
import { PlanState } from '../../src/render/state.js';
import { VigilError } from '../../src/errors.js';
import { EXAMPLES_DIR, exampleNames, removeDir, tempDir } from './helpers.js';

let root = '';
before(() => {
  root = tempDir('vpn');
});
after(() => removeDir(root));

interface HostEntry {
  name: string;
  [k: string]: unknown;
}

function addresses(file: string, state: string): Map<string, string> {
  const r = planFleet(file, { state, write: false });
  assert.ok(r.plan, `${file} did not plan: ${JSON.stringify(r.findings)}`);
  return new Map(r.plan.hosts.map((h) => [h.name, h.vpnAddress]));
}

function withHosts(example: string, dir: string, edit: (hosts: HostEntry[]) => HostEntry[]) {
  const doc = parse(readFileSync(join(EXAMPLES_DIR, `${example}.yaml`), 'utf8')) as {
    hosts: HostEntry[];
  };
  doc.hosts = edit(doc.hosts);
  const file = join(dir, `${example}-${doc.hosts.map((h) => h.name).join('_')}.yaml`);
  writeFileSync(file, stringify(doc));
  return file;
}

/** A monitor in a region no example uses: lint-clean next to any example's hosts. */
const extra = (name: string): HostEntry => ({
  name,
  role: 'monitor',
  provider: 'hetzner',
  region: 'ash',
  size: 'cx22',
});

for (const example of exampleNames()) {
  test(`${example}: adding and removing hosts keeps every other host's VPN address`, () => {
    const state = join(root, example, 'state');
    const original = addresses(join(EXAMPLES_DIR, `${example}.yaml`), state);
    assert.equal(new Set(original.values()).size, original.size, 'addresses are unique');

    // A host added at the top of the file: by position, everyone after it would move.
    const added = addresses(
      withHosts(example, root, (hosts) => [extra('extra-mon'), ...hosts]),
      state,
    );
    for (const [name, addr] of original)
      assert.equal(added.get(name), addr, `${name} kept its address when a host was added`);
    const newcomer = added.get('extra-mon')!;
    assert.ok(![...original.values()].includes(newcomer), 'the new host got a free address');

    // The example's monitor removed (further down the file): the others stay put.
    const withoutMonitor = addresses(
      withHosts(example, root, (hosts) => [
        extra('extra-mon'),
        ...hosts.filter((h) => h.role !== 'monitor'),
      ]),
      state,
    );
    const monitors = [...original.keys()].filter((n) => !withoutMonitor.has(n));
    assert.ok(monitors.length > 0, `${example} has a monitor to remove`);
    for (const [name, addr] of withoutMonitor)
      assert.equal(addr, added.get(name), `${name} kept its address when the monitor left`);

    // The added host removed from the top of the file, and another one added: the others
    // keep theirs, and the newcomer inherits no recorded address of a host that left.
    const again = addresses(
      withHosts(example, root, (hosts) => [
        ...hosts.filter((h) => h.role !== 'monitor'),
        extra('late-mon'),
      ]),
      state,
    );
    for (const [name, addr] of again)
      if (name !== 'late-mon') assert.equal(addr, original.get(name), name);
    const late = again.get('late-mon')!;
    assert.notEqual(late, newcomer, 'a removed host’s address is not reused');
    for (const m of monitors) assert.notEqual(late, original.get(m));

    // The record holds every host ever planned, each with its own address.
    const record = JSON.parse(readFileSync(join(state, 'vpn', 'addresses.json'), 'utf8')) as {
      hosts: Record<string, string>;
    };
    assert.equal(record.hosts['extra-mon'], newcomer);
    assert.equal(new Set(Object.values(record.hosts)).size, Object.keys(record.hosts).length);
  });
}

test('a first plan numbers hosts in file order; a changed VPN cidr is refused, not renumbered', () => {
  const state = new PlanState(join(root, 'order'));
  assert.deepEqual(
    [...state.vpnAddresses('10.9.8.0/24', ['a', 'b', 'c']).values()],
    ['10.9.8.1', '10.9.8.2', '10.9.8.3'],
  );
  assert.deepEqual(
    [...state.vpnAddresses('10.9.8.0/24', ['d', 'b']).entries()],
    [
      ['d', '10.9.8.4'],
      ['b', '10.9.8.2'],
    ],
  );
  assert.throws(
    () => state.vpnAddresses('10.9.9.0/24', ['a']),
    (e: unknown) => e instanceof VigilError && e.code === 'VPN_CIDR_CHANGED',
  );
});

test('a full pool is refused with a hint, not wrapped around onto a recorded address', () => {
  const state = new PlanState(join(root, 'full'));
  const many = Array.from({ length: 253 }, (_, i) => `h${i}`);
  state.vpnAddresses('10.1.2.0/24', many);
  assert.throws(
    () => state.vpnAddresses('10.1.2.0/24', ['one-more']),
    (e: unknown) => e instanceof VigilError && e.code === 'VPN_FULL',
  );
});
