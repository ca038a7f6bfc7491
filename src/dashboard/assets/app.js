// pincerd's dashboard (docs/dashboard.md). Polls /api/v1/overview and
// draws it; every value is put in the page as text, never as HTML.
'use strict';

const TOKEN_KEY = 'pincer.token';  // in sessionStorage: this tab only
const POLL_MS = 2000;
const STATE_COLORS = {
  succeeded: '#2e7d32', failed: '#c62828', cancelled: '#757575', timed_out: '#ef6c00',
};

let token = sessionStorage.getItem(TOKEN_KEY) || '';
let auth = { client: false, admin: false };
let charts = null;
let openTask = null;  // the id shown in the task panel
let pollTimer = null;

// ------------------------------------------------------------ helpers

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'onclick') e.addEventListener('click', v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function ago(ms, now) {
  if (!ms) return '-';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return s + 's ago';
  if (s < 3600) return Math.floor(s / 60) + 'm ago';
  if (s < 86400) return Math.floor(s / 3600) + 'h ago';
  return Math.floor(s / 86400) + 'd ago';
}

function seconds(s) {
  if (s === null || s === undefined) return '-';
  if (s < 1) return Math.round(s * 1000) + 'ms';
  if (s < 120) return (Math.round(s * 10) / 10) + 's';
  return Math.round(s / 60) + 'm';
}

function bytes(n) {
  if (n === undefined || n === null) return '-';
  const units = ['B', 'Ki', 'Mi', 'Gi', 'Ti'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + units[i];
}

function skillsText(skills) {
  return skills && skills.length ? skills.join(',') : 'any';
}

function showStatus(text, error) {
  const s = $('status');
  s.textContent = text;
  s.className = error ? 'error' : '';
}

// ------------------------------------------------------------ API

async function api(path, method) {
  const headers = {};
  if (token) headers['Authorization'] = 'Bearer ' + token;
  const res = await fetch(path, { method: method || 'GET', headers, cache: 'no-store',
                                  credentials: 'omit' });
  let body = null;
  try { body = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) {
    const err = new Error(body && body.error ? body.error.code + ': ' + body.error.message
                                             : 'HTTP ' + res.status);
    err.status = res.status;
    throw err;
  }
  return body;
}

function askToken(message) {
  $('main').hidden = true;
  $('token-form').hidden = false;
  $('token-error').textContent = message || '';
  $('token-input').focus();
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token-input').value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token-form').hidden = true;
  $('main').hidden = false;
  poll();
});

$('forget-token').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  token = '';
  askToken('');
});

// ------------------------------------------------------------ drawing

function renderTiles(stats) {
  const tiles = [
    ['queued', stats.queued], ['running', stats.running], ['succeeded', stats.succeeded],
    ['failed', stats.failed], ['cancelled', stats.cancelled], ['timed out', stats.timed_out],
    ['unroutable', stats.unroutable], ['workers', stats.workers],
  ];
  $('tiles').replaceChildren(...tiles.map(([name, value]) =>
    el('div', { class: 'tile', 'data-stat': name.replace(' ', '_') },
       el('span', { class: 'value' }, value), el('span', { class: 'name' }, name))));
  $('summary').textContent = `${stats.workers} workers, ${stats.queued} queued, ` +
                             `${stats.running} running`;
}

// Buttons asked once and waiting for their second click, by action key,
// until when: the table is drawn anew every poll, an armed button stays so.
const armed = new Map();
const ARMED_MS = 10000;

function actionButton(label, confirmLabel, key, attrs, action) {
  // Two clicks: the first asks, the second acts.
  const b = el('button', Object.assign({ type: 'button', class: 'action' }, attrs), label);
  const arm = () => {
    b.classList.add('armed');
    b.textContent = confirmLabel;
  };
  if ((armed.get(key) || 0) > Date.now()) arm();
  b.addEventListener('click', async () => {
    if ((armed.get(key) || 0) <= Date.now()) {
      armed.set(key, Date.now() + ARMED_MS);
      arm();
      return;
    }
    armed.delete(key);
    b.disabled = true;
    try {
      await action();
      showStatus(label + ': done', false);
    } catch (e) {
      showStatus(label + ': ' + e.message, true);
    }
    poll();
  });
  return b;
}

function renderWorkers(workers, now) {
  const rows = workers.map((w) => {
    const load = w.load || {};
    const cpu = load.cpu !== undefined ? load.cpu : w.cpu;
    const rss = load.rss_bytes !== undefined ? load.rss_bytes : w.rss_bytes;
    const connected = w.state !== 'starting' && w.id;
    const drain = connected && w.state !== 'draining'
      ? actionButton('drain', 'confirm drain', 'drain:' + w.id, { 'data-drain': w.id },
                     () => api('/api/v1/workers/' + encodeURIComponent(w.id) + '/drain', 'POST'))
      : null;
    return el('tr', { 'data-worker': w.id || '', 'data-name': w.name || '' },
      el('td', { class: 'name' }, w.name || '-'),
      el('td', {}, w.id || '-'),
      el('td', {}, w.pool || '-'),
      el('td', {}, skillsText(w.skills)),
      el('td', { class: 'state state-' + w.state }, w.state),
      el('td', { class: 'num' }, connected ? `${w.inflight} / ${w.capacity}` : '-'),
      el('td', { class: 'num' }, cpu === undefined ? '-' : Math.round(cpu * 100) + '%'),
      el('td', { class: 'num' }, bytes(rss)),
      el('td', { class: 'num' }, w.completed !== undefined ? w.completed : '-'),
      el('td', { class: 'num' }, w.failed !== undefined ? w.failed : '-'),
      el('td', {}, w.last_seen_ms ? ago(w.last_seen_ms, now) : '-'),
      el('td', {}, drain));
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: 12, class: 'empty' }, 'no workers')));
  $('workers').tBodies[0].replaceChildren(...rows);
}

function renderQueues(queues, now) {
  const rows = queues.map((q) => el('tr', { 'data-skills': q.label, 'data-depth': q.depth },
    el('td', { class: 'skills' }, q.label),
    el('td', { class: 'num depth' }, q.depth),
    el('td', {}, ago(q.oldest_ms, now) + ' (', taskLink({ id: q.oldest_id }), ')'),
    el('td', {}, q.why),
    el('td', { class: 'num' }, q.unroutable)));
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: 5, class: 'empty' }, 'nothing queued')));
  $('queues').tBodies[0].replaceChildren(...rows);
}

function renderPools(pools) {
  const rows = pools.map((p) => el('tr', { 'data-pool': p.name },
    el('td', {}, p.name),
    el('td', { class: 'state state-' + p.state }, p.state),
    el('td', { class: 'num' }, p.desired),
    el('td', { class: 'num' }, p.running),
    el('td', { class: 'num' }, p.ready),
    el('td', { class: 'num' }, p.restarts)));
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'no pools')));
  $('pools').tBodies[0].replaceChildren(...rows);
}

function taskLink(t) {
  return el('a', { href: '#' + t.id, 'data-task': t.id,
                   onclick: (ev) => { ev.preventDefault(); showTask(t.id); } }, t.id);
}

function renderTasks(running, recent, now) {
  const r = running.map((t) => el('tr', { 'data-task-row': t.id },
    el('td', {}, taskLink(t)), el('td', {}, skillsText(t.skills)), el('td', {}, t.worker || '-'),
    el('td', {}, `${t.attempts}/${t.max_attempts}`), el('td', {}, ago(t.started_ms, now))));
  if (!r.length) r.push(el('tr', {}, el('td', { colspan: 5, class: 'empty' }, 'none running')));
  $('running').tBodies[0].replaceChildren(...r);
  const e = recent.map((t) => el('tr', { 'data-task-row': t.id },
    el('td', {}, taskLink(t)), el('td', { class: 'state state-' + t.state }, t.state),
    el('td', {}, skillsText(t.skills)), el('td', {}, t.worker || '-'),
    el('td', {}, t.ended_ms ? seconds((t.ended_ms - t.created_ms) / 1000) : '-'),
    el('td', {}, ago(t.ended_ms, now))));
  if (!e.length) e.push(el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'none yet')));
  $('recent').tBodies[0].replaceChildren(...e);
}

function jsonBlock(v) {
  return el('pre', {}, v === null || v === undefined ? '-' : JSON.stringify(v, null, 2));
}

async function showTask(id) {
  openTask = id;
  let t;
  try {
    t = await api('/api/v1/tasks/' + encodeURIComponent(id));
  } catch (e) {
    showStatus('task ' + id + ': ' + e.message, true);
    return;
  }
  $('task').hidden = false;
  $('task-id').textContent = t.id;
  const actions = [];
  if (t.state === 'queued' || t.state === 'running') {
    actions.push(actionButton('cancel', 'confirm cancel', 'cancel:' + t.id, { 'data-cancel': t.id },
      () => api('/api/v1/tasks/' + encodeURIComponent(t.id) + '/cancel', 'POST')
        .then(() => showTask(t.id))));
  }
  if (t.state === 'failed' || t.state === 'timed_out') {
    actions.push(actionButton('retry', 'confirm retry', 'retry:' + t.id, { 'data-retry': t.id },
      () => api('/api/v1/tasks/' + encodeURIComponent(t.id) + '/retry', 'POST')
        .then(() => showTask(t.id))));
  }
  $('task-actions').replaceChildren(...actions);
  const now = Date.now();
  const fields = [
    ['state', t.state + (t.why ? ' (' + t.why + ')' : '')],
    ['skills', skillsText(t.skills)],
    ['worker', t.worker || '-'],
    ['session', t.session || '-'],
    ['key', t.key || '-'],
    ['priority', t.priority],
    ['attempts', `${t.attempts}/${t.max_attempts}`],
    ['created', new Date(t.created_ms).toISOString() + ' (' + ago(t.created_ms, now) + ')'],
    ['started', t.started_ms ? new Date(t.started_ms).toISOString() : '-'],
    ['ended', t.ended_ms ? new Date(t.ended_ms).toISOString() : '-'],
    ['error', t.error || '-'],
  ];
  if (t.parent !== undefined) fields.push(['parent', t.parent || '-']);
  if (t.children !== undefined) fields.push(['children', (t.children || []).join(', ') || '-']);
  const items = [];
  for (const [k, v] of fields) items.push(el('dt', {}, k), el('dd', { 'data-field': k }, v));
  items.push(el('dt', {}, 'payload'), el('dd', { 'data-field': 'payload' }, jsonBlock(t.payload)));
  items.push(el('dt', {}, 'output'), el('dd', { 'data-field': 'output' }, jsonBlock(t.output)));
  const errors = (t.errors || []).map((e) =>
    el('li', {}, `attempt ${e.attempt} on ${e.worker || '-'}: ${e.error}`));
  items.push(el('dt', {}, 'attempts\' errors'),
             el('dd', { 'data-field': 'errors' }, errors.length ? el('ol', {}, ...errors) : '-'));
  if (t.usage) items.push(el('dt', {}, 'usage'), el('dd', {}, jsonBlock(t.usage)));
  $('task-fields').replaceChildren(...items);
}

$('task-close').addEventListener('click', () => {
  openTask = null;
  $('task').hidden = true;
});

// ------------------------------------------------------------ charts

function makeCharts() {
  if (!window.Chart) return null;  // the page still works without them
  const common = {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    interaction: { mode: 'index', intersect: false },
    scales: {
      x: { type: 'linear', ticks: { callback: (v) => (v === 0 ? 'now' : v + 'm'), stepSize: 5 },
           min: -15, max: 0 },
      y: { beginAtZero: true },
    },
    plugins: { legend: { position: 'bottom' } },
  };
  const throughput = new Chart($('chart-throughput'), {
    type: 'line',
    data: { datasets: Object.keys(STATE_COLORS).map((s) => ({
      label: s, data: [], borderColor: STATE_COLORS[s], backgroundColor: STATE_COLORS[s],
      pointRadius: 0, borderWidth: 2, tension: 0.2 })) },
    options: common,
  });
  const duration = new Chart($('chart-duration'), {
    type: 'line',
    data: { datasets: [
      { label: 'p50', data: [], borderColor: '#1565c0', backgroundColor: '#1565c0',
        pointRadius: 2, borderWidth: 2, spanGaps: false },
      { label: 'p99', data: [], borderColor: '#6a1b9a', backgroundColor: '#6a1b9a',
        pointRadius: 2, borderWidth: 2, spanGaps: false },
    ] },
    options: common,
  });
  return { throughput, duration };
}

function renderCharts(h) {
  if (!charts) charts = makeCharts();
  if (!charts || !h) return;
  const n = h.p50_seconds.length;
  // x: minutes relative to now; the last slot is still filling, so its
  // rate is over the part that has passed.
  const x = (i) => (h.start_ms + (i + 1) * h.slot_ms - h.now_ms) / 60000;
  const span = (i) => (i === n - 1 ? Math.max(1, h.now_ms - (h.start_ms + i * h.slot_ms))
                                   : h.slot_ms) / 1000;
  Object.keys(STATE_COLORS).forEach((s, k) => {
    charts.throughput.data.datasets[k].data =
      h.ended[s].map((c, i) => ({ x: Math.min(0, x(i)), y: c / span(i) }));
  });
  charts.duration.data.datasets[0].data = h.p50_seconds.map((v, i) => ({ x: Math.min(0, x(i)), y: v }));
  charts.duration.data.datasets[1].data = h.p99_seconds.map((v, i) => ({ x: Math.min(0, x(i)), y: v }));
  charts.throughput.update();
  charts.duration.update();
}

// ------------------------------------------------------------ polling

function render(o) {
  auth = o.auth || auth;
  $('forget-token').hidden = !auth.client;
  const now = o.now_ms || Date.now();
  renderTiles(o.stats);
  renderWorkers(o.workers, now);
  renderQueues(o.queues, now);
  renderPools(o.pools);
  renderTasks(o.running, o.recent, now);
  renderCharts(o.history);
}

async function poll() {
  clearTimeout(pollTimer);
  try {
    render(await api('/api/v1/overview'));
    if ($('status').className !== 'error') showStatus('live', false);
  } catch (e) {
    if (e.status === 401) {
      askToken(token ? 'That token was refused.' : '');
      return;  // polling starts again once a token is given
    }
    showStatus('cannot reach pincerd: ' + e.message, true);
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

function start() {
  // The page came with its first data when pincerd needs no token.
  const first = $('pincer-state');
  let state = null;
  try { state = first ? JSON.parse(first.textContent) : null; } catch (e) { state = null; }
  if (state) {
    render(state);
    showStatus('live', false);
    pollTimer = setTimeout(poll, POLL_MS);
  } else {
    poll();
  }
  const hash = location.hash.slice(1);
  if (hash) showTask(hash);
}

start();
