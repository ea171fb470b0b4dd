/**
 * Lint rules for the topology's `monitoring` section: receivers that routes name, alerts that
 * page and reach nobody, and watch entries the plan can use. Pure functions: no I/O.
 */
import type { LintCode, LintFinding, Severity } from './lint.js';
import type { Topology } from './schema.js';

function finding(
  code: LintCode,
  path: string,
  message: string,
  severity: Severity = 'error',
): LintFinding {
  return { code, severity, message, path };
}

export function lintMonitoring(topology: Topology): LintFinding[] {
  const out: LintFinding[] = [];
  const am = topology.monitoring.alertmanager;
  if (!am) {
    out.push(
      finding(
        'alerts-unrouted',
        'monitoring',
        'no Alertmanager receivers: alerts fire on the monitor and reach nobody',
        'warning',
      ),
    );
  } else {
    const defined = new Set<string>();
    am.receivers.forEach((r, i) => {
      if (defined.has(r.name))
        out.push(
          finding(
            'duplicate-name',
            `monitoring.alertmanager.receivers[${i}].name`,
            `receiver ${r.name} is defined twice`,
          ),
        );
      defined.add(r.name);
    });
    const route = am.route;
    const named: Array<[string, string]> = [
      ...(route.receiver !== undefined
        ? [['monitoring.alertmanager.route.receiver', route.receiver] as [string, string]]
        : []),
      ...Object.entries(route.severities).map(([sev, r]): [string, string] => [
        `monitoring.alertmanager.route.severities.${sev}`,
        r,
      ]),
    ];
    for (const [path, r] of named)
      if (!defined.has(r))
        out.push(
          finding(
            'receiver-undefined',
            path,
            `receiver ${r} is not defined in monitoring.alertmanager.receivers`,
          ),
        );
    if (route.severities.page === undefined && route.receiver === undefined)
      out.push(
        finding(
          'alerts-unrouted',
          'monitoring.alertmanager.route',
          'alerts with severity=page (missed blocks, no signature, KES expiry) match no route and no default receiver: they reach nobody',
          'warning',
        ),
      );
  }

  topology.monitoring.watch.forEach((w, i) => {
    const chain = topology.chains.find((c) => c.name === w.chain);
    const path = `monitoring.watch[${i}]`;
    if (!chain) out.push(finding('watch-chain', `${path}.chain`, `no chain named ${w.chain}`));
    else if (chain.kind !== 'cometbft')
      out.push(
        finding(
          'watch-chain',
          `${path}.chain`,
          `${w.chain} is a ${chain.kind} chain: only CometBFT chains take a watch entry (Cardano producers are watched without one)`,
        ),
      );
    else if (w.validatorAddress === undefined)
      out.push(
        finding(
          'watch-chain',
          `${path}.validatorAddress`,
          `${w.chain} is not watched without its validator's consensus address`,
          'warning',
        ),
      );
  });
  return out;
}
