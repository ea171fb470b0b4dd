/**
 * A fake cardano-node Prometheus endpoint (node:http, loopback) for the Cardano watcher's tests.
 * It writes what the node writes, in the naming chosen:
 *
 * - `new`: the new tracing system's exposition (cardano-tracer, or the node's PrometheusSimple
 *   backend): trace-dispatcher/src/Cardano/Logging/Prometheus/Exposition.hs as of cardano-node
 *   9d33717dce2c (before the package left the repository): `# TYPE <name> gauge` before an
 *   `IntM` (`_int`), `# TYPE <name> counter` before a `CounterM` (`_counter`), a `DoubleM`
 *   (`_real`, an EKG label) without a TYPE line, a `PrometheusM` label as
 *   `# TYPE <name> info` + `<name>{k="v"} 1`, and a closing `# EOF`; names from
 *   trace-dispatcher/src/Cardano/Logging/Tracer/EKG.hs (suffixes) and cardano-node's
 *   Tracers/KESInfo.hs, Tracers/Consensus.hs, Tracers/ForgingStats.hs, Tracers/ChainDB.hs.
 * - `new_nosuffix`: the same with the `nosuffix` switch (Exposition.hs, stripSuffix).
 * - `legacy`: the old system's names (cardano-node/src/Cardano/Tracing/Tracers.hs at
 *   1276f2268f4e; bench/cardano-timeseries-io/docs/sre-expressions.txt): `_int` gauges and
 *   counters, the CDFs without a suffix, and EKG's own `ekg_server_timestamp_ms`.
 *
 * The node creates a counter at its first event: a count of 0 is left out here, as it would be.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Naming } from '../../src/watch/cardano.js';

export interface FakeCardanoState {
  naming: Naming;
  /** undefined: a relay, no KES metrics. */
  remainingKESPeriods?: number;
  slot?: number;
  forged: number;
  /** Write the forging-stats count (blocksForged) but not the Forge.forged counter. */
  forgingStatsOnly?: boolean;
  adopted: number;
  didntAdopt: number;
  missedSlots: number;
  /** undefined: no block fetched yet. */
  cdf?: { one: number; three: number; five: number };
  /** Answered instead of the metrics. */
  raw?: { status: number; body: string };
  /** Wait this long before answering. */
  delayMs?: number;
  /** Lines appended to the exposition. */
  extra?: string[];
}

export interface FakeCardanoNode {
  readonly url: string;
  readonly state: FakeCardanoState;
  readonly requests: number;
  close(): Promise<void>;
}

const P = 'cardano_node_metrics_';

/** The exposition the node would write for this state. */
export function exposition(s: FakeCardanoState): string {
  const out: string[] = [];
  const suffixed = s.naming === 'new';
  const gauge = (name: string, v: number | undefined, legacyName = name) => {
    if (v === undefined) return;
    const n =
      s.naming === 'legacy' ? `${P}${legacyName}_int` : `${P}${name}${suffixed ? '_int' : ''}`;
    if (s.naming !== 'legacy') out.push(`# TYPE ${n} gauge`);
    out.push(`${n} ${v}`);
  };
  const counter = (name: string, v: number) => {
    if (v === 0) return;
    if (s.naming === 'legacy') {
      out.push(`${P}${name}_int ${v}`);
      return;
    }
    const n = `${P}${name}${suffixed ? '_counter' : ''}`;
    out.push(`# TYPE ${n} counter`, `${n} ${v}`);
  };
  const real = (name: string, v: number) => {
    out.push(`${P}${name}${suffixed ? '_real' : ''} ${v}`);
  };

  if (s.naming === 'legacy') out.push(`ekg_server_timestamp_ms 1714564800123`);
  gauge('RTS_gcMajorNum', 4);
  gauge('slotNum', s.slot);
  gauge('remainingKESPeriods', s.remainingKESPeriods);
  if (s.remainingKESPeriods !== undefined) {
    gauge('operationalCertificateStartKESPeriod', 900);
    gauge('operationalCertificateExpiryKESPeriod', 962);
  }
  if (!s.forgingStatsOnly) counter('Forge_forged', s.forged);
  counter('Forge_adopted', s.adopted);
  counter('Forge_didnt_adopt', s.didntAdopt);
  if (s.naming === 'legacy') {
    if (s.forged > 0) out.push(`${P}blocksForgedNum_int ${s.forged}`);
    if (s.missedSlots > 0) out.push(`${P}slotsMissedNum_int ${s.missedSlots}`);
  } else {
    gauge('blocksForged', s.forged);
    gauge('slotsMissed', s.missedSlots);
  }
  if (s.cdf !== undefined) {
    if (s.naming === 'legacy') {
      out.push(`${P}blockfetchclient_blockdelay_s 0.42`);
      out.push(`${P}blockfetchclient_blockdelay_cdfOne ${s.cdf.one}`);
      out.push(`${P}blockfetchclient_blockdelay_cdfThree ${s.cdf.three}`);
      out.push(`${P}blockfetchclient_blockdelay_cdfFive ${s.cdf.five}`);
    } else {
      real('blockfetchclient_blockdelay', 0.42);
      real('blockfetchclient_blockdelay_cdfOne', s.cdf.one);
      real('blockfetchclient_blockdelay_cdfThree', s.cdf.three);
      real('blockfetchclient_blockdelay_cdfFive', s.cdf.five);
    }
  }
  if (s.naming !== 'legacy') {
    out.push(
      `# TYPE ${P}tipBlock info`,
      `${P}tipBlock{hash="5f20df933584822601f9e3f8c024eb5eb252fe8cefb24d1317dc3d432e940ebb"} 1`,
    );
  }
  out.push(...(s.extra ?? []));
  if (s.naming !== 'legacy') out.push('# EOF');
  return out.join('\n') + '\n';
}

export async function startFakeCardano(init: Partial<FakeCardanoState>): Promise<FakeCardanoNode> {
  const state: FakeCardanoState = {
    naming: 'new',
    forged: 0,
    adopted: 0,
    didntAdopt: 0,
    missedSlots: 0,
    ...init,
  };
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    const answer = () => {
      if (state.raw !== undefined) {
        res.writeHead(state.raw.status, { 'content-type': 'text/plain' }).end(state.raw.body);
        return;
      }
      if ((req.url ?? '/').split('?')[0] !== '/metrics') {
        res.writeHead(404).end('not found');
        return;
      }
      res
        .writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
        .end(exposition(state));
    };
    if (state.delayMs) setTimeout(answer, state.delayMs);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/metrics`,
    state,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
