/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* policy/agent-default.yaml, embedded as weir_builtin_policy[] (NUL-terminated). */
	.section .rodata
	.global weir_builtin_policy
	.global weir_builtin_policy_len
	.balign 8
weir_builtin_policy:
	.incbin WEIR_DEFAULT_POLICY
weir_builtin_policy_end:
	.byte 0
	.balign 8
weir_builtin_policy_len:
	.quad weir_builtin_policy_end - weir_builtin_policy
	.section .note.GNU-stack,"",@progbits
