/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The shipped policies of policy/, embedded with .incbin (the Makefile puts
 * policy/ on the assembler's include path): SYM[] (NUL-terminated) and
 * SYM_len. weir_builtin_policy is agent-default, the default of weir run;
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
	.section .note.GNU-stack,"",@progbits
