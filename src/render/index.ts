/**
 * Renders a whole plan into files (relative paths → contents) and writes them. Output is a
 * pure function of the topology and the state directory, so re-planning is byte-identical.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { Plan } from '../topology/plan.js';
import { renderHost } from './cloud-init.js';
import { bundleManifest, installScript, payloadName, sha256sums } from './bundle.js';
import { renderTerraform } from './terraform.js';
import type { PlanState } from './state.js';
import { VigilError, errorMessage } from '../errors.js';

export { PlanState } from './state.js';

export function renderPlan(plan: Plan, state: PlanState): Map<string, string> {
  const out = new Map<string, string>();
  // A fleet on this machine (`provider: local`, never mixed with clouds) has no Terraform.
  if (plan.hosts.some((h) => h.provider !== 'local'))
    out.set('terraform/main.tf.json', renderTerraform(plan));
  for (const host of plan.hosts) {
    const r = renderHost(plan, host, state);
    out.set(`hosts/${host.name}/cloud-init.yaml`, r.cloudInit);
    // The bundle: payload under files/ (where on the host each came from is kept in its
    // name), what to do with it under bundle/.
    for (const f of r.files) out.set(`hosts/${host.name}/${payloadName(f.path)}`, f.content);
    const m = bundleManifest(plan, host, r);
    out.set(`hosts/${host.name}/bundle/manifest.json`, JSON.stringify(m, null, 2) + '\n');
    out.set(`hosts/${host.name}/bundle/SHA256SUMS`, sha256sums(m));
    out.set(`hosts/${host.name}/bundle/install.sh`, installScript(m));
  }
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function writeRendered(outDir: string, files: Map<string, string>): void {
  for (const [rel, content] of files) {
    const path = join(outDir, rel);
    mkdirSync(dirname(path), { recursive: true });
    // Host files carry private keys: keep them from other local users.
    writeFileSync(path, content, { mode: 0o600 });
  }
}

const PriceTableSchema = z.object({
  currency: z.string(),
  providers: z.record(
    z.string(),
    z.object({ source: z.string(), sizes: z.record(z.string(), z.number().nonnegative()) }),
  ),
});
export type PriceTable = z.infer<typeof PriceTableSchema>;

export function defaultPricesFile(): string {
  // src/render/index.ts and <outDir>/src/render/index.js both sit two levels below a root
  // that has data/ next to it (the repository, or the installed package).
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..', '../../../..']) {
    const candidate = resolve(here, up, 'data', 'prices.json');
    try {
      readFileSync(candidate);
      return candidate;
    } catch {
      // try the next level up
    }
  }
  return resolve(here, '../../data/prices.json');
}

export function loadPrices(file = defaultPricesFile()): PriceTable {
  try {
    return PriceTableSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    throw new VigilError('PRICES_INVALID', `cannot read price table ${file}: ${errorMessage(err)}`);
  }
}

export interface PlanSummary {
  readonly hostsByProviderRegion: Array<{ provider: string; region: string; hosts: string[] }>;
  readonly portsByRole: Array<{ role: string; ports: string[] }>;
  readonly monthlyCost: { total: number; currency: string; unknown: string[] };
}

export function summarize(plan: Plan, prices: PriceTable): PlanSummary {
  const groups = new Map<string, string[]>();
  for (const h of plan.hosts) {
    const k = `${h.provider}\u0000${h.region}`;
    groups.set(k, [...(groups.get(k) ?? []), h.name]);
  }
  const hostsByProviderRegion = [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, hosts]) => {
      const [provider, region] = k.split('\u0000') as [string, string];
      return { provider, region, hosts };
    });
  const roles = new Map<string, Set<string>>();
  for (const h of plan.hosts) {
    const set = roles.get(h.role) ?? new Set<string>();
    for (const p of h.ports) {
      const who = p.from === 'any' ? 'anyone' : p.from === 'ssh' ? 'ssh sources' : 'vpn peers';
      set.add(`${p.port}/${p.proto} (${p.purpose}; ${who}${p.vpnOnly ? ' via wg0' : ''})`);
    }
    roles.set(h.role, set);
  }
  const portsByRole = [...roles.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([role, ports]) => ({ role, ports: [...ports] }));
  let total = 0;
  const unknown: string[] = [];
  for (const h of plan.hosts) {
    // A namespace on this machine costs nothing.
    if (h.provider === 'local') continue;
    const price = prices.providers[h.provider]?.sizes[h.size];
    if (price === undefined) unknown.push(`${h.name} (${h.provider} ${h.size})`);
    else total += price;
  }
  return {
    hostsByProviderRegion,
    portsByRole,
    monthlyCost: { total: Math.round(total * 100) / 100, currency: prices.currency, unknown },
  };
}

export function formatSummary(s: PlanSummary): string {
  const lines = ['Hosts by provider and region:'];
  for (const g of s.hostsByProviderRegion)
    lines.push(`  ${g.provider.padEnd(13)} ${g.region.padEnd(16)} ${g.hosts.join(', ')}`);
  lines.push('Open ports by role:');
  for (const r of s.portsByRole) {
    lines.push(`  ${r.role}:`);
    for (const p of r.ports) lines.push(`    ${p}`);
  }
  lines.push(
    `Estimated monthly cost: ${s.monthlyCost.total.toFixed(2)} ${s.monthlyCost.currency}` +
      (s.monthlyCost.unknown.length > 0 ? ` + unpriced: ${s.monthlyCost.unknown.join(', ')}` : '') +
      " (list prices from data/prices.json; see each provider's source there)",
  );
  return lines.join('\n') + '\n';
}
