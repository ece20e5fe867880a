// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Tier 1: event formatting and mountinfo parsing. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include <json-c/json.h>

#include "cgroup.h"
#include "events.h"
#include "learn.h"

static struct weir_event ev4(void)
{
	struct weir_event e = {
		.ts_ns = 1000000000ULL * 5 + 7,
		.cgroup_id = 44,
		.pid = 4242,
		.tid = 4243,
		.uid = 1000,
		.gid = 1000,
		.verdict = WEIR_V_DENY,
		.op = WEIR_OP_CONNECT4,
		.reason = WEIR_R_NO_MATCH,
		.family = AF_INET,
		.protocol = 6,
		.sock_type = 1,
		.port = 443,
	};

	inet_pton(AF_INET, "198.51.100.7", e.addr);
	strcpy(e.comm, "curl");
	return e;
}

Test(events, json_has_every_field)
{
	struct event_ctx ctx = { .boot_to_real_ns = 1700000000LL * 1000000000LL,
				 .cgroup_id = 44,
				 .cgroup_path = "/weir/run-1" };
	struct weir_event e = ev4();
	char buf[EVENT_JSON_MAX];

	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "{\"v\":1,\"ts\":\"2023-11-14T22:13:25.000000007Z\","
			      "\"verdict\":\"deny\",\"mode\":\"enforce\",\"op\":\"connect4\","
			      "\"proto\":\"tcp\",\"family\":\"ipv4\",\"dst\":\"198.51.100.7\","
			      "\"port\":443,\"rule\":\"default\",\"reason\":\"no-matching-rule\","
			      "\"pid\":4242,\"tid\":4243,\"uid\":1000,\"gid\":1000,\"comm\":\"curl\","
			      "\"cgroup\":\"/weir/run-1\",\"cgroup_id\":44}");
}

Test(events, json_escapes_hostile_comm)
{
	struct event_ctx ctx = {};
	struct weir_event e = ev4();
	char buf[EVENT_JSON_MAX];

	memcpy(e.comm, "a\"b\\c\n\x01\xff\xc3z", 11);
	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	cr_expect(strstr(buf, "\"comm\":\"a\\\"b\\\\c\\u000a\\u0001\\u00ff\\u00c3z\""), "%s", buf);
	cr_expect(strstr(buf, "\"cgroup\":\"44\""), "unknown cgroup: its id, %s", buf);
}

Test(events, json_ipv6_mapped_and_domain)
{
	struct event_ctx ctx = {};
	struct policy *p;
	char err[POLICY_ERR_LEN], buf[EVENT_JSON_MAX];
	struct weir_event e = ev4();
	const char *y = "version: 1\nallow:\n  - domain: allowed.test\n";

	cr_assert_eq(policy_load_buffer("t", y, strlen(y), &p, err), 0);
	ctx.policy = p;
	e.family = AF_INET6;
	e.op = WEIR_OP_CONNECT6;
	e.verdict = WEIR_V_ALLOW;
	e.reason = WEIR_R_ALLOW_RULE;
	e.rule = WEIR_RULE_ID(WEIR_RK_ALLOW, 0);
	e.flags = WEIR_EF_MAPPED;
	inet_pton(AF_INET6, "::ffff:192.0.2.10", e.addr);
	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	cr_expect(strstr(buf, "\"family\":\"ipv6\",\"dst\":\"::ffff:192.0.2.10\""), "%s", buf);
	cr_expect(strstr(buf, "\"domain\":\"allowed.test\",\"rule\":\"allow[0]\""), "%s", buf);
	cr_expect(strstr(buf, "\"mapped\":true"), "%s", buf);
	policy_free(p);
}

Test(events, json_reports_truncation)
{
	struct event_ctx ctx = {};
	struct weir_event e = ev4();
	char buf[32];

	cr_expect_lt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
}

Test(events, human_line)
{
	struct weir_event e = ev4();
	char buf[256];

	event_format_human(NULL, &e, buf, sizeof(buf));
	cr_expect_str_eq(buf, "denied tcp 198.51.100.7:443 (curl pid 4242)");
	e.family = AF_INET6;
	e.protocol = 17;
	e.verdict = WEIR_V_WOULD_DENY;
	inet_pton(AF_INET6, "2001:db8::1", e.addr);
	event_format_human(NULL, &e, buf, sizeof(buf));
	cr_expect_str_eq(buf, "would deny udp [2001:db8::1]:443 (curl pid 4242)");
}

/* A policy whose allow[0] names web.test exactly: events whose rule is
 * allow[0] carry the name, as learned ones do (their names come from weir's
 * resolver, tested in tests/e2e/dns.sh). */
static struct policy *web_policy(struct event_ctx *ctx)
{
	const char *y = "version: 1\nallow:\n  - domain: web.test\n    ports: [443]\n";
	char err[POLICY_ERR_LEN];
	struct policy *p;

	cr_assert_eq(policy_load_buffer("t", y, strlen(y), &p, err), 0, "%s", err);
	ctx->policy = p;
	return p;
}

/* A denial of a named address names the name, on stderr as in the JSON. */
Test(events, human_line_names_the_domain)
{
	struct event_ctx ctx = {};
	struct policy *p = web_policy(&ctx);
	struct weir_event e = ev4();
	char buf[EVENT_JSON_MAX];

	e.port = 8080;
	e.reason = WEIR_R_PORT;
	e.rule = WEIR_RULE_ID(WEIR_RK_ALLOW, 0);
	inet_pton(AF_INET, "192.0.2.10", e.addr);
	event_format_human(&ctx, &e, buf, sizeof(buf));
	cr_expect_str_eq(buf, "denied tcp web.test:8080 (192.0.2.10, curl pid 4242) [rule t:3]");
	e.verdict = WEIR_V_WOULD_DENY;
	event_format_human(&ctx, &e, buf, sizeof(buf));
	cr_expect_str_eq(buf,
			 "would deny tcp web.test:8080 (192.0.2.10, curl pid 4242) [rule t:3]");
	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	cr_expect(strstr(buf, "\"domain\":\"web.test\""), "%s", buf);
	policy_free(p);
}

/* Audit mode answers names the policy would refuse and learns nothing from
 * them; their addresses are still named, IPv4 given mapped too, and the
 * oldest are forgotten past 4096. */
Test(events, audit_names_addresses_it_did_not_learn)
{
	struct learn_opts lo = { .ttl_min = 1, .ttl_max = 60, .max_per_name = 8 };
	struct resolved_addr a[2] = { { .family = AF_INET, .ttl = 5 },
				      { .family = AF_INET6, .ttl = 5 } };
	struct event_ctx ctx = {};
	struct weir_event e = ev4();
	char buf[EVENT_JSON_MAX];
	int i;

	cr_assert_eq(learn_new(NULL, &lo, &ctx.learn), 0);
	inet_pton(AF_INET, "192.0.2.10", a[0].addr);
	inet_pton(AF_INET6, "2001:db8::10", a[1].addr);
	learn_seen(ctx.learn, "web.test", a, 2);
	e.verdict = WEIR_V_WOULD_DENY;
	e.port = 80;
	inet_pton(AF_INET, "192.0.2.10", e.addr);
	event_format_human(&ctx, &e, buf, sizeof(buf));
	cr_expect_str_eq(buf, "would deny tcp web.test:80 (192.0.2.10, curl pid 4242)");
	e.family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.0.2.10", e.addr);
	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	cr_expect(strstr(buf, "\"domain\":\"web.test\""), "%s", buf);
	inet_pton(AF_INET6, "2001:db8::10", e.addr);
	event_format_human(&ctx, &e, buf, sizeof(buf));
	cr_expect_str_eq(buf, "would deny tcp web.test:80 (2001:db8::10, curl pid 4242)");
	inet_pton(AF_INET6, "2001:db8::11", e.addr);
	event_format_human(&ctx, &e, buf, sizeof(buf));
	cr_expect_str_eq(buf, "would deny tcp [2001:db8::11]:80 (curl pid 4242)");
	for (i = 0; i < 4096; i++) {
		struct resolved_addr o = { .family = AF_INET };

		o.addr[0] = 198, o.addr[1] = 51, o.addr[2] = i >> 8, o.addr[3] = i & 0xff;
		learn_seen(ctx.learn, "other.test", &o, 1);
	}
	e.family = AF_INET;
	memset(e.addr, 0, sizeof(e.addr));
	inet_pton(AF_INET, "192.0.2.10", e.addr);
	event_format_human(&ctx, &e, buf, sizeof(buf));
	cr_expect_str_eq(buf, "would deny tcp 192.0.2.10:80 (curl pid 4242)");
	inet_pton(AF_INET, "198.51.15.255", e.addr);
	event_format_human(&ctx, &e, buf, sizeof(buf));
	cr_expect_str_eq(buf, "would deny tcp other.test:80 (198.51.15.255, curl pid 4242)");
	learn_free(ctx.learn);
}

/* glibc's getaddrinfo() connects a UDP socket to each address it found and
 * sends nothing: refused, it is marked in the JSON, worded as such, and is
 * not a denial in the summary. A UDP sendto() still is. */
Test(events, refused_udp_connect_sent_nothing)
{
	struct event_ctx ctx = {};
	struct summary *s = summary_new();
	struct weir_event e = ev4();
	char buf[EVENT_JSON_MAX], *out = NULL;
	size_t len = 0;
	FILE *f;

	e.protocol = 17;
	e.sock_type = 2;
	e.reason = WEIR_R_PORT;
	cr_expect(event_sent_nothing(&e));
	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	cr_expect(strstr(buf, ",\"sent\":false"), "%s", buf);
	event_format_human(&ctx, &e, buf, sizeof(buf));
	cr_expect_str_eq(buf, "refused udp connect to 198.51.100.7:443 (curl pid 4242): "
			      "nothing sent");
	summary_add(s, &ctx, &e);
	e.verdict = WEIR_V_WOULD_DENY;
	cr_expect(event_sent_nothing(&e));
	summary_add(s, &ctx, &e);
	e.op = WEIR_OP_SENDMSG4;
	e.verdict = WEIR_V_DENY;
	cr_expect_not(event_sent_nothing(&e));
	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	cr_expect_null(strstr(buf, "sent"), "%s", buf);
	summary_add(s, &ctx, &e);
	e.op = WEIR_OP_CONNECT4;
	e.verdict = WEIR_V_ALLOW;
	cr_expect_not(event_sent_nothing(&e), "an allowed connect is counted as before");
	e.verdict = WEIR_V_DENY;
	e.protocol = 6;
	e.sock_type = 1;
	cr_expect_not(event_sent_nothing(&e), "a TCP connect sends a SYN");
	f = open_memstream(&out, &len);
	summary_print(s, f, 0);
	fclose(f);
	cr_expect(strstr(out, "weir: summary: 0 allowed, 1 denied\n"), "%s", out);
	cr_expect_null(strstr(out, "would"), "%s", out);
	free(out);
	summary_free(s);
}

/* Rows are keyed by the name when there is one: two addresses of web.test
 * on port 8080 are one row, named. */
Test(events, summary_rows_by_domain)
{
	struct event_ctx ctx = {};
	struct policy *p = web_policy(&ctx);
	struct summary *s = summary_new();
	struct weir_event e = ev4();
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	e.port = 8080;
	e.reason = WEIR_R_PORT;
	e.rule = WEIR_RULE_ID(WEIR_RK_ALLOW, 0);
	inet_pton(AF_INET, "192.0.2.10", e.addr);
	summary_add(s, &ctx, &e);
	f = open_memstream(&out, &len);
	summary_print(s, f, 0);
	fclose(f);
	cr_expect(strstr(out, "weir:   denied     tcp    web.test:8080 (192.0.2.10)"), "%s", out);
	free(out);
	e.family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::10", e.addr);
	summary_add(s, &ctx, &e);
	e.rule = 0; /* the same address, no name: a row of its own */
	summary_add(s, &ctx, &e);
	f = open_memstream(&out, &len);
	summary_print(s, f, 0);
	fclose(f);
	cr_expect(strstr(out, "web.test:8080 (192.0.2.10 and others)          x2"), "%s", out);
	cr_expect(strstr(out, "[2001:db8::10]:8080"), "%s", out);
	free(out);
	summary_free(s);
	policy_free(p);
}

Test(events, metadata_reason)
{
	struct weir_event e = ev4();

	e.rule = WEIR_RULE_ID(WEIR_RK_METADATA, 0);
	e.reason = WEIR_R_DENY_RULE;
	cr_expect_str_eq(event_reason_name(&e), "metadata-endpoint");
}

Test(events, summary_counts_destinations)
{
	struct summary *s = summary_new();
	struct weir_event e = ev4();
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	summary_add(s, NULL, &e);
	summary_add(s, NULL, &e);
	e.verdict = WEIR_V_ALLOW;
	summary_add(s, NULL, &e);
	summary_print(s, f, 3);
	fclose(f);
	cr_expect(strstr(out, "weir: summary: 1 allowed, 2 denied"), "%s", out);
	cr_expect(strstr(out, "198.51.100.7:443"), "%s", out);
	cr_expect(strstr(out, "x2"), "%s", out);
	cr_expect(strstr(out, "3 audit events were lost"), "%s", out);
	free(out);
	summary_free(s);
}

Test(events, summary_counts_failed_lookups_apart)
{
	struct summary *s = summary_new();
	struct dns_event d = { .verdict = WEIR_V_ALLOW, .rcode = 0 };
	struct summary_counts c;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	summary_add_dns(s, &d);
	d.upstream_failed = true;
	d.rcode = 2;
	summary_add_dns(s, &d);
	summary_add_dns(s, &d);
	d.upstream_failed = false;
	d.verdict = WEIR_V_DENY;
	summary_add_dns(s, &d);
	summary_print(s, f, 0);
	fclose(f);
	cr_expect(strstr(out, "weir:   dns: 1 answered, 1 refused, 2 failed (upstream unreachable "
			      "or failing)\n"),
		  "%s", out);
	summary_counts(s, &c);
	cr_expect_eq(c.dns[WEIR_V_ALLOW], 3, "failed queries keep their verdict");
	cr_expect_eq(c.dns_failed, 2);
	free(out);
	summary_free(s);
}

static const char *write_tmp(const char *text)
{
	static char path[] = "/tmp/weir-mountinfo-XXXXXX";
	int fd;

	strcpy(path, "/tmp/weir-mountinfo-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

Test(cgroup, finds_hybrid_mount)
{
	char mnt[CGROUP_PATH_MAX];
	const char *p = write_tmp(
		"25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw\n"
		"30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
		"31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
		"32 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");

	cr_assert_eq(cgroup_find_v2(p, mnt, sizeof(mnt)), 0);
	cr_expect_str_eq(mnt, "/sys/fs/cgroup/unified");
	unlink(p);
}

Test(cgroup, finds_pure_v2_and_unescapes)
{
	char mnt[CGROUP_PATH_MAX];
	const char *p = write_tmp("31 30 0:27 / /mnt/my\\040cgroups rw shared:9 - cgroup2 none rw\n");

	cr_assert_eq(cgroup_find_v2(p, mnt, sizeof(mnt)), 0);
	cr_expect_str_eq(mnt, "/mnt/my cgroups");
	unlink(p);
}

Test(cgroup, v1_only_is_enoent)
{
	char mnt[CGROUP_PATH_MAX];
	const char *p = write_tmp("32 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");

	cr_expect_eq(cgroup_find_v2(p, mnt, sizeof(mnt)), -ENOENT);
	unlink(p);
}

/* 5000 distinct destinations, each twice: the first 4096 are listed with
 * their counts, the rest counted as untracked; totals stay exact. */
Test(events, summary_many_destinations)
{
	struct summary *s = summary_new();
	struct weir_event e = ev4();
	char *out = NULL;
	size_t len = 0;
	FILE *f;
	int i, r;

	for (r = 0; r < 2; r++) {
		for (i = 0; i < 5000; i++) {
			e.port = 1000 + i % 50000;
			e.addr[3] = i & 0xff;
			e.addr[2] = i >> 8;
			summary_add(s, NULL, &e);
		}
	}
	f = open_memstream(&out, &len);
	summary_print(s, f, 0);
	fclose(f);
	cr_expect(strstr(out, "weir: summary: 0 allowed, 10000 denied"), "%.200s", out);
	cr_expect(strstr(out, "(1808 more decisions to other destinations)"), "%s",
		  out + len - 200);
	cr_expect(strstr(out, "x2\n"));
	cr_expect_null(strstr(out, "x1\n"), "a listed destination lost a count");
	free(out);
	summary_free(s);
}

/* A refused inbound attempt: the peer is the source, port is ours, and no
 * task is named (nobody inside asked for it). */
static struct weir_event inbound_ev(void)
{
	struct weir_event e = ev4();

	e.op = WEIR_OP_INBOUND;
	e.port = 8080;
	e.peer_port = 51234;
	e.pid = e.tid = e.uid = e.gid = 0;
	memset(e.comm, 0, sizeof(e.comm));
	return e;
}

Test(events, inbound_json_and_human)
{
	struct event_ctx ctx = { .cgroup_id = 44, .cgroup_path = "/weir/run-1" };
	struct weir_event e = inbound_ev();
	char buf[EVENT_JSON_MAX];

	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	cr_expect(strstr(buf, "\"op\":\"inbound\",\"proto\":\"tcp\",\"family\":\"ipv4\","
			      "\"src\":\"198.51.100.7\",\"src_port\":51234,\"port\":8080,"
			      "\"rule\":\"default\",\"reason\":\"no-matching-rule\""),
		  "%s", buf);
	cr_expect_null(strstr(buf, "\"dst\""), "%s", buf);
	event_format_human(&ctx, &e, buf, sizeof(buf));
	cr_expect_str_eq(buf, "refused inbound tcp from 198.51.100.7:51234 to port 8080");
	e.verdict = WEIR_V_WOULD_DENY;
	e.protocol = 17;
	e.family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::7", e.addr);
	event_format_human(&ctx, &e, buf, sizeof(buf));
	cr_expect_str_eq(buf, "would refuse inbound udp from [2001:db8::7]:51234 to port 8080");
}

/* Attempts from one peer to one port are one row, whatever its source port,
 * and never merged with egress to the same address and port. */
Test(events, summary_inbound_rows)
{
	struct summary *s = summary_new();
	struct weir_event e = inbound_ev(), out = ev4();
	char *txt = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&txt, &len);

	summary_add(s, NULL, &e);
	e.peer_port = 51999;
	summary_add(s, NULL, &e);
	out.port = 8080;
	summary_add(s, NULL, &out);
	summary_print(s, f, 0);
	fclose(f);
	cr_expect(strstr(txt, "tcp    inbound from 198.51.100.7 to port 8080         x2\n"), "%s",
		  txt);
	cr_expect(strstr(txt, "tcp    198.51.100.7:8080                              x1\n"), "%s",
		  txt);
	free(txt);
	summary_free(s);
}

Test(events, close_has_the_counts_and_is_no_decision)
{
	struct event_ctx ctx = { .boot_to_real_ns = 1700000000LL * 1000000000LL,
				 .cgroup_id = 44,
				 .cgroup_path = "/weir/run-1" };
	struct weir_event e = ev4();
	struct summary *s = summary_new();
	struct summary_counts c;
	char buf[EVENT_JSON_MAX];

	e.op = WEIR_OP_CLOSE;
	e.verdict = WEIR_V_ALLOW;
	e.reason = WEIR_R_ALLOW_RULE;
	e.tx_bytes = 812;
	e.rx_bytes = 53001;
	e.duration_ns = 200000000;
	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "{\"v\":1,\"ts\":\"2023-11-14T22:13:25.000000007Z\","
			      "\"mode\":\"enforce\",\"op\":\"close\","
			      "\"proto\":\"tcp\",\"family\":\"ipv4\",\"dst\":\"198.51.100.7\","
			      "\"port\":443,\"rule\":\"default\",\"reason\":\"allow-rule\","
			      "\"tx_bytes\":812,\"rx_bytes\":53001,\"duration_ns\":200000000,"
			      "\"pid\":4242,\"tid\":4243,\"uid\":1000,\"gid\":1000,\"comm\":\"curl\","
			      "\"cgroup\":\"/weir/run-1\",\"cgroup_id\":44}");
	cr_expect_not(event_is_decision(&e));
	cr_assert_not_null(s);
	summary_add(s, &ctx, &e);
	summary_counts(s, &c);
	cr_expect_eq(c.decisions[WEIR_V_ALLOW], 0, "a close event counted as a decision");
	summary_free(s);
}

Test(events, upload_budget_reason_and_line)
{
	struct weir_event e = ev4();
	char buf[256];

	e.op = WEIR_OP_EGRESS;
	e.reason = WEIR_R_BUDGET;
	cr_expect_str_eq(event_reason_name(&e), "upload-budget");
	event_format_human(NULL, &e, buf, sizeof(buf));
	cr_expect_str_eq(buf, "denied tcp 198.51.100.7:443 (curl pid 4242): upload budget spent");
}

/*
 * The formatter writes JSON by hand (no printf per field): every event,
 * whatever its bytes, must still be one valid JSON object whose fields
 * say what the event says. Random events, each parsed back with json-c.
 */
Test(events, json_by_hand_parses_back)
{
	const char *y = "version: 1\nallow:\n  - domain: web.test\n  - cidr: 192.0.2.0/24\n";
	struct event_ctx ctx = { .cgroup_id = 7, .cgroup_path = "/weir/\"run\"-1" };
	struct event_memo memo = {};
	char err[POLICY_ERR_LEN], buf[EVENT_JSON_MAX], a[INET6_ADDRSTRLEN];
	struct policy *p;
	json_object *o, *f;
	struct weir_event e;
	size_t k;
	int i, n;

	cr_assert_eq(policy_load_buffer("t.yaml", y, strlen(y), &p, err), 0);
	srand(15);
	for (i = 0; i < 3000; i++) {
		for (k = 0; k < sizeof(e); k++)
			((unsigned char *)&e)[k] = rand();
		e.family = i & 1 ? AF_INET : AF_INET6;
		e.op = WEIR_OP_CONNECT4;
		e.rule = WEIR_RULE_ID(WEIR_RK_ALLOW, i % 2); /* both rules exist */
		ctx.policy = i % 5 ? p : NULL;
		ctx.memo = i % 7 ? &memo : NULL;
		ctx.boot_to_real_ns = (long long)rand() << 24;
		n = event_format_json(&ctx, &e, buf, sizeof(buf));
		cr_assert_gt(n, 0);
		cr_assert_eq((size_t)n, strlen(buf));
		o = json_tokener_parse(buf);
		cr_assert_not_null(o, "not JSON: %s", buf);
		cr_expect(json_object_object_get_ex(o, "pid", &f) &&
				  json_object_get_uint64(f) == e.pid, "%s", buf);
		cr_expect(json_object_object_get_ex(o, "cgroup_id", &f) &&
				  json_object_get_uint64(f) == e.cgroup_id, "%s", buf);
		cr_expect(json_object_object_get_ex(o, "port", &f) &&
				  json_object_get_int(f) == e.port, "%s", buf);
		inet_ntop(e.family, e.addr, a, sizeof(a));
		cr_expect(json_object_object_get_ex(o, "dst", &f) &&
				  !strcmp(json_object_get_string(f), a), "%s", buf);
		cr_expect(json_object_object_get_ex(o, "comm", &f) &&
				  json_object_get_string_len(f) >= (int)strnlen(e.comm, WEIR_COMM_LEN),
			  "%s", buf);
		cr_expect_eq(json_object_object_get_ex(o, "rule_origin", &f), ctx.policy != NULL,
			     "%s", buf);
		json_object_put(o);
	}
	policy_free(p);
}

/* The memo of the last rule's JSON follows a change of policy: it is keyed
 * by the policy, so the origin never comes from the previous one. */
Test(events, json_memo_follows_the_policy)
{
	const char *y1 = "version: 1\nallow:\n  - ip: 198.51.100.7\n";
	const char *y2 = "version: 1\n\nallow:\n  - ip: 198.51.100.7\n";
	struct event_memo memo = {};
	struct event_ctx ctx = { .memo = &memo };
	char err[POLICY_ERR_LEN], buf[EVENT_JSON_MAX];
	struct weir_event e = ev4();
	struct policy *p1, *p2;

	cr_assert_eq(policy_load_buffer("a.yaml", y1, strlen(y1), &p1, err), 0);
	cr_assert_eq(policy_load_buffer("b.yaml", y2, strlen(y2), &p2, err), 0);
	e.rule = WEIR_RULE_ID(WEIR_RK_ALLOW, 0);
	ctx.policy = p1;
	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	cr_expect(strstr(buf, "\"rule\":\"allow[0]\",\"rule_origin\":\"a.yaml:3\""), "%s", buf);
	ctx.policy = p2;
	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	cr_expect(strstr(buf, "\"rule_origin\":\"b.yaml:4\""), "%s", buf);
	e.reason = WEIR_R_DNS_REDIRECT;
	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	cr_expect(strstr(buf, "\"rule\":\"resolver\""), "%s", buf);
	policy_free(p1);
	policy_free(p2);
}

/* A DNS record ends where its JSON ends, in a buffer that held anything
 * before (the fast appenders write no NUL of their own). */
Test(events, dns_json_ends_in_a_dirty_buffer)
{
	struct event_ctx ctx = { .cgroup_id = 44, .cgroup_path = "/weir/run-1" };
	struct dns_event e = { .verdict = WEIR_V_DENY, .protocol = 17, .reason = "name-not-allowed",
			       .rcode = 5, .have_asker = true };
	char buf[EVENT_JSON_MAX * 2];
	json_object *o;
	int n;

	strcpy(e.q.name, "other.test");
	e.q.qtype = 1;
	e.asker.family = AF_INET;
	e.asker.port = 53;
	e.asker.pid = 42;
	e.asker.cgroup_id = 44;
	inet_pton(AF_INET, "127.0.0.53", e.asker.ip6);
	strcpy(e.asker.comm, "curl");
	memset(buf, 'x', sizeof(buf));
	n = event_format_dns_json(&ctx, &e, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	cr_expect_eq(strlen(buf), (size_t)n);
	o = json_tokener_parse(buf);
	cr_expect_not_null(o, "%s", buf);
	json_object_put(o);
	cr_expect(strstr(buf, "\"comm\":\"curl\",\"cgroup\":\"/weir/run-1\",\"cgroup_id\":44}"),
		  "%s", buf);
}
