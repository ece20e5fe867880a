// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// The runner's side of a JavaScript action, without @actions/core: inputs
// come as INPUT_<NAME> variables, and outputs, state, the job summary and
// environment go to the files GITHUB_OUTPUT, GITHUB_STATE,
// GITHUB_STEP_SUMMARY and GITHUB_ENV name; annotations are "::error::" lines
// on stdout. The post step gets the state back as STATE_<name>.
'use strict';

const fs = require('node:fs');
const crypto = require('node:crypto');
const os = require('node:os');

// The runner upper-cases the name and turns spaces into '_'; dashes stay.
function getInput(name, env = process.env) {
	const v = env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`];
	return v === undefined ? '' : v.trim();
}

// NAME=VALUE, or a heredoc with a delimiter that is not in VALUE, for
// values with newlines (the runner's documented multiline form).
function keyValue(name, value) {
	const v = String(value);
	if (!v.includes('\n') && !v.includes('\r'))
		return `${name}=${v}${os.EOL}`;
	let delim;
	do
		delim = `weir_${crypto.randomBytes(8).toString('hex')}`;
	while (v.includes(delim));
	return `${name}<<${delim}${os.EOL}${v}${os.EOL}${delim}${os.EOL}`;
}

function appendTo(envName, text, env = process.env) {
	const file = env[envName];
	if (!file)
		throw new Error(`${envName} is not set: not running under a GitHub Actions runner?`);
	fs.appendFileSync(file, text, { encoding: 'utf8' });
}

function setOutput(name, value, env = process.env) {
	appendTo('GITHUB_OUTPUT', keyValue(name, value), env);
}

function saveState(name, value, env = process.env) {
	appendTo('GITHUB_STATE', keyValue(name, value), env);
}

function getState(name, env = process.env) {
	return env[`STATE_${name}`] || '';
}

function appendSummary(markdown, env = process.env) {
	appendTo('GITHUB_STEP_SUMMARY', markdown, env);
}

// Workflow-command escaping: the data part and the properties each have
// their own set (the runner's ActionCommand unescapes the same ones).
function escapeData(s) {
	return String(s).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(s) {
	return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

function command(kind, message, props = {}) {
	const p = Object.entries(props)
		.filter(([, v]) => v !== undefined && v !== '')
		.map(([k, v]) => `${k}=${escapeProperty(v)}`)
		.join(',');
	return `::${kind}${p ? ' ' + p : ''}::${escapeData(message)}`;
}

function info(msg) {
	process.stdout.write(`${msg}\n`);
}

function warning(msg, props) {
	process.stdout.write(`${command('warning', msg, props)}\n`);
}

function error(msg, props) {
	process.stdout.write(`${command('error', msg, props)}\n`);
}

// The step fails: the message as an error annotation, exit status 1.
function setFailed(msg) {
	error(`weir: ${msg}`);
	process.exitCode = 1;
}

module.exports = {
	getInput, keyValue, setOutput, saveState, getState, appendSummary,
	escapeData, escapeProperty, command, info, warning, error, setFailed,
};
