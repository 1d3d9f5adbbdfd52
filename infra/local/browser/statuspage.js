// Drives the operators' status page in headless Chromium through
// playwright-core: opens the migrations list, follows its links to a running
// and a finished migration, checks what each page shows, fetches report.csv
// through the page's own link, and takes screenshots.
//
// Usage: node statuspage.js <config.json>; the config is written by
// e2e/statuspage (see statuspage_test.go for its fields). Prints one JSON
// line {"ok": true, "checks": [...]} or exits 1 with the failed check.
'use strict';

const fs = require('fs');
const { chromium } = require('playwright-core');

// Without the background-networking flags Chromium tries to reach its
// update and sync services, whose connections a closed network refuses.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const checks = [];
function check(ok, what, detail) {
  if (!ok) {
    throw new Error(`${what}${detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
  }
  checks.push(what);
}

async function main() {
  const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const ctx = await chromium.launchPersistentContext(cfg.userDataDir, {
    executablePath: cfg.chromium, headless: true, args: ARGS,
    viewport: { width: 1200, height: 600 }, deviceScaleFactor: 1,
  });
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    const problems = [];
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(String(e)));
    await listPage(page, cfg);
    await migrationPage(page, cfg, cfg.running, 'running');
    await migrationPage(page, cfg, cfg.finished, 'finished');
    check(problems.length === 0, 'no console errors or CSP violations', problems);
  } finally {
    await ctx.close();
  }
  process.stdout.write(JSON.stringify({ ok: true, checks }) + '\n');
}

async function listPage(page, cfg) {
  const resp = await page.goto(cfg.baseURL + '/api/status');
  check(resp.status() === 200, 'list: 200', resp.status());
  const csp = resp.headers()['content-security-policy'] || '';
  check(csp.startsWith("default-src 'none'"), 'list: CSP header', csp);
  for (const m of [cfg.running, cfg.finished]) {
    check(await page.locator(`#migrations a:text-is("${m.id}")`).count() === 1, `list: links ${m.id}`);
  }
  // The inline style sheet applies: the CSP's hash matches it.
  const collapse = await page.$eval('table', (t) => getComputedStyle(t).borderCollapse);
  check(collapse === 'collapse', 'list: style sheet applied under the CSP', collapse);
  check(await page.evaluate(() => document.scripts.length) === 0, 'list: no script elements');
  fs.mkdirSync(cfg.screenshotDir, { recursive: true });
  await page.screenshot({ path: `${cfg.screenshotDir}/status-list.png` });
  checks.push('list: screenshot');
}

async function migrationPage(page, cfg, m, kind) {
  // Follow the list's relative link, as an operator would.
  await page.goto(cfg.baseURL + '/api/status');
  await page.click(`#migrations a:text-is("${m.id}")`);
  check(new URL(page.url()).pathname === `/api/status/${m.id}`, `${kind}: link leads to its page`, page.url());
  check((await page.textContent('#status')).trim() === m.status, `${kind}: status ${m.status}`, await page.textContent('#status'));
  const bars = await page.$$eval('#batches progress', (ps) => ps.map((p) => [p.value, p.max]));
  check(bars.length === m.batches, `${kind}: ${m.batches} batch progress bars`, bars);
  const full = bars.filter(([v, max]) => v === max).length;
  check(full >= m.fullBars, `${kind}: at least ${m.fullBars} full bars`, bars);
  if (m.status !== 'running') {
    check(full === bars.length, `${kind}: every bar full`, bars);
  }
  for (const id of ['#files-per-s', '#mb-per-s', '#eta']) {
    check((await page.textContent(id)).trim() !== '', `${kind}: ${id} shown`);
  }
  const eta = (await page.textContent('#eta')).trim();
  check(new RegExp(m.etaPattern).test(eta), `${kind}: ETA ${eta} matches ${m.etaPattern}`, eta);
  check(await page.evaluate(() => document.scripts.length + document.images.length) === 0, `${kind}: no script or image elements`);
  if (m.postponedReason) {
    const reasons = await page.$$eval('#postponed td.reason', (ts) => ts.map((t) => t.textContent));
    check(reasons.includes(m.postponedReason), `${kind}: postponed reason shown`, reasons);
    const pickup = await page.$eval('#postponed td:nth-child(3)', (t) => t.textContent);
    check(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/.test(pickup), `${kind}: next pickup shown`, pickup);
    const refresh = await page.$$eval('meta[http-equiv="refresh"]', (ms) => ms.length);
    check(refresh === 1, `${kind}: refreshes while running`);
  }
  if (m.failedPath) {
    const rows = await page.$$eval('#failures tr.failure', (rs) => rs.map((r) => [r.cells[0].textContent, r.cells[3].textContent]));
    const row = rows.find(([p]) => p === m.failedPath);
    check(row !== undefined, `${kind}: failed file listed by its (escaped) name`, rows);
    check(row[1].includes(m.failedReason), `${kind}: failure reason shown`, row);
  }
  await csvLink(page, m, kind);
  fs.mkdirSync(cfg.screenshotDir, { recursive: true });
  await page.screenshot({ path: `${cfg.screenshotDir}/status-${kind}.png`, fullPage: true });
  checks.push(`${kind}: screenshot`);
}

async function csvLink(page, m, kind) {
  const href = await page.$eval('#csv', (a) => a.href);
  const resp = await page.context().request.get(href);
  check(resp.status() === 200, `${kind}: report.csv link answers 200`, [href, resp.status()]);
  const ct = resp.headers()['content-type'] || '';
  check(ct.startsWith('text/csv'), `${kind}: report.csv is text/csv`, ct);
  const body = await resp.text();
  check(body.startsWith('source_path,'), `${kind}: report.csv has its header`, body.slice(0, 80));
  if (m.failedPath) {
    check(body.includes(m.failedPath), `${kind}: report.csv lists the failed file`);
  }
}

main().catch((e) => {
  process.stderr.write(`statuspage: ${e.message}\n`);
  process.exit(1);
});
