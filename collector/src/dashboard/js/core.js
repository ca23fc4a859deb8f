// Shared helpers: DOM building (text only, never HTML strings), API calls, formatting.

/** Builds an element; attributes starting with "on" become listeners; children may be nested arrays. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** Builds an SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Thrown for API errors; carries the API's own message. */
export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** Calls the JSON API with the session cookie; a 401 sends the user to the login form. */
export async function api(path, method = 'GET', body = undefined) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'The collector does not answer (' + e.message + ').');
  }
  let data = null;
  try { data = await res.json(); } catch (_) { data = null; }
  if (res.status === 401 && method === 'GET') {
    window.location.assign('/login');
  }
  if (!res.ok) {
    throw new ApiError(res.status, (data && data.error) || ('HTTP ' + res.status));
  }
  return data;
}

export const STATUS_WORDS = { ok: 'OK', warn: 'Warning', fail: 'Failing', unknown: 'Unknown' };

/** A status badge: word and colour. */
export function statusBadge(status) {
  const st = status || 'unknown';
  return h('span', { class: 'badge s-' + st }, status ? STATUS_WORDS[st] || st : 'No data');
}

export const STATE_WORDS = {
  failing: 'Failing',
  local: 'Site team window',
  escalated: 'Escalated to IT',
  acknowledged: 'Acknowledged',
  resolved: 'Resolved',
};

/** An escalation state badge in words. */
export function stateBadge(state) {
  return h('span', { class: 'badge st-' + state, 'data-state': state }, STATE_WORDS[state] || state);
}

/** What an escalation is about, in words. */
export function escalationWhat(e, title) {
  if (e.kind === 'agent_offline') return 'Agent ' + e.agent + ' offline';
  if (e.kind === 'flapping') return (title || e.check) + ' keeps changing (flapping)';
  return title || e.check;
}

/** The detail after the state badge: time left, who acknowledged, how long ago. */
export function stateDetail(e) {
  switch (e.state) {
    case 'local':
      return e.local_until ? ['window ends in ', countdown(e.local_until)] : [];
    case 'escalated':
      return e.escalated_at ? ['since ' + ago(e.escalated_at)] : [];
    case 'acknowledged':
      return ['by ' + (e.acknowledged_by || 'IT') + (e.acknowledged_at ? ', ' + ago(e.acknowledged_at) : '')];
    case 'failing':
      return ['since ' + ago(e.opened_at)];
    case 'resolved':
      return [fixedBy(e)];
    default:
      return [];
  }
}

/** Who fixed a resolved escalation. */
export function fixedBy(e) {
  if (e.fixed_by === 'site_team') return 'fixed by the site team';
  if (e.fixed_by === 'it') return 'fixed by IT';
  return 'closed';
}

/** A span that the page's ticker keeps counting down to `until`. */
export function countdown(until) {
  return h('span', { class: 'countdown', 'data-until': until }, left(until));
}

/** Time left until `ts`, in words. */
export function left(ts) {
  const ms = Date.parse(ts) - Date.now();
  if (!(ms > 0)) return 'now';
  const sec = Math.floor(ms / 1000);
  const m = Math.floor(sec / 60);
  return m > 0 ? m + ' min ' + String(sec % 60).padStart(2, '0') + ' s' : sec + ' s';
}

/** "5 min ago". */
export function ago(ts) {
  if (!ts) return 'never';
  const sec = Math.round((Date.now() - Date.parse(ts)) / 1000);
  if (sec < 0) return 'just now';
  return duration(sec) + ' ago';
}

/** Seconds as "1 h 5 min". */
export function duration(sec) {
  if (sec === null || sec === undefined) return '—';
  sec = Math.round(sec);
  if (sec < 60) return sec + ' s';
  const min = Math.floor(sec / 60);
  if (min < 60) return min + ' min';
  const hours = Math.floor(min / 60);
  if (hours < 48) return hours + ' h' + (min % 60 ? ' ' + (min % 60) + ' min' : '');
  return Math.floor(hours / 24) + ' d' + (hours % 24 ? ' ' + (hours % 24) + ' h' : '');
}

/** A timestamp in the viewer's local time, "2026-11-29 10:04". */
export function time(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts;
  const p = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + p(d.getHours()) + ':' + p(d.getMinutes());
}

/** A share 0..1 as a percentage. */
export function pct(x) {
  return x === null || x === undefined ? '—' : (x * 100).toFixed(1) + '\u00a0%';
}

/** Bytes as GB/MB. */
export function bytes(n) {
  if (!n) return '—';
  if (n >= 1e9) return (n / 1e9).toFixed(1) + ' GB';
  return (n / 1e6).toFixed(0) + ' MB';
}

/** The person's name, remembered in this browser for the next form. */
export function rememberedName() {
  try { return localStorage.getItem('outpost.name') || ''; } catch (_) { return ''; }
}

/** Stores the person's name for the next form. */
export function rememberName(name) {
  try { localStorage.setItem('outpost.name', name); } catch (_) { /* private mode */ }
}

/** Shows an error across the top of the page (empty hides it). */
export function banner(message) {
  const el = document.getElementById('banner');
  el.textContent = message || '';
  el.hidden = !message;
}

let toastTimer = null;
/** A short message in the corner. */
export function toast(message) {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

/** The site's maintenance form, shared by the escalation and site views. */
export function maintenanceForm(site, check, done) {
  const msg = h('div', { class: 'msg', 'aria-live': 'polite' });
  const scope = h('select', { name: 'scope', 'aria-label': 'What to hold' },
    h('option', { value: 'site' }, 'The whole site ' + site),
    check ? h('option', { value: 'check' }, 'Only the check ' + check) : null);
  const dur = h('select', { name: 'duration', 'aria-label': 'For how long' },
    ['30m', '1h', '2h', '4h', '8h', '24h'].map((d) => h('option', { value: d, selected: d === '2h' }, d)));
  const reason = h('input', { name: 'reason', 'aria-label': 'Reason', placeholder: 'Reason (e.g. ISP replaces the line)', required: true });
  const by = h('input', { name: 'by', 'aria-label': 'Your name', placeholder: 'Your name', value: rememberedName(), required: true });
  const form = h('form', { class: 'action', id: 'maintenance-form' },
    h('label', {}, 'Hold escalations during planned work'),
    h('div', { class: 'row' }, scope, dur),
    reason, by,
    h('div', {}, h('button', { type: 'submit', class: 'secondary' }, 'Set maintenance window')),
    msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { site, duration: dur.value, reason: reason.value, by: by.value };
    if (scope.value === 'check' && check) body.check = check;
    rememberName(by.value);
    try {
      const m = await api('/api/v1/maintenance', 'POST', body);
      msg.className = 'msg ok';
      msg.textContent = 'Maintenance window #' + m.id + ' set until ' + time(m.ends_at) + '.';
      if (done) done();
    } catch (e) {
      msg.className = 'msg err';
      msg.textContent = e.message;
    }
  });
  return form;
}
