// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdio.h>
#include <string.h>

#include "shipped.h"

/* From user/policy/builtin_policy.S. */
extern const char weir_builtin_policy[], weir_policy_demo[];
extern const unsigned long weir_builtin_policy_len, weir_policy_demo_len;

#define PRESET(name, sym)                                                                          \
	extern const char weir_preset_##sym[];                                                     \
	extern const unsigned long weir_preset_##sym##_len;
PRESET(anthropic, anthropic)
PRESET(crates, crates)
PRESET(debian, debian)
PRESET(docker-hub, docker_hub)
PRESET(ghcr, ghcr)
PRESET(github, github)
PRESET(github-actions, github_actions)
PRESET(go, go)
PRESET(maven, maven)
PRESET(npm, npm)
PRESET(openai, openai)
PRESET(pypi, pypi)
PRESET(rubygems, rubygems)
PRESET(ubuntu, ubuntu)
#undef PRESET
#define PRESET(name, sym) { "preset:" #name, weir_preset_##sym, &weir_preset_##sym##_len },

static const struct {
	const char *name;
	const char *text;
	const unsigned long *len;
} shipped[] = {
	{ POLICY_BUILTIN, weir_builtin_policy, &weir_builtin_policy_len },
	{ "demo", weir_policy_demo, &weir_policy_demo_len },
	PRESET(anthropic, anthropic)
	PRESET(crates, crates)
	PRESET(debian, debian)
	PRESET(docker-hub, docker_hub)
	PRESET(ghcr, ghcr)
	PRESET(github, github)
	PRESET(github-actions, github_actions)
	PRESET(go, go)
	PRESET(maven, maven)
	PRESET(npm, npm)
	PRESET(openai, openai)
	PRESET(pypi, pypi)
	PRESET(rubygems, rubygems)
	PRESET(ubuntu, ubuntu)
};

#define N_SHIPPED (sizeof(shipped) / sizeof(shipped[0]))

const char *shipped_policy(const char *name, size_t *len)
{
	size_t i;

	for (i = 0; i < N_SHIPPED; i++) {
		if (!strcmp(shipped[i].name, name)) {
			*len = *shipped[i].len;
			return shipped[i].text;
		}
	}
	return NULL;
}

void shipped_policy_list(FILE *f)
{
	size_t i;

	for (i = 0; i < N_SHIPPED; i++)
		fprintf(f, "%s%s", i ? ", " : "", shipped[i].name);
}

void shipped_preset_names(char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < N_SHIPPED && off < len; i++)
		if (!strncmp(shipped[i].name, "preset:", 7))
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
						shipped[i].name + 7);
}
