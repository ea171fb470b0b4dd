/**
 * The dashboard page: one self-contained HTML document (inline CSS and JS, no CDN, no
 * framework) that polls `v1/overview` next to it every second and redraws. Every value from
 * the overview reaches the page through `textContent` or an attribute set with
 * `setAttribute` on an element it created; nothing is parsed as HTML. The Content-Security-
 * Policy allows exactly this script and this style (by their SHA-256), and connections only
 * to its own origin.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --mute: #6e7781; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; padding: 16px 24px; }
header { display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 15px; margin: 20px 0 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid rgba(127,127,127,.25); vertical-align: top; }
th { font-weight: 600; color: var(--mute); font-size: 12px; text-transform: uppercase; }
td.num { font-variant-numeric: tabular-nums; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; }
.mute { color: var(--mute); }
#state.stale { color: var(--bad); }
.empty { color: var(--mute); font-style: italic; }
`;

const SCRIPT = `
'use strict';
const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function ago(s) {
  if (s === null || s === undefined) return '';
  if (s < 120) return s + ' s ago';
  if (s < 7200) return Math.floor(s / 60) + ' min ago';
  return Math.floor(s / 3600) + ' h ago';
}
function position(p) {
  return Object.entries(p || {}).map(([k, v]) => (k === 'step' || k === 'stage' ? v : k + ' ' + v)).join(' ');
}
/* rows: arrays of cells; a cell is a value or { text, cls }. */
function fill(id, headers, rows, emptyText) {
  const box = $(id);
  const table = el('table');
  const head = el('tr');
  for (const h of headers) head.appendChild(el('th', h));
  table.appendChild(el('thead')).appendChild(head);
  const body = table.appendChild(el('tbody'));
  for (const row of rows) {
    const tr = el('tr');
    for (const cell of row) {
      const c = cell !== null && typeof cell === 'object' ? cell : { text: cell };
      tr.appendChild(el('td', c.text, c.cls));
    }
    body.appendChild(tr);
  }
  box.replaceChildren(rows.length ? table : el('p', emptyText || 'none', 'empty'));
}
function render(o) {
  $('source').textContent = o.source === 'fleet' ? 'fleet of ' + o.agents.length + ' agent(s)' : 'agent ' + (o.agents[0] ? o.agents[0].name : '?');
  document.title = 'Vigil — ' + $('source').textContent;
  const overall = $('overall');
  overall.textContent = o.ok ? 'all ready' : 'attention';
  overall.className = o.ok ? 'ok' : 'bad';
  fill('agents', ['agent', 'id', 'health', 'ready', 'store', 'store id', 'endpoint', 'problems'], o.agents.map((a) => [
    a.name,
    a.agentId || '-',
    !a.reachable ? { text: 'unreachable', cls: 'bad' } : a.healthy ? { text: 'ok', cls: 'ok' } : { text: 'failing', cls: 'bad' },
    !a.reachable ? '-' : a.ready ? { text: 'ready', cls: 'ok' } : { text: 'NOT READY', cls: 'bad' },
    a.store ? (a.store.engine || '?') + (a.store.up === false ? ' (down)' : '') : '-',
    a.store && a.store.id ? a.store.id : '-',
    a.endpoint,
    [a.error].concat((a.conditions || []).filter((c) => !c.ready).map((c) => c.name + ': ' + (c.reason || '')), a.problems || []).filter(Boolean).join('; '),
  ]), 'no agent');
  const roleRows = [];
  for (const r of o.roles) {
    const n = r.holders.length;
    roleRows.push([r.role, { text: n === 0 ? 'no holder' : r.holders.join(', '), cls: n === 1 ? 'ok' : 'bad' }, r.candidates.join(', ')]);
  }
  fill('roles', ['role', 'held by', 'candidates'], roleRows, 'no exclusive role');
  const wm = [];
  for (const a of o.agents) {
    for (const w of a.watermarks || []) wm.push([a.name, w.chainId, w.key, w.family, position(w.position), w.writer || '-', w.updatedAt || '-']);
    if (a.watermarksError) wm.push([a.name, { text: 'cannot read the store: ' + a.watermarksError, cls: 'bad' }, '', '', '', '', '']);
  }
  fill('watermarks', ['agent', 'chain', 'key', 'family', 'watermark', 'written by', 'at'], wm, 'no watermark yet');
  const sig = [];
  for (const a of o.agents)
    for (const s of a.signatures || [])
      sig.push([a.name, s.chainId, s.key, s.family, s.at === null ? { text: 'none since start', cls: 'mute' } : position(s.position), s.at === null ? '-' : ago(s.secondsAgo)]);
  fill('signatures', ['agent', 'chain', 'key', 'family', 'last signed', 'when'], sig, 'no key');
  const rec = [];
  for (const a of o.agents)
    for (const r of a.recentRefusals || []) rec.push([r.at, a.name, r.chainId, r.key, r.family, { text: r.reason, cls: 'warn' }, r.message]);
  rec.sort((x, y) => (x[0] < y[0] ? 1 : x[0] > y[0] ? -1 : 0));
  fill('refusals', ['at', 'agent', 'chain', 'key', 'family', 'reason', 'message'], rec, 'no refusal');
  const counts = [];
  for (const a of o.agents) for (const r of a.refusals || []) counts.push([a.name, r.family, r.reason, { text: r.count, cls: 'num' }]);
  fill('refusal-counts', ['agent', 'family', 'reason', 'since start'], counts, 'none');
  const links = [];
  for (const a of o.agents) for (const l of a.links || []) links.push([a.name, l.chainId, l.node, l.up ? { text: 'up', cls: 'ok' } : { text: 'DOWN', cls: 'bad' }]);
  fill('links', ['agent', 'chain', 'node', 'link'], links, 'no privval link');
  const alertsBox = $('alerts-section');
  if (!o.alerts) { alertsBox.hidden = true; } else {
    alertsBox.hidden = false;
    $('alerts-source').textContent = o.alerts.source;
    if (o.alerts.error) fill('alerts', ['error'], [[{ text: o.alerts.error, cls: 'bad' }]]);
    else fill('alerts', ['alert', 'severity', 'since', 'summary'], o.alerts.firing.map((f) => [{ text: f.name, cls: 'bad' }, f.severity || '-', f.activeAt || '-', f.summary || '']), 'none firing' + (o.alerts.pending ? ' (' + o.alerts.pending + ' pending)' : ''));
  }
  $('updated').textContent = 'updated ' + o.at;
}
let timer;
async function poll() {
  const state = $('state');
  try {
    const res = await fetch(new URL('v1/overview', location.href), { cache: 'no-store', signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error('overview answered ' + res.status);
    render(await res.json());
    state.textContent = 'live';
    state.className = '';
  } catch (err) {
    state.textContent = 'not updating: ' + (err && err.message ? err.message : String(err));
    state.className = 'stale';
  } finally {
    timer = setTimeout(poll, POLL_MS);
  }
}
poll();
`;

const BODY = `<header><h1>Vigil</h1><span id="source">…</span><span id="overall"></span>
<span id="updated" class="mute"></span><span id="state" class="mute">connecting…</span></header>
<h2>Agents</h2><div id="agents" data-section="agents"></div>
<h2>Role holders</h2><div id="roles" data-section="roles"></div>
<h2>Watermarks in the store</h2><div id="watermarks" data-section="watermarks"></div>
<h2>Last signatures</h2><div id="signatures" data-section="signatures"></div>
<h2>Recent refusals</h2><div id="refusals" data-section="refusals"></div>
<h2>Refusals since each agent started</h2><div id="refusal-counts" data-section="refusal-counts"></div>
<h2>Privval links</h2><div id="links" data-section="links"></div>
<section id="alerts-section" hidden><h2>Alerts firing (<span id="alerts-source"></span>)</h2>
<div id="alerts" data-section="alerts"></div></section>`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body>${BODY}<script>${SCRIPT}</script></body></html>
`;

/** Only this page's own script and style run; it may fetch from its own origin alone. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers of the page's answer. */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};
