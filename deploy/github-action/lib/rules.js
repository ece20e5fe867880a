// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// The policy the action attaches: the `allow` input's lines as policy rules,
// the presets, the repository's policy file (included), and the runner's
// connections already open when the step ran, written as one YAML file that
// weir parses and checks (its errors point back at the input's line).
'use strict';

const net = require('node:net');

const PORT_RE = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/;
const PRESET_RE = /^[a-z0-9][a-z0-9-]{0,31}$/;

function checkPorts(s, where) {
	const m = PORT_RE.exec(s);
	if (!m)
		throw new Error(`${where}: '${s}' is not a port or a range (443, 8000-8100)`);
	const lo = Number(m[1]);
	const hi = m[2] === undefined ? lo : Number(m[2]);
	if (lo < 1 || hi > 65535 || hi < lo)
		throw new Error(`${where}: ports must be 1 to 65535, low end first: '${s}'`);
	return m[2] === undefined ? lo : `${lo}-${hi}`;
}

// An address or prefix: IPv4, IPv6, with /LEN.
function addrKind(s) {
	const [a, len, extra] = s.split('/');
	if (extra !== undefined || !net.isIP(a))
		return '';
	if (len === undefined)
		return 'ip';
	const max = net.isIPv4(a) ? 32 : 128;
	return /^[0-9]{1,3}$/.test(len) && Number(len) <= max ? 'cidr' : '';
}

// One line of `allow`: host, *.host, **.host, an address or CIDR, each with
// an optional :PORT or :LOW-HIGH (IPv6 bracketed: [2001:db8::1]:443), and
// /udp or /tcp after the port. With a port and no protocol, TCP; without a
// port, every port and protocol (as the policy's rules without ports:).
function parseAllowLine(line, where) {
	let s = line.trim();
	let proto = '';
	const pm = /\/(udp|tcp)$/i.exec(s);
	if (pm) {
		proto = pm[1].toLowerCase();
		s = s.slice(0, -pm[0].length);
	}
	let host = s;
	let port = '';
	const br = /^\[([^\]]+)\](?::(.+))?$/.exec(s);
	if (br) {
		host = br[1];
		port = br[2] || '';
	} else if ((s.match(/:/g) || []).length === 1) {
		[host, port] = s.split(':');
	}
	if (!host)
		throw new Error(`${where}: no host in '${line.trim()}'`);
	if (proto && !port)
		throw new Error(`${where}: '/${proto}' needs a port: HOST:PORT/${proto}`);
	const rule = {};
	const kind = addrKind(host);
	if (kind)
		rule[kind] = host;
	else if (host.includes(':') || host.includes('/'))
		throw new Error(`${where}: '${host}' is neither a name nor an IPv4/IPv6 address or prefix`);
	else
		rule.domain = host.toLowerCase();
	if (port) {
		rule.ports = checkPorts(port, where);
		rule.proto = proto || 'tcp';
	}
	return rule;
}

// Every line of the input; blank lines and '#' comments skipped. Each rule
// keeps its line for the comment the policy file carries above it.
function parseAllow(text) {
	const rules = [];
	text.split('\n').forEach((raw, i) => {
		const line = raw.replace(/(^|\s)#.*$/, '').trim();
		if (line)
			rules.push({ ...parseAllowLine(line, `allow: line ${i + 1}`), line: i + 1, text: line });
	});
	return rules;
}

// Comma-, space- or newline-separated names of built-in presets;
// github-actions is always there (the runner's own traffic).
function parsePresets(text) {
	const names = ['github-actions'];
	for (const n of text.split(/[\s,]+/).filter(Boolean)) {
		const name = n.replace(/^preset:/, '');
		if (!PRESET_RE.test(name))
			throw new Error(`presets: '${n}' is not a preset name (weir policy show lists them)`);
		if (!names.includes(name))
			names.push(name);
	}
	return names;
}

function yamlRule(r) {
	const key = r.domain !== undefined ? 'domain' : r.ip !== undefined ? 'ip' : 'cidr';
	const out = [`  - ${key}: ${JSON.stringify(r[key])}`];
	if (r.ports !== undefined)
		out.push(`    ports: [${r.ports}]`, `    proto: ${r.proto}`);
	return out.join('\n');
}

// The job's policy. `mode` decides (the repository's file may only repeat
// it: weir's include rules); `repoPolicy` is the name of the included copy
// of the repository's policy file, next to this one. `docker`: the job may use
// dockerd's socket, which weir's built-in unix list refuses (Linux 6.7+): with
// sudo kept the socket gives nothing root does not (docs/github-action.md).
function buildPolicy({ mode, presets, rules, repoPolicy, open, docker }) {
	const out = [
		'# Written by the weir GitHub Action for this job (docs/github-action.md).',
		'version: 1',
		'name: github-action',
		`mode: ${mode === 'audit' ? 'audit' : 'enforce'}`,
		'include:',
		...presets.map((p) => `  - preset:${p}`),
	];
	if (repoPolicy)
		out.push(`  - ${JSON.stringify(repoPolicy)}`);
	const allow = [];
	for (const r of rules)
		allow.push(`  # allow: line ${r.line}: ${r.text.replace(/[^\x20-\x7e]/g, '?')}`, yamlRule(r));
	for (const c of open || [])
		allow.push(`  # open before the weir step: ${c.comm} pid ${c.pid}`,
			   yamlRule({ ip: c.addr, ports: c.port, proto: 'tcp' }));
	out.push(allow.length ? 'allow:' : 'allow: []', ...allow);
	if (docker)
		out.push('# docker in the steps: dockerd is root, as sudo is (sudo: keep)',
			 'unix:', '  allow: [/var/run/docker.sock, /run/docker.sock]');
	return `${out.join('\n')}\n`;
}

// `ss -tnpH state established` lines: "RECVQ SENDQ LOCAL PEER users:((...))".
// The peers of the processes in PIDS, loopback left out (allowed anyway).
function openConnections(ssOut, pids) {
	const seen = new Map();
	for (const line of ssOut.split('\n')) {
		const f = line.trim().split(/\s+/);
		if (f.length < 5)
			continue;
		const peer = /^\[?([^\]]+?)\]?:([0-9]+)$/.exec(f[3]);
		const users = f.slice(4).join(' ');
		if (!peer)
			continue;
		let addr = peer[1].replace(/^::ffff:/, '').replace(/%.*$/, '');
		if (!net.isIP(addr) || /^127\./.test(addr) || addr === '::1')
			continue;
		for (const m of users.matchAll(/\("((?:[^"\\]|\\.)*)",pid=([0-9]+)/g)) {
			const pid = Number(m[2]);
			if (!pids.has(pid))
				continue;
			const key = `${addr} ${peer[2]}`;
			if (!seen.has(key))
				seen.set(key, { addr, port: Number(peer[2]), pid, comm: m[1] });
		}
	}
	return [...seen.values()];
}

module.exports = { parseAllowLine, parseAllow, parsePresets, buildPolicy, openConnections };
