#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
//
// Node's mailparser (npm) side of the parse benchmark: prints one JSON line
// of "comparable fields" per input file (directories walked, entries
// sorted), the same shape as tests/diff/py_fields.py and gmime_fields:
//
//   {"file", "subject", "from": [{"name", "email"}], "to", "cc",
//    "date": "YYYY-MM-DDTHH:MM:SSZ" | null, "message_id", "in_reply_to",
//    "references": [ids], "text", "html",
//    "attachments": [{"filename", "content_type", "size", "sha256"}]}
//
// Uses simpleParser, which decodes every body and attachment into Buffers;
// size and SHA-256 are taken from those Buffers. Options keep it to the same
// work as the other parsers: no text->HTML or HTML->text derivation, cid:
// links left as sent (by default simpleParser inlines images as data: URIs
// into the HTML). Files are parsed one after another (await), one process.
//
// --quiet: do all the work, print nothing (for benchmarks).
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { simpleParser } = require('mailparser');

const OPTIONS = {
    keepCidLinks: true,
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipTextLinks: true,
    skipImageLinks: true,
};

function inputs(paths, out) {
    for (const p of paths) {
        let st;
        try {
            st = fs.statSync(p);
        } catch (e) {
            out.push(p);
            continue;
        }
        if (st.isDirectory()) {
            const names = fs.readdirSync(p).filter((n) => !n.startsWith('.'));
            names.sort();
            inputs(names.map((n) => path.join(p, n)), out);
        } else {
            out.push(p);
        }
    }
    return out;
}

// mailparser gives an AddressObject, or an array of them when the header
// repeats; groups carry their members in .group.
function addresses(field) {
    const out = [];
    if (!field) {
        return out;
    }
    const objs = Array.isArray(field) ? field : [field];
    const stack = [];
    for (const o of objs) {
        for (const v of o.value || []) {
            stack.push(v);
        }
    }
    for (const v of stack) {
        if (Array.isArray(v.group)) {
            for (const g of v.group) {
                out.push({ name: g.name || null, email: g.address || null });
            }
            continue;
        }
        out.push({ name: v.name || null, email: v.address || null });
    }
    return out;
}

function ids(v) {
    if (!v) {
        return [];
    }
    const list = Array.isArray(v) ? v : [v];
    const out = [];
    for (const s of list) {
        const re = /<([^<>]*)>/g;
        let m;
        let found = false;
        while ((m = re.exec(String(s))) !== null) {
            found = true;
            if (m[1].trim()) {
                out.push(m[1].trim());
            }
        }
        if (!found && String(s).trim()) {
            out.push(String(s).trim());
        }
    }
    return out;
}

function isoDate(d) {
    if (!(d instanceof Date) || isNaN(d.getTime())) {
        return null;
    }
    return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function lf(s) {
    return typeof s === 'string' ? s.replace(/\r\n/g, '\n') : null;
}

function fields(file, parsed) {
    const mid = ids(parsed.messageId);
    const irt = ids(parsed.inReplyTo);
    const atts = [];
    for (const a of parsed.attachments || []) {
        const buf = Buffer.isBuffer(a.content) ? a.content
            : Buffer.from(a.content || '');
        atts.push({
            filename: a.filename || null,
            content_type: (a.contentType || 'application/octet-stream')
                .toLowerCase(),
            size: buf.length,
            sha256: crypto.createHash('sha256').update(buf).digest('hex'),
        });
    }
    return {
        file: file,
        subject: parsed.subject === undefined ? null : parsed.subject,
        from: addresses(parsed.from),
        to: addresses(parsed.to),
        cc: addresses(parsed.cc),
        date: isoDate(parsed.date),
        message_id: mid.length ? mid[0] : null,
        in_reply_to: irt.length ? irt[0] : null,
        references: ids(parsed.references),
        text: lf(parsed.text),
        html: lf(parsed.html),
        attachments: atts,
    };
}

async function main(argv) {
    const quiet = argv.includes('--quiet');
    const paths = argv.filter((a) => !a.startsWith('--'));
    if (paths.length === 0) {
        process.stderr.write('usage: mailparser_fields.js [--quiet] ' +
            'FILE|DIR...\n');
        return 2;
    }
    const chunks = [];
    for (const file of inputs(paths, [])) {
        let rec;
        try {
            const data = fs.readFileSync(file);
            rec = fields(file, await simpleParser(data, OPTIONS));
        } catch (e) {
            rec = { file: file, error: String(e && e.message || e)
                .slice(0, 200) };
        }
        if (!quiet) {
            chunks.push(JSON.stringify(rec) + '\n');
            if (chunks.length >= 64) {
                process.stdout.write(chunks.join(''));
                chunks.length = 0;
            }
        }
    }
    if (chunks.length) {
        process.stdout.write(chunks.join(''));
    }
    return 0;
}

main(process.argv.slice(2)).then((rc) => {
    process.exitCode = rc;
});
