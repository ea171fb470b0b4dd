/** The strict Prometheus text reader of `vigil status`, on prom-client's own output. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge, Registry } from 'prom-client';
import { MetricsFormatError, parsePrometheusText } from '../../src/status/prometheus-text.js';

test('reads back what prom-client writes: names, labels with escapes, values, histograms', async () => {
  const registry = new Registry();
  registry.setDefaultLabels({ agent: 'a"1' });
  const g = new Gauge({
    name: 'x_gauge',
    help: 'a help text with "quotes" and \\ backslash',
    labelNames: ['chain_id', 'key'],
    registers: [registry],
  });
  g.set({ chain_id: 'cosmos-1', key: 'back\\slash\nnewline' }, 1_750_000_002.5);
  g.set({ chain_id: 'c2', key: 'k' }, -Infinity);
  const c = new Counter({ name: 'x_total', help: 'h', labelNames: ['r'], registers: [registry] });
  c.inc({ r: '' }, 3);
  const samples = parsePrometheusText(await registry.metrics(), 'test');
  assert.deepEqual(samples, [
    {
      name: 'x_gauge',
      labels: { chain_id: 'cosmos-1', key: 'back\\slash\nnewline', agent: 'a"1' },
      value: 1_750_000_002.5,
    },
    { name: 'x_gauge', labels: { chain_id: 'c2', key: 'k', agent: 'a"1' }, value: -Infinity },
    { name: 'x_total', labels: { r: '', agent: 'a"1' }, value: 3 },
  ]);
});

test('a NaN gauge as prom-client writes it (`Nan`) is read, as Prometheus reads it', async () => {
  const registry = new Registry();
  new Gauge({ name: 'lag', help: 'h', registers: [registry] }).set(NaN);
  const text = await registry.metrics();
  assert.match(text, /^lag Nan$/m);
  const [sample] = parsePrometheusText(text, 'test');
  assert.ok(sample && sample.name === 'lag' && Number.isNaN(sample.value));
  assert.ok(Number.isNaN(parsePrometheusText('x nan', 't')[0]!.value));
  assert.equal(parsePrometheusText('x -INF', 't')[0]!.value, -Infinity);
});

test('samples without labels, with a timestamp, NaN and +Inf; comments and blank lines skipped', () => {
  const text = [
    '# HELP up whatever { " \\',
    '# TYPE up gauge',
    '',
    'up 1',
    'a_bucket{le="+Inf"} +Inf 1700000000000',
    'b{} NaN',
    'c{x="1",} 2e3\r',
  ].join('\n');
  const got = parsePrometheusText(text, 'test');
  assert.deepEqual(
    got.map((s) => [s.name, s.labels, s.value]),
    [
      ['up', {}, 1],
      ['a_bucket', { le: '+Inf' }, Infinity],
      ['b', {}, NaN],
      ['c', { x: '1' }, 2000],
    ],
  );
});

test('a malformed line is an error naming its line and why, never skipped', () => {
  const cases: Array<[string, RegExp]> = [
    ['9bad 1', /no metric name/],
    ['m{a=1} 2', /label a has no quoted value/],
    ['m{a="1} 2', /unterminated value/],
    ['m{a="\\t"} 2', /bad escape/],
    ['m{a="1",a="2"} 2', /label a given twice/],
    ['m{a="1" b="2"} 2', /expected , or }/],
    ['m 1 2 3', /text after the timestamp/],
    ['m one', /bad value "one"/],
    ['m 1 soon', /bad timestamp/],
    ['m{a="1"}2', /no space before the value/],
    ['m', /no space before the value/],
  ];
  for (const [line, why] of cases) {
    assert.throws(
      () => parsePrometheusText(`ok 1\n${line}\n`, 'http://h:1/metrics'),
      (err: unknown) => {
        assert.ok(err instanceof MetricsFormatError, String(err));
        assert.equal(err.code, 'METRICS_FORMAT');
        assert.match(err.message, /^http:\/\/h:1\/metrics: line 2 /);
        assert.match(err.message, why, line);
        return true;
      },
      line,
    );
  }
});
