/**
 * Grafana provisioning for the monitor host: a dashboards provider that loads Vigil's dashboard
 * JSON from a directory, and a Prometheus datasource pointing at the monitor's Prometheus.
 * Field names follow Grafana's provisioning samples (grafana/grafana
 * conf/provisioning/dashboards/sample.yaml @ 42c5b7ea3f7607335c3381e7f554b0e04ac4ed02,
 * conf/provisioning/datasources/sample.yaml @ 44668a0bb4a9190f07b6f9bb0cac07d14e1d0a77).
 * Pure: no I/O.
 */
import { posix } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { vigilDashboards } from './dashboards.js';

/** The provisioned datasource's fixed uid, so a dashboard exported from Grafana still names it. */
export const DATASOURCE_UID = 'vigil-prometheus';
export const DATASOURCE_NAME = 'Vigil Prometheus';

/** Where the monitor's Prometheus listens by default (it runs on the monitor itself). */
export const DEFAULT_PROMETHEUS_URL = 'http://127.0.0.1:9090';
/**
 * Where Grafana reads the dashboard JSON on the host. The paths `grafanaFiles` returns are
 * relative to /etc: `grafana/dashboards/…` lands here and `grafana/provisioning/…` in
 * /etc/grafana/provisioning, the Debian/RPM package's provisioning directory.
 */
export const DEFAULT_DASHBOARDS_DIR = '/etc/grafana/dashboards';

/** Relative paths of the files `grafanaFiles` returns. */
export const DASHBOARDS_PROVIDER_PATH = 'grafana/provisioning/dashboards/vigil.yaml';
export const DATASOURCE_PATH = 'grafana/provisioning/datasources/vigil.yaml';
export const dashboardPath = (uid: string) => `grafana/dashboards/${uid}.json`;

export interface GrafanaFilesOptions {
  /** The Prometheus Grafana queries, as Grafana's server reaches it (access: proxy). */
  readonly prometheusUrl?: string;
  /** Absolute directory on the host holding the dashboard JSON files. */
  readonly dashboardsDir?: string;
  /** Prometheus' scrape interval, so `$__rate_interval` covers at least four scrapes. */
  readonly scrapeInterval?: string;
}

export function dashboardsProviderYaml(dashboardsDir = DEFAULT_DASHBOARDS_DIR): string {
  if (!posix.isAbsolute(dashboardsDir))
    throw new RangeError(`dashboards directory ${JSON.stringify(dashboardsDir)} is not absolute`);
  return (
    '# Grafana dashboards provider: Vigil dashboards from JSON files (vigil dashboards / vigil plan).\n' +
    toYaml({
      apiVersion: 1,
      providers: [
        {
          name: 'vigil',
          orgId: 1,
          folder: 'Vigil',
          folderUid: 'vigil',
          type: 'file',
          // The files are the source of truth; edits in the UI would be lost at the next render.
          disableDeletion: true,
          allowUiUpdates: false,
          updateIntervalSeconds: 60,
          options: { path: dashboardsDir, foldersFromFilesStructure: false },
        },
      ],
    })
  );
}

export function datasourceYaml(
  prometheusUrl = DEFAULT_PROMETHEUS_URL,
  scrapeInterval = '15s',
): string {
  const url = new URL(prometheusUrl);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new RangeError(`Prometheus URL ${prometheusUrl} is not http(s)`);
  return (
    "# Grafana datasource: the monitor's Prometheus (vigil dashboards / vigil plan).\n" +
    toYaml({
      apiVersion: 1,
      datasources: [
        {
          name: DATASOURCE_NAME,
          uid: DATASOURCE_UID,
          type: 'prometheus',
          access: 'proxy',
          orgId: 1,
          url: prometheusUrl,
          isDefault: true,
          editable: false,
          jsonData: { httpMethod: 'POST', timeInterval: scrapeInterval },
        },
      ],
    })
  );
}

/**
 * Every Grafana file for the monitor host, keyed by path relative to /etc (see
 * DEFAULT_DASHBOARDS_DIR): one JSON file per dashboard, the dashboards provider and the
 * datasource. The same files `vigil dashboards --out DIR` writes.
 */
export function grafanaFiles(options: GrafanaFilesOptions = {}): Map<string, string> {
  const files = new Map<string, string>();
  for (const d of vigilDashboards())
    files.set(dashboardPath(d.uid), `${JSON.stringify(d, null, 2)}\n`);
  files.set(DASHBOARDS_PROVIDER_PATH, dashboardsProviderYaml(options.dashboardsDir));
  files.set(DATASOURCE_PATH, datasourceYaml(options.prometheusUrl, options.scrapeInterval));
  return files;
}
