// One escalation with everything IT needs: what failed and since when, recent results as a
// chart, the runbook, the site team's notes, notification history, and the actions.

import {
  h, api, stateBadge, stateDetail, escalationWhat, fixedBy, time, ago, duration, countdown,
  rememberedName, rememberName, maintenanceForm, toast, STATUS_WORDS,
} from './core.js';
import { chart, metricNames, defaultMetric } from './chart.js';

function facts(e) {
  const rows = [
    ['State', [stateBadge(e.state), ' ', stateDetail(e)]],
    ['What', e.summary || '—'],
    ['Site / agent', [h('a', { href: '#/sites/' + e.site }, e.site), ' / ' + e.agent]],
    ['Failing since', time(e.opened_at) + ' (' + ago(e.opened_at) + ')'],
  ];
  if (e.local_until && Date.parse(e.local_until) - Date.parse(e.opened_at) >= 1000) rows.push(['Site team window', [time(e.local_until), e.state === 'local' ? [' · ', countdown(e.local_until), ' left'] : '']]);
  if (e.escalated_at) rows.push(['IT called', time(e.escalated_at)]);
  if (e.acknowledged_at) rows.push(['Acknowledged', time(e.acknowledged_at) + ' by ' + (e.acknowledged_by || '?')]);
  if (e.note) rows.push(['IT note', e.note]);
  if (e.resolved_at) rows.push(['Resolved', time(e.resolved_at) + ', ' + fixedBy(e) + ' after ' + duration((Date.parse(e.resolved_at) - Date.parse(e.opened_at)) / 1000) + (e.resolved_by ? '; closed by ' + e.resolved_by : '')]);
  if (e.held_because) rows.push(['Waiting', e.held_because]);
  if (e.historical) rows.push(['History', 'Learned from replayed results after an outage: recorded, never paged.']);
  rows.push(['Dedup key', h('code', {}, e.dedup_key)]);
  return h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function table(head, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('table', {}, h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

/** The chart of recent results; `chosen` is the metric picked before (kept across refreshes). */
function chartPanel(recent, chosen, onPick) {
  const names = metricNames(recent);
  const first = names.includes(chosen) ? chosen : defaultMetric(recent, names);
  const holder = h('div', {}, chart(recent, first));
  const pick = names.length > 1
    ? h('select', { id: 'metric', 'aria-label': 'Metric',
      onchange: (ev) => { onPick(ev.target.value); holder.replaceChildren(chart(recent, ev.target.value)); } },
    names.map((n) => h('option', { value: n, selected: n === first }, n)))
    : null;
  return h('section', { class: 'panel' },
    h('h2', {}, 'Recent results', ' ', h('span', { class: 'muted small' }, first ? '(' + first + ')' : '')),
    pick, holder,
    h('p', { class: 'legend' }, 'Band under the chart: one cell per result — green OK, amber warning, red failing, grey unknown. Newest on the right.'));
}

function actions(e, reload) {
  const msg = h('div', { class: 'msg', id: 'action-msg', 'aria-live': 'polite' });
  const say = (ok, text) => { msg.className = 'msg ' + (ok ? 'ok' : 'err'); msg.textContent = text; };
  const run = async (button, path, body, done) => {
    button.disabled = true;
    try {
      const out = await api(path, 'POST', body);
      toast(done(out));
      await reload();
    } catch (err) {
      say(false, err.message);
    } finally {
      button.disabled = false;
    }
  };
  if (e.state === 'resolved') return h('section', { class: 'panel' }, h('h2', {}, 'Actions'), h('p', { class: 'muted' }, 'Resolved: nothing to do.'));
  const by = h('input', { id: 'ack-by', name: 'by', placeholder: 'Your name', value: rememberedName(), required: true });
  const note = h('textarea', { id: 'ack-note', name: 'note', 'aria-label': 'Note for the site team', placeholder: 'Note for the site team (shown on their page)' });
  const ackButton = h('button', { type: 'submit', id: 'ack-submit' }, 'Acknowledge');
  const ack = h('form', { class: 'action', id: 'ack-form' },
    h('label', { for: 'ack-by' }, e.state === 'acknowledged' ? 'Acknowledge again (update the note)' : 'Acknowledge: IT is on it'),
    by, note, h('div', {}, ackButton));
  ack.addEventListener('submit', (ev) => {
    ev.preventDefault();
    rememberName(by.value);
    const body = { by: by.value };
    if (note.value.trim()) body.note = note.value;
    run(ackButton, '/api/v1/escalations/' + e.id + '/ack', body, (out) => 'Acknowledged by ' + out.acknowledged_by + '.');
  });
  const resolveButton = h('button', { type: 'submit', class: 'danger', id: 'resolve-submit' }, 'Resolve now');
  const resolve = h('form', { class: 'action', id: 'resolve-form' },
    h('label', {}, 'Close it (it reopens if the check keeps failing)'), h('div', {}, resolveButton));
  resolve.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const body = by.value.trim() ? { by: by.value } : {};
    run(resolveButton, '/api/v1/escalations/' + e.id + '/resolve', body, (out) => 'Resolved' + (out.resolved_by ? ' by ' + out.resolved_by : '') + '.');
  });
  const check = e.kind === 'check' ? e.check : null;
  return h('section', { class: 'panel' }, h('h2', {}, 'Actions'), msg, ack, resolve, maintenanceForm(e.site, check, reload));
}

/** Mounts the view of escalation `id` into `root`. */
export function mountEscalation(root, id) {
  root.replaceChildren(h('p', { class: 'muted' }, 'Loading escalation ' + id + '…'));
  const info = h('div', {});
  const side = h('div', {});
  let shownState = null;
  let metric = null;
  const refresh = async () => {
    const d = await api('/api/v1/escalations/' + encodeURIComponent(id));
    const what = escalationWhat(d, d.check_title);
    const notes = d.notes.map((n) => [time(n.ts), n.by, n.action.replace(/_/g, ' ') + (n.until ? ' until ' + time(n.until) : ''), n.text]);
    const sent = d.notifications.map((n) => [time(n.created_at), n.notifier, n.event,
      n.sent_at ? 'sent ' + time(n.sent_at) : 'waiting', String(n.attempts), n.last_error || '']);
    const results = d.recent.slice(0, 10).map((r) => [time(r.ts), STATUS_WORDS[r.status] || r.status, r.summary]);
    info.replaceChildren(
      h('section', { class: 'panel' }, facts(d)),
      chartPanel(d.recent, metric, (m) => { metric = m; }),
      h('section', { class: 'panel' }, h('h2', {}, 'Runbook for the site team'),
        d.runbook.length ? h('ol', { class: 'runbook' }, d.runbook.map((step) => h('li', {}, step))) : h('p', { class: 'muted' }, 'No runbook for this check.')),
      h('section', { class: 'panel', id: 'notes' }, h('h2', {}, "Site team's notes"),
        table(['When', 'Who', 'Action', 'Note'], notes, 'No notes from the site team.')),
      h('section', { class: 'panel' }, h('h2', {}, 'Latest results'),
        table(['When', 'Status', 'Summary'], results, 'No results.')),
      h('section', { class: 'panel', id: 'notifications' }, h('h2', {}, 'Notifications'),
        table(['Queued', 'Notifier', 'Event', 'Delivery', 'Tries', 'Last error'], sent, 'No notifications (no notifier configured, or IT was not called yet).')));
    // The forms are rebuilt only when the state changes, so a live update never wipes what
    // someone is typing.
    if (shownState !== d.state) {
      side.replaceChildren(actions(d, refresh));
      shownState = d.state;
    }
    root.replaceChildren(
      h('p', { class: 'muted' }, h('a', { href: '#/' }, 'Fleet'), ' › ', h('a', { href: '#/sites/' + d.site }, d.site), ' › escalation #' + d.id),
      h('h1', { id: 'escalation-title' }, what, ' ', stateBadge(d.state)),
      h('p', { class: 'summary' }, d.summary),
      h('div', { class: 'grid2' }, info, side));
    if (root.isConnected) document.title = 'Outpost · #' + d.id + ' ' + what;
  };
  return { refresh, wants: (ev) => ev.escalation && String(ev.escalation.id) === String(id) };
}
