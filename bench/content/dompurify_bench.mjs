// SPDX-License-Identifier: Apache-2.0
//
// The Node peers of bench/content_bench.c, for `make bench-content`:
// DOMPurify (in one jsdom window, and in headless Chromium) for the
// sanitizer, html-to-text for html->text. Same input, same method, same
// output shape:
//
//   node dompurify_bench.mjs [--op sanitize|sanitize-mail|sanitize-chromium
//                             |text|all] [--passes N] [--min-seconds S]
//                            BODIES.jsonl
//
// Every body is loaded first; the jsdom window, DOMPurify(window) and
// html-to-text's compiled converter are made once, outside the clock (a
// server would do the same). Each operation then gets one untimed pass
// (JIT warm-up; its outputs are hashed into the checksum) and whole timed
// passes over all bodies until both N passes and S seconds are done; the
// timed passes add up output lengths, which must come to passes x the
// untimed pass's. Garbage collection inside the timed passes is counted:
// it is part of what these libraries cost.
//
// Operations:
//   sanitize       DOMPurify.sanitize(html) with its default configuration:
//                  the main comparison (what most users of DOMPurify run).
//   sanitize-mail  DOMPurify with a configuration closer to mailroom's
//                  rules: URLs limited to http, https, mailto and cid, and
//                  form controls and style elements forbidden. (DOMPurify
//                  does not check CSS inside style attributes, which
//                  mailroom does, so it still does less work.)
//   sanitize-chromium  DOMPurify.sanitize(html), default configuration,
//                  in a page of headless Chromium (playwright-core;
//                  $CHROMIUM, default /usr/bin/chromium): the browser's
//                  own C++ parser and DOM instead of jsdom's JavaScript
//                  ones. The bodies are handed to the page once; the
//                  passes run and are timed inside it (performance.now),
//                  so no IPC is counted.
//   text           html-to-text's convert (compiled once) with wordwrap
//                  off, since mailroom's converter does not wrap lines.
//
// Prints {"driver":"node","bodies":..,"bytes":..,"ops":{"sanitize":{
// "passes","ns","bytes_per_s","out_bytes","errors","checksum"},..}} on
// stdout; bytes count the UTF-8 encoding, as the C driver's do, and
// out_bytes the UTF-8 length of the outputs. Exit 0, or 1 on an error.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// node_modules lives in the build directory (npm ci --prefix there), not
// beside this file: BENCH_NODE_MODULES says where.
const modules = process.env.BENCH_NODE_MODULES;
const where = (name) => (modules ? require.resolve(name, { paths: [modules] }) : require.resolve(name));
const need = (name) => require(where(name));

const OPS = ['sanitize', 'sanitize-mail', 'sanitize-chromium', 'text'];

function usage() {
  process.stderr.write('usage: dompurify_bench.mjs [--op sanitize|sanitize-mail|sanitize-chromium|text|all] ' +
                       '[--passes N] [--min-seconds S] BODIES.jsonl\n');
  process.exit(64);
}

let path = null;
let ops = OPS;
let passes = 1;
let minSeconds = 2;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--op' && i + 1 < argv.length) {
    const v = argv[++i];
    if (v === 'all') ops = OPS;
    else if (OPS.includes(v)) ops = [v];
    else usage();
  } else if (a === '--passes' && i + 1 < argv.length) {
    passes = Number(argv[++i]);
    if (!Number.isInteger(passes) || passes < 1) usage();
  } else if (a === '--min-seconds' && i + 1 < argv.length) {
    minSeconds = Number(argv[++i]);
    if (!(minSeconds >= 0 && minSeconds <= 3600)) usage();
  } else if (a.startsWith('-') || path !== null) {
    usage();
  } else {
    path = a;
  }
}
if (path === null) usage();

const bodies = [];
let bytes = 0;
readFileSync(path, 'utf8').split('\n').forEach((line, n) => {
  if (line === '') return;
  const rec = JSON.parse(line);
  if (typeof rec.html !== 'string') {
    process.stderr.write(`dompurify_bench: ${path}:${n + 1}: no "html" string\n`);
    process.exit(1);
  }
  bodies.push(rec.html);
  bytes += Buffer.byteLength(rec.html, 'utf8');
});
if (bodies.length === 0) {
  process.stderr.write(`dompurify_bench: ${path}: no bodies\n`);
  process.exit(1);
}
process.stderr.write(`dompurify_bench: ${bodies.length} bodies, ${bytes} bytes\n`);

function makeOp(name) {
  if (name === 'text') {
    const { compile } = need('html-to-text');
    const convert = compile({ wordwrap: false });
    return (html) => convert(html);
  }
  const { JSDOM } = need('jsdom');
  const createDOMPurify = need('dompurify');
  const purify = createDOMPurify(new JSDOM('').window);
  if (name === 'sanitize') return (html) => purify.sanitize(html);
  const cfg = {
    ALLOWED_URI_REGEXP: /^(?:https?|mailto|cid):/i,
    FORBID_TAGS: ['style', 'form', 'input', 'button', 'select', 'option', 'textarea'],
  };
  return (html) => purify.sanitize(html, cfg);
}

function report(name, done, ns, errors) {
  const bps = Math.floor(bytes * done * 1e9 / Number(ns));
  process.stderr.write(`dompurify_bench: ${name}: ${done} passes in ${(Number(ns) / 1e9).toFixed(3)} s, ` +
                       `${(bps / 1e6).toFixed(1)} MB/s, ${errors} errors\n`);
  return bps;
}

// The checksum of one pass's outputs, as content_bench.c makes it: each
// output's UTF-8 length (64-bit little-endian), then its bytes.
function hashOutputs(outs) {
  const h = createHash('sha256');
  const len = Buffer.alloc(8);
  let outBytes = 0;
  for (const out of outs) {
    const b = Buffer.from(out, 'utf8');
    len.writeBigUInt64LE(BigInt(b.length));
    h.update(len);
    h.update(b);
    outBytes += b.length;
  }
  return { checksum: h.digest('hex'), outBytes };
}

async function runChromium(name) {
  const { chromium } = need('playwright-core');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // The page runs DOMPurify on our own corpus, nothing from the net;
    // the sandbox needs user namespaces that containers often lack.
    args: ['--no-sandbox'],
  });
  try {
    const page = await browser.newPage();
    await page.addScriptTag({ path: where('dompurify/purify.min.js') });
    await page.evaluate((b) => { globalThis.bodies = b; }, bodies);
    const first = await page.evaluate(() => {
      let errors = 0;
      const outs = globalThis.bodies.map((html) => {
        try { return DOMPurify.sanitize(html); } catch (e) { errors++; return ''; }
      });
      return { outs, errors };
    });
    const want = first.outs.reduce((n, o) => n + o.length, 0);
    const r = await page.evaluate(([passes, minMs]) => {
      let sum = 0;
      let done = 0;
      let ms = 0;
      const t0 = performance.now();
      do {
        for (const html of globalThis.bodies) {
          try { sum += DOMPurify.sanitize(html).length; } catch (e) { /* counted */ }
        }
        done++;
        ms = performance.now() - t0;
      } while (done < passes || ms < minMs);
      return { sum, done, ms };
    }, [passes, minSeconds * 1e3]);
    if (r.sum !== want * r.done) {
      process.stderr.write(`dompurify_bench: ${name}: outputs change between passes\n`);
      process.exitCode = 1;
    }
    const ns = Math.round(r.ms * 1e6);
    const { checksum, outBytes } = hashOutputs(first.outs);
    const bps = report(name, r.done, ns, first.errors);
    process.stderr.write(`dompurify_bench: ${name}: Chromium ${browser.version()}\n`);
    return { passes: r.done, ns, bytes_per_s: bps, out_bytes: outBytes,
             errors: first.errors, checksum, chromium: browser.version() };
  } finally {
    await browser.close();
  }
}

function run(name) {
  const fn = makeOp(name);
  const outs = [];
  let errors = 0;
  // UTF-16 lengths for the timed passes' check (Buffer.byteLength there
  // would time an encoder that is not part of the work).
  let want = 0;
  for (const html of bodies) {
    let out = '';
    try {
      out = fn(html);
    } catch (e) {
      errors++;
    }
    want += out.length;
    outs.push(out);
  }
  const { checksum, outBytes } = hashOutputs(outs);
  outs.length = 0;

  let sum = 0;
  let done = 0;
  let ns = 0n;
  const minNs = BigInt(Math.round(minSeconds * 1e9));
  const t0 = process.hrtime.bigint();
  do {
    for (const html of bodies) {
      try { sum += fn(html).length; } catch (e) { /* counted above */ }
    }
    done++;
    ns = process.hrtime.bigint() - t0;
  } while (done < passes || ns < minNs);
  if (sum !== want * done) {
    process.stderr.write(`dompurify_bench: ${name}: outputs change between passes\n`);
    process.exitCode = 1;
  }
  const bps = report(name, done, ns, errors);
  return { passes: done, ns: Number(ns), bytes_per_s: bps, out_bytes: outBytes,
           errors, checksum };
}

const result = { driver: 'node', bodies: bodies.length, bytes, ops: {} };
for (const name of ops) {
  result.ops[name] = name === 'sanitize-chromium' ? await runChromium(name) : run(name);
}
process.stdout.write(JSON.stringify(result) + '\n');
