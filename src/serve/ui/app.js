// The busbar console: plain JavaScript over the control API (see /openapi.json). One poll of GET /stats per
// second feeds the pipeline diagrams, the charts and the topic and group tables; rates and latencies are the
// differences between two polls. Everything the server sends is put into the page as text, never as HTML.
'use strict';

const TOKEN_KEY = 'busbar.token';
const POLL_MS = 1000;
const HISTORY = 120;

const state = {
  view: 'pipelines',
  stats: null,
  prev: null,
  history: [],
  rates: { topics: {}, partitions: {}, rules: {}, targets: {}, pipelines: {} },
  expanded: new Set(),
  drawn: {},
  redriven: new Set(),
  timer: null,
};

// ---- helpers -------------------------------------------------------------------------------------------------

const $ = (selector, root = document) => root.querySelector(selector);

/** An element with attributes (`on*` functions become listeners) and children (strings become text). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG. */
function s(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const fmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const num = (n) => (n === undefined || n === null ? '–' : fmt.format(n));
const rate = (n) => (n ? `${fmt.format(n)}/s` : '0/s');
const ms = (n) => (n === null || n === undefined ? '–' : n < 10 ? `${n.toFixed(2)} ms` : `${fmt.format(n)} ms`);
const internal = (name) => name.endsWith('.dlq') || name.endsWith('.retry') || name.startsWith('__');

function duration(msText) {
  const n = Number(msText);
  if (msText === undefined) return 'broker default';
  if (n < 0) return 'forever';
  const units = [['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000]];
  for (const [unit, size] of units) if (n >= size && n % size === 0) return `${n / size}${unit}`;
  return `${n} ms`;
}

let toastTimer = null;
function toast(message, bad = false) {
  const el = $('#toast');
  el.textContent = message;
  el.className = bad ? 'toast bad' : 'toast';
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, bad ? 8000 : 4000);
}

/** Replaces the children of `el` only when `signature` changed, so rows with open details or focus survive polls. */
function redraw(el, signature, build) {
  if (state.drawn[el.id] === signature) return;
  state.drawn[el.id] = signature;
  el.replaceChildren(...[build()].flat());
}

// ---- API -----------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const init = { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'unreachable', `busbar does not answer (${err.message})`);
  }
  const text = await response.text();
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (response.status === 401) {
    signIn(token ? 'The token was refused.' : '');
    throw new ApiError(401, 'unauthorized', 'an API token is needed');
  }
  if (!response.ok) {
    const message = data && data.message ? data.message : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, data && data.code, message);
  }
  return data;
}

function signIn(error) {
  const dialog = $('#login');
  $('#login-error').textContent = error || '';
  if (!dialog.open) dialog.showModal();
  stopPolling();
}

$('#login-form').addEventListener('submit', () => {
  sessionStorage.setItem(TOKEN_KEY, $('#login-token').value.trim());
  $('#login-token').value = '';
  $('#signout').hidden = false;
  startPolling();
  show(state.view);
});

$('#signout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  $('#signout').hidden = true;
  location.reload();
});

// ---- polling and rates ---------------------------------------------------------------------------------------

function startPolling() {
  stopPolling();
  const tick = async () => {
    // A hidden tab costs the server nothing; the rates resume from the next two polls.
    if (!document.hidden) await poll();
    state.timer = setTimeout(tick, POLL_MS);
  };
  tick();
}

function stopPolling() {
  clearTimeout(state.timer);
  state.timer = null;
}

async function poll() {
  const conn = $('#conn');
  let stats;
  try {
    stats = await api('GET', '/stats');
  } catch (err) {
    if (err.status !== 401) {
      conn.textContent = 'unreachable';
      conn.className = 'conn down';
    }
    return;
  }
  conn.textContent = `live · ${new Date(stats.time_ms).toLocaleTimeString()}`;
  conn.className = 'conn live';
  state.prev = state.stats;
  state.stats = stats;
  computeRates();
  renderPipelines();
  drawCharts();
  if (state.view === 'topics') renderTopics();
  if (state.view === 'groups') renderGroups();
  if (state.view === 'connectors') renderConnectors();
  if (state.view === 'dlq') renderDlqTopics();
  if (state.view === 'playground') fillPipelineSelect();
}

/** Per-second rates between the last two polls, and one history point for the charts. */
function computeRates() {
  const { stats, prev } = state;
  const rates = { topics: {}, partitions: {}, rules: {}, targets: {}, pipelines: {} };
  const dt = prev ? (stats.time_ms - prev.time_ms) / 1000 : 0;
  const per = (now, before) => (dt > 0 && before !== undefined ? Math.max(0, now - before) / dt : 0);
  const prevTopics = Object.fromEntries((prev ? prev.topics : []).map((t) => [t.name, t]));
  for (const topic of stats.topics) {
    const before = prevTopics[topic.name];
    let total = 0;
    for (const p of topic.partitions) {
      const old = before && before.partitions.find((x) => x.partition === p.partition);
      const r = per(p.high_watermark, old && old.high_watermark);
      rates.partitions[`${topic.name}/${p.partition}`] = r;
      total += r;
    }
    rates.topics[topic.name] = total;
  }
  const prevPipelines = Object.fromEntries((prev ? prev.pipelines : []).map((p) => [p.name, p]));
  let delivered = 0; let dead = 0; let into = 0;
  const buckets = [];
  let latencyCount = 0;
  for (const p of stats.pipelines) {
    const old = prevPipelines[p.name];
    rates.pipelines[p.name] = per(p.records_read, old && old.records_read);
    into += rates.topics[p.topic] || 0;
    for (const rule of p.rules) {
      const oldRule = old && old.rules.find((r) => r.name === rule.name);
      rates.rules[`${p.name}/${rule.name}`] = per(rule.matches, oldRule && oldRule.matches);
      for (const t of rule.targets) {
        const oldT = oldRule && oldRule.targets.find((x) => x.name === t.name);
        const key = `${p.name}/${rule.name}/${t.name}`;
        rates.targets[key] = per(t.delivered, oldT && oldT.delivered);
        delivered += rates.targets[key];
        dead += per(t.dead_lettered, oldT && oldT.dead_lettered);
        if (t.latency && oldT && oldT.latency) {
          t.latency.buckets.forEach(([bound, count], i) => {
            const diff = count - oldT.latency.buckets[i][1];
            buckets[i] = buckets[i] || [bound === null ? Infinity : bound, 0];
            buckets[i][1] += Math.max(0, diff);
            latencyCount += Math.max(0, diff);
          });
        }
      }
    }
  }
  state.rates = rates;
  if (!prev) return;
  state.history.push({
    t: stats.time_ms,
    into, delivered, dead,
    p50: latencyCount ? quantile(buckets, latencyCount, 0.5) : null,
    p95: latencyCount ? quantile(buckets, latencyCount, 0.95) : null,
  });
  if (state.history.length > HISTORY) state.history.shift();
}

/** A quantile from histogram buckets `[upperBoundMs, count]`, interpolated linearly inside its bucket. */
function quantile(buckets, total, q) {
  const want = q * total;
  let seen = 0; let lower = 0;
  for (const [bound, count] of buckets) {
    if (count > 0 && seen + count >= want) {
      const upper = Number.isFinite(bound) ? bound : lower * 2 || 1;
      return lower + ((want - seen) / count) * (upper - lower);
    }
    seen += count;
    if (Number.isFinite(bound)) lower = bound;
  }
  return lower;
}

// ---- charts --------------------------------------------------------------------------------------------------

function drawCharts() {
  if (state.view !== 'pipelines') return;
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  chart($('#chart-throughput'), $('#legend-throughput'), [
    { label: 'into the bus', key: 'into', color: color('--c1') },
    { label: 'delivered', key: 'delivered', color: color('--c2') },
    { label: 'dead-lettered', key: 'dead', color: color('--c4') },
  ], (v) => fmt.format(v), color);
  chart($('#chart-latency'), $('#legend-latency'), [
    { label: 'p50', key: 'p50', color: color('--c2') },
    { label: 'p95', key: 'p95', color: color('--c3') },
  ], (v) => `${fmt.format(v)}`, color);
}

/** A line chart of the last HISTORY points; null values are gaps. */
function chart(canvas, legend, series, label, color) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth; const height = canvas.clientHeight;
  if (!width) return;
  if (canvas.width !== Math.round(width * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const points = state.history;
  const left = 44; const right = 16; const top = 8; const bottom = 20;
  const w = width - left - right; const hh = height - top - bottom;
  let max = 0;
  for (const p of points) for (const sr of series) if (p[sr.key] !== null) max = Math.max(max, p[sr.key]);
  const step = niceCeiling((max || 1) / 4);
  max = step * 4;
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = color('--muted');
  g.strokeStyle = color('--line');
  g.lineWidth = 1;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const y = top + hh - (hh * i) / 4;
    g.beginPath(); g.moveTo(left, Math.round(y) + 0.5); g.lineTo(left + w, Math.round(y) + 0.5); g.stroke();
    g.fillText(label((max * i) / 4), left - 6, y);
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  const span = HISTORY * POLL_MS;
  const now = points.length ? points[points.length - 1].t : Date.now();
  for (const secs of [120, 90, 60, 30, 0]) {
    g.textAlign = secs ? 'center' : 'right';
    g.fillText(secs ? `-${secs}s` : 'now', left + w - (secs * 1000 * w) / span + (secs ? 0 : right), top + hh + 5);
  }
  for (const sr of series) {
    g.strokeStyle = sr.color;
    g.lineWidth = 1.8;
    g.beginPath();
    let pen = false;
    for (const p of points) {
      const v = p[sr.key];
      if (v === null || v === undefined) { pen = false; continue; }
      const x = left + w - ((now - p.t) * w) / span;
      const y = top + hh - (v / max) * hh;
      if (pen) g.lineTo(x, y); else g.moveTo(x, y);
      pen = true;
    }
    g.stroke();
    // The newest reading as a dot, so a series with one point (or after a gap) still shows.
    const newest = points[points.length - 1];
    if (newest && newest[sr.key] !== null && newest[sr.key] !== undefined) {
      g.fillStyle = sr.color;
      g.beginPath();
      g.arc(left + w, top + hh - (newest[sr.key] / max) * hh, 2.5, 0, Math.PI * 2);
      g.fill();
    }
  }
  const last = points[points.length - 1] || {};
  redraw(legend, series.map((sr) => `${sr.label}${last[sr.key]}`).join('|'), () => series.map((sr) =>
    h('span', {}, h('i', { style: `background:${sr.color}` }), `${sr.label} `,
      h('b', {}, last[sr.key] === null || last[sr.key] === undefined ? '–' : fmt.format(last[sr.key])))));
}

function niceCeiling(v) {
  const exp = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= v) return m * exp;
  return 10 * exp;
}

// ---- pipelines -----------------------------------------------------------------------------------------------

const NODE_W = 196; const NODE_H = 60; const COL = 248; const ROW = NODE_H + 16; const PAD = 8;

function renderPipelines() {
  const root = $('#pipelines');
  const { stats } = state;
  if (!stats.pipelines.length) {
    redraw(root, 'none', () => h('div', { class: 'card pad muted' }, 'No pipeline is running.'));
    return;
  }
  const layout = stats.pipelines.map((p) => `${p.name}:${JSON.stringify(p.rules.map((r) => [r.name, r.targets.map((t) => t.name)]))}`).join(';');
  redraw(root, layout, () => stats.pipelines.map((p) => h('article', { class: 'card pipeline', 'data-testid': `pipeline-${p.name}` },
    h('header', {},
      h('h2', {}, p.name),
      h('span', { class: 'muted', id: `totals-${p.name}` }),
      h('span', { class: 'spacer' }),
      h('button', { class: 'ghost small', onclick: () => { location.hash = `#/playground?pipeline=${encodeURIComponent(p.name)}`; } }, 'Test an event'),
      h('button', { class: 'ghost small', onclick: () => edit(p.name), 'data-testid': `edit-${p.name}` }, 'Edit')),
    h('div', { class: 'flow', id: `flow-${p.name}` }))));
  for (const p of stats.pipelines) {
    const holder = document.getElementById(`flow-${p.name}`);
    if (holder) holder.replaceChildren(flow(p));
    const totals = document.getElementById(`totals-${p.name}`);
    if (totals) totals.textContent = `${num(p.records_read)} read · ${num(p.records_matched)} matched · ${rate(state.rates.pipelines[p.name])}`;
  }
}

/** source -> bus topic -> rules -> targets, with live counts. */
function flow(p) {
  const { rates } = state;
  const topic = state.stats.topics.find((t) => t.name === p.topic);
  const stored = topic ? topic.partitions.reduce((n, x) => n + (x.high_watermark || 0), 0) : 0;
  const rows = Math.max(1, p.sources.length, p.rules.reduce((n, r) => n + Math.max(1, r.targets.length), 0));
  const height = rows * ROW + PAD * 2 - 16;
  const width = COL * 3 + NODE_W + PAD * 2;
  const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `pipeline ${p.name}` });
  const edges = s('g', {});
  svg.append(edges);
  const at = (col, y) => ({ x: PAD + col * COL, y });
  const spread = (count, i) => PAD + ((height - PAD * 2) / count) * (i + 0.5) - NODE_H / 2;
  const link = (a, b, live) => edges.append(s('path', {
    class: live ? 'edge live' : 'edge',
    d: `M${a.x + NODE_W},${a.y + NODE_H / 2} C${a.x + NODE_W + 30},${a.y + NODE_H / 2} ${b.x - 30},${b.y + NODE_H / 2} ${b.x},${b.y + NODE_H / 2}`,
  }));
  const inRate = rates.topics[p.topic] || 0;
  const bus = at(1, spread(1, 0));
  p.sources.forEach((source, i) => {
    const pos = at(0, spread(p.sources.length, i));
    svg.append(node(pos, 'source', `source · ${plugin(source.connector)}`, source.name, source.path || '', '', `source-${source.name}`));
    link(pos, bus, inRate > 0);
  });
  svg.append(node(bus, 'bus', 'bus topic', p.topic, `${num(stored)} records · ${rate(inRate)}`, '', 'bus'));
  let row = 0;
  for (const rule of p.rules) {
    const span = Math.max(1, rule.targets.length);
    const ruleY = PAD + (row + span / 2) * ROW - ROW / 2 + 0;
    const rulePos = at(2, ruleY);
    const ruleRate = rates.rules[`${p.name}/${rule.name}`] || 0;
    link(bus, rulePos, ruleRate > 0);
    svg.append(node(rulePos, rule.enabled ? 'rule' : 'rule off', rule.enabled ? 'rule' : 'rule · disabled', rule.name,
      `${num(rule.matches)} matched · ${rate(ruleRate)}`, '', `rule-${rule.name}`));
    rule.targets.forEach((t, i) => {
      const pos = at(3, PAD + (row + i) * ROW);
      const key = `${p.name}/${rule.name}/${t.name}`;
      const r = rates.targets[key] || 0;
      link(rulePos, pos, r > 0);
      const trouble = [t.dead_lettered ? `${num(t.dead_lettered)} DLQ` : '', t.parked ? `${num(t.parked)} parked` : ''].filter(Boolean).join(' · ');
      svg.append(node(pos, trouble ? 'target bad' : 'target', `target · ${plugin(t.connector)}`, t.name,
        `${num(t.delivered)} delivered · ${rate(r)}`, trouble, `target-${rule.name}-${t.name}`,
        `${key}\ndelivered ${t.delivered}, failed attempts ${t.failed_attempts}, retries ${t.retries}, dead-lettered ${t.dead_lettered}, parked ${t.parked}\ndead letters go to ${t.dead_letter_topic}`));
    });
    row += span;
  }
  return svg;
}

function node(pos, kind, label, title, count, trouble, id, tip) {
  const text = trouble ? `${count} · ` : count;
  return s('g', { class: `node ${kind}`, transform: `translate(${pos.x},${pos.y})`, 'data-testid': `node-${id}` },
    s('title', {}, tip || `${label}: ${title}`),
    s('rect', { width: NODE_W, height: NODE_H, rx: 8 }),
    s('text', { class: 'kind', x: 12, y: 17 }, clip(label, 30)),
    s('text', { class: 'title', x: 12, y: 35 }, clip(title, 24)),
    s('text', { class: 'count', x: 12, y: 51, 'data-testid': `count-${id}` }, clip(text, 34),
      trouble ? s('tspan', { class: 'count bad' }, trouble) : null));
}

/** `builtin:http` -> `http`; a component path -> its file name. */
const plugin = (connector) => connector.replace('builtin:', '').split('/').pop();
const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

async function edit(name) {
  const dialog = $('#editor');
  $('#editor-name').textContent = name;
  $('#editor-error').textContent = '';
  try {
    const pipeline = await api('GET', `/pipelines/${encodeURIComponent(name)}`);
    $('#editor-text').value = JSON.stringify(pipeline.spec, null, 2);
    dialog.dataset.pipeline = name;
    dialog.showModal();
  } catch (err) {
    toast(err.message, true);
  }
}

$('#editor-cancel').addEventListener('click', () => $('#editor').close());
$('#editor-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = $('#editor').dataset.pipeline;
  $('#editor-apply').disabled = true;
  try {
    const result = await api('PUT', `/pipelines/${encodeURIComponent(name)}`, $('#editor-text').value);
    $('#editor').close();
    state.drawn.pipelines = null;
    toast(result.changed ? `${name}: new version applied` : `${name}: unchanged`);
  } catch (err) {
    $('#editor-error').textContent = err.message;
  } finally {
    $('#editor-apply').disabled = false;
  }
});

// ---- topics and groups ---------------------------------------------------------------------------------------

function renderTopics() {
  const el = $('#topics');
  const all = $('#show-internal').checked;
  const topics = state.stats.topics.filter((t) => all || !internal(t.name));
  const rows = topics.map((t) => {
    const stored = t.partitions.reduce((n, p) => n + (p.records || 0), 0);
    const end = t.partitions.reduce((n, p) => n + (p.high_watermark || 0), 0);
    return { t, stored, end, rate: state.rates.topics[t.name] || 0, open: state.expanded.has(`topic:${t.name}`) };
  });
  redraw(el, JSON.stringify(rows.map((r) => [r.t.name, r.stored, r.end, r.rate, r.open, r.t.configs])), () => [
    h('thead', {}, h('tr', {}, h('th', {}, 'Topic'), h('th', { class: 'num' }, 'Partitions'), h('th', { class: 'num' }, 'Records stored'),
      h('th', { class: 'num' }, 'Next offset'), h('th', { class: 'num' }, 'In'), h('th', {}, 'Retention'))),
    h('tbody', {}, rows.length ? rows.map((r) => [
      h('tr', { 'data-testid': `topic-${r.t.name}` },
        h('td', {}, h('button', { class: 'expander', 'aria-expanded': String(r.open), onclick: () => toggle(`topic:${r.t.name}`, renderTopics) }, r.t.name),
          internal(r.t.name) ? h('span', { class: 'muted' }, r.t.name.endsWith('.dlq') ? '  dead letters' : '  internal') : null),
        h('td', { class: 'num' }, r.t.partitions.length), h('td', { class: 'num' }, num(r.stored)), h('td', { class: 'num' }, num(r.end)),
        h('td', { class: 'num' }, rate(r.rate)), h('td', {}, duration((r.t.configs || {})['retention.ms']))),
      r.open ? r.t.partitions.map((p) => h('tr', { class: 'sub' },
        h('td', {}, `  partition ${p.partition}`), h('td', { class: 'num muted' }, `from ${num(p.log_start_offset)}`),
        h('td', { class: 'num' }, num(p.records)), h('td', { class: 'num' }, num(p.high_watermark)),
        h('td', { class: 'num' }, rate(state.rates.partitions[`${r.t.name}/${p.partition}`])), h('td', {}, p.error || ''))) : null,
    ]) : h('tr', {}, h('td', { class: 'empty', colspan: 6 }, 'No topics.'))),
  ]);
}

function toggle(key, render) {
  if (state.expanded.has(key)) state.expanded.delete(key); else state.expanded.add(key);
  render();
}

$('#show-internal').addEventListener('change', renderTopics);

const groupDetails = {};

async function renderGroups() {
  const el = $('#groups');
  let groups;
  try { groups = await api('GET', '/groups'); } catch (err) { toast(err.message, true); return; }
  const lag = Object.fromEntries(state.stats.groups.map((g) => [g.group, g.lag]));
  for (const g of groups) {
    if (state.expanded.has(`group:${g.group}`)) {
      try { groupDetails[g.group] = await api('GET', `/groups/${encodeURIComponent(g.group)}`); } catch { /* gone */ }
    }
  }
  const rows = groups.map((g) => ({ g, lag: lag[g.group], open: state.expanded.has(`group:${g.group}`), detail: groupDetails[g.group] }));
  redraw(el, JSON.stringify(rows), () => [
    h('thead', {}, h('tr', {}, h('th', {}, 'Group'), h('th', {}, 'State'), h('th', {}, 'Type'), h('th', { class: 'num' }, 'Lag'))),
    h('tbody', {}, rows.length ? rows.map((r) => [
      h('tr', { 'data-testid': `group-${r.g.group}` },
        h('td', {}, h('button', { class: 'expander', 'aria-expanded': String(r.open), onclick: () => toggle(`group:${r.g.group}`, renderGroups) }, r.g.group)),
        h('td', {}, h('span', { class: 'badge' }, r.g.state)), h('td', { class: 'muted' }, r.g.type || r.g.protocol_type || ''),
        h('td', { class: 'num' }, r.lag === undefined ? '–' : h('span', { class: r.lag > 0 ? 'badge warn' : 'badge ok' }, num(r.lag)))),
      r.open && r.detail ? r.detail.partitions.map((p) => h('tr', { class: 'sub' },
        h('td', {}, `  ${p.topic} / ${p.partition}`), h('td', { class: 'muted' }, `committed ${num(p.committed)}`),
        h('td', { class: 'muted' }, `end ${num(p.high_watermark)}`), h('td', { class: 'num' }, num(p.lag)))) : null,
    ]) : h('tr', {}, h('td', { class: 'empty', colspan: 4 }, 'No consumer groups yet.'))),
  ]);
}

// ---- connectors ----------------------------------------------------------------------------------------------

async function renderConnectors() {
  const el = $('#connectors');
  let list;
  try { list = await api('GET', '/connectors'); } catch (err) { toast(err.message, true); return; }
  const statuses = await Promise.all(list.map((c) => api('GET', `/connectors/${c.name}/status`).catch(() => null)));
  const rows = list.map((c, i) => {
    const st = statuses[i] || { state: c.state, tasks: [] };
    const failure = st.tasks.map((t) => t.last_failure).find(Boolean);
    const restarts = st.tasks.reduce((n, t) => n + (t.restarts || 0), 0);
    return { name: c.name, type: c.type, connector: c.connector, state: st.state, restarts, tasks: st.tasks.length,
      failure: failure ? `${failure.kind}: ${headline(failure.message)}` : '', trace: failure ? failure.message : '' };
  });
  redraw(el, JSON.stringify(rows), () => [
    h('thead', {}, h('tr', {}, h('th', {}, 'Connector'), h('th', {}, 'Type'), h('th', {}, 'State'), h('th', { class: 'num' }, 'Restarts'),
      h('th', {}, 'Last error'), h('th', {}))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', { 'data-testid': `connector-${r.name}` },
      h('td', {}, h('b', {}, r.name), h('div', { class: 'muted mono' }, r.connector || '')),
      h('td', {}, r.type, r.tasks > 1 ? h('span', { class: 'muted' }, ` ×${r.tasks}`) : null),
      h('td', {}, h('span', { class: `badge ${r.state}`, 'data-testid': 'state' }, r.state)),
      h('td', { class: 'num' }, r.restarts),
      h('td', {}, r.failure ? [h('div', { class: 'failure', 'data-testid': 'failure' }, r.failure),
        r.trace !== r.failure ? h('details', {}, h('summary', {}, 'trace'), h('pre', {}, r.trace)) : null] : h('span', { class: 'muted' }, 'none')),
      h('td', {}, h('div', { class: 'actions' },
        r.state === 'PAUSED' || r.state === 'STOPPED'
          ? h('button', { class: 'ghost small', onclick: () => connectorAction(r.name, 'PUT', 'resume') }, 'Resume')
          : h('button', { class: 'ghost small', onclick: () => connectorAction(r.name, 'PUT', 'pause') }, 'Pause'),
        h('button', { class: 'small', 'data-testid': 'restart', disabled: r.state === 'PAUSED' || r.state === 'STOPPED',
          onclick: () => connectorAction(r.name, 'POST', 'restart') }, 'Restart'))))) :
      h('tr', {}, h('td', { class: 'empty', colspan: 6 }, 'No connectors.'))),
  ]);
}

/** The line of a failure worth reading first: what the guest printed when it panicked, else the first line. */
function headline(message) {
  const lines = message.split('\n').map((l) => l.trim()).filter(Boolean);
  const stderr = lines.findIndex((l) => l.startsWith('guest stderr:'));
  if (stderr >= 0) {
    const said = lines.slice(stderr + 1).find((l) => !l.startsWith('note:') && !/ panicked at /.test(l));
    if (said) return said;
  }
  return lines[0] || message;
}

async function connectorAction(name, method, action) {
  try {
    const status = await api(method, `/connectors/${name}/${action}`);
    toast(`${name}: ${action} done, now ${status.state}`);
  } catch (err) {
    toast(`${name}: ${err.message}`, true);
  }
  renderConnectors();
}

// ---- dead letters --------------------------------------------------------------------------------------------

function renderDlqTopics() {
  const select = $('#dlq-topic');
  const topics = state.stats.topics.filter((t) => t.name.endsWith('.dlq'));
  const counts = topics.map((t) => [t.name, t.partitions.reduce((n, p) => n + (p.high_watermark || 0), 0)]);
  const wanted = select.value || (counts.find(([, n]) => n > 0) || counts[0] || [])[0];
  redraw(select, JSON.stringify(counts), () => counts.map(([name, n]) => h('option', { value: name }, `${name} (${n})`)));
  if (wanted && select.value !== wanted) select.value = wanted;
  const total = (counts.find(([name]) => name === select.value) || [])[1];
  if (select.value && state.drawn.dlqCount !== `${select.value}:${total}`) {
    state.drawn.dlqCount = `${select.value}:${total}`;
    renderDlq();
  }
  if (!counts.length) redraw($('#dlq'), 'none', () => h('tr', {}, h('td', { class: 'empty' }, 'No dead-letter topics.')));
}

async function renderDlq() {
  const topic = $('#dlq-topic').value;
  if (!topic) return;
  let page;
  try { page = await api('GET', `/dlq/${encodeURIComponent(topic)}?limit=200`); } catch (err) { toast(err.message, true); return; }
  const el = $('#dlq');
  state.drawn.dlq = null;
  redraw(el, 'x', () => [
    h('thead', {}, h('tr', {}, h('th', { class: 'num' }, 'Offset'), h('th', {}, 'Time'), h('th', {}, 'Failed at'), h('th', {}, 'Error'),
      h('th', { class: 'num' }, 'Attempts'), h('th', {}, 'Event'), h('th', {}))),
    h('tbody', {}, page.records.length ? page.records.map((r) => {
      const hd = r.headers || {};
      const done = state.redriven.has(`${topic}:${r.offset}`);
      return h('tr', { 'data-testid': `dlq-record-${r.offset}` },
        h('td', { class: 'num' }, r.offset),
        h('td', { class: 'muted' }, new Date(r.timestamp_ms).toLocaleString()),
        h('td', {}, hd['busbar.rule'] ? `${hd['busbar.rule']} → ${hd['busbar.target']}` : h('span', { class: 'muted' }, 'source')),
        h('td', {}, h('div', { class: 'failure' }, hd['busbar.error'] || '')),
        h('td', { class: 'num' }, hd['busbar.attempts'] || ''),
        h('td', {}, h('details', {}, h('summary', {}, eventSummary(r.event)), h('pre', {}, JSON.stringify(r.event, null, 2)),
          h('pre', {}, JSON.stringify(hd, null, 2)))),
        h('td', {}, h('div', { class: 'actions' },
          done ? h('span', { class: 'badge ok' }, 're-driven') : null,
          h('button', { class: 'small', 'data-testid': 'redrive', onclick: () => redrive(topic, r.offset) }, 'Re-drive'))));
    }) : h('tr', {}, h('td', { class: 'empty', colspan: 7 }, 'This dead-letter topic is empty.'))),
  ]);
}

function eventSummary(event) {
  if (event && typeof event === 'object') {
    const parts = [event['detail-type'], event.source, event.id].filter(Boolean);
    if (parts.length) return parts.join(' · ');
  }
  return clip(JSON.stringify(event), 60);
}

async function redrive(topic, offset) {
  const one = offset !== undefined;
  try {
    const result = await api('POST', `/dlq/${encodeURIComponent(topic)}/redrive`, one ? { offset } : {});
    const skipped = result.skipped.length ? `, ${result.skipped.length} skipped: ${result.skipped.map((x) => x.reason).join('; ')}` : '';
    $('#dlq-note').textContent = `re-driven: ${result.redriven}${skipped}`;
    toast(`${result.redriven} event(s) sent back to their target${skipped}`, result.skipped.length > 0);
    if (one) state.redriven.add(`${topic}:${offset}`);
    renderDlq();
  } catch (err) {
    toast(err.message, true);
  }
}

$('#dlq-topic').addEventListener('change', () => { $('#dlq-note').textContent = ''; renderDlq(); });
$('#dlq-refresh').addEventListener('click', renderDlq);
$('#dlq-redrive-all').addEventListener('click', () => {
  const topic = $('#dlq-topic').value;
  if (topic) redrive(topic);
});

// ---- playground ----------------------------------------------------------------------------------------------

function fillPipelineSelect(preferred) {
  const select = $('#play-pipeline');
  const names = state.stats ? state.stats.pipelines.map((p) => p.name) : [];
  const keep = preferred || select.value;
  redraw(select, names.join(','), () => names.map((n) => h('option', { value: n }, n)));
  if (keep && names.includes(keep)) select.value = keep;
  const area = $('#play-event');
  if (!area.value) {
    const p = state.stats && state.stats.pipelines.find((x) => x.name === select.value);
    area.value = JSON.stringify({
      version: '0', id: 'playground-1', 'detail-type': 'order.created', source: p ? p.name : 'app',
      account: '', time: new Date().toISOString(), region: '', resources: [], detail: { id: 1, total: 250 },
    }, null, 2);
  }
}

async function runPlayground() {
  const out = $('#play-result');
  const error = $('#play-error');
  error.textContent = '';
  let event;
  try { event = JSON.parse($('#play-event').value); } catch (err) { error.textContent = `The event is not JSON: ${err.message}`; return; }
  const pipeline = $('#play-pipeline').value;
  if (!pipeline) { error.textContent = 'No pipeline is running.'; return; }
  let result;
  try { result = await api('POST', '/rules/test', { pipeline, event }); } catch (err) { error.textContent = err.message; return; }
  const matched = result.rules.filter((r) => r.match).length;
  out.replaceChildren(h('div', { class: 'card' },
    h('div', { class: 'rule-result' }, h('b', { 'data-testid': 'play-summary' }, `${matched} of ${result.rules.length} rules match`)),
    result.rules.map((r) => h('div', { class: `rule-result ${r.match ? 'yes' : 'no'}`, 'data-testid': `play-rule-${r.rule}`, 'data-match': String(r.match) },
      h('h3', {}, h('span', { class: 'mark' }, r.match ? '✓' : '✗'), r.rule, r.enabled ? null : h('span', { class: 'badge' }, 'disabled')),
      r.match ? r.targets.map((t) => h('div', { class: 'target' },
        h('div', {}, '→ ', h('b', {}, t.target), h('span', { class: 'muted' }, ` ${t.connector} receives`)),
        t.error ? h('div', { class: 'error' }, t.error)
          : h('pre', { 'data-testid': `play-input-${r.rule}-${t.target}` }, t.json !== null ? JSON.stringify(t.json, null, 2) : t.input))) : null))));
}

$('#play-run').addEventListener('click', runPlayground);
$('#play-event').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) runPlayground(); });

// ---- navigation ----------------------------------------------------------------------------------------------

const VIEWS = ['pipelines', 'topics', 'groups', 'connectors', 'dlq', 'playground'];

function show(view) {
  state.view = view;
  for (const v of VIEWS) $(`#view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll('.side a')) a.classList.toggle('active', a.dataset.view === view);
  state.drawn = {};
  if (!state.stats) return;
  if (view === 'pipelines') { renderPipelines(); drawCharts(); }
  if (view === 'topics') renderTopics();
  if (view === 'groups') renderGroups();
  if (view === 'connectors') renderConnectors();
  if (view === 'dlq') renderDlqTopics();
}

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const view = VIEWS.includes(path) ? path : 'pipelines';
  show(view);
  if (view === 'playground') fillPipelineSelect(new URLSearchParams(query || '').get('pipeline'));
}

window.addEventListener('hashchange', route);
window.addEventListener('resize', drawCharts);
if (sessionStorage.getItem(TOKEN_KEY)) $('#signout').hidden = false;
route();
startPolling();
