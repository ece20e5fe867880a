// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Tier 1: event formatting and mountinfo parsing. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

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
