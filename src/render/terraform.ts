/**
 * Terraform JSON (`main.tf.json`) for every provider the fleet uses. State stays local (no
 * backend block): nobody should need a second cloud account just to hold state.
 */
import type { Plan, PlannedHost, PortRule } from '../topology/plan.js';
import type { Provider } from '../topology/schema.js';

export const PROVIDER_SOURCES: Record<Provider, { name: string; source: string; version: string }> =
  {
    digitalocean: { name: 'digitalocean', source: 'digitalocean/digitalocean', version: '~> 2.0' },
    hetzner: { name: 'hcloud', source: 'hetznercloud/hcloud', version: '~> 1.45' },
    vultr: { name: 'vultr', source: 'vultr/vultr', version: '~> 2.19' },
    linode: { name: 'linode', source: 'linode/linode', version: '~> 2.5' },
    aws: { name: 'aws', source: 'hashicorp/aws', version: '~> 5.0' },
    gcp: { name: 'google', source: 'hashicorp/google', version: '~> 5.0' },
    upcloud: { name: 'upcloud', source: 'UpCloudLtd/upcloud', version: '~> 5.0' },
    // 2.19: the release whose schema test/render/terraform-provider-schema.json records.
    ovh: { name: 'ovh', source: 'ovh/ovh', version: '~> 2.19' },
  };

/** Ubuntu 24.04 LTS on each provider (OVH images are per-region ids, so the host names one). */
const DEFAULT_IMAGES: Record<Exclude<Provider, 'aws' | 'ovh'>, string> = {
  digitalocean: 'ubuntu-24-04-x64',
  hetzner: 'ubuntu-24.04',
  vultr: '2284',
  linode: 'linode/ubuntu24.04',
  gcp: 'ubuntu-os-cloud/ubuntu-2404-lts-amd64',
  upcloud: 'Ubuntu Server 24.04 LTS (Noble Numbat)',
};

/** Canonical's AWS account, which publishes the official Ubuntu AMIs. */
const CANONICAL_AWS_OWNER = '099720119477';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Block = { [k: string]: Json };

export function tfName(host: string): string {
  return host.replace(/-/g, '_');
}

function awsAlias(region: string): string {
  return region.replace(/-/g, '_');
}

function userDataFile(host: PlannedHost): string {
  return `file("\${path.module}/../hosts/${host.name}/cloud-init.yaml")`;
}

/** The expression for a host's public IPv4 address once Terraform has made it. */
export function publicIpExpr(host: PlannedHost): string {
  const n = tfName(host.name);
  switch (host.provider) {
    case 'digitalocean':
      return `digitalocean_droplet.${n}.ipv4_address`;
    case 'hetzner':
      return `hcloud_server.${n}.ipv4_address`;
    case 'vultr':
      return `vultr_instance.${n}.main_ip`;
    case 'linode':
      return `linode_instance.${n}.ip_address`;
    case 'aws':
      return `aws_instance.${n}.public_ip`;
    case 'gcp':
      return `google_compute_instance.${n}.network_interface[0].access_config[0].nat_ip`;
    case 'upcloud':
      return `upcloud_server.${n}.network_interface[0].ip_address`;
    case 'ovh':
      // `addresses` is a set of {ip, version} (ovh/resource_cloud_project_instance.go): sets
      // cannot be indexed, so pick the IPv4 one with a for expression.
      return `[for a in ovh_cloud_project_instance.${n}.addresses : a.ip if a.version == 4][0]`;
  }
}

/** Rules that must also be open at the cloud's own firewall (AWS and GCP deny by default). */
function publicRules(plan: Plan, host: PlannedHost): Array<{ rule: PortRule; cidrs: string[] }> {
  return host.ports
    .filter((r) => !r.vpnOnly && (r.from === 'any' || r.from === 'ssh'))
    .map((rule) => ({
      rule,
      cidrs: rule.from === 'ssh' ? [...plan.topology.ssh.allowFrom] : ['0.0.0.0/0', '::/0'],
    }));
}

export function renderTerraform(plan: Plan): string {
  const t = plan.topology;
  const used = [...new Set(plan.hosts.map((h) => h.provider))].sort();
  const resources: Record<string, Record<string, Block>> = {};
  const data: Record<string, Record<string, Block>> = {};
  const add = (type: string, name: string, body: Block) => {
    (resources[type] ??= {})[name] = body;
  };
  const fleetName = (h: PlannedHost) => `${t.name}-${h.name}`;
  const awsRegions = new Set<string>();

  for (const h of plan.hosts) {
    const n = tfName(h.name);
    const ud = `\${${userDataFile(h)}}`;
    switch (h.provider) {
      case 'digitalocean':
        add('digitalocean_droplet', n, {
          name: fleetName(h),
          image: h.image ?? DEFAULT_IMAGES.digitalocean,
          region: h.region,
          size: h.size,
          user_data: ud,
          ipv6: true,
          tags: ['vigil', t.name, h.role],
        });
        break;
      case 'hetzner':
        add('hcloud_server', n, {
          name: fleetName(h),
          image: h.image ?? DEFAULT_IMAGES.hetzner,
          server_type: h.size,
          location: h.region,
          user_data: ud,
          labels: { vigil: t.name, role: h.role },
        });
        break;
      case 'vultr':
        add('vultr_instance', n, {
          label: fleetName(h),
          hostname: h.name,
          region: h.region,
          plan: h.size,
          os_id: Number(h.image ?? DEFAULT_IMAGES.vultr),
          user_data: ud,
          enable_ipv6: true,
          tags: ['vigil', t.name, h.role],
        });
        break;
      case 'linode':
        add('linode_instance', n, {
          label: fleetName(h),
          region: h.region,
          type: h.size,
          image: h.image ?? DEFAULT_IMAGES.linode,
          tags: ['vigil', t.name, h.role],
          // Linode's metadata service takes user data base64-encoded.
          metadata: [{ user_data: `\${base64encode(${userDataFile(h)})}` }],
        });
        break;
      case 'aws': {
        awsRegions.add(h.region);
        const provider = `aws.${awsAlias(h.region)}`;
        add('aws_security_group', n, {
          provider,
          name: fleetName(h),
          description: `Vigil ${h.role} ${h.name}`,
          tags: { Name: fleetName(h), vigil: t.name },
        });
        add('aws_vpc_security_group_egress_rule', `${n}_all`, {
          provider,
          security_group_id: `\${aws_security_group.${n}.id}`,
          cidr_ipv4: '0.0.0.0/0',
          ip_protocol: '-1',
          description: 'all outbound',
        });
        for (const { rule, cidrs } of publicRules(plan, h))
          cidrs.forEach((cidr, i) => {
            add('aws_vpc_security_group_ingress_rule', `${n}_${rule.proto}_${rule.port}_${i}`, {
              provider,
              security_group_id: `\${aws_security_group.${n}.id}`,
              ...(cidr.includes(':') ? { cidr_ipv6: cidr } : { cidr_ipv4: cidr }),
              from_port: rule.port,
              to_port: rule.port,
              ip_protocol: rule.proto,
              description: rule.purpose,
            });
          });
        add('aws_instance', n, {
          provider,
          ami: h.image ?? `\${data.aws_ami.ubuntu_${awsAlias(h.region)}.id}`,
          instance_type: h.size,
          associate_public_ip_address: true,
          vpc_security_group_ids: [`\${aws_security_group.${n}.id}`],
          // gzip keeps larger cloud-configs under EC2's 16 KiB user-data limit.
          user_data_base64: `\${base64gzip(${userDataFile(h)})}`,
          tags: { Name: fleetName(h), vigil: t.name, role: h.role },
        });
        break;
      }
      case 'gcp':
        add('google_compute_instance', n, {
          name: fleetName(h),
          machine_type: h.size,
          zone: h.region,
          tags: [`vigil-${t.name}-${h.name}`],
          boot_disk: [{ initialize_params: [{ image: h.image ?? DEFAULT_IMAGES.gcp }] }],
          network_interface: [{ network: 'default', access_config: [{}] }],
          metadata: { 'user-data': ud },
          labels: { vigil: t.name, role: h.role },
        });
        for (const { rule, cidrs } of publicRules(plan, h)) {
          const v4 = cidrs.filter((c) => !c.includes(':'));
          if (v4.length === 0) continue;
          add('google_compute_firewall', `${n}_${rule.proto}_${rule.port}`, {
            name: `${fleetName(h)}-${rule.proto}-${rule.port}`,
            network: 'default',
            direction: 'INGRESS',
            source_ranges: v4,
            target_tags: [`vigil-${t.name}-${h.name}`],
            allow: [{ protocol: rule.proto, ports: [String(rule.port)] }],
            description: rule.purpose,
          });
        }
        break;
      case 'upcloud':
        add('upcloud_server', n, {
          hostname: h.name,
          zone: h.region,
          plan: h.size,
          metadata: true,
          user_data: ud,
          labels: { vigil: t.name, role: h.role },
          template: [{ storage: h.image ?? DEFAULT_IMAGES.upcloud, size: 50 }],
          network_interface: [{ type: 'public' }],
        });
        break;
      case 'ovh': {
        const serviceName = t.providers.ovh?.serviceName ?? '';
        const flavors = `ovh_${h.region.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
        // The instance wants a flavor id (a UUID per region), not a name like b3-8: look it
        // up by name in the project's flavors for that region (`flavors` is a set too).
        (data['ovh_cloud_project_flavors'] ??= {})[flavors] = {
          service_name: serviceName,
          region: h.region,
        };
        // One project SSH key for the fleet (ssh_key or ssh_key_create is required); named
        // by reference so a change of key does not by itself replace instances.
        add('ovh_cloud_project_ssh_key', 'fleet', {
          service_name: serviceName,
          name: `vigil-${t.name}`,
          public_key: t.ssh.keys[0]!,
        });
        add('ovh_cloud_project_instance', n, {
          service_name: serviceName,
          region: h.region,
          billing_period: 'monthly',
          name: fleetName(h),
          // Set blocks of at most one item (SDKv2 TypeSet): one JSON object each.
          flavor: {
            flavor_id: `\${[for f in data.ovh_cloud_project_flavors.${flavors}.flavors : f.id if f.name == ${JSON.stringify(h.size)}][0]}`,
          },
          boot_from: { image_id: h.image ?? '' },
          network: { public: true },
          ssh_key: { name: '${ovh_cloud_project_ssh_key.fleet.name}' },
          user_data: ud,
        });
        break;
      }
    }
  }

  for (const region of [...awsRegions].sort()) {
    (data['aws_ami'] ??= {})[`ubuntu_${awsAlias(region)}`] = {
      provider: `aws.${awsAlias(region)}`,
      most_recent: true,
      owners: [CANONICAL_AWS_OWNER],
      filter: [
        { name: 'name', values: ['ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*'] },
        { name: 'virtualization-type', values: ['hvm'] },
      ],
    };
  }

  // Once every machine has a public address, tell each host where its WireGuard peers are.
  for (const h of plan.hosts) {
    const endpoints = plan.hosts
      .filter((p) => p.name !== h.name)
      .map((p) => `${p.wireguard.publicKey}@\${${publicIpExpr(p)}}:${t.vpn.port}`);
    add('terraform_data', `wg_endpoints_${tfName(h.name)}`, {
      triggers_replace: plan.hosts.map((p) => `\${${publicIpExpr(p)}}`),
      connection: {
        type: 'ssh',
        host: `\${${publicIpExpr(h)}}`,
        user: t.ssh.user,
        port: t.ssh.port,
        agent: true,
        timeout: '15m',
      },
      provisioner: [
        {
          'remote-exec': {
            inline: [
              'cloud-init status --wait > /dev/null || true',
              `sudo /usr/local/sbin/vigil-wg-endpoints ${endpoints.join(' ')}`,
            ],
          },
        },
      ],
    });
  }

  const providerBlocks: Record<string, Json> = {};
  for (const p of used) {
    const meta = PROVIDER_SOURCES[p];
    if (p === 'aws')
      providerBlocks.aws = [...awsRegions]
        .sort()
        .map((region) => ({ alias: awsAlias(region), region }));
    else if (p === 'gcp') providerBlocks.google = { project: t.providers.gcp?.project ?? '' };
    else providerBlocks[meta.name] = {};
  }

  const doc: Block = {
    '//': `Generated by vigil plan for fleet ${t.name}. State is local (terraform.tfstate here).`,
    terraform: {
      required_version: '>= 1.5.0',
      required_providers: Object.fromEntries(
        used.map((p) => [
          PROVIDER_SOURCES[p].name,
          { source: PROVIDER_SOURCES[p].source, version: PROVIDER_SOURCES[p].version },
        ]),
      ),
    },
    provider: providerBlocks,
    ...(Object.keys(data).length > 0 ? { data } : {}),
    resource: resources,
    output: {
      public_ipv4: {
        value: Object.fromEntries(plan.hosts.map((h) => [h.name, `\${${publicIpExpr(h)}}`])),
      },
    },
  };
  return JSON.stringify(doc, null, 2) + '\n';
}
