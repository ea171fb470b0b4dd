/**
 * Rendered Terraform is checked against a recorded list of what each provider accepts
 * (test/render/terraform-provider-schema.json, written from the providers' docs).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { buildPlan, type Plan, type PlannedHost } from '../../src/topology/plan.js';
import { CLOUD_PROVIDERS } from '../../src/topology/schema.js';
import { PlanState } from '../../src/render/state.js';
import {
  STATELESS_RETURN,
  cidrRange,
  renderTerraform,
  tfName,
} from '../../src/render/terraform.js';
import { lintTopology } from '../../src/topology/lint.js';
import { baseInput, topology } from '../topology/fixtures.js';
import { exampleNames, planExample, removeDir, requireTool, tempDir } from './helpers.js';

interface BlockSchema {
  required?: string[];
  attributes: string[];
  blocks?: Record<string, BlockSchema>;
}
interface Recorded {
  meta: string[];
  providers: Record<string, { source: string }>;
  provider_config: Record<string, string[]>;
  resources: Record<string, BlockSchema>;
  data: Record<string, BlockSchema>;
}
const recorded = JSON.parse(
  readFileSync('test/render/terraform-provider-schema.json', 'utf8'),
) as Recorded;

function checkBlock(
  where: string,
  body: Record<string, unknown>,
  schema: BlockSchema,
  meta: string[],
) {
  for (const req of schema.required ?? [])
    assert.ok(req in body, `${where}: required argument ${req} is missing`);
  for (const [key, value] of Object.entries(body)) {
    if (meta.includes(key)) continue;
    if (schema.attributes.includes(key)) continue;
    const nested = schema.blocks?.[key];
    assert.ok(nested, `${where}: ${key} is not an argument or block the provider accepts`);
    const items = Array.isArray(value) ? value : [value];
    items.forEach((item, i) =>
      checkBlock(`${where}.${key}[${i}]`, item as Record<string, unknown>, nested, []),
    );
  }
}

interface TfDoc {
  output?: unknown;
  terraform: {
    required_providers: Record<string, { source: string; version: string }>;
    backend?: unknown;
  };
  provider: Record<string, unknown>;
  resource: Record<string, Record<string, Record<string, unknown>>>;
  data?: Record<string, Record<string, Record<string, unknown>>>;
}

function checkDoc(label: string, doc: TfDoc) {
  assert.equal(doc.terraform.backend, undefined, `${label}: state must stay local (no backend)`);
  for (const [name, req] of Object.entries(doc.terraform.required_providers)) {
    assert.equal(req.source, recorded.providers[name]?.source, `${label}: provider ${name} source`);
    assert.match(req.version, /^~> \d+\.\d+$/, `${label}: provider ${name} is pinned to a major`);
  }
  for (const [name, cfg] of Object.entries(doc.provider)) {
    assert.ok(recorded.provider_config[name], `${label}: provider block ${name} unknown`);
    for (const c of Array.isArray(cfg) ? cfg : [cfg])
      for (const k of Object.keys(c as object))
        assert.ok(recorded.provider_config[name]!.includes(k), `${label}: provider ${name}.${k}`);
  }
  for (const [type, byName] of Object.entries(doc.resource)) {
    const schema = recorded.resources[type];
    assert.ok(schema, `${label}: resource type ${type} is not in the recorded list`);
    for (const [name, body] of Object.entries(byName))
      checkBlock(`${label}: ${type}.${name}`, body, schema, recorded.meta);
  }
  for (const [type, byName] of Object.entries(doc.data ?? {})) {
    const schema = recorded.data[type];
    assert.ok(schema, `${label}: data type ${type} is not in the recorded list`);
    for (const [name, body] of Object.entries(byName))
      checkBlock(`${label}: data.${type}.${name}`, body, schema, recorded.meta);
  }
}

let root = '';
before(() => {
  root = tempDir('tf');
});
after(() => removeDir(root));

/** One host on every provider, so all eight renderers are exercised. */
function allProvidersDoc(): TfDoc {
  return JSON.parse(renderTerraform(allProvidersPlan())) as TfDoc;
}

function allProvidersPlan(): Plan {
  const t = topology({
    ...baseInput(),
    spread: false,
    providers: { gcp: { project: 'p' }, ovh: { serviceName: 's' } },
    hosts: CLOUD_PROVIDERS.map((p) => ({
      name: `mon-${p}`,
      role: 'monitor' as const,
      provider: p,
      region: p === 'gcp' ? 'europe-west3-a' : p === 'aws' ? 'eu-west-1' : 'r1',
      size: 's',
      ...(p === 'ovh' ? { image: '11111111-2222-3333-4444-555555555555' } : {}),
    })),
  });
  assert.deepEqual(
    lintTopology(t).filter((f) => f.severity === 'error'),
    [],
  );
  return buildPlan(t, new PlanState(join(root, 'all')));
}

test('every example renders only recorded resource types, arguments and blocks', () => {
  for (const name of exampleNames()) {
    const r = planExample(name, join(root, name));
    checkDoc(name, JSON.parse(r.files!.get('terraform/main.tf.json')!) as TfDoc);
  }
});

test('all eight providers render recorded resources with the right user-data field', () => {
  const doc = allProvidersDoc();
  checkDoc('all-providers', doc);
  const r = doc.resource;
  const ud = /^\$\{file\("\$\{path\.module\}\/\.\.\/hosts\/mon-[a-z]+\/cloud-init\.yaml"\)\}$/;
  assert.match(r.digitalocean_droplet!.mon_digitalocean!.user_data as string, ud);
  assert.match(r.hcloud_server!.mon_hetzner!.user_data as string, ud);
  assert.match(r.vultr_instance!.mon_vultr!.user_data as string, ud);
  assert.match(r.upcloud_server!.mon_upcloud!.user_data as string, ud);
  assert.equal(r.upcloud_server!.mon_upcloud!.metadata, true);
  assert.match(r.ovh_cloud_project_instance!.mon_ovh!.user_data as string, ud);
  assert.match(
    (r.google_compute_instance!.mon_gcp!.metadata as Record<string, string>)['user-data']!,
    ud,
  );
  // Linode's metadata service takes base64; EC2 gets gzip+base64 to stay under 16 KiB.
  const linode = r.linode_instance!.mon_linode!.metadata as Array<{ user_data: string }>;
  assert.match(linode[0]!.user_data, /^\$\{base64encode\(file\(/);
  assert.match(r.aws_instance!.mon_aws!.user_data_base64 as string, /^\$\{base64gzip\(file\(/);
  assert.equal(r.aws_instance!.mon_aws!.user_data, undefined);
  assert.equal(Object.keys(doc.terraform.required_providers).length, 8);
});

test('OVH: a project SSH key, a flavor id looked up by name, the IPv4 picked from the address set', () => {
  // Upstream: github.com/ovh/terraform-provider-ovh v2.19.0, ovh/resource_cloud_project_instance.go
  // (flavor.flavor_id "Flavor id"; ssh_key/ssh_key_create ExactlyOneOf; addresses a TypeSet),
  // ovh/data_cloud_project_flavors_gen.go (flavors: a set of {id, name, ...}).
  const doc = allProvidersDoc();
  const inst = doc.resource.ovh_cloud_project_instance!.mon_ovh!;
  assert.deepEqual(inst.ssh_key, { name: '${ovh_cloud_project_ssh_key.fleet.name}' });
  const key = doc.resource.ovh_cloud_project_ssh_key!.fleet!;
  assert.equal(key.public_key, baseInput().ssh.keys[0]);
  assert.equal(key.service_name, 's');
  // The topology's size is a flavor name; the instance gets that flavor's id.
  assert.deepEqual(inst.flavor, {
    flavor_id:
      '${[for f in data.ovh_cloud_project_flavors.ovh_r1.flavors : f.id if f.name == "s"][0]}',
  });
  assert.deepEqual(doc.data!.ovh_cloud_project_flavors!.ovh_r1, {
    service_name: 's',
    region: 'r1',
  });
  // Sets cannot be indexed: never `addresses[0]`.
  const ip = (doc.output as unknown as { public_ipv4: { value: Record<string, string> } })
    .public_ipv4.value['mon-ovh']!;
  assert.equal(
    ip,
    '${[for a in ovh_cloud_project_instance.mon_ovh.addresses : a.ip if a.version == 4][0]}',
  );
  assert.doesNotMatch(JSON.stringify(doc), /addresses\[0\]/);
  assert.equal(doc.terraform.required_providers.ovh!.version, '~> 2.19');
});

test('the check catches an argument the provider does not accept', () => {
  const doc = allProvidersDoc();
  doc.resource.hcloud_server!.mon_hetzner!.user_data_base64 = 'x';
  assert.throws(() => checkDoc('mutated', doc), /user_data_base64 is not an argument/);
});

test('AWS and GCP open at their cloud firewall exactly the public ports nftables opens', () => {
  const doc = allProvidersDoc();
  const ingress = Object.values(doc.resource.aws_vpc_security_group_ingress_rule ?? {});
  const ports = new Set(ingress.map((r) => `${r.ip_protocol}/${r.from_port}`));
  assert.deepEqual([...ports].sort(), ['tcp/22', 'udp/51820']);
  const fw = Object.values(doc.resource.google_compute_firewall ?? {}).filter((f) => f.allow);
  assert.deepEqual(
    fw
      .map((f) => (f.allow as Array<{ protocol: string; ports: string[] }>)[0])
      .map((a) => `${a!.protocol}/${a!.ports[0]}`)
      .sort(),
    ['tcp/22', 'udp/51820'],
  );
});

test('terraform itself reads the rendered configuration and its provider requirements', () => {
  // `terraform providers` loads the configuration without downloading anything, so it runs
  // offline; argument checking needs provider schemas, hence the recorded list above.
  if (!requireTool('terraform', ['version'], false)) return;
  const dir = join(root, 'tf-real');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'main.tf.json'), JSON.stringify(allProvidersDoc()));
  const r = spawnSync('terraform', ['providers'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  for (const source of Object.values(recorded.providers).map((p) => p.source))
    assert.match(r.stdout, new RegExp(`registry\\.terraform\\.io/${source}\\]`, 'i'));
  writeFileSync(join(dir, 'main.tf.json'), '{"resource": {"x": ');
  assert.notEqual(spawnSync('terraform', ['providers'], { cwd: dir, timeout: 60_000 }).status, 0);
});

type Res = Record<string, unknown>;
const res = (doc: TfDoc, type: string, name: string): Res | undefined => doc.resource[type]?.[name];
/** A resource that must exist: a missing firewall fails with its name, not a TypeError. */
function must(doc: TfDoc, type: string, name: string): Res {
  const r = res(doc, type, name);
  assert.ok(r, `no ${type}.${name} rendered`);
  return r;
}
const all = (doc: TfDoc, type: string): Array<[string, Res]> =>
  Object.entries(doc.resource[type] ?? {});
const ref = (addr: string, attr: string) => `\${${addr}.${attr}}`;

/**
 * What the plan model lets in from the internet, read from the host's port rules (not from
 * the renderer's helper): every rule not confined to wg0, from anywhere or from the SSH
 * sources. VPN-only rules (etcd, metrics, privval…) never reach a cloud firewall.
 */
function expectedInbound(plan: Plan, h: PlannedHost): string[] {
  const out: string[] = [];
  for (const r of h.ports) {
    if (r.vpnOnly) continue;
    assert.ok(r.from === 'any' || r.from === 'ssh', `${h.name}: public rule with VPN sources`);
    const cidrs = r.from === 'any' ? ['0.0.0.0/0', '::/0'] : plan.topology.ssh.allowFrom;
    for (const c of cidrs) out.push(`${r.proto}/${r.port}/${c}`);
  }
  return out.sort();
}

/**
 * The host's cloud firewall as rendered: whether it is attached when the machine is created
 * (so it is in place before first boot), and its inbound accept rules as proto/port/cidr.
 */
function cloudFirewall(doc: TfDoc, h: PlannedHost): { atCreation: boolean; inbound: string[] } {
  const n = tfName(h.name);
  const out: string[] = [];
  const dependsOn = (r: Res | undefined) => (r?.depends_on as string[] | undefined) ?? [];
  switch (h.provider) {
    case 'hetzner': {
      const fw = must(doc, 'hcloud_firewall', n);
      for (const r of fw.rule as Res[]) {
        assert.equal(r.direction, 'in');
        for (const c of r.source_ips as string[]) out.push(`${r.protocol}/${r.port}/${c}`);
      }
      const server = must(doc, 'hcloud_server', n);
      return {
        atCreation: (server.firewall_ids as string[]).includes(ref(`hcloud_firewall.${n}`, 'id')),
        inbound: out.sort(),
      };
    }
    case 'digitalocean': {
      const fw = must(doc, 'digitalocean_firewall', n);
      for (const r of fw.inbound_rule as Res[])
        for (const c of r.source_addresses as string[])
          out.push(`${r.protocol}/${r.port_range}/${c}`);
      const tag = ref(`digitalocean_tag.${n}`, 'name');
      const droplet = must(doc, 'digitalocean_droplet', n);
      return {
        // Tag-based: the droplet is created with the tag the firewall already targets.
        atCreation:
          (fw.tags as string[]).includes(tag) &&
          (droplet.tags as string[]).includes(tag) &&
          dependsOn(droplet).includes(`digitalocean_firewall.${n}`),
        inbound: out.sort(),
      };
    }
    case 'vultr': {
      const group = ref(`vultr_firewall_group.${n}`, 'id');
      const rules = all(doc, 'vultr_firewall_rule').filter(
        ([, r]) => r.firewall_group_id === group,
      );
      for (const [, r] of rules) out.push(`${r.protocol}/${r.port}/${r.subnet}/${r.subnet_size}`);
      const inst = must(doc, 'vultr_instance', n);
      return {
        atCreation:
          inst.firewall_group_id === group &&
          rules.every(([name]) => dependsOn(inst).includes(`vultr_firewall_rule.${name}`)),
        inbound: out.sort(),
      };
    }
    case 'linode': {
      const fw = must(doc, 'linode_firewall', n);
      assert.equal(fw.inbound_policy, 'DROP');
      for (const r of fw.inbound as Res[]) {
        assert.equal(r.action, 'ACCEPT');
        for (const c of [...((r.ipv4 as string[]) ?? []), ...((r.ipv6 as string[]) ?? [])])
          out.push(`${(r.protocol as string).toLowerCase()}/${r.ports}/${c}`);
      }
      return {
        atCreation:
          must(doc, 'linode_instance', n).firewall_id === ref(`linode_firewall.${n}`, 'id'),
        inbound: out.sort(),
      };
    }
    case 'aws': {
      const sg = ref(`aws_security_group.${n}`, 'id');
      const rules = all(doc, 'aws_vpc_security_group_ingress_rule').filter(
        ([, r]) => r.security_group_id === sg,
      );
      for (const [, r] of rules) {
        assert.equal(r.from_port, r.to_port);
        out.push(`${r.ip_protocol}/${r.from_port}/${(r.cidr_ipv4 ?? r.cidr_ipv6) as string}`);
      }
      const inst = must(doc, 'aws_instance', n);
      return {
        atCreation:
          (inst.vpc_security_group_ids as string[]).includes(sg) &&
          rules.every(([name]) =>
            dependsOn(inst).includes(`aws_vpc_security_group_ingress_rule.${name}`),
          ),
        inbound: out.sort(),
      };
    }
    case 'gcp': {
      const inst = must(doc, 'google_compute_instance', n);
      const tags = inst.tags as string[];
      const rules = all(doc, 'google_compute_firewall').filter(([, r]) =>
        (r.target_tags as string[]).some((t) => tags.includes(t)),
      );
      for (const [, r] of rules.filter(([, r]) => r.allow)) {
        assert.ok((r.priority as number) < 65000);
        const a = (r.allow as Res[])[0]!;
        for (const c of r.source_ranges as string[])
          out.push(`${a.protocol}/${(a.ports as string[])[0]}/${c}`);
      }
      // The default network's default-allow-ssh and friends (priority 65534) are overridden.
      const deny = rules.filter(([, r]) => r.deny);
      assert.equal(deny.length, 1, `${h.name}: one deny-everything rule`);
      assert.deepEqual(deny[0]![1].deny, [{ protocol: 'all' }]);
      assert.deepEqual(deny[0]![1].source_ranges, ['0.0.0.0/0']);
      assert.ok((deny[0]![1].priority as number) < 65534);
      return {
        atCreation: rules.every(([name]) =>
          dependsOn(inst).includes(`google_compute_firewall.${name}`),
        ),
        inbound: out.sort(),
      };
    }
    case 'upcloud': {
      const rules = must(doc, 'upcloud_firewall_rules', n).firewall_rule as Res[];
      assert.deepEqual(rules.at(-1), {
        direction: 'in',
        action: 'drop',
        comment: 'everything else',
      });
      for (const r of rules.slice(0, -1)) {
        assert.equal(r.direction, 'in');
        assert.equal(r.action, 'accept');
        if ((r.comment as string).startsWith(STATELESS_RETURN)) continue;
        assert.equal(r.destination_port_start, r.destination_port_end);
        const src =
          r.source_address_start === undefined
            ? r.family === 'IPv4'
              ? '0.0.0.0/0'
              : '::/0'
            : `${r.source_address_start as string}-${r.source_address_end as string}`;
        out.push(`${r.protocol}/${r.destination_port_start}/${src}`);
      }
      return { atCreation: false, inbound: out.sort() };
    }
    case 'ovh':
      return { atCreation: false, inbound: [] };
    case 'local':
      throw new Error(`${h.name} is local: no cloud firewall`);
  }
}

/** The expected set in each provider's notation (UpCloud takes address ranges;
 * GCP instances have no IPv6 address, so only IPv4 sources are rendered there). */
function inProviderTerms(h: PlannedHost, expected: string[]): string[] {
  return expected
    .filter((e) => h.provider !== 'gcp' || !e.split('/')[2]!.includes(':'))
    .map((e) => {
      const [proto, port, ...rest] = e.split('/');
      const cidr = rest.join('/');
      if (h.provider === 'upcloud' && cidr !== '0.0.0.0/0' && cidr !== '::/0') {
        const r = cidrRange(cidr);
        return `${proto}/${port}/${r.start}-${r.end}`;
      }
      return e;
    })
    .sort();
}

function checkFirewalls(label: string, plan: Plan, doc: TfDoc) {
  for (const h of plan.hosts) {
    const fw = cloudFirewall(doc, h);
    const where = `${label}: ${h.name} (${h.provider})`;
    if (h.provider === 'upcloud') {
      // Rules need the server's id: applied right after creation, with the firewall on.
      assert.equal(must(doc, 'upcloud_server', tfName(h.name)).firewall, true, where);
      assert.equal(
        must(doc, 'upcloud_firewall_rules', tfName(h.name)).server_id,
        ref(`upcloud_server.${tfName(h.name)}`, 'id'),
      );
    } else if (h.provider === 'ovh') {
      assert.equal(doc.resource.ovh_cloud_security_group, undefined, where);
      continue;
    } else assert.ok(fw.atCreation, `${where}: firewall not attached at creation`);
    assert.deepEqual(fw.inbound, inProviderTerms(h, expectedInbound(plan, h)), where);
  }
}

test("every host of every example has a cloud firewall attached at creation, letting in exactly the plan model's public set", () => {
  const providers = new Set<string>();
  for (const name of exampleNames()) {
    const r = planExample(name, join(root, `fw-${name}`));
    const doc = JSON.parse(r.files!.get('terraform/main.tf.json')!) as TfDoc;
    checkFirewalls(name, r.plan!, doc);
    for (const h of r.plan!.hosts) providers.add(h.provider);
  }
  // The examples between them use every provider but OVH.
  assert.deepEqual([...providers].sort(), CLOUD_PROVIDERS.filter((p) => p !== 'ovh').sort());
});

test('all eight providers: firewalls as documented (UpCloud just after creation, OVH none)', () => {
  const plan = allProvidersPlan();
  const doc = JSON.parse(renderTerraform(plan)) as TfDoc;
  checkFirewalls('all-providers', plan, doc);
  // UpCloud's stateless firewall: the extra accepts are only return traffic and ICMP.
  const extra = (res(doc, 'upcloud_firewall_rules', 'mon_upcloud')!.firewall_rule as Res[])
    .filter((r) => String(r.comment).startsWith(STATELESS_RETURN))
    .map(
      (r) =>
        `${r.family as string} ${r.protocol as string} ${(r.destination_port_start as string) ?? ''}-${(r.destination_port_end as string) ?? ''}`,
    );
  assert.deepEqual(extra.sort(), [
    'IPv4 icmp -',
    'IPv4 tcp 32768-60999',
    'IPv4 udp 32768-60999',
    'IPv6 icmp -',
    'IPv6 tcp 32768-60999',
    'IPv6 udp 32768-60999',
  ]);
  // DigitalOcean firewalls deny outbound unless allowed: opened as nftables' output policy.
  assert.deepEqual(
    (res(doc, 'digitalocean_firewall', 'mon_digitalocean')!.outbound_rule as Res[]).map(
      (r) => r.protocol,
    ),
    ['tcp', 'udp', 'icmp'],
  );
  assert.equal(doc.terraform.required_providers.linode!.version, '~> 2.10');
});

test('a source restricted SSH stays restricted at every cloud firewall', () => {
  const t = topology({
    ...baseInput(),
    spread: false,
    ssh: { ...baseInput().ssh, allowFrom: ['203.0.113.0/24', '2001:db8::/32'] },
    providers: { gcp: { project: 'p' }, ovh: { serviceName: 's' } },
    hosts: CLOUD_PROVIDERS.map((p) => ({
      name: `mon-${p}`,
      role: 'monitor' as const,
      provider: p,
      region: p === 'gcp' ? 'europe-west3-a' : p === 'aws' ? 'eu-west-1' : 'r1',
      size: 's',
      ...(p === 'ovh' ? { image: '11111111-2222-3333-4444-555555555555' } : {}),
    })),
  });
  const plan = buildPlan(t, new PlanState(join(root, 'restricted')));
  const doc = JSON.parse(renderTerraform(plan)) as TfDoc;
  checkDoc('restricted', doc);
  checkFirewalls('restricted', plan, doc);
  const hz = res(doc, 'hcloud_firewall', 'mon_hetzner')!.rule as Res[];
  assert.deepEqual(hz.find((r) => r.port === '22')!.source_ips, [
    '203.0.113.0/24',
    '2001:db8::/32',
  ]);
});

test('UpCloud address ranges from CIDRs', () => {
  assert.deepEqual(cidrRange('203.0.113.0/24'), { start: '203.0.113.0', end: '203.0.113.255' });
  assert.deepEqual(cidrRange('198.51.100.77/32'), { start: '198.51.100.77', end: '198.51.100.77' });
  assert.deepEqual(cidrRange('10.9.8.7/8'), { start: '10.0.0.0', end: '10.255.255.255' });
  assert.deepEqual(cidrRange('2001:db8::/32'), {
    start: '2001:db8:0:0:0:0:0:0',
    end: '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff',
  });
  assert.deepEqual(cidrRange('2001:db8::1/128'), {
    start: '2001:db8:0:0:0:0:0:1',
    end: '2001:db8:0:0:0:0:0:1',
  });
});
