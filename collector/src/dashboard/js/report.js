// The IT manager's report: fleet summary on top, then sites ranked by how much attention they
// need, with a CSV download of the same figures.

import { h, api, pct, duration, time, banner } from './core.js';

const PERIODS = [['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'], ['90d', 'Last 90 days']];
let period = '7d';

function card(label, value, id) {
  return h('div', { class: 'card', id }, h('div', { class: 'v' }, value), h('div', { class: 'k' }, label));
}

function siteRow(s, rank) {
  const checks = h('details', { class: 'small' }, h('summary', {}, s.checks.length + (s.checks.length === 1 ? ' check' : ' checks')),
    h('ul', {}, s.checks.map((c) =>
      h('li', {}, c.agent + ' / ' + c.check + ': ' + pct(c.availability) + ' of ' + c.results + ' results'))));
  return h('tr', { 'data-site': s.site },
    h('td', { class: 'num' }, rank),
    h('td', { class: 'site' }, h('a', { href: '#/sites/' + s.site }, s.site), checks),
    h('td', { class: 'num' }, s.attention.toFixed(1)),
    h('td', { class: 'num' }, pct(s.link_availability)),
    h('td', { class: 'num incidents' }, s.incidents),
    h('td', { class: 'num' }, s.fixed_by_site_team),
    h('td', { class: 'num' }, s.escalated_to_it),
    h('td', { class: 'num' }, duration(s.repair_median_s)),
    h('td', { class: 'num' }, duration(s.repair_p90_s)),
    h('td', { class: 'num' }, pct(s.checklists_on_time)),
    h('td', { class: 'num' }, pct(s.backups_on_time)));
}

/** Mounts the report view into `root`. */
export function mountReport(root) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading report…'));
  const csv = h('a', { id: 'csv', href: '/api/v1/report.csv?since=' + period, download: 'outpost-report-' + period + '.csv' }, 'Download CSV');
  const select = h('select', { id: 'report-since', 'aria-label': 'Period',
    onchange: (ev) => {
      period = ev.target.value;
      csv.setAttribute('href', '/api/v1/report.csv?since=' + period);
      csv.setAttribute('download', 'outpost-report-' + period + '.csv');
      refresh().then(() => banner(''), (e) => banner(e.message));
    } }, PERIODS.map(([v, l]) => h('option', { value: v, selected: v === period }, l)));
  root.replaceChildren(h('h1', {}, 'Site report'),
    h('p', { class: 'muted' }, 'How often things broke, how often the site team fixed them alone, and how long repairs took.'),
    h('div', { class: 'bar' }, select, csv), body);
  let asked = 0;
  const refresh = async () => {
    // Quick changes of the period: only the answer to the last one is shown.
    const mine = ++asked;
    const r = await api('/api/v1/report?since=' + encodeURIComponent(period));
    if (mine !== asked) return;
    const f = r.fleet;
    const ranked = r.sites.slice().sort((a, b) => b.attention - a.attention || a.site.localeCompare(b.site));
    body.replaceChildren(
      h('p', { class: 'muted small' }, 'From ' + time(r.since) + ' to ' + time(r.until) + ' (your local time)'),
      h('div', { class: 'cards', id: 'fleet-summary' },
        card('Sites', f.sites, 'card-sites'),
        card('Incidents', f.incidents, 'card-incidents'),
        card('Fixed by site teams', f.fixed_by_site_team + (f.site_team_share === null ? '' : ' (' + pct(f.site_team_share) + ')'), 'card-site-team'),
        card('Escalated to IT', f.escalated_to_it, 'card-it'),
        card('Median repair', duration(f.repair_median_s), 'card-median'),
        card('90 % repaired within', duration(f.repair_p90_s), 'card-p90')),
      h('h2', {}, 'Sites, most attention first'),
      h('table', { id: 'report-table' },
        h('thead', {}, h('tr', {}, ['#', 'Site', 'Attention', 'Link up', 'Incidents', 'Fixed by site team',
          'Escalated to IT', 'Median repair', '90 % repair', 'Checklists on time', 'Backups on time']
          .map((c, i) => h('th', { class: i === 1 ? null : 'num' }, c)))),
        h('tbody', {}, ranked.length ? ranked.map((s, i) => siteRow(s, i + 1))
          : h('tr', {}, h('td', { colspan: 11, class: 'muted' }, 'No site has reported in this period.')))));
  };
  // The report is computed over days: live changes do not move it; the period select reloads.
  return { refresh, wants: () => false };
}
