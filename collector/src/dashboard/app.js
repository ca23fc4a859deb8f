// Outpost dashboard: a hash router over four views, live updates from the server-sent event
// stream, and a one-second ticker for countdowns. Views fetch JSON from /api/v1 only.

import { banner, toast, left, escalationWhat, STATE_WORDS } from '/js/core.js';
import { mountFleet } from '/js/fleet.js';
import { mountEscalation } from '/js/escalation.js';
import { mountSite } from '/js/site.js';
import { mountReport } from '/js/report.js';

const root = document.getElementById('view');
let current = null;

function parse() {
  const parts = (location.hash.replace(/^#\/?/, '') || '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'escalations' && parts[1]) return ['escalation', parts[1]];
  if (parts[0] === 'sites' && parts[1]) return ['site', parts[1]];
  if (parts[0] === 'report') return ['report'];
  return ['fleet'];
}

// One refresh of a view at a time: a second request while one is on its way is folded
// into one more refresh after it, so an older answer never lands after a newer one.
const loading = new WeakMap();
async function load(view) {
  if (loading.has(view)) {
    loading.set(view, true);
    return;
  }
  loading.set(view, false);
  try {
    await view.refresh();
    if (view === current) banner('');
  } catch (e) {
    if (view === current) banner(e.message);
  } finally {
    const again = loading.get(view);
    loading.delete(view);
    if (again && view === current) load(view);
  }
}

// Someone typing in an action form (an ack note, a maintenance reason) must not lose focus
// or text to a live update: automatic refreshes wait until the field is left. Filters are
// not forms: the list goes on updating under them.
let deferred = false;
function typing() {
  const el = document.activeElement;
  return !!el && root.contains(el) && !!el.closest('form')
    && ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName);
}
function autoLoad() {
  if (!current) return;
  if (typing()) {
    deferred = true;
    return;
  }
  load(current);
}
root.addEventListener('focusout', () => {
  setTimeout(() => {
    if (deferred && !typing()) {
      deferred = false;
      autoLoad();
    }
  }, 0);
});

function route() {
  const [name, arg] = parse();
  document.title = 'Outpost · central IT';
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === name);
  }
  const mount = { fleet: mountFleet, escalation: mountEscalation, site: mountSite, report: mountReport }[name];
  // Each view renders into a container of its own: a refresh still in flight for the view the
  // user just left then fills a detached element instead of overwriting the new view.
  const container = document.createElement('div');
  root.replaceChildren(container);
  current = mount(container, arg);
  current.name = name;
  deferred = false;
  window.scrollTo(0, 0);
  load(current);
}

// Live updates: one refresh per burst of events, never one request per row.
let pending = null;
function onEvent(data) {
  window.outpostEvents = (window.outpostEvents || 0) + 1; // seen by the browser tests
  if (data.event && data.escalation) {
    const e = data.escalation;
    toast('#' + e.id + ' ' + data.site + ' · ' + escalationWhat({ ...e, agent: data.agent }, data.check_title) + ': ' + (STATE_WORDS[e.state] || e.state));
  }
  if (!current || !current.wants(data)) return;
  if (pending) return;
  pending = setTimeout(() => { pending = null; autoLoad(); }, 250);
}

function setLive(on, text) {
  const el = document.getElementById('live');
  el.className = 'live ' + (on ? 'on' : 'off');
  el.textContent = text;
}

function connect() {
  const stream = new EventSource('/api/v1/stream');
  stream.addEventListener('open', () => setLive(true, 'live'));
  stream.addEventListener('escalation', (m) => {
    try { onEvent(JSON.parse(m.data)); } catch (_) { /* a malformed event changes nothing */ }
  });
  stream.addEventListener('error', () => {
    setLive(false, 'reconnecting…');
    if (stream.readyState === EventSource.CLOSED) {
      setTimeout(connect, 5000);
    }
  });
  window.outpostStream = stream;
}

// Countdowns tick every second; everything else is refreshed every 30 s (agent presence
// changes do not come through the escalation stream).
setInterval(() => {
  for (const el of document.querySelectorAll('[data-until]')) el.textContent = left(el.dataset.until);
}, 1000);
setInterval(() => { if (current && current.name !== 'report' && !document.hidden) autoLoad(); }, 30000);

window.addEventListener('hashchange', route);
route();
connect();
window.outpostReady = true;
