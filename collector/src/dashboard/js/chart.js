// A small line chart of one metric over the recent results, drawn as inline SVG, with a
// status band underneath (one cell per result) so failures show even without a value.

import { h, s, time, STATUS_WORDS } from './core.js';

const W = 640, H = 190, L = 48, R = 12, T = 12, B = 44;
const COLOURS = { ok: '#2da44e', warn: '#d4a72c', fail: '#cf222e', unknown: '#8c959f' };
const PREFERRED = ['rtt_avg_ms', 'loss_pct'];

/** The metric names present in `recent`, preferred ones first. */
export function metricNames(recent) {
  const names = new Set();
  for (const r of recent) for (const k of Object.keys(r.metrics || {})) names.add(k);
  return [...names].sort((a, b) => {
    const ia = PREFERRED.indexOf(a), ib = PREFERRED.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
}

/** The metric to show first: a preferred one the newest result has, else the first one. */
export function defaultMetric(recent, names) {
  const newest = (recent[0] && recent[0].metrics) || {};
  return names.find((n) => typeof newest[n] === 'number') || names[0];
}

/** Draws `metric` over `recent` (newest first, as the API sends it). */
export function chart(recent, metric) {
  const points = recent.slice().reverse().map((r) => ({
    t: Date.parse(r.ts), status: r.status, summary: r.summary,
    v: r.metrics && typeof r.metrics[metric] === 'number' ? r.metrics[metric] : null,
  }));
  if (!points.length) return h('p', { class: 'muted' }, 'No results stored yet.');
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  const span = Math.max(t1 - t0, 1);
  const values = points.filter((p) => p.v !== null).map((p) => p.v);
  const max = Math.max(1, ...values) * 1.1;
  const x = (t) => L + ((t - t0) / span) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', id: 'recent-chart',
    'aria-label': (metric || 'status') + ' over the last ' + points.length + ' results' });
  // Axes and grid.
  for (const frac of [0, 0.5, 1]) {
    const v = (max / 1.1) * frac;
    svg.append(s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: '#e6e9ed' }),
      s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, formatValue(v)));
  }
  svg.append(s('text', { x: L, y: H - 6 }, time(points[0].t)),
    s('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, time(points[points.length - 1].t)));
  // The line, broken where a result had no value.
  let path = '';
  let pen = false;
  for (const p of points) {
    if (p.v === null) { pen = false; continue; }
    path += (pen ? 'L' : 'M') + x(p.t).toFixed(1) + ' ' + y(p.v).toFixed(1);
    pen = true;
  }
  if (path) svg.append(s('path', { d: path, fill: 'none', stroke: '#0969da', 'stroke-width': 2 }));
  for (const p of points) {
    if (p.v !== null) {
      svg.append(s('circle', { cx: x(p.t), cy: y(p.v), r: 3, fill: COLOURS[p.status] || '#8c959f' },
        s('title', {}, time(p.t) + ': ' + formatValue(p.v) + ' ' + (metric || '') + ' (' + (STATUS_WORDS[p.status] || p.status) + ')')));
    }
  }
  // Status band: one cell per result, spanning half-way to its neighbours on the time axis.
  const bandY = H - B + 8;
  points.forEach((p, i) => {
    const from = i === 0 ? L : (x(points[i - 1].t) + x(p.t)) / 2;
    const to = i === points.length - 1 ? W - R : (x(p.t) + x(points[i + 1].t)) / 2;
    svg.append(s('rect', { x: from, y: bandY, width: Math.max(1, to - from - 1), height: 10, fill: COLOURS[p.status] || '#8c959f' },
      s('title', {}, time(p.t) + ': ' + (STATUS_WORDS[p.status] || p.status) + ' · ' + p.summary)));
  });
  return svg;
}

function formatValue(v) {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2).replace(/\.?0+$/, '') || '0';
}
