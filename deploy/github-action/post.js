// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// The weir action's post step, after the job's other steps: stop the daemon
// (it detaches what it attached; not on GitHub's hosted runners, whose
// machine goes with the job), then report from its event log: the job
// summary, the outputs, at most N annotations, a suggested policy, and with
// fail-on-deny a failed step when anything was denied.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const runner = require('./lib/runner.js');
const summary = require('./lib/summary.js');
const sys = require('./lib/system.js');

function state(name) {
	return runner.getState(name);
}

function json(name) {
	try {
		return JSON.parse(state(name) || '{}');
	} catch {
		return {};
	}
}

// SIGTERM: the daemon was started with --detach-on-exit, so it detaches
// every attachment and writes its last events before it exits. Root is
// needed; with `sudo: drop` there is none left, and the daemon goes on
// (the runner's machine goes away with the job).
function stopDaemon(pid, weir, pins) {
	if (!sys.canRoot()) {
		runner.info('weir: no root left (sudo: drop): the daemon stays until the machine goes; reporting what it logged so far');
		sys.sleep(200); // its ring buffer is read every 50 ms
		return;
	}
	if (sys.alive(pid)) {
		sys.asRoot(['kill', '-TERM', String(pid)]);
		for (let i = 0; i < 100 && sys.alive(pid); i++)
			sys.sleep(100);
	}
	if (sys.alive(pid)) {
		runner.warning(`weir: the daemon (pid ${pid}) did not stop in 10 s: killed; its pins removed`);
		sys.asRoot(['kill', '-KILL', String(pid)]);
		sys.asRoot([weir, 'cleanup', '--pin-root', pins]);
	}
}

// The steps' names and start times, from the runner's Worker log.
// The runner keeps it in _diag next to its bin/ (WEIR_ACTION_RUNNER_DIAG
// for tests/action/run.sh, whose worker is a shell script).
function workerSteps(worker) {
	let diag = process.env.WEIR_ACTION_RUNNER_DIAG;
	if (!diag && !worker)
		return [];
	try {
		diag = diag || path.join(path.dirname(path.dirname(fs.realpathSync(`/proc/${worker}/exe`))), '_diag');
	} catch {
		return [];
	}
	let logs = [];
	try {
		logs = fs.readdirSync(diag).filter((f) => /^Worker_.*\.log$/.test(f)).sort();
	} catch {
		return [];
	}
	if (!logs.length)
		return [];
	try {
		return summary.parseWorkerLog(fs.readFileSync(path.join(diag, logs[logs.length - 1]), 'utf8'));
	} catch {
		return [];
	}
}

// weir policy suggest on the log without the canary's lines.
function suggest(weir, evText, canary, tmp, out) {
	const lines = evText.split('\n').filter((l) => {
		if (!l.trim())
			return false;
		try {
			const ev = JSON.parse(l);
			return !(ev.pid === canary.pid && (ev.dst === canary.dst || ev.name === canary.name));
		} catch {
			return false;
		}
	});
	const f = path.join(tmp, 'events-for-suggest.jsonl');
	fs.writeFileSync(f, lines.join('\n') + (lines.length ? '\n' : ''));
	const r = sys.run([weir, 'policy', 'suggest', f]);
	fs.rmSync(f, { force: true });
	if (r.status !== 0) {
		runner.warning(`weir: policy suggest failed: ${r.stderr.trim()}`);
		return;
	}
	fs.writeFileSync(out, r.stdout);
}

function post() {
	const mode = state('mode') || 'block';
	const tmp = state('tmp');
	const root = state('root');
	if (!root) {
		runner.info('weir: the main step started no daemon: nothing to report');
		return;
	}
	const p = sys.paths({ WEIR_ACTION_ROOT: root });
	const cfg = json('config');
	const canary = json('canary');
	const weir = state('weir');
	// A hosted runner's machine is thrown away with the job: enforcement
	// stays to the end, so that what a later step left running (a
	// background process, a `docker run -d`) never gets out after this step.
	// A self-hosted runner's next job must start unenforced: detach.
	if (process.env.RUNNER_ENVIRONMENT === 'github-hosted') {
		runner.info('weir: GitHub-hosted runner: enforcement stays until the machine goes away');
		sys.sleep(200); // the daemon reads its ring buffer every 50 ms
	} else {
		stopDaemon(Number(state('pid')), weir, cfg.pins);
	}
	let text = '';
	try {
		text = fs.readFileSync(p.events, 'utf8');
	} catch (e) {
		runner.warning(`weir: cannot read the event log ${p.events}: ${e.code || e.message}`);
	}
	const { events, bad } = summary.parseEvents(text);
	const attachments = (state('attachments') || '').split(',').filter(Boolean);
	const agg = summary.aggregate(events, { mode, canary, steps: workerSteps(cfg.worker), attachments });
	const notes = [];
	if (bad)
		notes.push(`${bad} line(s) of the event log were not JSON`);
	if (state('ok') !== '1')
		notes.push('the main step did not finish its set-up: see its log');
	if (cfg.summary !== 'none')
		runner.appendSummary(`${summary.render(agg, { style: cfg.summary || 'full', notes })}\n`);
	const sp = path.join(tmp, 'suggested-policy.yaml');
	suggest(weir, text, canary, tmp, sp);
	runner.setOutput('allowed', agg.allowed);
	runner.setOutput('denied', agg.denied + agg.dnsRefused);
	runner.setOutput('would-deny', agg.would);
	runner.setOutput('events', p.events);
	runner.setOutput('suggested-policy', sp);
	for (const a of summary.annotations(agg, cfg.annotations === undefined ? 10 : cfg.annotations))
		runner[a.kind](a.msg);
	runner.info(summary.headline(agg).replace(/\*\*/g, ''));
	const bad2 = mode === 'audit' ? agg.would + agg.denied : agg.denied + agg.dnsRefused;
	if (cfg.failOnDeny && bad2) {
		const list = summary.annotations(agg, 10).map((a) => a.msg.replace(/^weir /, '')).join('; ');
		runner.setFailed(`${bad2} connection(s) or queries ${mode === 'audit' ? 'would have been ' : ''}denied ` +
				 `(fail-on-deny): ${list}`);
	}
}

try {
	post();
} catch (e) {
	runner.setFailed(e.message);
}
