// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// The weir action's main step: build weir, start `weir daemon` in a cgroup of
// its own, attach the job's policy to the cgroup of the runner's worker (every
// later step runs there) and to the parent cgroup of the job's containers,
// then prove it with a canary that must be denied. In block mode any error
// fails the step: it never leaves the job with open egress and a green tick.
// docs/github-action.md has the why of each part.
'use strict';

const fs = require('node:fs');
const net = require('node:net');
const dns = require('node:dns');
const path = require('node:path');
const os = require('node:os');
const { spawn } = require('node:child_process');

const runner = require('./lib/runner.js');
const cg = require('./lib/cgroup.js');
const rules = require('./lib/rules.js');
const sys = require('./lib/system.js');

const WORKER_COMM = 'Runner.Worker';
// The canary: an address of TEST-NET-1 (RFC 5737), never routed; port 9
// (discard). And a name under .invalid (RFC 6761), which no resolver answers.
const CANARY = { dst: '192.0.2.1', port: 9, name: 'weir-canary.invalid' };

function oneOf(name, value, allowed) {
	if (!allowed.includes(value))
		throw new Error(`input ${name}: '${value}' is not one of ${allowed.join(', ')}`);
	return value;
}

function readInputs() {
	const mode = oneOf('mode', runner.getInput('mode') || 'block', ['block', 'audit']);
	const fod = runner.getInput('fail-on-deny') || (mode === 'block' ? 'true' : 'false');
	const max = runner.getInput('annotations') || '10';
	if (!/^[0-9]{1,3}$/.test(max))
		throw new Error(`input annotations: '${max}' is not a number 0..999`);
	let allow, presets;
	try {
		allow = rules.parseAllow(runner.getInput('allow'));
		presets = rules.parsePresets(runner.getInput('presets'));
	} catch (e) {
		throw new Error(`input ${e.message}`);
	}
	return {
		mode,
		allow,
		presets,
		policy: runner.getInput('policy'),
		sudo: oneOf('sudo', runner.getInput('sudo') || 'keep', ['keep', 'drop']),
		failOnDeny: oneOf('fail-on-deny', fod, ['true', 'false']) === 'true',
		summary: oneOf('summary', runner.getInput('summary') || 'full', ['full', 'compact', 'none']),
		annotations: Number(max),
		containerCgroup: runner.getInput('container-cgroup'),
	};
}

// The cgroups to attach: the worker's, and the containers' parent.
function findCgroups(inp) {
	const mount = cg.cgroup2Mount(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
	if (!mount)
		throw new Error('no cgroup v2 mount in /proc/self/mountinfo: weir needs cgroup v2 ' +
				'(pure, or hybrid at /sys/fs/cgroup/unified)');
	const own = cg.cgroupPath(fs.readFileSync('/proc/self/cgroup', 'utf8'));
	if (!own)
		throw new Error('this process is in no cgroup v2 (/proc/self/cgroup has no 0:: line)');
	const worker = cg.findAncestor(process.pid, WORKER_COMM);
	let workerCg = own;
	if (worker)
		workerCg = cg.cgroupPath(cg.readProc(worker, 'cgroup')) || own;
	else
		runner.warning(`weir: no ${WORKER_COMM} process above this one: attaching this step's own cgroup ${own}`);
	if (!cg.isAtOrBelow(own, workerCg))
		throw new Error(`this step runs in ${own}, outside the worker's cgroup ${workerCg}`);
	if (workerCg === '/')
		throw new Error('the runner\'s worker is in the root cgroup: attaching it would enforce the ' +
				'whole machine, this action\'s daemon included; run the runner in a cgroup of its own');
	let containers = inp.containerCgroup;
	if (containers === 'none')
		containers = '';
	else if (containers)
		containers = path.posix.normalize(`/${containers}`);
	else if (fs.existsSync('/etc/docker/daemon.json'))
		containers = cg.dockerParent(fs.readFileSync('/etc/docker/daemon.json', 'utf8'));
	if (!containers && inp.containerCgroup !== 'none' && cg.dockerPresent())
		throw new Error('Docker is here, but /etc/docker/daemon.json names no "cgroup-parent": its ' +
				'containers would not be enforced; set container-cgroup (or "none" to leave them)');
	return { mount, own, worker, workerCg, containers };
}

// weir itself: the binary WEIR_ACTION_WEIR names (tests), else built from
// the action's own checkout: `make deps-build` (apt-get, the build's packages) as
// root, then `make`.
function buildWeir(env = process.env) {
	if (env.WEIR_ACTION_WEIR)
		return env.WEIR_ACTION_WEIR;
	const src = env.GITHUB_ACTION_PATH || path.resolve(__dirname, '../..');
	runner.info(`weir: building weir in ${src} (make deps-build, make)`);
	// The build's packages only, not the tests'.
	sys.mustRoot(['make', '-C', src, 'deps-build'], 'make deps-build failed',
		     { stdio: ['ignore', 'inherit', 'inherit'] });
	const r = sys.run(['make', '-C', src, `-j${os.cpus().length || 1}`],
			  { stdio: ['ignore', 'inherit', 'inherit'] });
	if (r.status !== 0)
		throw new Error(`make failed (exit ${r.status})`);
	return path.join(src, 'build', 'weir');
}

// "FILE:LINE:COL: msg" of the policy we wrote, told as the input line.
function explainPolicyError(text, msg) {
	const m = /:([0-9]+):[0-9]+: (.*)$/.exec(msg.trim().split('\n').pop());
	if (!m)
		return msg.trim();
	const lines = text.split('\n');
	for (let i = Number(m[1]) - 1; i >= 0 && i >= Number(m[1]) - 4; i--) {
		const c = /^ {2}# (allow: line [0-9]+): (.*)$/.exec(lines[i] || '');
		if (c)
			return `${c[1]} ('${c[2]}'): ${m[2]}`;
	}
	return msg.trim().replace(/^weir: /, '');
}

function writePolicy(inp, p, weir, tmp, open) {
	sys.mustRoot(['install', '-d', '-o', '0', '-g', '0', '-m', '0755', p.root, p.policies], `cannot make ${p.root}`);
	let repo = '';
	if (inp.policy) {
		const ws = process.env.GITHUB_WORKSPACE || process.cwd();
		const file = path.resolve(ws, inp.policy);
		let text;
		try {
			text = fs.readFileSync(file, 'utf8');
		} catch (e) {
			throw new Error(`input policy: cannot read ${file}: ${e.code || e.message}`);
		}
		// The daemon reads only root's files: a root-owned copy, included.
		repo = 'repo-policy.inc';
		sys.writeRoot(path.join(p.policies, repo), text, tmp);
	}
	const text = rules.buildPolicy({ mode: inp.mode, presets: inp.presets, rules: inp.allow, repoPolicy: repo, open,
					 docker: inp.sudo === 'keep' });
	const file = path.join(p.policies, 'job.yaml');
	sys.writeRoot(file, text, tmp);
	const r = sys.run([weir, 'policy', 'check', file]);
	if (r.status !== 0)
		throw new Error(`the policy does not load: ${explainPolicyError(text, r.stderr)}`);
	return file;
}

// The runner's own connections, open before this step (its job messages,
// live logs): their peers are allowed by address, or the egress backstop
// would cut them the moment the worker's cgroup is attached.
function openConnections(mount, workerCg) {
	let procs;
	try {
		procs = fs.readFileSync(path.join(mount, workerCg, 'cgroup.procs'), 'utf8');
	} catch {
		return [];
	}
	const pids = new Set(procs.split('\n').filter(Boolean).map(Number));
	const r = sys.asRoot(['ss', '-tnpH', 'state', 'established']);
	if (r.status !== 0) {
		runner.warning(`weir: ss failed (${r.stderr.trim()}): connections open before this step are not kept`);
		return [];
	}
	return rules.openConnections(r.stdout, pids);
}

function startDaemon(p, weir, dcg, log) {
	const old = readPid(p.pidfile);
	if (sys.alive(old) && cg.readProc(old, 'comm').trim() === 'weir')
		throw new Error(`a weir daemon of this action runs already (pid ${old}, ${p.pidfile})`);
	// A dead daemon's pid file (a runner that ran the action before) would
	// read as the new daemon dying at once.
	sys.mustRoot(['rm', '-f', p.pidfile], `cannot remove ${p.pidfile}`);
	sys.mustRoot(['install', '-d', '-o', '0', '-g', '0', '-m', '0700', p.state], `cannot make ${p.state}`);
	// A fresh event log, readable by the job's user (outputs.events).
	sys.mustRoot(['install', '-o', '0', '-g', '0', '-m', '0644', '/dev/null', p.events], `cannot make ${p.events}`);
	sys.mustRoot(['mkdir', '-p', dcg], `cannot make the daemon's cgroup ${dcg}`);
	// Into its own cgroup before exec: the daemon never runs, not even for a
	// moment, inside a cgroup it enforces (it would refuse its own clients).
	const argv = sys.rootArgv(['sh', '-c', 'echo $$ >"$1/cgroup.procs" && echo $$ >"$2" && shift 2 && exec "$@"',
		'sh', dcg, p.pidfile, weir, 'daemon', '--socket', p.socket, '--policy-dir', p.policies,
		'--state-dir', p.state, '--pin-root', p.pins, '--events', p.events, '--detach-on-exit']);
	const fd = fs.openSync(log, 'a');
	const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', fd, fd] });
	child.unref();
	fs.closeSync(fd);
	for (let i = 0; i < 300; i++) {
		const pid = readPid(p.pidfile);
		if (pid && sys.asRoot([weir, 'ps', '--socket', p.socket]).status === 0)
			return pid;
		if (child.exitCode !== null || (pid && !sys.alive(pid)))
			break;
		sys.sleep(100);
	}
	throw new Error(`weir daemon did not start: ${tail(log)}`);
}

function readPid(file) {
	try {
		return Number(fs.readFileSync(file, 'utf8').trim()) || 0;
	} catch {
		return 0;
	}
}

function tail(file) {
	try {
		return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
	} catch {
		return '(no log)';
	}
}

function attach(p, weir, label, dir) {
	const r = sys.asRoot([weir, 'attach', '--socket', p.socket, '--policy', 'job', '--name', label, dir]);
	if (r.status !== 0)
		throw new Error(`weir attach ${dir} failed: ${(r.stderr || r.stdout).trim()}`);
	runner.info(r.stdout.trim());
}

// A TCP connect to the canary: block mode must get EPERM at once, from the
// kernel; anything else (connected, refused, a timeout) means packets leave.
function tcpCanary() {
	return new Promise((resolve) => {
		const s = net.connect({ host: CANARY.dst, port: CANARY.port });
		const done = (what) => {
			clearTimeout(t);
			s.destroy();
			resolve(what);
		};
		const t = setTimeout(() => done('no answer within 3 s'), 3000);
		s.on('connect', () => done('connected'));
		s.on('error', (e) => done(e.code || e.message));
	});
}

// A query for a name no rule allows: weir's resolver refuses it without
// forwarding it; NXDOMAIN would mean it went to a real resolver.
async function dnsCanary() {
	const r = new dns.promises.Resolver({ timeout: 2000, tries: 1 });
	try {
		await r.resolve4(CANARY.name);
		return 'answered';
	} catch (e) {
		return e.code || e.message;
	}
}

async function canary(mode, p) {
	if (mode === 'block') {
		const tcp = await tcpCanary();
		if (tcp !== 'EPERM')
			throw new Error(`canary: a connection to ${CANARY.dst}:${CANARY.port} was not denied ` +
					`(${tcp}): this step's egress is not enforced`);
		const q = await dnsCanary();
		if (q !== 'EREFUSED')
			throw new Error(`canary: the query for ${CANARY.name} was not refused by weir's resolver (${q})`);
		return;
	}
	// Audit mode lets it through: the proof is the would-deny event.
	await Promise.race([tcpCanary(), new Promise((r) => setTimeout(r, 300))]);
	for (let i = 0; i < 40; i++) {
		const ev = fs.readFileSync(p.events, 'utf8');
		if (ev.includes(`"dst":"${CANARY.dst}","port":${CANARY.port},`) && ev.includes(`"pid":${process.pid},`))
			return;
		await new Promise((r) => setTimeout(r, 50));
	}
	throw new Error(`canary: no event for a connection to ${CANARY.dst}:${CANARY.port}: this step is not watched`);
}

// The container engines' API sockets: whoever reaches one is root (a
// privileged container, the host's / mounted). GitHub's runner user is in
// the docker group.
const ENGINE_SOCKETS = ['/run/docker.sock', '/var/run/docker.sock', '/run/containerd/containerd.sock',
			'/run/podman/podman.sock', '/run/crio/crio.sock', '/run/buildkit/buildkitd.sock'];

// With sudo dropped the engines' sockets become root's alone (mode 0600).
// weir's built-in unix: list refuses their paths, but a cgroup hook judges
// a path as spelled: /proc/self/root/run/docker.sock or a symlink reaches
// the same socket where the BPF LSM is not active (docs/threat-model.md);
// the socket's own mode holds for every path. Not restored: drop is for
// ephemeral runners.
function lockEngineSockets() {
	const seen = new Set();
	for (const p of ENGINE_SOCKETS) {
		let st;
		try {
			st = fs.statSync(p);
		} catch {
			continue;
		}
		if (!st.isSocket() || seen.has(`${st.dev}:${st.ino}`))
			continue;
		seen.add(`${st.dev}:${st.ino}`);
		if (!(st.mode & 0o077) && st.uid === 0)
			continue;
		sys.mustRoot(['chown', 'root:root', p], `sudo: drop: cannot take ${p} from the job`);
		sys.mustRoot(['chmod', '0600', p], `sudo: drop: cannot take ${p} from the job`);
		runner.info(`weir: sudo: drop: ${p} is root's alone now (it was mode ` +
			    `${(st.mode & 0o777).toString(8)}, uid ${st.uid}, gid ${st.gid}): later steps cannot reach it`);
	}
}

// The runner's user loses sudo for the rest of the job: a sudoers rule read
// last (sudoers.d in order; the last match wins) that allows nothing.
function dropSudo(tmp) {
	if (sys.isRoot()) {
		runner.warning('weir: sudo: drop does nothing: this step runs as root, and so do the later ones');
		return;
	}
	lockEngineSockets();
	const user = os.userInfo().username;
	const file = '/etc/sudoers.d/zzzz-weir-drop';
	sys.writeRoot(file, `# weir GitHub Action (sudo: drop): ${user} may no longer use sudo in this job\n` +
		      `${user} ALL=(ALL:ALL) !ALL\n`, tmp, '0440');
	if (sys.run(['sudo', '-n', 'true']).status === 0)
		throw new Error(`sudo: drop: ${user} can still use sudo (${file} did not take)`);
}

async function main() {
	const inp = readInputs();
	const env = process.env;
	const tmp = path.join(env.RUNNER_TEMP || os.tmpdir(), 'weir');
	fs.mkdirSync(tmp, { recursive: true });
	const p = sys.paths();
	runner.saveState('mode', inp.mode);
	runner.saveState('tmp', tmp);
	if (process.platform !== 'linux')
		throw new Error(`weir runs on Linux only, not ${process.platform}`);
	if (!sys.canRoot())
		throw new Error('this step needs root: run it as root, or as a user with passwordless sudo');
	const cgs = findCgroups(inp);
	const weir = buildWeir();
	const open = openConnections(cgs.mount, cgs.workerCg);
	writePolicy(inp, p, weir, tmp, open);
	const dcg = path.join(cgs.mount, p.daemonCgroup);
	const dcgRel = `/${path.relative(cgs.mount, dcg)}`;
	for (const c of [cgs.workerCg, cgs.containers].filter(Boolean))
		if (cg.isAtOrBelow(dcgRel, c) || cg.isAtOrBelow(c, dcgRel))
			throw new Error(`the daemon's cgroup ${dcgRel} and ${c}, which it enforces, overlap`);
	const pid = startDaemon(p, weir, dcg, path.join(tmp, 'daemon.log'));
	runner.saveState('root', p.root);
	runner.saveState('weir', weir);
	runner.saveState('pid', pid);
	runner.saveState('canary', JSON.stringify({ ...CANARY, pid: process.pid }));
	runner.saveState('config', JSON.stringify({ failOnDeny: inp.failOnDeny, summary: inp.summary,
		annotations: inp.annotations, sudo: inp.sudo, worker: cgs.worker, pins: p.pins }));
	runner.setOutput('events', p.events);
	runner.setOutput('suggested-policy', path.join(tmp, 'suggested-policy.yaml'));
	const labels = [];
	// The containers' parent first: once the worker's cgroup is attached,
	// this process is inside it, and the daemon refuses it as a client.
	if (cgs.containers) {
		sys.mustRoot(['mkdir', '-p', path.join(cgs.mount, cgs.containers)],
			     `cannot make the containers' cgroup ${cgs.containers}`);
		attach(p, weir, 'containers', path.join(cgs.mount, cgs.containers));
		labels.push('containers');
	}
	attach(p, weir, 'worker', path.join(cgs.mount, cgs.workerCg));
	labels.push('worker');
	runner.saveState('attachments', labels.join(','));
	await canary(inp.mode, p);
	if (inp.sudo === 'drop')
		dropSudo(tmp);
	runner.saveState('ok', '1');
	runner.info(`weir: ${inp.mode === 'block' ? 'enforcing' : 'auditing'} the egress of every later step ` +
		    `(${cgs.workerCg}${cgs.containers ? `, containers ${cgs.containers}` : ''}); presets: ` +
		    `${inp.presets.join(', ')}; ${inp.allow.length} allow rule(s)` +
		    `${inp.policy ? `, policy ${inp.policy}` : ''}${open.length ? `; ${open.length} connection(s) open before this step kept` : ''}`);
}

main().catch((e) => {
	const mode = runner.getInput('mode') || 'block';
	if (mode === 'audit' && !/^input /.test(e.message)) {
		runner.warning(`weir: ${e.message} (audit mode: the job goes on, unwatched)`);
		return;
	}
	runner.setFailed(e.message);
});
