// The fleet view: every site as a row, worst first, with its open escalations in words.
// The controls are built once; each update rebuilds only the table body, in one go.

import { h, api, statusBadge, stateBadge, stateDetail, escalationWhat } from './core.js';

const FILTERS = [
  ['all', 'All sites'],
  ['attention', 'Needs attention'],
  ['escalated', 'Escalated to IT'],
  ['local', 'In the site team window'],
  ['acknowledged', 'Acknowledged'],
  ['failing', 'Failing, not yet escalated'],
  ['offline', 'Agent offline'],
  ['ok', 'All OK'],
];

const filter = { text: '', state: 'all' };

function matches(site) {
  if (filter.text && !site.site.includes(filter.text)) return false;
  const states = site.escalations.map((e) => e.state);
  switch (filter.state) {
    case 'all': return true;
    case 'attention': return site.worst !== 'ok' || site.escalations.length > 0 || site.agents_online < site.agents_total;
    case 'offline': return site.agents_online < site.agents_total;
    case 'ok': return site.worst === 'ok' && site.escalations.length === 0 && site.agents_online === site.agents_total;
    default: return states.includes(filter.state);
  }
}

function agentsCell(site) {
  const offline = site.agents.filter((a) => !a.online).map((a) => a.agent);
  return h('td', {},
    site.agents_online + ' of ' + site.agents_total + ' online',
    offline.length ? h('div', { class: 'offline' }, 'Offline: ' + offline.join(', ')) : null);
}

function escalationsCell(site) {
  if (!site.escalations.length) return h('td', { class: 'muted' }, 'none');
  return h('td', {}, h('ul', { class: 'escs' }, site.escalations.map((e) =>
    h('li', { 'data-escalation': e.id },
      h('a', { href: '#/escalations/' + e.id }, escalationWhat(e, e.check_title) + ' (' + e.agent + ')'), ' ',
      stateBadge(e.state), ' ', h('span', { class: 'muted' }, stateDetail(e)),
      e.held_because ? h('div', { class: 'muted small' }, e.held_because) : null))));
}

function row(site) {
  return h('tr', { class: 'row-' + site.worst, 'data-site': site.site },
    h('td', {}, statusBadge(site.worst)),
    h('td', {}, h('a', { href: '#/sites/' + site.site }, site.site)),
    agentsCell(site),
    escalationsCell(site),
    h('td', { class: 'num' }, site.problems));
}

function summary(sites) {
  const count = (st) => sites.reduce((n, s) => n + s.escalations.filter((e) => e.state === st).length, 0);
  const offline = sites.reduce((n, s) => n + (s.agents_total - s.agents_online), 0);
  return sites.length + ' sites · ' + count('escalated') + ' escalated to IT · ' + count('local') +
    ' in site team windows · ' + count('acknowledged') + ' acknowledged · ' + offline + ' agents offline';
}

/** Mounts the fleet view into `root`; returns its refresh function. */
export function mountFleet(root) {
  let sites = [];
  const tbody = h('tbody', {});
  const shown = h('span', { class: 'muted', id: 'fleet-count' });
  const head = h('p', { class: 'muted', id: 'fleet-summary' }, 'Loading…');
  const render = () => {
    const visible = sites.filter(matches);
    tbody.replaceChildren(...visible.map(row));
    if (!visible.length) {
      tbody.append(h('tr', {}, h('td', { colspan: 5, class: 'muted' },
        sites.length ? 'No site matches the filter.' : 'No site has reported yet.')));
    }
    shown.textContent = 'Showing ' + visible.length + ' of ' + sites.length;
    head.textContent = summary(sites);
  };
  let debounce = null;
  const text = h('input', { id: 'filter-site', type: 'search', placeholder: 'Filter by site name', value: filter.text,
    'aria-label': 'Filter by site name',
    oninput: (ev) => {
      filter.text = ev.target.value.trim().toLowerCase();
      clearTimeout(debounce);
      debounce = setTimeout(render, 80);
    } });
  const state = h('select', { id: 'filter-state', 'aria-label': 'Filter by state',
    onchange: (ev) => { filter.state = ev.target.value; render(); } },
  FILTERS.map(([v, label]) => h('option', { value: v, selected: v === filter.state }, label)));
  root.replaceChildren(
    h('h1', {}, 'Fleet'), head,
    h('div', { class: 'bar' }, text, state, shown),
    h('table', { id: 'fleet' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Status'), h('th', {}, 'Site'), h('th', {}, 'Agents'),
        h('th', {}, 'Open escalations'), h('th', { class: 'num' }, 'Problems'))),
      tbody));
  const refresh = async () => {
    sites = await api('/api/v1/sites');
    const started = performance.now();
    render();
    window.outpostRenderMs = performance.now() - started;
  };
  return { refresh, wants: () => true };
}
