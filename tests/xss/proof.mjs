// SPDX-License-Identifier: Apache-2.0
//
// proof.mjs - the browser proof of the HTML sanitizer (issue 5).
//
// Every payload of ../shared/vectors/xss.jsonl is sanitized by
// `mailroom html sanitize --jsonl` and served, inside <div class="mr-html">
// as the agent UI shows a message, from a loopback HTTP server to Debian's
// chromium driven by playwright-core. In every frame an init script
// replaces alert/confirm/prompt/print, fetch, XMLHttpRequest, window.open,
// sendBeacon, WebSocket, EventSource and form submission with recorders;
// the Chrome DevTools protocol reports every script the page compiles
// (inline handlers and javascript: URLs included), so a payload that runs
// without calling any of those is seen too. Every request other than the
// page itself is recorded and refused; a navigation of the page counts.
// After load the init script fires mouse, keyboard, focus, drag, clipboard
// and other events at every element and clicks each one; then the page
// has a moment for timers.
//
// A payload "executes" when a script of its own ran or an instrumented
// API was called. Sanitized: no payload may execute, load anything, leave
// the page or open anything but an http(s)/mailto link in a new tab
// (clicked links are allowed: that is what links are for). Control: the
// same harness on the unsanitized payloads must see at least
// --control-floor of them execute (default 0.35: 166 of 423, 39%, were
// measured; docs/content.md says why not more), which shows the harness
// can fail.
//
// Exit: 0 proof holds, 1 it does not, 2 harness error.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const argv = process.argv.slice(2);
const opt = {
  mailroom: null, vectors: null, chromium: '/usr/bin/chromium',
  controlFloor: 0.35, caseTimeout: 8000, totalTimeout: 1500000,
  only: null, verbose: false, skipControl: false, nodeDir: null,
};
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const next = () => argv[++i];
  if (a === '--mailroom') opt.mailroom = next();
  else if (a === '--vectors') opt.vectors = next();
  else if (a === '--chromium') opt.chromium = next();
  else if (a === '--control-floor') opt.controlFloor = Number(next());
  else if (a === '--case-timeout') opt.caseTimeout = Number(next());
  else if (a === '--total-timeout') opt.totalTimeout = Number(next());
  else if (a === '--only') opt.only = next();
  else if (a === '--skip-control') opt.skipControl = true;
  else if (a === '--verbose') opt.verbose = true;
  else if (a === '--node-dir') opt.nodeDir = next();
  else { console.error(`proof.mjs: unknown argument ${a}`); process.exit(2); }
}
if (!opt.mailroom || !opt.vectors || !opt.nodeDir) {
  console.error('usage: node proof.mjs --mailroom BIN --vectors xss.jsonl --node-dir DIR');
  process.exit(2);
}
// playwright-core is installed by `npm ci` in the build tree (run.sh).
const { chromium } = createRequire(path.join(path.resolve(opt.nodeDir), 'package.json'))('playwright-core');

// The whole run is bounded, whatever a payload does to the browser.
setTimeout(() => {
  console.error(`proof.mjs: over the total timeout of ${opt.totalTimeout} ms`);
  process.exit(2);
}, opt.totalTimeout).unref();

let rows = fs.readFileSync(opt.vectors, 'utf8').split('\n').filter(Boolean)
  .map((l) => JSON.parse(l));
if (opt.only) rows = rows.filter((r) => r.id === opt.only);

// --- sanitize every payload in one run of the binary -------------------
const input = rows.map((r) => JSON.stringify({ id: r.id, html: r.payload }))
  .join('\n') + '\n';
const san = spawnSync(opt.mailroom, ['html', 'sanitize', '--jsonl'],
  { input, maxBuffer: 1 << 28, timeout: 120000 });
if (san.status !== 0) {
  console.error(`mailroom html sanitize --jsonl: status ${san.status}\n${san.stderr}`);
  process.exit(2);
}
const sanitized = new Map();
for (const l of san.stdout.toString('utf8').split('\n').filter(Boolean)) {
  const o = JSON.parse(l);
  sanitized.set(o.id, o.html_sanitized);
}
for (const r of rows) {
  if (typeof sanitized.get(r.id) !== 'string') {
    console.error(`no sanitized output for ${r.id}`);
    process.exit(2);
  }
}

// --- the page server -----------------------------------------------------
const bodies = new Map(); // "/case/N" -> HTML of the message
const server = http.createServer((req, res) => {
  const body = bodies.get(req.url);
  if (body === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store' });
  res.end('<!doctype html><html><head><meta charset="utf-8"><title>message'
    + '</title></head><body><div class="mr-html">' + body
    + '</div></body></html>');
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const origin = `http://127.0.0.1:${server.address().port}`;

// --- instrumentation, run first in every frame ---------------------------
const INSTRUMENT = `(() => {
  const report = window.__mrHit;
  const hit = (kind, detail) => {
    try { report(kind, String(detail).slice(0, 200)); } catch (e) {}
  };
  const stub = (obj, name, kind, ret) => {
    try {
      Object.defineProperty(obj, name, { configurable: false, writable: false,
        value: function (a) { hit(kind || name, a); return ret; } });
    } catch (e) {}
  };
  stub(window, 'alert'); stub(window, 'confirm', null, false);
  stub(window, 'prompt', null, null); stub(window, 'print');
  stub(window, 'open', 'window.open', null);
  stub(window, 'fetch', 'fetch', new Promise(() => {}));
  stub(navigator, 'sendBeacon', 'sendBeacon', false);
  stub(XMLHttpRequest.prototype, 'open', 'xhr');
  stub(XMLHttpRequest.prototype, 'send', 'xhr');
  stub(HTMLFormElement.prototype, 'submit', 'form.submit');
  stub(HTMLFormElement.prototype, 'requestSubmit', 'form.submit');
  stub(window, 'WebSocket', 'websocket');
  stub(window, 'EventSource', 'eventsource');
  stub(document, 'write', 'document.write');
  stub(document, 'writeln', 'document.write');
  addEventListener('submit', (e) => { hit('submit', e.target && e.target.action);
    e.preventDefault(); }, true);
  if (window.top !== window) return;
  const events = ['mouseover', 'mouseenter', 'mousemove', 'mousedown',
    'mouseup', 'mouseout', 'mouseleave', 'click', 'dblclick', 'auxclick',
    'contextmenu', 'pointerover', 'pointerenter', 'pointerdown', 'pointerup',
    'pointermove', 'focus', 'focusin', 'blur', 'focusout', 'keydown',
    'keypress', 'keyup', 'input', 'beforeinput', 'change', 'select', 'wheel',
    'scroll', 'dragstart', 'drag', 'dragenter', 'dragover', 'dragleave',
    'drop', 'dragend', 'copy', 'cut', 'paste', 'touchstart', 'touchend',
    'animationstart', 'animationend', 'transitionend', 'toggle', 'invalid',
    'search', 'load', 'error', 'formdata', 'reset', 'show', 'beforetoggle'];
  const drive = () => {
    const els = Array.from(document.querySelectorAll('*')).slice(0, 3000);
    for (const el of els) {
      for (const t of events) {
        try { el.dispatchEvent(new Event(t, { bubbles: true, cancelable: true })); }
        catch (e) {}
      }
      try { el.focus(); } catch (e) {}
      try { el.click(); } catch (e) {}
    }
    hit('done', '');
  };
  addEventListener('load', () => setTimeout(drive, 50));
})();
//# sourceURL=mr-instrument.js
`;

// What counts. Sanitized pages may show nothing of these but 'link'.
const EXEC = new Set(['script', 'alert', 'confirm', 'prompt', 'print',
  'window.open', 'fetch', 'sendBeacon', 'xhr', 'form.submit', 'websocket',
  'eventsource', 'document.write', 'submit', 'dialog']);

async function newBrowser() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-xss-'));
  // A fresh profile per browser (mkdtemp), given as Playwright wants it.
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: opt.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
      '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    timeout: 30000,
  });
  const browser = context;
  const state = { current: null, page: null };
  const record = (kind, detail) => {
    if (state.current) state.current.hits.push({ kind, detail });
  };
  await context.exposeBinding('__mrHit', (src, kind, detail) => {
    if (kind === 'done') { if (state.current) state.current.done(); return; }
    record(kind, detail);
  });
  await context.addInitScript({ content: INSTRUMENT });
  await context.route('**/*', async (route, req) => {
    const u = req.url();
    let page = null;
    try { page = req.frame().page(); } catch (e) { /* service worker */ }
    const main = page === state.page;
    if (main && state.current && u === state.current.url) return route.continue();
    if (!main && req.isNavigationRequest() && /^(https?|mailto):/i.test(u)) {
      record('link', u);
      return route.abort();
    }
    if (main && req.isNavigationRequest() && req.frame() === page.mainFrame()) {
      record('navigation', u);
    } else if (u.startsWith(origin + '/')) {
      record('request', u);
    } else {
      record('remote', u);
    }
    return route.abort();
  });
  // Pages the case page opens (its 'popup' event records them) are
  // closed soon; they are never driven.
  context.on('page', (p) => {
    setTimeout(() => { if (p !== state.page) p.close().catch(() => {}); }, 300);
  });
  return { browser, context, state, dir };
}

async function closeBrowser(b) {
  await Promise.race([b.browser.close().catch(() => {}),
    new Promise((ok) => setTimeout(ok, 5000))]);
  fs.rmSync(b.dir, { recursive: true, force: true });
}

let seq = 0;
async function runCase(b, html) {
  const key = `/case/${++seq}`;
  bodies.set(key, html);
  const c = { url: origin + key, hits: [], done: null };
  const doneP = new Promise((ok) => { c.done = ok; });
  b.state.current = c;
  const page = await b.context.newPage();
  b.state.page = page;
  const cdp = await b.context.newCDPSession(page);
  const contexts = new Map();
  cdp.on('Runtime.executionContextCreated', (e) => {
    contexts.set(e.context.id, e.context.auxData || {});
  });
  cdp.on('Debugger.scriptParsed', (e) => {
    const aux = e.executionContextAuxData || contexts.get(e.executionContextId) || {};
    if (aux.type && aux.type !== 'default') return; // Playwright's own worlds
    if (e.url === 'mr-instrument.js' || e.url.startsWith('__playwright')) return;
    c.hits.push({ kind: 'script', hash: e.hash,
      detail: e.url || `(inline ${e.length} chars)` });
  });
  await cdp.send('Runtime.enable');
  await cdp.send('Debugger.enable');
  page.on('popup', (p) => c.hits.push({ kind: 'popup', detail: p.url() }));
  page.on('dialog', (d) => { c.hits.push({ kind: 'dialog', detail: d.message() });
    d.dismiss().catch(() => {}); });
  page.on('pageerror', () => {});
  await page.goto(c.url, { waitUntil: 'load', timeout: 4000 }).catch(() => {});
  await Promise.race([doneP, new Promise((ok) => setTimeout(ok, 2500))]);
  await new Promise((ok) => setTimeout(ok, 250)); // timers
  b.state.current = null;
  bodies.delete(key);
  await Promise.race([
    (async () => { await cdp.detach().catch(() => {}); await page.close({ runBeforeUnload: false }); })(),
    new Promise((ok) => setTimeout(ok, 3000))]).catch(() => {});
  return c.hits;
}

// Scripts our binding and init script compile show up on every page with
// no payload at all: their hashes, seen on empty messages, are ignored.
const ours = new Set();
async function baseline(b) {
  for (let i = 0; i < 3; i++)
    for (const h of await runCase(b, '')) if (h.kind === 'script') ours.add(h.hash);
}

async function runAll(label, htmlOf) {
  let b = await newBrowser();
  await baseline(b);
  const results = [];
  for (const r of rows) {
    let hits;
    try {
      hits = await Promise.race([runCase(b, htmlOf(r)),
        new Promise((_, no) => setTimeout(() => no(new Error('timeout')), opt.caseTimeout))]);
    } catch (e) {
      // A payload that hangs the renderer: count what was seen, start over.
      hits = (b.state.current ? b.state.current.hits : []).concat([{ kind: 'timeout', detail: String(e) }]);
      b.state.current = null;
      await closeBrowser(b);
      b = await newBrowser();
    }
    hits = hits.filter((h) => !(h.kind === 'script' && ours.has(h.hash)));
    const kinds = new Set(hits.map((h) => h.kind));
    results.push({ id: r.id, kinds: [...kinds], hits });
    if (opt.verbose) console.log(`${label} ${r.id}: ${[...kinds].join(',') || '-'}`);
  }
  await closeBrowser(b);
  return { results };
}

const t0 = Date.now();
// The control runs beside the proof, in a browser of its own (its own
// profile and state; the page server keys bodies per case): one after the
// other they took 6.5 minutes, most of it waiting on timers.
const ctlP = opt.skipControl ? null : runAll('control', (r) => r.payload);
const sanRun = await runAll('sanitized', (r) => sanitized.get(r.id));
const allowed = new Set(['link', 'popup', 'timeout']);
const failures = sanRun.results.filter((x) => x.kinds.some((k) => !allowed.has(k)));
const sanExec = sanRun.results.filter((x) => x.kinds.some((k) => EXEC.has(k)));
const timeouts = sanRun.results.filter((x) => x.kinds.includes('timeout'));
console.log(`sanitized: ${rows.length} payloads, ${sanExec.length} executed, `
  + `${failures.length} with any effect (request, navigation, script), `
  + `${timeouts.length} timed out, ${sanRun.results.filter((x) => x.kinds.includes('link')).length} `
  + `followed a clicked http(s)/mailto link in a new tab (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
for (const f of timeouts) console.log(`  TIMEOUT ${f.id}: ${JSON.stringify(f.hits.slice(0, 5))}`);
for (const f of failures) {
  console.log(`  FAIL ${f.id}: ${JSON.stringify(f.hits.slice(0, 5))}\n    ${sanitized.get(f.id).slice(0, 300)}`);
}

let controlOk = true;
if (!opt.skipControl) {
  const ctl = await ctlP;
  const exec = ctl.results.filter((x) => x.kinds.some((k) => EXEC.has(k)));
  const need = Math.ceil(opt.controlFloor * rows.length);
  controlOk = exec.length >= need;
  console.log(`control: ${rows.length} unsanitized payloads, ${exec.length} executed `
    + `(${(100 * exec.length / rows.length).toFixed(1)}%), floor ${need} `
    + `(${opt.controlFloor}) ${controlOk ? 'met' : 'NOT MET'} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (opt.verbose) {
    const byKind = {};
    for (const x of exec) for (const k of x.kinds) byKind[k] = (byKind[k] || 0) + 1;
    console.log(`  by kind: ${JSON.stringify(byKind)}`);
  }
}
server.close();
const ok = failures.length === 0 && timeouts.length === 0 && controlOk;
console.log(ok ? 'PROOF HOLDS' : 'PROOF FAILS');
process.exit(ok ? 0 : 1);
