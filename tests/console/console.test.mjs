// Browser test of the busbar web console, driven by tests/console.rs against a real `busbar serve`.
//
// Environment: BUSBAR_URL (the serve HTTP address), BUSBAR_TOKEN (its --api-token), BUSBAR_CHROMIUM (browser
// binary), CONTROL_URL (the test's HTTP receiver: PUT /status sets the status it answers, GET /received lists
// what it accepted), ARTIFACTS (folder for screenshots and timing.json).
//
// Exits 0 when every step passed; otherwise prints the failed step, saves failure.png and exits 1.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('BUSBAR_URL');
const TOKEN = env('BUSBAR_TOKEN');
const CONTROL = env('CONTROL_URL');
const ARTIFACTS = env('ARTIFACTS');
const LOAD_RUNS = 5;
mkdirSync(ARTIFACTS, { recursive: true });

let step = 'starting the browser';
const log = (message) => console.log(`console test: ${message}`);
function check(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await chromium.launch({
  executablePath: env('BUSBAR_CHROMIUM'),
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
const context = await browser.newContext({ viewport: { width: 1440, height: 960 } });
const page = await context.newPage();
const pageErrors = [];
page.on('pageerror', (err) => pageErrors.push(err.message));
const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

async function api(method, path, body) {
  const response = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  check(response.ok, `${method} ${path}: ${response.status} ${await response.clone().text()}`);
  return response.json();
}

async function post(path, body) {
  const response = await fetch(BASE + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  check(response.status === 202, `POST ${path}: ${response.status} ${await response.text()}`);
}

async function eventually(what, probe, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await probe();
      if (last) return last;
    } catch (err) {
      last = err.message;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${what}: not seen within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
}

const text = (selector) => page.locator(selector).first().textContent({ timeout: 2000 });

try {
  // ---- first load: timing and sizes, on fresh contexts (empty cache), token given up front ----------------------
  step = 'measuring the first load';
  const runs = [];
  let resources = [];
  for (let i = 0; i < LOAD_RUNS; i++) {
    const fresh = await browser.newContext({ viewport: { width: 1440, height: 960 } });
    await fresh.addInitScript((token) => sessionStorage.setItem('busbar.token', token), TOKEN);
    const p = await fresh.newPage();
    await p.goto(`${BASE}/ui/`, { waitUntil: 'load' });
    await p.locator('[data-testid="count-bus"]').first().waitFor({ timeout: 10000 });
    const firstData = await p.evaluate(() => performance.now());
    const nav = await p.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      const entries = [n, ...performance.getEntriesByType('resource')];
      return {
        domContentLoaded: n.domContentLoadedEventEnd,
        load: n.loadEventEnd,
        resources: entries.map((e) => ({ name: new URL(e.name).pathname, transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize })),
      };
    });
    runs.push({ domContentLoaded: nav.domContentLoaded, load: nav.load, firstData });
    if (i === 0) resources = nav.resources;
    await fresh.close();
  }
  const median = (key) => runs.map((r) => r[key]).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
  const max = (key) => Math.max(...runs.map((r) => r[key]));
  const assets = resources.filter((r) => r.name.startsWith('/ui'));
  const assetBytes = assets.reduce((n, r) => n + r.transfer, 0);
  const cell = (label, a, b, c) => `  ${label.padEnd(44)}${String(a).padStart(10)}${String(b).padStart(10)}${c ? String(c).padStart(12) : ''}`;
  const table = [
    `console first load, loopback, cold cache, ${LOAD_RUNS} runs`,
    cell('', 'median', 'max'),
    cell('DOMContentLoaded (ms)', median('domContentLoaded').toFixed(0), max('domContentLoaded').toFixed(0)),
    cell('load event (ms)', median('load').toFixed(0), max('load').toFixed(0)),
    cell('first data drawn: pipeline with counts (ms)', median('firstData').toFixed(0), max('firstData').toFixed(0)),
    '',
    cell('asset', 'transfer', 'body', 'decoded'),
    ...assets.map((r) => cell(r.name, r.transfer, r.encoded, r.decoded)),
    cell('all console assets (bytes)', assetBytes, assets.reduce((n, r) => n + r.encoded, 0), assets.reduce((n, r) => n + r.decoded, 0)),
  ].join('\n');
  console.log(table);
  writeFileSync(join(ARTIFACTS, 'timing.json'), JSON.stringify({ runs, resources }, null, 2));
  check(assets.length >= 3, `expected index.html, app.js and app.css, saw ${JSON.stringify(assets)}`);
  // Medians: one slow run on a loaded CI machine is noise, a slow median is not.
  check(median('load') < 1000, `first load took ${median('load')} ms (median; limit 1 s)`);
  check(median('firstData') < 1000, `first data took ${median('firstData')} ms (median; limit 1 s)`);
  check(assetBytes < 1024 * 1024, `console assets are ${assetBytes} bytes (limit 1 MB)`);

  // ---- the token prompt ----------------------------------------------------------------------------------------
  step = 'signing in';
  await page.goto(`${BASE}/ui/`);
  await page.locator('[data-testid="token"]').waitFor({ state: 'visible' });
  await page.fill('[data-testid="token"]', 'not-the-token');
  await page.click('[data-testid="token-submit"]');
  await eventually('the wrong token refused', async () => (await text('#login-error')).includes('refused'));
  await shot('01-token-prompt');
  await page.fill('[data-testid="token"]', TOKEN);
  await page.click('[data-testid="token-submit"]');
  await page.locator('[data-testid="pipeline-shop"]').waitFor({ timeout: 10000 });
  for (const node of ['source-in', 'bus', 'rule-big', 'rule-all', 'rule-fragile', 'target-big-http', 'target-big-audit', 'target-all-log', 'target-fragile-probe']) {
    await page.locator(`[data-testid="pipeline-shop"] [data-testid="node-${node}"]`).waitFor({ timeout: 5000 });
  }
  log('signed in; pipeline shop drawn as source -> bus -> 3 rules -> 4 targets');

  // ---- live counts after events reach the webhook -------------------------------------------------------------
  step = 'live counts';
  for (let id = 1; id <= 6; id++) {
    await post('/hooks/in', { id, customer: `c${id}`, total: id <= 2 ? 500 : 5 });
  }
  await eventually('rule all counts 6', async () => (await text('[data-testid="count-rule-all"]')).startsWith('6 matched'));
  await eventually('rule big counts 2', async () => (await text('[data-testid="count-rule-big"]')).startsWith('2 matched'));
  await eventually('target log delivered 6', async () => (await text('[data-testid="count-target-all-log"]')).startsWith('6 delivered'));
  await eventually('bus holds 6', async () => (await text('[data-testid="count-bus"]')).startsWith('6 records'));
  await eventually('the throughput chart has a reading', async () => !(await text('#legend-throughput')).includes('–'));
  await shot('02-pipelines-live-counts');
  log('live counts: 6 records on the bus, all 6, big 2, log delivered 6');

  // ---- dead letters: the HTTP target answered 500, so the two big orders are dead-lettered; re-drive one --------
  step = 'dead letters';
  await eventually('target http dead-lettered 2', async () => (await text('[data-testid="count-target-big-http"]')).includes('2 DLQ'));
  await page.goto(`${BASE}/ui/#/dlq`);
  await eventually('the DLQ topic is offered', async () => (await page.locator('[data-testid="dlq-topic"] option[value="shop.big.http.dlq"]').count()) === 1);
  await page.selectOption('[data-testid="dlq-topic"]', 'shop.big.http.dlq');
  await page.locator('[data-testid="dlq-record-1"]').waitFor({ timeout: 10000 });
  check((await text('[data-testid="dlq-record-0"]')).includes('500'), 'the DLQ row shows the HTTP error');
  const dlq = await api('GET', '/dlq/shop.big.http.dlq');
  const wanted = dlq.records[1].event.detail.id;
  await fetch(`${CONTROL}/status`, { method: 'PUT', body: '200' });
  await page.locator('[data-testid="dlq-record-1"] [data-testid="redrive"]').click();
  await eventually('the console says one was re-driven', async () => (await text('[data-testid="dlq-note"]')) === 're-driven: 1');
  const received = await eventually('the receiver gets the re-driven event', async () => {
    const got = await (await fetch(`${CONTROL}/received`)).json();
    return got.length >= 1 ? got : null;
  });
  check(received.length === 1, `exactly one event re-driven, receiver got ${received.length}`);
  check(received[0].detail.id === wanted, `re-driven event ${received[0].detail.id}, expected ${wanted} (offset 1)`);
  await shot('03-dlq-redriven');
  log(`dead letters: offset 1 (order ${wanted}) re-driven and delivered`);

  // ---- a connector that traps is shown failed with its error, and restarted from the console --------------------
  step = 'connector restart';
  await post('/hooks/in', { id: 99, customer: 'c9', total: 1, cmd: '!trap boom-from-the-console-test' });
  // The lane retries once (restarting the instance after its backoff) before it gives up; wait for that, so
  // the restart below is the console's and nothing calls the connector after it.
  await page.goto(`${BASE}/ui/#/pipelines`);
  await eventually('the trapping event is dead-lettered', async () => (await text('[data-testid="count-target-fragile-probe"]')).includes('1 DLQ'));
  await page.goto(`${BASE}/ui/#/connectors`);
  const row = page.locator('[data-testid="connector-shop/fragile/probe"]');
  await eventually('the probe connector is FAILED', async () => (await row.locator('[data-testid="state"]').textContent()) === 'FAILED');
  const failure = await row.locator('[data-testid="failure"]').textContent();
  check(failure.startsWith('trap: probe trap: boom-from-the-console-test'), `the last error leads with the guest's message: ${failure}`);
  await shot('04-connector-failed');
  await row.locator('[data-testid="restart"]').click();
  await eventually('the probe connector is RUNNING again', async () => (await row.locator('[data-testid="state"]').textContent()) === 'RUNNING');
  const status = await api('GET', '/connectors/shop/fragile/probe/status');
  check(status.state === 'RUNNING' && status.tasks[0].state === 'running', `server-side status: ${JSON.stringify(status)}`);
  await shot('05-connector-restarted');
  log('connector shop/fragile/probe: FAILED with its trap message, restarted, RUNNING');

  // ---- the playground: which rules match, what each target receives --------------------------------------------
  step = 'playground';
  await page.goto(`${BASE}/ui/#/playground?pipeline=shop`);
  await eventually('the pipeline is offered', async () => (await page.locator('[data-testid="play-pipeline"]').inputValue()) === 'shop');
  const event = { version: '0', id: 'e-7', 'detail-type': 'order', source: 'shop', account: '', time: '2026-01-01T00:00:00Z',
    region: '', resources: [], detail: { id: 7, customer: 'c7', total: 250 } };
  await page.fill('[data-testid="play-event"]', JSON.stringify(event, null, 2));
  await page.click('[data-testid="play-run"]');
  await page.locator('[data-testid="play-rule-big"]').waitFor({ timeout: 5000 });
  const matches = {};
  for (const rule of ['big', 'all', 'fragile']) {
    matches[rule] = await page.locator(`[data-testid="play-rule-${rule}"]`).getAttribute('data-match');
  }
  check(JSON.stringify(matches) === JSON.stringify({ big: 'true', all: 'true', fragile: 'false' }), `matches: ${JSON.stringify(matches)}`);
  check((await text('[data-testid="play-summary"]')) === '2 of 3 rules match', 'summary');
  const audit = JSON.parse(await text('[data-testid="play-input-big-audit"]'));
  check(JSON.stringify(audit) === JSON.stringify({ order: 7, total: 250 }), `audit receives ${JSON.stringify(audit)}`);
  const http = JSON.parse(await text('[data-testid="play-input-big-http"]'));
  check(http.detail.id === 7 && http.source === 'shop', `http receives the whole event: ${JSON.stringify(http)}`);
  await shot('06-playground');
  log('playground: big and all match, fragile does not; audit receives {"order":7,"total":250}, http the event');

  // ---- topics and groups ---------------------------------------------------------------------------------------
  step = 'topics and groups';
  await page.goto(`${BASE}/ui/#/topics`);
  const topic = page.locator('[data-testid="topic-shop"]');
  await topic.waitFor({ timeout: 5000 });
  await eventually('topic shop: 2 partitions, 7 records', async () => {
    const cells = await topic.locator('td').allTextContents();
    return cells[1] === '2' && cells[2] === '7' ? cells : null;
  });
  await topic.locator('button.expander').click();
  await page.locator('#topics tr.sub').nth(1).waitFor({ timeout: 5000 });
  await shot('07-topics');
  await page.goto(`${BASE}/ui/#/groups`);
  await eventually('the router group with lag 0', async () => {
    const cells = await page.locator('[data-testid="group-busbar.router.shop"] td').allTextContents();
    return cells[3] === '0' ? cells : null;
  });
  await shot('08-groups');
  log('topics and groups shown');

  // ---- a new pipeline version from the editor: a bad one is refused with the report, a good one applied --------
  step = 'editing the pipeline';
  await page.goto(`${BASE}/ui/#/pipelines`);
  await page.click('[data-testid="edit-shop"]');
  const editor = page.locator('#editor-text');
  await eventually('the editor holds the running version', async () => JSON.parse(await editor.inputValue()).name === 'shop');
  const spec = JSON.parse(await editor.inputValue());
  const bad = structuredClone(spec);
  bad.rules[0].pattern = { detail: { total: [{ numeric: ['~', 1] }] } };
  await editor.fill(JSON.stringify(bad, null, 2));
  await page.click('#editor-apply');
  await eventually('the rejection is shown', async () => (await text('#editor-error')).includes('request body:'));
  check((await api('GET', '/pipelines/shop')).spec.rules[0].pattern.detail.total[0].numeric[0] === '>', 'the old version still runs');
  await shot('09-edit-rejected');
  const good = structuredClone(spec);
  good.rules.find((r) => r.name === 'fragile').enabled = false;
  await editor.fill(JSON.stringify(good, null, 2));
  await page.click('#editor-apply');
  await eventually('the editor closes', async () => !(await page.locator('#editor').isVisible()));
  await eventually('the diagram shows the rule disabled', async () =>
    (await text('[data-testid="node-rule-fragile"] .kind')) === 'rule · disabled');
  const verdict = await api('POST', '/rules/test', { pipeline: 'shop', event: { source: 'shop', detail: { cmd: 'x' } } });
  check(verdict.rules.find((r) => r.rule === 'fragile').match === false, 'the disabled rule no longer matches');
  await shot('10-edit-applied');
  log('editor: a bad version refused with its report, a good one (fragile disabled) applied');

  check(pageErrors.length === 0, `errors in the page: ${pageErrors.join('; ')}`);
  log('all steps passed');
  await browser.close();
} catch (err) {
  console.error(`console test FAILED at "${step}": ${err.message}`);
  if (pageErrors.length) console.error(`errors in the page: ${pageErrors.join('; ')}`);
  await page.screenshot({ path: join(ARTIFACTS, 'failure.png'), fullPage: true }).catch(() => {});
  await browser.close();
  process.exit(1);
}
