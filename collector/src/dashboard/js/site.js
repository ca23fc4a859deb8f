// One site: its agents with host facts, every check with a 24-hour status strip, its
// escalations, and a maintenance window form.

import {
  h, api, statusBadge, stateBadge, stateDetail, escalationWhat, time, ago, bytes, maintenanceForm,
  toast, STATUS_WORDS,
} from './core.js';

const MARK = { ok: '', warn: '!', fail: '×', unknown: '?' };

function strip(cells) {
  const now = new Date();
  return h('span', { class: 'strip', role: 'img',
    'aria-label': 'Last 24 hours: ' + cells.map((c) => (c ? STATUS_WORDS[c] : 'no data')).join(', ') },
  cells.map((c, i) => {
    const hour = new Date(now.getTime() - (23 - i) * 3600e3);
    const label = String(hour.getHours()).padStart(2, '0') + ':00 · ' + (c ? STATUS_WORDS[c] : 'no data');
    return h('span', { class: 'c-' + (c || 'none'), title: label }, c ? MARK[c] : '');
  }));
}

function agentRows(site, agents, reload) {
  return agents.map((a) => {
    const b = a.birth;
    const host = b ? b.host : null;
    const planned = a.planned_work_until
      ? h('div', {}, 'Planned work until ' + time(a.planned_work_until), ' ',
        h('button', { class: 'secondary', type: 'button', onclick: async () => {
          try {
            await api('/api/v1/sites/' + site + '/agents/' + a.agent + '/planned-work/end', 'POST', {});
            toast('Planned work on ' + a.agent + ' ended.');
            await reload();
          } catch (e) { toast(e.message); }
        } }, 'End planned work'))
      : h('span', { class: 'muted' }, 'none');
    return [
      h('strong', {}, a.agent),
      a.online ? h('span', { class: 'badge s-ok' }, 'Online') : h('span', { class: 'badge s-fail' }, 'Offline'),
      ago(a.last_seen),
      b ? b.version : '—',
      host ? [host.hostname, h('div', { class: 'muted small' }, [host.os, host.kernel, host.arch].filter(Boolean).join(' · '))] : '—',
      host ? (host.cpus || '?') + ' CPUs · ' + bytes(host.memory_bytes) : '—',
      host && host.timezone ? host.timezone : '—',
      b ? time(b.boot_time) : '—',
      planned,
    ];
  });
}

function rows(head, data, id) {
  return h('table', { id }, h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))),
    h('tbody', {}, data.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

/** Mounts the view of `site` into `root`. */
export function mountSite(root, site) {
  root.replaceChildren(h('p', { class: 'muted' }, 'Loading ' + site + '…'));
  const side = h('section', { class: 'panel side' }, h('h2', {}, 'Maintenance'), maintenanceForm(site, null, null));
  const refresh = async () => {
    const d = await api('/api/v1/sites/' + encodeURIComponent(site));
    const checks = d.checks.map((c) => [
      [h('strong', {}, c.title), h('div', { class: 'muted small' }, c.agent + ' / ' + c.check)],
      c.kind,
      [statusBadge(c.status), c.failing ? h('div', { class: 'small offline' }, 'past threshold') : null],
      c.summary || '—',
      c.ts ? ago(c.ts) : 'never',
      strip(c.strip),
    ]);
    const escs = d.escalations.map((e) => [
      h('a', { href: '#/escalations/' + e.id }, '#' + e.id),
      escalationWhat(e, e.check_title) + ' (' + e.agent + ')',
      [stateBadge(e.state), ' ', h('span', { class: 'muted' }, stateDetail(e))],
      time(e.opened_at),
    ]);
    root.replaceChildren(
      h('p', { class: 'muted' }, h('a', { href: '#/' }, 'Fleet'), ' › ' + d.site),
      h('h1', {}, d.site),
      h('h2', {}, 'Checks'),
      rows(['Check', 'Kind', 'Status', 'Summary', 'Last result', 'Last 24 hours (oldest left)'], checks, 'site-checks'),
      h('p', { class: 'legend' }, 'Strip: one cell per hour — green OK, amber ! warning, red × failing, grey ? unknown, white no data.'),
      h('div', { class: 'grid2' },
        h('div', {},
          h('h2', {}, 'Escalations'),
          escs.length ? rows(['#', 'What', 'State', 'Opened'], escs, 'site-escalations') : h('p', { class: 'muted' }, 'No open or recent escalations.')),
        side),
      h('h2', {}, 'Agents'),
      rows(['Agent', 'Presence', 'Last seen', 'Version', 'Host', 'Size', 'Time zone', 'Booted', 'Planned work'],
        agentRows(d.site, d.agents, refresh), 'site-agents'));
    if (root.isConnected) document.title = 'Outpost · ' + d.site;
  };
  return { refresh, wants: (ev) => ev.site === site };
}
