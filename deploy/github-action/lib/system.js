// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// Running things as root (directly, or through `sudo -n` for the runner's
// user with passwordless sudo), and the paths the action uses. The paths
// have defaults for a runner; WEIR_ACTION_* variables move them for
// tests/action/run.sh, so that it never touches a daemon, socket or pins of
// the machine's own.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

function paths(env = process.env) {
	const root = env.WEIR_ACTION_ROOT || '/run/weir-action';
	return {
		root,
		policies: path.join(root, 'policies'),
		state: path.join(root, 'state'),
		socket: path.join(root, 'weir.sock'),
		events: path.join(root, 'events.jsonl'),
		pidfile: path.join(root, 'daemon.pid'),
		pins: env.WEIR_ACTION_PIN_ROOT || '/sys/fs/bpf/weir-action',
		daemonCgroup: env.WEIR_ACTION_DAEMON_CGROUP || '/weir-action',
	};
}

function isRoot() {
	return typeof process.getuid === 'function' && process.getuid() === 0;
}

// argv as root: as is when we are root, else through sudo -n (never a
// password prompt: a runner has no terminal to answer it).
function rootArgv(argv) {
	return isRoot() ? argv : ['sudo', '-n', '--', ...argv];
}

function run(argv, opts = {}) {
	const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
	return { status: r.error ? -1 : r.status, stdout: r.stdout || '', stderr: r.error ? String(r.error.message) : r.stderr || '' };
}

function asRoot(argv, opts) {
	return run(rootArgv(argv), opts);
}

// asRoot, or an Error saying what failed and what it said.
function mustRoot(argv, what, opts) {
	const r = asRoot(argv, opts);
	if (r.status !== 0)
		throw new Error(`${what}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ') ||
			`exit status ${r.status}`}`);
	return r;
}

function canRoot() {
	return isRoot() || run(['sudo', '-n', 'true']).status === 0;
}

// A root-owned file with CONTENT (policies must be root's for the daemon to
// read them): written to the runner's temp dir, then installed.
function writeRoot(file, content, tmpdir, mode = '0644') {
	const tmp = path.join(tmpdir, `.${path.basename(file)}.${process.pid}`);
	fs.writeFileSync(tmp, content, { mode: 0o600 });
	try {
		mustRoot(['install', '-o', '0', '-g', '0', '-m', mode, tmp, file], `cannot write ${file}`);
	} finally {
		fs.rmSync(tmp, { force: true });
	}
}

function sleep(ms) {
	Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function alive(pid) {
	if (!pid)
		return false;
	try {
		const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		return !/^\S+ \(.*\) [ZX] /.test(st);
	} catch {
		return false;
	}
}

module.exports = { paths, isRoot, rootArgv, run, asRoot, mustRoot, canRoot, writeRoot, sleep, alive };
