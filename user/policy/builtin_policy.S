/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The shipped policies of policy/, embedded with .incbin (the Makefile puts
 * policy/ on the assembler's include path): SYM[] (NUL-terminated) and
 * SYM_len. weir_builtin_policy is agent-default, the default of weir run;
 * weir_preset_* are policy/presets/ (include: [preset:NAME]);
 * user/policy/shipped.c lists them all for `weir policy show`.
 */
	.macro	embed sym, file
	.global	\sym
	.global	\sym\()_len
	.balign	8
\sym:
	.incbin	"\file"
\sym\()_end:
	.byte	0
	.balign	8
\sym\()_len:
	.quad	\sym\()_end - \sym
	.endm

	.section .rodata
	embed	weir_builtin_policy, "agent-default.yaml"
	embed	weir_policy_demo, "demo.yaml"
	embed	weir_preset_anthropic, "presets/anthropic.yaml"
	embed	weir_preset_crates, "presets/crates.yaml"
	embed	weir_preset_debian, "presets/debian.yaml"
	embed	weir_preset_docker_hub, "presets/docker-hub.yaml"
	embed	weir_preset_ghcr, "presets/ghcr.yaml"
	embed	weir_preset_github, "presets/github.yaml"
	embed	weir_preset_github_actions, "presets/github-actions.yaml"
	embed	weir_preset_go, "presets/go.yaml"
	embed	weir_preset_maven, "presets/maven.yaml"
	embed	weir_preset_npm, "presets/npm.yaml"
	embed	weir_preset_openai, "presets/openai.yaml"
	embed	weir_preset_pypi, "presets/pypi.yaml"
	embed	weir_preset_rubygems, "presets/rubygems.yaml"
	embed	weir_preset_ubuntu, "presets/ubuntu.yaml"
	.section .note.GNU-stack,"",@progbits
