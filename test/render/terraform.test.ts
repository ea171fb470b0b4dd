/**
 * Rendered Terraform is checked against a recorded list of what each provider accepts
 * (test/render/terraform-provider-schema.json, written from the providers' docs).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { buildPlan } from '../../src/topology/plan.js';
import { PROVIDERS } from '../../src/topology/schema.js';
import { PlanState } from '../../src/render/state.js';
import { renderTerraform } from '../../src/render/terraform.js';
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
  const t = topology({
    ...baseInput(),
    spread: false,
    providers: { gcp: { project: 'p' }, ovh: { serviceName: 's' } },
    hosts: PROVIDERS.map((p) => ({
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
  return JSON.parse(renderTerraform(buildPlan(t, new PlanState(join(root, 'all'))))) as TfDoc;
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
  const fw = Object.values(doc.resource.google_compute_firewall ?? {});
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
