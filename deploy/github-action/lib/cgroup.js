// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// Which cgroups the action attaches, found at run time (docs/github-action.md):
// the cgroup2 mount from /proc/self/mountinfo, the runner's worker process by
// walking up from this process, its cgroup from /proc/PID/cgroup, and the
// parent cgroup of the job's Docker containers from dockerd's configuration.
// The text parsers take strings, so tests feed them /proc-shaped text.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

// mountinfo escapes space, tab, newline and backslash as \ooo.
function unescapeMount(s) {
	return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

// The first cgroup2 mount: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS] - cgroup2 SRC OPTS".
// Pure v2 hosts have it at /sys/fs/cgroup, hybrid ones at /sys/fs/cgroup/unified.
function cgroup2Mount(mountinfo) {
	for (const line of mountinfo.split('\n')) {
		const sep = line.indexOf(' - ');
		if (sep < 0)
			continue;
		const post = line.slice(sep + 3).split(' ');
		const pre = line.slice(0, sep).split(' ');
		if (post[0] === 'cgroup2' && pre.length >= 5 && pre[3] === '/')
			return unescapeMount(pre[4]);
	}
	return '';
}

// The v2 line of /proc/PID/cgroup: "0::/system.slice/x.service".
function cgroupPath(procCgroup) {
	for (const line of procCgroup.split('\n'))
		if (line.startsWith('0::'))
			return line.slice(3).replace(/ \(deleted\)$/, '') || '/';
	return '';
}

// /proc/PID/stat: "PID (COMM) STATE PPID ..."; COMM may hold spaces and ')'.
function ppidOf(stat) {
	const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
	return parseInt(rest[1], 10);
}

function readProc(pid, file) {
	try {
		return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
	} catch {
		return '';
	}
}

// Walk up from PID to the first process named COMM (the runner's
// Runner.Worker, which starts every step of the job). null if none.
function findAncestor(pid, comm, proc = readProc) {
	for (let p = pid, n = 0; p > 1 && n < 64; n++) {
		if (proc(p, 'comm').trim() === comm)
			return p;
		const stat = proc(p, 'stat');
		if (!stat)
			return null;
		p = ppidOf(stat);
	}
	return null;
}

// A is B or below it (both paths below the cgroup2 mount, '/'-rooted).
function isAtOrBelow(a, b) {
	return b === '/' || a === b || a.startsWith(b.endsWith('/') ? b : `${b}/`);
}

// systemd's slice names: "a-b.slice" is /a.slice/a-b.slice.
function sliceToPath(slice) {
	const base = slice.slice(0, -'.slice'.length);
	if (!base || base === '-')
		return '/';
	const parts = base.split('-');
	const out = [];
	for (let i = 1; i <= parts.length; i++)
		out.push(`${parts.slice(0, i).join('-')}.slice`);
	return `/${out.join('/')}`;
}

// dockerd's "cgroup-parent" (daemon.json): a path for the cgroupfs driver
// (GitHub's hosted runners: "/actions_job"), a slice for the systemd one.
function dockerParent(daemonJson) {
	let conf;
	try {
		conf = JSON.parse(daemonJson);
	} catch {
		return '';
	}
	const p = conf && typeof conf['cgroup-parent'] === 'string' ? conf['cgroup-parent'].trim() : '';
	if (!p)
		return '';
	if (p.endsWith('.slice') && !p.includes('/'))
		return sliceToPath(p);
	return path.posix.normalize(p.startsWith('/') ? p : `/${p}`);
}

function dockerPresent() {
	return ['/var/run/docker.sock', '/run/docker.sock'].some((s) => fs.existsSync(s)) ||
		fs.existsSync('/etc/docker/daemon.json');
}

module.exports = {
	cgroup2Mount, cgroupPath, ppidOf, findAncestor, isAtOrBelow, sliceToPath, dockerParent,
	dockerPresent, readProc,
};
