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
	assert.equal(summary.stepOf({ ts: '2026-12-05T09:00:12.000000001Z' }, steps), 'Run tests');
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
