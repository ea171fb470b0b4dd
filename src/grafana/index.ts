/** Grafana dashboards and provisioning for the monitor host (issue 14, item 4). */
export { DASHBOARD_UIDS, vigilDashboards, type DashboardUid } from './dashboards.js';
export {
  DATASOURCE_REF,
  DATASOURCE_VARIABLE,
  GRID_COLUMNS,
  SCHEMA_VERSION,
  type GrafanaDashboard,
  type GrafanaPanel,
} from './model.js';
export {
  DASHBOARDS_PROVIDER_PATH,
  DATASOURCE_PATH,
  DATASOURCE_UID,
  DEFAULT_DASHBOARDS_DIR,
  DEFAULT_PROMETHEUS_URL,
  dashboardPath,
  dashboardsProviderYaml,
  datasourceYaml,
  grafanaFiles,
  type GrafanaFilesOptions,
} from './provisioning.js';
