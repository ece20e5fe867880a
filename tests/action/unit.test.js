// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// The action's pure parts, with node's own test runner (node --test): the job
// summary from recorded events against golden files (tests/action/fixtures/;
// WEIR_UPDATE_GOLDEN=1 rewrites them: review the diff), the `allow` input's
// rules, the policy the action writes, and finding the cgroups from
// /proc-shaped text.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const LIB = path.join(__dirname, '../../deploy/github-action/lib');
const summary = require(path.join(LIB, 'summary.js'));
const runner = require(path.join(LIB, 'runner.js'));
const FIX = path.join(__dirname, 'fixtures');

function golden(name, got) {
	const file = path.join(FIX, name);
	if (process.env.WEIR_UPDATE_GOLDEN === '1')
		fs.writeFileSync(file, got);
	assert.equal(got, fs.readFileSync(file, 'utf8'), `${name} differs (WEIR_UPDATE_GOLDEN=1 rewrites it)`);
}

function build(events, opts) {
	const { events: evs, bad } = summary.parseEvents(fs.readFileSync(path.join(FIX, events), 'utf8'));
	const steps = summary.parseWorkerLog(fs.readFileSync(path.join(FIX, 'worker.log'), 'utf8'));
	const agg = summary.aggregate(evs, { steps, ...opts });
	return { agg, bad };
}

const CANARY = { pid: 4000, dst: '192.0.2.1', port: 9, name: 'weir-canary.invalid' };

test('summary: block mode, full', () => {
	const { agg, bad } = build('block.jsonl', { canary: CANARY, mode: 'block' });
	assert.equal(bad, 1);
	assert.equal(agg.allowed, 3, 'two curl connections and the runner\'s');
	assert.equal(agg.denied, 5, 'canary, sent:false and the resolver redirect left out');
	assert.equal(agg.dnsRefused, 1);
	golden('block.md', summary.render(agg, { style: 'full', notes: ['1 line of the event log was not JSON'] }));
	golden('block.annotations', summary.annotations(agg, 10).map((a) => runner.command(a.kind, a.msg)).join('\n') + '\n');
});

test('summary: block mode, compact and none', () => {
	const { agg } = build('block.jsonl', { canary: CANARY, mode: 'block' });
	golden('block-compact.md', summary.render(agg, { style: 'compact' }));
	assert.equal(summary.render(agg, { style: 'none' }), '');
	assert.equal(summary.annotations(agg, 2).length, 2, 'at most N annotations');
});

test('summary: audit mode lists what would be denied, and the metadata denial', () => {
	const { agg } = build('audit.jsonl', { canary: CANARY, mode: 'audit' });
	assert.equal(agg.would, 3);
	assert.equal(agg.denied, 1);
	golden('audit.md', summary.render(agg, { style: 'full' }));
	assert.deepEqual(summary.allowList(agg), ['198.51.100.9:4433/udp', 'registry.npmjs.org:443'], 'never the metadata endpoint');
});

test('summary: no events', () => {
	const { agg } = build('empty.jsonl', { mode: 'block' });
	golden('empty.md', summary.render(agg, { style: 'full' }));
});

test('summary: only the action\'s attachments count', () => {
	const { agg } = build('block.jsonl', { canary: CANARY, mode: 'block', attachments: ['worker'] });
	assert.equal(agg.denied, 4, 'the containers attachment left out');
});

test('summary: steps from the Worker log, to the second', () => {
	const steps = summary.parseWorkerLog(fs.readFileSync(path.join(FIX, 'worker.log'), 'utf8'));
	assert.deepEqual(steps.map((s) => s.name), ['Run ./', 'Fetch the API', 'Run tests', 'Post Run ./']);
	assert.equal(summary.stepOf({ ts: '2026-12-05T09:00:12.000000001Z' }, steps), 'Fetch the API or Run tests',
		     'a step that started in the event\'s second, or the one before it');
	assert.equal(summary.stepOf({ ts: '2026-12-05T09:00:13.5Z' }, steps), 'Run tests');
	assert.equal(summary.stepOf({ ts: '2026-12-05T09:00:03.5Z' }, steps), 'Run ./ or Fetch the API');
	assert.equal(summary.stepOf({ ts: '2026-12-05T09:00:11.999999999Z' }, steps), 'Fetch the API');
	assert.equal(summary.stepOf({ ts: '2026-12-05T08:00:00Z' }, steps), '');
	assert.equal(summary.stepOf({ ts: 'garbage' }, steps), '');
});

test('runner: outputs, state and annotations as the runner reads them', (t) => {
	const dir = fs.mkdtempSync('/tmp/weir-action-unit-');
	t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
	const env = { GITHUB_OUTPUT: path.join(dir, 'out'), GITHUB_STATE: path.join(dir, 'state'), INPUT_FAIL_ON_DENY: ' true \n',
		      'INPUT_FAIL-ON-DENY': 'false' };
	runner.setOutput('denied', 3, env);
	runner.setOutput('list', 'a\nb', env);
	runner.saveState('pid', 42, env);
	const out = fs.readFileSync(env.GITHUB_OUTPUT, 'utf8');
	assert.match(out, /^denied=3\n/);
	assert.match(out, /list<<(weir_[0-9a-f]{16})\na\nb\n\1\n$/);
	assert.equal(fs.readFileSync(env.GITHUB_STATE, 'utf8'), 'pid=42\n');
	assert.equal(runner.getInput('fail-on-deny', env), 'false', 'dashes stay in the variable name');
	assert.equal(runner.command('error', 'a\nb%', { title: 'x:y,z' }), '::error title=x%3Ay%2Cz::a%0Ab%25');
});

const rules = require(path.join(LIB, 'rules.js'));
const cg = require(path.join(LIB, 'cgroup.js'));

test('allow input: each form as a policy rule', () => {
	const got = rules.parseAllow([
		'example.com', '*.npmjs.org:443', '**.example.net:8000-8100', 'dns.test:53/udp',
		'192.0.2.7', '192.0.2.0/24:80', '2001:db8::/32', '[2001:db8::1]:443/tcp', '2001:db8::1',
		'  # a comment', '', 'api.test:443 # trailing comment', 'Mixed.CASE.test',
	].join('\n'));
	assert.deepEqual(got.map(({ line, text, ...r }) => r), [
		{ domain: 'example.com' },
		{ domain: '*.npmjs.org', ports: 443, proto: 'tcp' },
		{ domain: '**.example.net', ports: '8000-8100', proto: 'tcp' },
		{ domain: 'dns.test', ports: 53, proto: 'udp' },
		{ ip: '192.0.2.7' },
		{ cidr: '192.0.2.0/24', ports: 80, proto: 'tcp' },
		{ cidr: '2001:db8::/32' },
		{ ip: '2001:db8::1', ports: 443, proto: 'tcp' },
		{ ip: '2001:db8::1' },
		{ domain: 'api.test', ports: 443, proto: 'tcp' },
		{ domain: 'mixed.case.test' },
	]);
	assert.deepEqual(got.map((r) => r.line), [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13]);
});

test('allow input: errors name the line', () => {
	for (const [text, msg] of [
		['ok.test\nx.test:0', /allow: line 2: ports must be 1 to 65535/],
		['x.test:99999', /ports must be 1 to 65535/],
		['x.test:80-20', /low end first/],
		['x.test:https', /'https' is not a port/],
		['x.test/udp', /'\/udp' needs a port/],
		['192.0.2.0/33', /neither a name nor an IPv4\/IPv6 address/],
	])
		assert.throws(() => rules.parseAllow(text), msg, text);
	assert.deepEqual(rules.parsePresets('npm, pypi\nghcr preset:npm'), ['github-actions', 'npm', 'pypi', 'ghcr']);
	assert.throws(() => rules.parsePresets('../etc'), /not a preset name/);
});

test('the job policy: presets, the repository file, rules with their lines, open connections', () => {
	const text = rules.buildPolicy({
		mode: 'block', presets: ['github-actions', 'npm'], repoPolicy: 'repo-policy.inc',
		rules: rules.parseAllow('a.test:443\n\n"quoted".test'),
		open: [{ addr: '203.0.113.5', port: 443, pid: 7, comm: 'Runner.Listener' }], docker: true,
	});
	golden('job-policy.yaml', text);
	assert.match(rules.buildPolicy({ mode: 'audit', presets: ['github-actions'], rules: [] }),
		     /^mode: audit\ninclude:\n {2}- preset:github-actions\nallow: \[\]\n$/m);
});

test('open connections: the worker cgroup\'s peers from ss, loopback left out', () => {
	const ss = [
		'0      0      192.0.2.4:43210    203.0.113.16:443  users:(("Runner.Listener",pid=1200,fd=99))',
		'0      0      192.0.2.4:43211    203.0.113.17:443  users:(("Runner.Worker",pid=1300,fd=7),("Runner.Worker",pid=1300,fd=8))',
		'0      0      127.0.0.1:5000    127.0.0.1:40000   users:(("node",pid=1300,fd=9))',
		'0      0      [2001:db8::4]:5   [2001:db8::9]:443 users:(("x y",pid=1300,fd=3))',
		'0      0      192.0.2.4:22       198.51.100.2:5555 users:(("sshd",pid=999,fd=3))',
	].join('\n');
	assert.deepEqual(rules.openConnections(ss, new Set([1200, 1300])), [
		{ addr: '203.0.113.16', port: 443, pid: 1200, comm: 'Runner.Listener' },
		{ addr: '203.0.113.17', port: 443, pid: 1300, comm: 'Runner.Worker' },
		{ addr: '2001:db8::9', port: 443, pid: 1300, comm: 'x y' },
	]);
});

test('cgroups: the v2 mount, a process\'s cgroup, the worker by name, docker\'s parent', () => {
	const mi = [
		'30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
		'31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
		'40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw',
	].join('\n');
	assert.equal(cg.cgroup2Mount(mi), '/sys/fs/cgroup/unified', 'hybrid');
	assert.equal(cg.cgroup2Mount('25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n'), '/sys/fs/cgroup');
	assert.equal(cg.cgroup2Mount('25 1 0:22 /sub /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n'), '',
		     'a bind mount of a subtree is not the root');
	assert.equal(cg.cgroup2Mount(mi.split('\n').slice(0, 2).join('\n')), '', 'v1 only');
	assert.equal(cg.cgroupPath('4:memory:/x\n0::/system.slice/hosted-compute-agent.service\n'),
		     '/system.slice/hosted-compute-agent.service');
	assert.equal(cg.cgroupPath('4:memory:/x\n'), '');
	const procs = { 10: ['node', '10 (node) S 9 1'], 9: ['sh', '9 (a) b) S 8 1'], 8: ['Runner.Worker', '8 (Runner.Worker) S 7'] };
	const proc = (pid, f) => (procs[pid] ? procs[pid][f === 'comm' ? 0 : 1] : '');
	assert.equal(cg.findAncestor(10, 'Runner.Worker', proc), 8);
	assert.equal(cg.findAncestor(10, 'Runner.Listener', proc), null);
	assert.ok(cg.isAtOrBelow('/a/b', '/a') && cg.isAtOrBelow('/a', '/a') && !cg.isAtOrBelow('/ab', '/a'));
	assert.equal(cg.dockerParent('{"cgroup-parent": "/actions_job", "exec-opts": []}'), '/actions_job');
	assert.equal(cg.dockerParent('{"cgroup-parent": "ci-jobs.slice"}'), '/ci.slice/ci-jobs.slice');
	assert.equal(cg.dockerParent('{"log-driver": "json-file"}'), '');
	assert.equal(cg.dockerParent('not json'), '');
});
