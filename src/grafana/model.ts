/**
 * A small builder for Grafana's dashboard JSON model (schemaVersion 39, Grafana 10.4/11): the
 * dashboards in `dashboards.ts` say what each panel shows; this file says how Grafana wants it
 * written. Pure: no I/O.
 *
 * Field names follow Grafana's dashboard JSON model (grafana/grafana
 * docs/sources/dashboards/build-dashboards/view-dashboard-json-model/index.md, and the
 * dashboard schema kinds/dashboard/dashboard_kind.cue).
 */

/** The dashboard JSON schema version of Grafana 10.4 (what 11.x still reads without migrating). */
export const SCHEMA_VERSION = 39;

/** Every panel and query reads Prometheus through this template variable, never a fixed uid. */
export const DATASOURCE_VARIABLE = 'datasource';
export const DATASOURCE_REF = { type: 'prometheus', uid: `\${${DATASOURCE_VARIABLE}}` } as const;

/** The Grafana dashboard grid is 24 columns wide. */
export const GRID_COLUMNS = 24;

export type PanelKind = 'timeseries' | 'stat' | 'table' | 'bargauge';

export interface Query {
  readonly expr: string;
  /** Grafana's legend template, e.g. `{{chain_id}}`. */
  readonly legend?: string;
  /** One value per series at the dashboard's end time, for stat and table panels. */
  readonly instant?: boolean;
}

/** Threshold steps: the first applies from -∞, each next one from its value upward. */
export type Steps = ReadonlyArray<readonly [number | null, string]>;

export interface PanelSpec {
  readonly title: string;
  readonly kind: PanelKind;
  readonly description: string;
  readonly queries: readonly Query[];
  readonly w: number;
  readonly h: number;
  /** Grafana unit id: s, dtdurations, percentunit, short, none, bytes … */
  readonly unit?: string;
  readonly steps?: Steps;
  /** Value → text (and colour) for 0/1 gauges. */
  readonly mappings?: Readonly<Record<string, readonly [string, string]>>;
  readonly min?: number;
  readonly max?: number;
}

/** A titled row of panels; panels flow left to right and wrap at 24 columns. */
export interface Section {
  readonly title: string;
  readonly panels: readonly PanelSpec[];
}

export interface VariableSpec {
  readonly name: string;
  readonly label: string;
  /** `label_values(<selector>, <label>)`: the selector is PromQL, checked like the panels'. */
  readonly metric: string;
  readonly labelName: string;
}

export interface DashboardSpec {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly variables: readonly VariableSpec[];
  readonly sections: readonly Section[];
}

export interface GridPos {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

export interface GrafanaTarget {
  readonly refId: string;
  readonly datasource: typeof DATASOURCE_REF;
  readonly expr: string;
  readonly legendFormat: string;
  readonly instant: boolean;
  readonly range: boolean;
  readonly format: 'time_series' | 'table';
}

export interface GrafanaPanel {
  readonly id: number;
  readonly type: PanelKind | 'row';
  readonly title: string;
  readonly gridPos: GridPos;
  readonly description?: string;
  readonly datasource?: typeof DATASOURCE_REF;
  readonly targets?: readonly GrafanaTarget[];
  readonly fieldConfig?: unknown;
  readonly options?: unknown;
  readonly transformations?: unknown[];
  readonly collapsed?: boolean;
  readonly panels?: readonly GrafanaPanel[];
}

export interface GrafanaVariable {
  readonly name: string;
  readonly label: string;
  readonly type: 'datasource' | 'query';
  readonly query: string;
  readonly [field: string]: unknown;
}

export interface GrafanaDashboard {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly schemaVersion: number;
  readonly templating: { readonly list: readonly GrafanaVariable[] };
  readonly panels: readonly GrafanaPanel[];
  readonly [field: string]: unknown;
}

const REF_IDS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

function target(q: Query, i: number, table: boolean): GrafanaTarget {
  const instant = q.instant ?? table;
  return {
    refId: REF_IDS[i]!,
    datasource: DATASOURCE_REF,
    expr: q.expr,
    legendFormat: q.legend ?? '__auto',
    instant,
    range: !instant,
    format: table ? 'table' : 'time_series',
  };
}

function fieldConfig(p: PanelSpec): unknown {
  const steps = (p.steps ?? [[null, 'green']]).map(([value, color]) => ({ value, color }));
  const mappings = p.mappings
    ? [
        {
          type: 'value',
          options: Object.fromEntries(
            Object.entries(p.mappings).map(([value, [text, color]], index) => [
              value,
              { text, color, index },
            ]),
          ),
        },
      ]
    : [];
  return {
    defaults: {
      unit: p.unit ?? 'short',
      ...(p.min !== undefined ? { min: p.min } : {}),
      ...(p.max !== undefined ? { max: p.max } : {}),
      thresholds: { mode: 'absolute', steps },
      mappings,
      color: { mode: p.steps || p.mappings ? 'thresholds' : 'palette-classic' },
    },
    overrides: [],
  };
}

function options(kind: PanelKind): unknown {
  switch (kind) {
    case 'timeseries':
      return {
        legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
        tooltip: { mode: 'multi', sort: 'desc' },
      };
    case 'stat':
      return {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'background',
        graphMode: 'none',
        justifyMode: 'auto',
        orientation: 'auto',
        textMode: 'auto',
      };
    case 'bargauge':
      return {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        displayMode: 'basic',
        orientation: 'horizontal',
        showUnfilled: true,
      };
    case 'table':
      return { showHeader: true, cellHeight: 'sm', footer: { show: false } };
  }
}

/** Places the sections' panels on the grid: a row header, then panels flowing and wrapping. */
export function layoutPanels(sections: readonly Section[]): GrafanaPanel[] {
  const out: GrafanaPanel[] = [];
  let id = 1;
  let y = 0;
  for (const section of sections) {
    out.push({
      id: id++,
      type: 'row',
      title: section.title,
      gridPos: { x: 0, y, w: GRID_COLUMNS, h: 1 },
      collapsed: false,
      panels: [],
    });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const p of section.panels) {
      if (p.w < 1 || p.w > GRID_COLUMNS || p.h < 1)
        throw new RangeError(`panel "${p.title}": width ${p.w}, height ${p.h} do not fit the grid`);
      if (x + p.w > GRID_COLUMNS) {
        y += rowHeight;
        x = 0;
        rowHeight = 0;
      }
      const table = p.kind === 'table';
      out.push({
        id: id++,
        type: p.kind,
        title: p.title,
        description: p.description,
        gridPos: { x, y, w: p.w, h: p.h },
        datasource: DATASOURCE_REF,
        targets: p.queries.map((q, i) => target(q, i, table)),
        fieldConfig: fieldConfig(p),
        options: options(p.kind),
        // A table of instant queries: one row per series, labels as columns, no time column.
        ...(table
          ? {
              transformations: [
                { id: 'labelsToFields', options: { mode: 'columns' } },
                { id: 'organize', options: { excludeByName: { Time: true, __name__: true } } },
              ],
            }
          : {}),
      });
      x += p.w;
      rowHeight = Math.max(rowHeight, p.h);
    }
    y += rowHeight;
  }
  return out;
}

function datasourceVariable(): GrafanaVariable {
  return {
    name: DATASOURCE_VARIABLE,
    label: 'Prometheus',
    type: 'datasource',
    query: 'prometheus',
    // Empty: Grafana picks the default Prometheus, which the provisioned one is.
    current: {},
    hide: 0,
    includeAll: false,
    multi: false,
    refresh: 1,
    regex: '',
    options: [],
  };
}

function queryVariable(v: VariableSpec): GrafanaVariable {
  const query = `label_values(${v.metric}, ${v.labelName})`;
  return {
    name: v.name,
    label: v.label,
    type: 'query',
    query,
    definition: query,
    datasource: DATASOURCE_REF,
    // Refresh on time range change, so a new chain or agent appears without a reload.
    refresh: 2,
    includeAll: true,
    multi: true,
    // `.*` rather than the list of values: a series that appears later still matches "All".
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    hide: 0,
    regex: '',
    sort: 1,
    options: [],
  };
}

export function buildDashboard(spec: DashboardSpec): GrafanaDashboard {
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: ['vigil'],
    schemaVersion: SCHEMA_VERSION,
    version: 1,
    editable: false,
    graphTooltip: 1,
    timezone: 'browser',
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timepicker: {},
    fiscalYearStartMonth: 0,
    liveNow: false,
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ],
    },
    // Every Vigil dashboard one click away from every other.
    links: [
      {
        type: 'dashboards',
        title: 'Vigil',
        tags: ['vigil'],
        asDropdown: true,
        includeVars: false,
        keepTime: true,
        targetBlank: false,
        icon: 'external link',
        tooltip: '',
        url: '',
      },
    ],
    templating: { list: [datasourceVariable(), ...spec.variables.map(queryVariable)] },
    panels: layoutPanels(spec.sections),
  };
}
