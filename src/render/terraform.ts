/**
 * Terraform JSON (`main.tf.json`) for every provider the fleet uses. State stays local (no
 * backend block): nobody should need a second cloud account just to hold state.
 */
import { createHash } from 'node:crypto';
import { publicInbound, type Plan, type PlannedHost } from '../topology/plan.js';
import type { Provider } from '../topology/schema.js';

/** The providers Terraform makes machines with: every one but `local` (this machine). */
export type CloudProvider = Exclude<Provider, 'local'>;

export const PROVIDER_SOURCES: Record<
  CloudProvider,
  { name: string; source: string; version: string }
> = {
  digitalocean: { name: 'digitalocean', source: 'digitalocean/digitalocean', version: '~> 2.0' },
  hetzner: { name: 'hcloud', source: 'hetznercloud/hcloud', version: '~> 1.45' },
  vultr: { name: 'vultr', source: 'vultr/vultr', version: '~> 2.19' },
  // 2.10: the first release whose linode_instance takes firewall_id (attached at creation).
  linode: { name: 'linode', source: 'linode/linode', version: '~> 2.10' },
  aws: { name: 'aws', source: 'hashicorp/aws', version: '~> 5.0' },
  gcp: { name: 'google', source: 'hashicorp/google', version: '~> 5.0' },
  upcloud: { name: 'upcloud', source: 'UpCloudLtd/upcloud', version: '~> 5.0' },
  // 2.19: the release whose schema test/render/terraform-provider-schema.json records.
  ovh: { name: 'ovh', source: 'ovh/ovh', version: '~> 2.19' },
};

/** Ubuntu 24.04 LTS on each provider (OVH images are per-region ids, so the host names one). */
const DEFAULT_IMAGES: Record<Exclude<CloudProvider, 'aws' | 'ovh'>, string> = {
  digitalocean: 'ubuntu-24-04-x64',
  hetzner: 'ubuntu-24.04',
  vultr: '2284',
  linode: 'linode/ubuntu24.04',
  gcp: 'ubuntu-os-cloud/ubuntu-2404-lts-amd64',
  upcloud: 'Ubuntu Server 24.04 LTS (Noble Numbat)',
};

/** Canonical's AWS account, which publishes the official Ubuntu AMIs. */
export const CANONICAL_AWS_OWNER = '099720109477';

/**
 * The one Ubuntu 24.04 build AWS hosts boot, by its exact name: an image name is unique per
 * owner and region, so the lookup returns the same AMI id for as long as the image exists, and
 * a newer Canonical build never replaces a running instance (a `most_recent` wildcard lookup
 * did: `ami` forces replacement). Moving to a newer build is a deliberate edit of this line.
 * A host may also name an AMI id itself (`image:`).
 */
export const AWS_UBUNTU_IMAGE =
  'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610';

/**
 * The machine's user data attribute, per resource type: changes to it are ignored
 * (lifecycle.ignore_changes), because on most providers they replace the machine (Hetzner,
 * DigitalOcean, Vultr, Linode, UpCloud, OVH: ForceNew) or stop and start it (AWS). The user
 * data only seeds the first boot; SSH keys, port and sources reach running hosts in the
 * bundle (src/render/ssh.ts). OVH's ssh_key is ignored too: sshd reads the bundle's keys.
 */
export const IGNORED_USER_DATA: Record<string, readonly string[]> = {
  digitalocean_droplet: ['user_data'],
  hcloud_server: ['user_data'],
  vultr_instance: ['user_data'],
  linode_instance: ['metadata'],
  aws_instance: ['user_data_base64'],
  google_compute_instance: ['metadata["user-data"]'],
  upcloud_server: ['user_data'],
  ovh_cloud_project_instance: ['user_data', 'ssh_key'],
};

/** Comment prefix of the UpCloud rules that only exist because its firewall is stateless. */
export const STATELESS_RETURN = 'stateless firewall';

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
    case 'local':
      throw new Error(`host ${host.name} is local: Terraform makes no machine for it`);
  }
}

const isV6 = (cidr: string): boolean => cidr.includes(':');

/** Linux's default ephemeral port range (net.ipv4.ip_local_port_range): where replies to the
 * host's own outbound connections arrive. Only UpCloud's stateless firewall needs it. */
export const EPHEMERAL_PORTS = { start: 32768, end: 60999 } as const;

/** First and last address of a CIDR, for firewalls that take address ranges (UpCloud). */
export function cidrRange(cidr: string): { start: string; end: string } {
  const [addr, lenText] = cidr.split('/') as [string, string];
  const len = Number(lenText);
  if (!isV6(cidr)) {
    const n = addr.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
    const host = (1n << BigInt(32 - len)) - 1n;
    const fmt = (v: bigint) => [24n, 16n, 8n, 0n].map((sh) => String((v >> sh) & 255n)).join('.');
    return { start: fmt(n & ~host & 0xffffffffn), end: fmt((n & ~host & 0xffffffffn) | host) };
  }
  const [head, tail] = addr.includes('::') ? (addr.split('::') as [string, string]) : [addr, ''];
  const hs = head === '' ? [] : head.split(':');
  const ts = tail === '' ? [] : tail.split(':');
  const groups = addr.includes('::')
    ? [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts]
    : hs;
  const n = groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
  const all = (1n << 128n) - 1n;
  const host = (1n << BigInt(128 - len)) - 1n;
  const fmt = (v: bigint) =>
    Array.from({ length: 8 }, (_, i) => ((v >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(
      ':',
    );
  return { start: fmt(n & ~host & all), end: fmt((n & ~host & all) | host) };
}

/** Linode labels are 3–32 characters: long fleet names keep a prefix and a short hash. */
function linodeLabel(name: string): string {
  if (name.length <= 32) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, 23).replace(/[-_.]+$/, '')}-${hash}`;
}

/** A name of at most `max` characters: long ones keep a prefix and a short hash. */
function boundedName(name: string, max: number): string {
  if (name.length <= max) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, max - 9).replace(/[-_.]+$/, '')}-${hash}`;
}

/** The name of a host's chain data volume on its provider (DigitalOcean: at most 64). */
export function dataVolumeName(fleet: string, host: string): string {
  return boundedName(`${fleet}-${host}-data`, 64);
}

/** Linode volume labels are 1–32 characters. */
export function linodeVolumeLabel(fleet: string, host: string): string {
  return boundedName(`${fleet}-${host}-data`, 32);
}

/**
 * Where the chain data volume appears on the host, as the providers document it: the mount
 * script takes the one device these name (a glob), or with none, the one empty unpartitioned
 * disk. DigitalOcean: /dev/disk/by-id/scsi-0DO_Volume_<name> (docs.digitalocean.com volumes
 * naming conventions); Linode: /dev/disk/by-id/scsi-0Linode_Volume_<label>
 * (terraform-provider-linode linode/volume framework_schema_resource.go, filesystem_path);
 * Hetzner: /dev/disk/by-id/scsi-0HC_Volume_<volume id> (hcloud_volume.linux_device), the id
 * being known only once made, hence the glob; Vultr documents no stable name: none.
 */
export function dataVolumeDevices(fleet: string, host: PlannedHost): string[] {
  switch (host.provider) {
    case 'digitalocean':
      return [`/dev/disk/by-id/scsi-0DO_Volume_${dataVolumeName(fleet, host.name)}`];
    case 'linode':
      return [`/dev/disk/by-id/scsi-0Linode_Volume_${linodeVolumeLabel(fleet, host.name)}`];
    case 'hetzner':
      return ['/dev/disk/by-id/scsi-0HC_Volume_*'];
    default:
      return [];
  }
}

export function renderTerraform(plan: Plan): string {
  const t = plan.topology;
  // Local hosts are network namespaces on this machine (`vigil apply` runs them): no resource.
  const cloudHosts = plan.hosts.filter(
    (h): h is PlannedHost & { provider: CloudProvider } => h.provider !== 'local',
  );
  const used = [...new Set(cloudHosts.map((h) => h.provider))].sort();
  const resources: Record<string, Record<string, Block>> = {};
  const data: Record<string, Record<string, Block>> = {};
  const add = (type: string, name: string, body: Block) => {
    const ignored = IGNORED_USER_DATA[type];
    (resources[type] ??= {})[name] = ignored
      ? { ...body, lifecycle: { ignore_changes: [...ignored] } }
      : body;
  };
  const fleetName = (h: PlannedHost) => `${t.name}-${h.name}`;
  const awsRegions = new Set<string>();

  for (const h of cloudHosts) {
    const n = tfName(h.name);
    const ud = `\${${userDataFile(h)}}`;
    const inbound = publicInbound(t, h);
    switch (h.provider) {
      case 'digitalocean':
        // A Cloud Firewall applied through a tag the droplet is created with (droplet_ids
        // could only name it after it exists); the droplet waits for the firewall. DigitalOcean
        // firewalls deny outbound too unless allowed, so outbound is opened as nftables does.
        add('digitalocean_tag', n, { name: `vigil-${t.name}-${h.name}` });
        add('digitalocean_firewall', n, {
          name: fleetName(h),
          tags: [`\${digitalocean_tag.${n}.name}`],
          inbound_rule: inbound.map((r) => ({
            protocol: r.proto,
            port_range: String(r.port),
            source_addresses: [...r.cidrs],
          })),
          outbound_rule: [
            ...(['tcp', 'udp'] as const).map((protocol) => ({
              protocol,
              port_range: '1-65535',
              destination_addresses: ['0.0.0.0/0', '::/0'],
            })),
            { protocol: 'icmp', destination_addresses: ['0.0.0.0/0', '::/0'] },
          ],
        });
        add('digitalocean_droplet', n, {
          name: fleetName(h),
          image: h.image ?? DEFAULT_IMAGES.digitalocean,
          region: h.region,
          size: h.size,
          user_data: ud,
          ipv6: true,
          tags: ['vigil', t.name, h.role, `\${digitalocean_tag.${n}.name}`],
          depends_on: [`digitalocean_firewall.${n}`],
        });
        if (h.disk.volumeGB !== undefined) {
          // No initial_filesystem_type: DigitalOcean leaves it raw; the bundle formats it once.
          add('digitalocean_volume', `${n}_data`, {
            region: h.region,
            name: dataVolumeName(t.name, h.name),
            size: h.disk.volumeGB,
          });
          add('digitalocean_volume_attachment', `${n}_data`, {
            droplet_id: `\${digitalocean_droplet.${n}.id}`,
            volume_id: `\${digitalocean_volume.${n}_data.id}`,
          });
        }
        break;
      case 'hetzner':
        // Inbound is denied unless a rule allows it; with no outbound rule, outbound is open.
        add('hcloud_firewall', n, {
          name: fleetName(h),
          labels: { vigil: t.name, role: h.role },
          rule: inbound.map((r) => ({
            direction: 'in',
            protocol: r.proto,
            port: String(r.port),
            source_ips: [...r.cidrs],
            description: r.purpose,
          })),
        });
        add('hcloud_server', n, {
          name: fleetName(h),
          image: h.image ?? DEFAULT_IMAGES.hetzner,
          server_type: h.size,
          location: h.region,
          user_data: ud,
          labels: { vigil: t.name, role: h.role },
          // Sent in the create request: the server never runs without it.
          firewall_ids: [`\${hcloud_firewall.${n}.id}`],
        });
        if (h.disk.volumeGB !== undefined) {
          // Not formatted by Hetzner (no `format`): the bundle formats it once, with a label.
          add('hcloud_volume', `${n}_data`, {
            name: dataVolumeName(t.name, h.name),
            size: h.disk.volumeGB,
            location: h.region,
            labels: { vigil: t.name, role: h.role },
          });
          add('hcloud_volume_attachment', `${n}_data`, {
            volume_id: `\${hcloud_volume.${n}_data.id}`,
            server_id: `\${hcloud_server.${n}.id}`,
            automount: false,
          });
        }
        break;
      case 'vultr': {
        // A firewall group drops every inbound packet no rule accepts (outbound is not
        // filtered). Rules are resources of their own; the instance waits for all of them.
        add('vultr_firewall_group', n, { description: fleetName(h) });
        const rules: string[] = [];
        for (const r of inbound)
          r.cidrs.forEach((cidr, i) => {
            const [subnet, size] = cidr.split('/') as [string, string];
            const name = `${n}_${r.proto}_${r.port}_${i}`;
            add('vultr_firewall_rule', name, {
              firewall_group_id: `\${vultr_firewall_group.${n}.id}`,
              protocol: r.proto,
              ip_type: isV6(cidr) ? 'v6' : 'v4',
              subnet,
              subnet_size: Number(size),
              port: String(r.port),
              notes: r.purpose,
            });
            rules.push(`vultr_firewall_rule.${name}`);
          });
        add('vultr_instance', n, {
          label: fleetName(h),
          hostname: h.name,
          region: h.region,
          plan: h.size,
          os_id: Number(h.image ?? DEFAULT_IMAGES.vultr),
          user_data: ud,
          enable_ipv6: true,
          tags: ['vigil', t.name, h.role],
          firewall_group_id: `\${vultr_firewall_group.${n}.id}`,
          depends_on: rules,
        });
        if (h.disk.volumeGB !== undefined)
          add('vultr_block_storage', `${n}_data`, {
            region: h.region,
            size_gb: h.disk.volumeGB,
            label: dataVolumeName(t.name, h.name),
            attached_to_instance: `\${vultr_instance.${n}.id}`,
            // Attach to the running instance rather than restarting it.
            live: true,
          });
        break;
      }
      case 'linode':
        // Stateful: inbound policy DROP with the accepted ports, outbound ACCEPT.
        add('linode_firewall', n, {
          label: linodeLabel(fleetName(h)),
          inbound_policy: 'DROP',
          outbound_policy: 'ACCEPT',
          tags: ['vigil', t.name, h.role],
          inbound: inbound.map((r) => {
            const v4 = r.cidrs.filter((c) => !isV6(c));
            const v6 = r.cidrs.filter(isV6);
            return {
              label: `${r.proto}-${r.port}`,
              action: 'ACCEPT',
              protocol: r.proto.toUpperCase(),
              ports: String(r.port),
              ...(v4.length > 0 ? { ipv4: v4 } : {}),
              ...(v6.length > 0 ? { ipv6: v6 } : {}),
            };
          }),
        });
        add('linode_instance', n, {
          label: fleetName(h),
          region: h.region,
          type: h.size,
          image: h.image ?? DEFAULT_IMAGES.linode,
          tags: ['vigil', t.name, h.role],
          // Linode's metadata service takes user data base64-encoded.
          metadata: [{ user_data: `\${base64encode(${userDataFile(h)})}` }],
          // Attached in the create request (provider 2.10+).
          firewall_id: `\${linode_firewall.${n}.id}`,
        });
        if (h.disk.volumeGB !== undefined)
          add('linode_volume', `${n}_data`, {
            label: linodeVolumeLabel(t.name, h.name),
            region: h.region,
            size: h.disk.volumeGB,
            linode_id: `\${linode_instance.${n}.id}`,
            tags: ['vigil', t.name, h.role],
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
        const ingress: string[] = [];
        for (const r of inbound)
          r.cidrs.forEach((cidr, i) => {
            const name = `${n}_${r.proto}_${r.port}_${i}`;
            add('aws_vpc_security_group_ingress_rule', name, {
              provider,
              security_group_id: `\${aws_security_group.${n}.id}`,
              ...(isV6(cidr) ? { cidr_ipv6: cidr } : { cidr_ipv4: cidr }),
              from_port: r.port,
              to_port: r.port,
              ip_protocol: r.proto,
              description: r.purpose,
            });
            ingress.push(`aws_vpc_security_group_ingress_rule.${name}`);
          });
        add('aws_instance', n, {
          provider,
          ami: h.image ?? `\${data.aws_ami.ubuntu_${awsAlias(h.region)}.id}`,
          instance_type: h.size,
          associate_public_ip_address: true,
          vpc_security_group_ids: [`\${aws_security_group.${n}.id}`],
          // gzip keeps larger cloud-configs under EC2's 16 KiB user-data limit.
          user_data_base64: `\${base64gzip(${userDataFile(h)})}`,
          // Resized in place (EBS ModifyVolume) when the need grows; the filesystem follows
          // at the next boot (cloud-init growpart).
          root_block_device: [{ volume_size: h.disk.rootGB!, volume_type: 'gp3' }],
          tags: { Name: fleetName(h), vigil: t.name, role: h.role },
          // The group denies by default; its rules exist before the instance boots.
          depends_on: ingress,
        });
        break;
      }
      case 'gcp': {
        // The default network comes with default-allow-ssh/-rdp/-icmp (0.0.0.0/0) and
        // default-allow-internal at priority 65534, which Terraform does not manage. A deny of
        // everything at 65000 for this host's tag overrides them; the plan's rules allow at
        // 1000. The instance has no IPv6 address, so only IPv4 sources apply.
        const tag = `vigil-${t.name}-${h.name}`;
        const fw: string[] = [];
        for (const r of inbound) {
          const v4 = r.cidrs.filter((c) => !isV6(c));
          if (v4.length === 0) continue;
          add('google_compute_firewall', `${n}_${r.proto}_${r.port}`, {
            name: `${fleetName(h)}-${r.proto}-${r.port}`,
            network: 'default',
            direction: 'INGRESS',
            priority: 1000,
            source_ranges: v4,
            target_tags: [tag],
            allow: [{ protocol: r.proto, ports: [String(r.port)] }],
            description: r.purpose,
          });
          fw.push(`google_compute_firewall.${n}_${r.proto}_${r.port}`);
        }
        add('google_compute_firewall', `${n}_deny_rest`, {
          name: `${fleetName(h)}-deny-rest`,
          network: 'default',
          direction: 'INGRESS',
          priority: 65000,
          source_ranges: ['0.0.0.0/0'],
          target_tags: [tag],
          deny: [{ protocol: 'all' }],
          description: "everything else, including the default network's allow rules",
        });
        fw.push(`google_compute_firewall.${n}_deny_rest`);
        add('google_compute_instance', n, {
          name: fleetName(h),
          machine_type: h.size,
          // A machine_type change stops the instance, and the provider refuses it unless
          // allowed (resource_compute_instance.go, v5.45.2): a resize then stops and starts
          // the host, as on AWS, instead of failing the apply.
          allow_stopping_for_update: true,
          zone: h.region,
          tags: [tag],
          boot_disk: [
            { initialize_params: [{ image: h.image ?? DEFAULT_IMAGES.gcp, size: h.disk.rootGB! }] },
          ],
          network_interface: [{ network: 'default', access_config: [{}] }],
          metadata: { 'user-data': ud },
          labels: { vigil: t.name, role: h.role },
          depends_on: fw,
        });
        break;
      }
      case 'upcloud': {
        add('upcloud_server', n, {
          hostname: h.name,
          zone: h.region,
          plan: h.size,
          metadata: true,
          user_data: ud,
          labels: { vigil: t.name, role: h.role },
          // Grown in place when the need grows (UpCloud storage resize).
          template: [{ storage: h.image ?? DEFAULT_IMAGES.upcloud, size: h.disk.rootGB! }],
          network_interface: [{ type: 'public' }],
          firewall: true,
        });
        // UpCloud's firewall is per server and its rules need the server's id, so they are
        // applied just after the server is created, not before it boots; the bootstrap
        // nftables ruleset (loaded by cloud-init's bootcmd) covers that window. No attachment
        // at creation exists in provider v5.41.0 (UpCloudLtd/terraform-provider-upcloud
        // ccec5663ba3ee2dd60f386ba6bfbbbbe7d0edc07): upcloud_server has only the `firewall`
        // on/off switch (internal/service/server/server.go), and Create waits for the server
        // to be started; upcloud_firewall_rules needs `server_id` (internal/service/firewall/
        // firewall.go) and upcloud_firewall_ruleset binds by `server_uuid`, "create-only",
        // RequiresReplace (internal/service/firewallruleset/ruleset.go), both naming a server
        // that already runs. It is also stateless: replies to the host's
        // own connections (package downloads, DNS, chain peers it dials) must be accepted on
        // the ephemeral ports, and ICMP errors (path MTU) from anywhere. Source filtering by
        // CIDR becomes an address range.
        const rule = (family: 'IPv4' | 'IPv6', extra: Block): Block => ({
          direction: 'in',
          action: 'accept',
          family,
          ...extra,
        });
        const rules: Block[] = [];
        for (const r of inbound)
          for (const cidr of r.cidrs) {
            const any = cidr === '0.0.0.0/0' || cidr === '::/0';
            const range = cidrRange(cidr);
            rules.push(
              rule(isV6(cidr) ? 'IPv6' : 'IPv4', {
                protocol: r.proto,
                ...(any
                  ? {}
                  : { source_address_start: range.start, source_address_end: range.end }),
                destination_port_start: String(r.port),
                destination_port_end: String(r.port),
                comment: r.purpose,
              }),
            );
          }
        for (const family of ['IPv4', 'IPv6'] as const) {
          for (const protocol of ['tcp', 'udp'])
            rules.push(
              rule(family, {
                protocol,
                destination_port_start: String(EPHEMERAL_PORTS.start),
                destination_port_end: String(EPHEMERAL_PORTS.end),
                comment: `${STATELESS_RETURN}: replies to outbound connections`,
              }),
            );
          rules.push(rule(family, { protocol: 'icmp', comment: `${STATELESS_RETURN}: ICMP` }));
        }
        rules.push({ direction: 'in', action: 'drop', comment: 'everything else' });
        add('upcloud_firewall_rules', n, {
          server_id: `\${upcloud_server.${n}.id}`,
          firewall_rule: rules,
        });
        break;
      }
      case 'ovh': {
        // No cloud firewall, checked in provider v2.19.0 (ovh/terraform-provider-ovh
        // 913f92cb66a9a396ff7bb6cbf8f7f1c5cc0a7c21): ovh_cloud_project_instance (the resource
        // with `user_data`, ovh/resource_cloud_project_instance.go) takes no security group;
        // ovh_cloud_instance takes `security_group_ids` at creation (ovh_cloud_security_group)
        // but has no user data at all (ovh/resource_cloud_instance.go: service_name, region,
        // availability_zone, ssh_key_name, group_id, name, flavor_id, image_id, power_state,
        // networks, volume_ids, security_group_ids, shares), so a host made with it would boot
        // without Vigil's user data (the bootstrap firewall, the SSH setup); ovh_ip_firewall names
        // the instance's IP, known only once it exists. OVH hosts rely on nftables alone,
        // loaded by cloud-init's bootcmd before anything else runs (README: Provisioning).
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
      owners: [CANONICAL_AWS_OWNER],
      // AWS deprecates every public AMI two years after it is made (Canonical sets its own
      // dates too), and a deprecated image drops out of DescribeImages unless asked for: without
      // this, the pinned build's lookup would fail and no plan could run for the hosts that boot it.
      include_deprecated: true,
      filter: [
        { name: 'name', values: [AWS_UBUNTU_IMAGE] },
        { name: 'architecture', values: ['x86_64'] },
      ],
    };
  }

  // WireGuard endpoints (other hosts' public addresses) are not set from here: `vigil apply`
  // writes them with the rest of each host's bundle (src/provision/push.ts), so no resource of
  // one host names another host.

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
        value: Object.fromEntries(cloudHosts.map((h) => [h.name, `\${${publicIpExpr(h)}}`])),
      },
    },
  };
  return JSON.stringify(doc, null, 2) + '\n';
}
