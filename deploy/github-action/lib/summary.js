// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// The job summary, outputs and annotations, from the JSON lines the action's
// weir daemon writes with --events (docs/events.md; each line has the
// attachment's label in "attachment"). Pure functions of their input, so
// tests/action/unit.test.js checks them against golden files.
'use strict';

const MAX_ROWS = 200; // per table in the full summary
const COMPACT_ROWS = 10;

// The canary the main step sends after attaching (main.js): its own
// denials are the action's check, not the job's.
function isCanary(ev, canary) {
	if (!canary || ev.pid !== canary.pid)
		return false;
	if (ev.op === 'dns')
		return ev.name === canary.name;
	return ev.dst === canary.dst && ev.port === canary.port;
}

// One JSON object a line; a line that is not one is counted, not fatal:
// a report with a note beats no report.
function parseEvents(text) {
	const events = [];
	let bad = 0;
	for (const line of text.split('\n')) {
		if (!line.trim())
			continue;
		try {
			const ev = JSON.parse(line);
			if (ev && typeof ev === 'object' && !Array.isArray(ev))
				events.push(ev);
			else
				bad++;
		} catch {
			bad++;
		}
	}
	return { events, bad };
}

// The runner's Worker log (_diag/Worker_*.log) has one trace line as each
// step starts: "[2026-08-06 18:23:45Z INFO StepsRunner] Processing step:
// DisplayName='Run tests'" (older runners append ", AlwaysRun=..."). Their
// times, to the second, date the events: an event belongs to the last step
// that started before it.
const STEP_RE = /^\[(?:WORKER )?(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})Z INFO StepsRunner\] Processing step: DisplayName='(.*?)'(?:, AlwaysRun=.*)?$/;

function parseWorkerLog(text) {
	const steps = [];
	for (const line of text.split('\n')) {
		const m = STEP_RE.exec(line.trimEnd());
		if (m)
			steps.push({ name: m[3], start: Date.parse(`${m[1]}T${m[2]}Z`) });
	}
	return steps.filter((s) => !Number.isNaN(s.start)).sort((a, b) => a.start - b.start);
}

// The log has whole seconds: steps that started in the event's own second
// and the one before them may each have made it ("A or B").
function stepOf(ev, steps) {
	const t = Date.parse(ev.ts);
	if (!steps || Number.isNaN(t))
		return '';
	const sec = Math.floor(t / 1000) * 1000;
	const before = steps.filter((s) => s.start < sec);
	const same = steps.filter((s) => s.start === sec);
	const names = [...before.slice(-1), ...same].map((s) => s.name);
	return names.join(' or ');
}

function verdictClass(v) {
	if (v === 'deny')
		return 'deny';
	if (v === 'would-deny')
		return 'would';
	return v === 'allow' ? 'allow' : '';
}

function hostPort(addr, port) {
	return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

// The row an event counts in: its key, and what the table shows.
function rowOf(ev) {
	const proto = ev.proto || '';
	switch (ev.op) {
	case 'dns':
		return { key: `dns ${ev.name}`, kind: 'dns', dest: ev.name || '', pp: 'dns',
			 domain: ev.name || '', addr: '' };
	case 'socket':
	case 'setsockopt':
		return { key: `${ev.op} ${ev.type} ${proto} ${ev.reason}`, kind: ev.op,
			 dest: ev.op === 'socket' ? `${ev.type || '?'} ${proto} socket` :
				 ev.reason === 'multicast-join' ? 'multicast group join' :
				 'source-routing socket option', pp: '', domain: '', addr: '' };
	case 'inbound':
		return { key: `inbound ${ev.src} ${ev.port} ${proto}`, kind: 'inbound',
			 dest: `inbound from ${ev.src}`, pp: `${ev.port}/${proto}`, domain: '', addr: '' };
	default:
		if (typeof ev.dst !== 'string' || typeof ev.port !== 'number')
			return null;
		return { key: `${ev.domain || ev.dst} ${ev.port} ${proto}`, kind: 'conn',
			 dest: ev.dst, pp: `${ev.port}/${proto}`, domain: ev.domain || '', addr: ev.dst,
			 port: ev.port, proto };
	}
}

// Every decision of the job, by verdict and destination. Left out: the
// canary, a datagram socket's connect() that sent nothing ("sent":false,
// glibc's probes), and DNS sockets sent to weir's resolver (every policy
// allows those; the queries themselves are counted as "dns" events).
function aggregate(events, opts = {}) {
	const agg = { mode: opts.mode || '', allowed: 0, denied: 0, would: 0, dnsRefused: 0,
		      dnsAnswered: 0, lost: 0, rows: { allow: new Map(), deny: new Map(), would: new Map() } };
	for (const ev of events) {
		if (ev.op === 'run-start' || ev.op === 'run-end' || ev.op === 'message')
			continue;
		if (opts.attachments && ev.attachment !== undefined && !opts.attachments.includes(ev.attachment))
			continue;
		if (isCanary(ev, opts.canary) || ev.sent === false || ev.reason === 'dns-to-weir-resolver')
			continue;
		const cls = verdictClass(ev.verdict);
		if (!cls)
			continue;
		if (!agg.mode && ev.mode)
			agg.mode = ev.mode === 'audit' ? 'audit' : 'block';
		if (ev.op === 'dns') {
			if (cls === 'deny')
				agg.dnsRefused++;
			else
				agg.dnsAnswered++;
			if (cls === 'allow')
				continue; // an answered name shows up as its connections
		} else if (cls === 'allow') {
			agg.allowed++;
		} else if (cls === 'deny') {
			agg.denied++;
		} else {
			agg.would++;
		}
		const r = rowOf(ev);
		if (!r)
			continue;
		const map = agg.rows[cls];
		let row = map.get(r.key);
		if (!row) {
			row = { ...r, addrs: new Set(), comms: new Set(), steps: new Set(), count: 0,
				metadata: ev.reason === 'metadata-endpoint' };
			map.set(r.key, row);
		}
		row.count++;
		if (r.addr)
			row.addrs.add(r.addr);
		if (ev.comm)
			row.comms.add(ev.comm);
		const step = stepOf(ev, opts.steps);
		if (step)
			row.steps.add(step);
	}
	return agg;
}

// Rows most frequent first, then by destination: a stable order for the
// golden files and for people.
function sortedRows(map) {
	return [...map.values()].sort((a, b) => b.count - a.count ||
		(a.domain || a.dest).localeCompare(b.domain || b.dest) || a.pp.localeCompare(b.pp));
}

// Table cells: program-chosen text (names, comm) must not make markup.
function cell(s) {
	return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
		.replace(/\|/g, '&#124;').replace(/`/g, '&#96;').replace(/[\r\n]/g, ' ');
}

function list(set, max = 3) {
	const a = [...set];
	return a.length > max ? `${a.slice(0, max).join(', ')} +${a.length - max}` : a.join(', ');
}

function destCell(row) {
	const a = [...row.addrs];
	if (a.length > 1)
		return `${a[0]} (+${a.length - 1} more)`;
	return row.dest;
}

function table(rows, max) {
	const out = ['| destination | port/proto | domain | process | step | count |',
		     '|---|---|---|---|---|---:|'];
	for (const r of rows.slice(0, max))
		out.push(`| ${cell(destCell(r))} | ${cell(r.pp || '-')} | ${cell(r.domain || '-')} | ` +
			 `${cell(list(r.comms) || '-')} | ${cell(list(r.steps, 2) || '-')} | ${r.count} |`);
	if (rows.length > max)
		out.push(`| ... and ${rows.length - max} more | | | | | |`);
	return out.join('\n');
}

// What the action's `allow` input would need for the denied destinations:
// names where the events know them, else addresses; /udp for UDP. Refused
// DNS names without a connection get the bare name (every port): narrow it.
// Cloud metadata endpoints are never suggested (instance credentials).
function allowList(agg) {
	const seen = new Set();
	const out = [];
	const add = (s) => {
		if (!seen.has(s)) {
			seen.add(s);
			out.push(s);
		}
	};
	for (const cls of ['deny', 'would']) {
		for (const r of sortedRows(agg.rows[cls])) {
			if (r.kind === 'conn' && !r.metadata) {
				const suffix = r.proto === 'udp' ? '/udp' : '';
				add(r.domain ? `${r.domain}:${r.port}${suffix}` : `${hostPort(r.addr, r.port)}${suffix}`);
			}
		}
		for (const r of sortedRows(agg.rows[cls]))
			if (r.kind === 'dns' && ![...seen].some((s) => s.startsWith(`${r.domain}:`)))
				add(r.domain);
	}
	return out.sort();
}

function headline(agg) {
	const mode = agg.mode || 'block';
	let h = `**weir** egress (${mode}): ${agg.allowed} allowed, `;
	h += mode === 'audit' ? `${agg.would} would be denied` : `${agg.denied} denied`;
	if (mode === 'audit' && agg.denied)
		h += `, ${agg.denied} denied (cloud metadata)`;
	if (agg.dnsRefused)
		h += `, ${agg.dnsRefused} DNS ${agg.dnsRefused === 1 ? 'query' : 'queries'} refused`;
	return h;
}

// style: full (headline, denied table, allowed in <details>, allow list),
// compact (headline and the first denied rows), none ('').
function render(agg, opts = {}) {
	const style = opts.style || 'full';
	if (style === 'none')
		return '';
	const out = [`### weir`, '', headline(agg), ''];
	const max = style === 'compact' ? COMPACT_ROWS : MAX_ROWS;
	const denied = sortedRows(agg.rows.deny);
	const would = sortedRows(agg.rows.would);
	if (denied.length)
		out.push('#### Denied', '', table(denied, max), '');
	if (would.length)
		out.push('#### Would be denied (audit mode: let through)', '', table(would, max), '');
	if (!denied.length && !would.length)
		out.push(agg.mode === 'audit' ? 'Nothing would have been denied.' : 'Nothing was denied.', '');
	for (const n of opts.notes || [])
		out.push(`> ${cell(n)}`, '');
	if (style === 'compact')
		return out.join('\n');
	const allowed = sortedRows(agg.rows.allow);
	out.push(`<details><summary>Allowed: ${allowed.length} destination${allowed.length === 1 ? '' : 's'}` +
		 `</summary>`, '');
	if (allowed.length)
		out.push(table(allowed, MAX_ROWS), '');
	out.push('</details>', '');
	const al = allowList(agg);
	if (al.length)
		out.push('#### Allow list', '', 'To allow what was denied, add to the step\'s `with:` ' +
			 '(review each one: a denial may be the attack it stopped):', '', '```yaml',
			 'allow: |', ...al.map((s) => `  ${s}`), '```', '');
	return out.join('\n');
}

// At most `max` annotations, one per denied destination, most frequent first.
function annotations(agg, max = 10) {
	const out = [];
	const one = (r, verb) => {
		let what = r.dest;
		if (r.kind === 'conn')
			what = `${r.proto} ${r.domain ? `${r.domain}:${r.port} (${r.addr})` : hostPort(r.addr, r.port)}`;
		else if (r.kind === 'dns')
			what = `dns ${r.dest}`;
		let m = `weir ${verb} ${what} by ${list(r.comms) || '?'}`;
		if (r.steps.size)
			m += ` in step '${list(r.steps, 2)}'`;
		return `${m}, ${r.count} time${r.count === 1 ? '' : 's'}`;
	};
	for (const r of sortedRows(agg.rows.deny))
		out.push({ kind: 'error', msg: one(r, 'denied') });
	for (const r of sortedRows(agg.rows.would))
		out.push({ kind: 'warning', msg: one(r, 'would deny') });
	return out.slice(0, max);
}

module.exports = {
	parseEvents, parseWorkerLog, stepOf, aggregate, render, allowList, annotations, headline,
	cell,
};
