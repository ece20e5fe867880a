// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include <linux/types.h>
#include <weir/unix.h>

#include "events.h"
#include "learn.h"

static __s64 clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (__s64)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void event_ctx_init_clock(struct event_ctx *ctx)
{
	ctx->boot_to_real_ns = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME);
}

const char *event_op_name(__u8 op)
{
	switch (op) {
	case WEIR_OP_CONNECT4:
		return "connect4";
	case WEIR_OP_CONNECT6:
		return "connect6";
	case WEIR_OP_SENDMSG4:
		return "sendmsg4";
	case WEIR_OP_SENDMSG6:
		return "sendmsg6";
	case WEIR_OP_SOCKET:
		return "socket";
	case WEIR_OP_EGRESS:
		return "egress";
	case WEIR_OP_SETSOCKOPT:
		return "setsockopt";
	case WEIR_OP_INBOUND:
		return "inbound";
	case WEIR_OP_CLOSE:
		return "close";
	case WEIR_OP_UNIX_CONNECT:
		return "unix-connect";
	case WEIR_OP_UNIX_SENDMSG:
		return "unix-sendmsg";
	case WEIR_OP_OUTSIDE_CONNECT:
		return "outside-connect";
	case WEIR_OP_OUTSIDE_SENDMSG:
		return "outside-sendmsg";
	default:
		return "unknown";
	}
}

const char *event_verdict_name(__u8 verdict)
{
	switch (verdict) {
	case WEIR_V_ALLOW:
		return "allow";
	case WEIR_V_WOULD_DENY:
		return "would-deny";
	default:
		return "deny";
	}
}

const char *event_reason_name(const struct weir_event *e)
{
	if (WEIR_RULE_KIND(e->rule) == WEIR_RK_METADATA)
		return "metadata-endpoint";
	switch (e->reason) {
	case WEIR_R_ALLOW_RULE:
		return "allow-rule";
	case WEIR_R_DENY_RULE:
		return "deny-rule";
	case WEIR_R_NO_MATCH:
		return "no-matching-rule";
	case WEIR_R_PORT:
		return "port-or-protocol-not-allowed";
	case WEIR_R_NO_POLICY:
		return "no-policy-loaded";
	case WEIR_R_DNS_REDIRECT:
		return "dns-to-weir-resolver";
	case WEIR_R_LEARNED:
		return "learned-from-dns";
	case WEIR_R_SOCKET:
		return "socket-type-not-allowed";
	case WEIR_R_SOURCE_ROUTE:
		return "source-routing";
	case WEIR_R_INBOUND_REPLY:
		return "inbound-reply";
	case WEIR_R_BUDGET:
		return "upload-budget";
	case WEIR_R_UNIX_BUILTIN:
		return "unix-builtin-list";
	case WEIR_R_OUTSIDE:
		return "socket-made-outside";
	case WEIR_R_UNIX_PATH:
		return "unix-path-not-canonical";
	case WEIR_R_MULTICAST:
		return "multicast-join";
	default:
		return "unknown";
	}
}

/* A socket's family, as "op":"socket" events name it: the inet ones the
 * policy speaks of, and those only the BPF LSM's socket_create sees. */
static const char *family_name(__u32 family)
{
	switch (family) {
	case 1:
		return "unix";
	case 2:
		return "ipv4";
	case 10:
		return "ipv6";
	case 16:
		return "netlink";
	case 17:
		return "packet";
	case 40:
		return "vsock";
	default:
		return "other";
	}
}

static const char *sock_type_name(__u8 type)
{
	switch (type) {
	case 1:
		return "stream";
	case 2:
		return "dgram";
	case 3:
		return "raw";
	case 5:
		return "seqpacket";
	case 6:
		return "dccp";
	default:
		return "other";
	}
}

const char *event_proto_name(__u16 protocol, char *buf, size_t len)
{
	switch (protocol) {
	case 262:
		return "mptcp";
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 136:
		return "udplite";
	case 1:
		return "icmp";
	case 58:
		return "icmpv6";
	case 132:
		return "sctp";
	default:
		snprintf(buf, len, "%u", protocol);
		return buf;
	}
}

bool event_is_decision(const struct weir_event *e)
{
	return e->op != WEIR_OP_CLOSE;
}

bool event_sent_nothing(const struct weir_event *e)
{
	if ((e->op == WEIR_OP_UNIX_CONNECT || e->op == WEIR_OP_UNIX_SENDMSG) &&
	    (e->flags & WEIR_EF_RESOLVER))
		return e->verdict != WEIR_V_ALLOW;
	return (e->op == WEIR_OP_CONNECT4 || e->op == WEIR_OP_CONNECT6) &&
	       e->sock_type == SOCK_DGRAM && e->verdict != WEIR_V_ALLOW;
}

static const struct policy_rule *rule_of(const struct policy *p, __u32 id)
{
	__u32 i = WEIR_RULE_IDX(id);

	if (!p)
		return NULL;
	switch (WEIR_RULE_KIND(id)) {
	case WEIR_RK_ALLOW:
		return i < p->n_allow ? &p->allow[i] : NULL;
	case WEIR_RK_DENY:
		return i < p->n_deny ? &p->deny[i] : NULL;
	case WEIR_RK_ARG:
		return i < p->n_args ? &p->args[i] : NULL;
	default:
		return NULL;
	}
}

/* An address from the answer to a name weir would refuse (audit mode). */
static const char *seen_name(const struct event_ctx *ctx, const struct weir_event *e, char *buf,
			     size_t len)
{
	static const __u8 mapped[12] = { [10] = 0xff, [11] = 0xff };
	__u8 a4[16] = {};

	if (e->family == AF_INET6 && !memcmp(e->addr, mapped, sizeof(mapped))) {
		memcpy(a4, e->addr + 12, 4);
		return learn_seen_name(ctx->learn, AF_INET, a4, buf, len);
	}
	if (e->family == AF_INET) {
		memcpy(a4, e->addr, 4);
		return learn_seen_name(ctx->learn, AF_INET, a4, buf, len);
	}
	return e->family == AF_INET6 ? learn_seen_name(ctx->learn, AF_INET6, e->addr, buf, len) :
				       NULL;
}

const char *event_domain(const struct event_ctx *ctx, const struct weir_event *e, char *buf,
			 size_t len)
{
	const struct policy_rule *r;

	if (!ctx || e->op == WEIR_OP_INBOUND) /* a peer's address says nothing of a name */
		return NULL;
	if (e->domain_id && learn_name(ctx->learn, e->domain_id, buf, len))
		return buf;
	r = rule_of(ctx->policy, e->rule);
	if (r && r->kind == RULE_DOMAIN && r->match == NAME_EXACT) {
		snprintf(buf, len, "%s", r->domain);
		return buf;
	}
	return seen_name(ctx, e, buf, len);
}

/* Dotted quad by hand: glibc's inet_ntop() formats IPv4 with sprintf(). */
static void format_addr4(const __u8 *a, char *buf)
{
	int i, j = 0;

	for (i = 0; i < 4; i++) {
		if (a[i] >= 100)
			buf[j++] = '0' + a[i] / 100;
		if (a[i] >= 10)
			buf[j++] = '0' + a[i] / 10 % 10;
		buf[j++] = '0' + a[i] % 10;
		buf[j++] = i < 3 ? '.' : '\0';
	}
}

static void format_addr(const struct weir_event *e, char *buf, size_t len)
{
	if (e->family == 2 && len >= INET_ADDRSTRLEN)
		format_addr4(e->addr, buf);
	else if (!inet_ntop(e->family == 2 ? AF_INET : AF_INET6, e->addr, buf, len))
		snprintf(buf, len, "?");
}

void event_format_dest(const struct weir_event *e, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	format_addr(e, a, sizeof(a));
	snprintf(buf, len, e->family == 2 ? "%s:%u" : "[%s]:%u", a, e->port);
}

/* Bounded appender: keeps going after running out, remembers that it did. */
struct out {
	char *buf;
	size_t len, pos;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->buf + (o->pos < o->len ? o->pos : o->len),
		      o->pos < o->len ? o->len - o->pos : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->pos += n;
}

/*
 * The fast path: the audit stream formats every decision (a million a
 * second is the target, docs/performance.md), and a vsnprintf() per field
 * cost more than the rest of the reader together. These append bytes
 * without a format string; what does not fit is counted, not written, and
 * the end says -ENOSPC, as with put().
 */
static void put_n(struct out *o, const char *s, size_t n)
{
	if (o->pos + n < o->len)
		memcpy(o->buf + o->pos, s, n);
	o->pos += n;
}

#define put_lit(o, lit) put_n(o, lit, sizeof(lit) - 1)

static void put_s(struct out *o, const char *s)
{
	put_n(o, s, strlen(s));
}

static void put_u64(struct out *o, unsigned long long v)
{
	char d[20];
	int i = sizeof(d);

	do {
		d[--i] = '0' + v % 10;
		v /= 10;
	} while (v);
	put_n(o, d + i, sizeof(d) - i);
}

/* The length, NUL-terminated, or -ENOSPC when it did not all fit. */
static int out_end(struct out *o)
{
	if (o->pos >= o->len)
		return -ENOSPC;
	o->buf[o->pos] = '\0';
	return (int)o->pos;
}

/* A JSON string. comm is attacker-chosen bytes: escape all but printable
 * ASCII, so the output is valid UTF-8 JSON whatever it holds. Runs of
 * plain bytes are copied whole. */
static void put_json_str(struct out *o, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	char esc[6] = { '\\', 'u', '0', '0' };
	size_t i, run = 0;

	put_lit(o, "\"");
	for (i = 0; i < max && s[i]; i++) {
		unsigned char c = s[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			continue;
		put_n(o, s + run, i - run);
		run = i + 1;
		if (c == '"' || c == '\\') {
			char two[2] = { '\\', (char)c };

			put_n(o, two, 2);
		} else {
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			put_n(o, esc, 6);
		}
	}
	put_n(o, s + run, i - run);
	put_lit(o, "\"");
}

/* Wall time of a boot timestamp. A timestamp is the kernel's (or, in a
 * fuzzer, anything): added unsigned, so no value overflows, and clamped
 * to 1970..2262 (INT64_MAX ns), which gmtime_r() can always render. */
static __s64 boot_to_wall(__u64 ts_ns, __s64 boot_to_real_ns)
{
	static const __s64 max = INT64_MAX;
	__u64 w = ts_ns + (__u64)boot_to_real_ns;

	if (boot_to_real_ns >= 0 ? w < ts_ns : w > ts_ns)
		return boot_to_real_ns >= 0 ? max : 0;
	if (w > (__u64)max)
		return max;
	return (__s64)w;
}

/* "2023-11-14T22:13:25.000000007Z" (ns >= 0): gmtime_r() once a second
 * per thread, not once an event. */
static void put_time(struct out *o, __s64 ns)
{
	static __thread __s64 cached_sec = -1;
	static __thread char head[48];
	static __thread size_t head_len;
	__s64 sec = ns / 1000000000LL;
	long frac = (long)(ns % 1000000000LL);
	char tail[11];
	int i;

	if (sec != cached_sec) {
		time_t t = sec;
		struct tm tm;

		gmtime_r(&t, &tm);
		head_len = (size_t)snprintf(head, sizeof(head), "\"%04d-%02d-%02dT%02d:%02d:%02d.",
					    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
					    tm.tm_hour, tm.tm_min, tm.tm_sec);
		cached_sec = sec;
	}
	put_n(o, head, head_len);
	for (i = 8; i >= 0; i--, frac /= 10)
		tail[i] = '0' + frac % 10;
	tail[9] = 'Z';
	tail[10] = '"';
	put_n(o, tail, sizeof(tail));
}

/* The caller's identity and cgroup, closing the object. */
static void put_task(struct out *o, const struct event_ctx *ctx, __u32 pid, __u32 tid, __u32 uid,
		     __u32 gid, const char *comm, __u64 cgroup_id)
{
	put_lit(o, ",\"pid\":");
	put_u64(o, pid);
	put_lit(o, ",\"tid\":");
	put_u64(o, tid);
	put_lit(o, ",\"uid\":");
	put_u64(o, uid);
	put_lit(o, ",\"gid\":");
	put_u64(o, gid);
	put_lit(o, ",\"comm\":");
	put_json_str(o, comm, WEIR_COMM_LEN);
	put_lit(o, ",\"cgroup\":");
	if (ctx->cgroup_path && cgroup_id == ctx->cgroup_id) {
		put_json_str(o, ctx->cgroup_path, 4096);
	} else {
		put_lit(o, "\"");
		put_u64(o, cgroup_id);
		put_lit(o, "\"");
	}
	put_lit(o, ",\"cgroup_id\":");
	put_u64(o, cgroup_id);
	put_lit(o, "}");
}

/* "rule_origin": the file and line of the deciding rule, when it has one. */
static void put_origin(struct out *o, const struct event_ctx *ctx, __u32 rule)
{
	char origin[POLICY_ERR_LEN];

	policy_rule_origin(ctx->policy, rule, origin, sizeof(origin));
	if (!origin[0])
		return;
	put_lit(o, ",\"rule_origin\":");
	put_json_str(o, origin, sizeof(origin));
}

static bool is_unix_op(__u8 op)
{
	return op == WEIR_OP_UNIX_CONNECT || op == WEIR_OP_UNIX_SENDMSG;
}

static bool is_outside_op(__u8 op)
{
	return op == WEIR_OP_OUTSIDE_CONNECT || op == WEIR_OP_OUTSIDE_SENDMSG;
}

/* A unix socket's path as "/run/nscd/socket", or "@name" for an abstract
 * one; bytes past the first NUL of a path (or of the name) are left out. */
static void unix_path_text(const __u8 *path, __u32 n, char *out, size_t len)
{
	const char *p = (const char *)path;
	bool abstract = n && !path[0];

	if (n > WEIR_UNIX_PATH_MAX)
		n = WEIR_UNIX_PATH_MAX;
	if (abstract)
		snprintf(out, len, "@%.*s", (int)strnlen(p + 1, n - 1), p + 1);
	else
		snprintf(out, len, "%.*s", (int)strnlen(p, n), p);
}

/* The unix ops' and outside ops' fields: no address, a path for the
 * first, when the record carries it. */
static void put_unix(struct out *o, const struct weir_event *e, const char *path)
{
	put(o, ",\"family\":\"%s\",\"type\":\"%s\"", family_name(e->family),
	    sock_type_name(e->sock_type));
	if (path) {
		put(o, ",\"path\":");
		put_json_str(o, path, WEIR_UNIX_PATH_MAX + 2);
	}
}

static int format_json(const struct event_ctx *ctx, const struct weir_event *e, const char *path,
		       const char *domain, char *buf, size_t len);

int event_format_json(const struct event_ctx *ctx, const struct weir_event *e, char *buf,
		      size_t len)
{
	char dbuf[DNS_NAME_MAX];

	return format_json(ctx, e, NULL, event_domain(ctx, e, dbuf, sizeof(dbuf)), buf, len);
}

/* The path of a unix record of RECLEN bytes (into buf), or NULL. */
static const char *record_path(const void *rec, size_t reclen, char *buf, size_t len)
{
	const struct weir_unix_event *u = rec;

	if (!is_unix_op(u->e.op) || reclen < sizeof(*u))
		return NULL;
	unix_path_text(u->path, u->path_len, buf, len);
	return buf;
}

int event_format_json_rec(const struct event_ctx *ctx, const void *rec, size_t reclen, char *buf,
			  size_t len)
{
	char dbuf[DNS_NAME_MAX];

	if (reclen < sizeof(struct weir_event))
		return -EINVAL;
	return event_format_json_dom(ctx, rec, reclen, event_domain(ctx, rec, dbuf, sizeof(dbuf)),
				     buf, len);
}

int event_format_json_dom(const struct event_ctx *ctx, const void *rec, size_t reclen,
			  const char *domain, char *buf, size_t len)
{
	char path[WEIR_UNIX_PATH_MAX + 2];

	if (reclen < sizeof(struct weir_event))
		return -EINVAL;
	return format_json(ctx, rec, record_path(rec, reclen, path, sizeof(path)), domain, buf,
			   len);
}

/* ,"rule":"allow[1]","rule_origin":"agent.yaml:4" */
static void put_rule(struct out *o, const struct event_ctx *ctx, const struct weir_event *e)
{
	char rule[32];

	if (e->reason == WEIR_R_DNS_REDIRECT)
		snprintf(rule, sizeof(rule), "resolver");
	else
		policy_rule_name(e->rule, rule, sizeof(rule));
	put_lit(o, ",\"rule\":\"");
	put_s(o, rule);
	put_lit(o, "\"");
	put_origin(o, ctx, e->rule);
}

/*
 * The same from the caller's memo when the last event had the same rule
 * under the same policy: most events of a busy stream do, and the rule's
 * name and origin cost more to find than the rest of the line.
 */
static void put_rule_memo(struct out *o, const struct event_ctx *ctx, const struct weir_event *e)
{
	struct event_memo *m = ctx->memo;
	bool redirect = e->reason == WEIR_R_DNS_REDIRECT;
	struct out mo;

	if (!m) {
		put_rule(o, ctx, e);
		return;
	}
	if (m->len && m->policy == ctx->policy && m->rule == e->rule && m->redirect == redirect) {
		put_n(o, m->json, m->len);
		return;
	}
	mo = (struct out){ m->json, sizeof(m->json), 0 };
	put_rule(&mo, ctx, e);
	if (out_end(&mo) < 0) {
		m->len = 0;
		put_rule(o, ctx, e);
		return;
	}
	m->policy = ctx->policy;
	m->rule = e->rule;
	m->redirect = redirect;
	m->len = mo.pos;
	put_n(o, m->json, m->len);
}

static void put_family(struct out *o, const struct weir_event *e)
{
	if (e->family == 2)
		put_lit(o, ",\"family\":\"ipv4\"");
	else
		put_lit(o, ",\"family\":\"ipv6\"");
}

/* The address and port fields of the destination (or, inbound, the peer). */
static void put_dest(struct out *o, const struct weir_event *e)
{
	char addr[INET6_ADDRSTRLEN];

	format_addr(e, addr, sizeof(addr));
	put_family(o, e);
	if (e->op == WEIR_OP_INBOUND) { /* the peer is the source; port is ours */
		put_lit(o, ",\"src\":\"");
		put_s(o, addr);
		put_lit(o, "\",\"src_port\":");
		put_u64(o, e->peer_port);
	} else {
		put_lit(o, ",\"dst\":\"");
		put_s(o, addr);
		put_lit(o, "\"");
	}
	put_lit(o, ",\"port\":");
	put_u64(o, e->port);
}

static int format_json(const struct event_ctx *ctx, const struct weir_event *e, const char *path,
		       const char *domain, char *buf, size_t len)
{
	struct out o = { buf, len, 0 };
	bool audit = ctx->policy && ctx->policy->mode == POLICY_AUDIT;
	char pbuf[8];

	put_lit(&o, "{\"v\":");
	put_u64(&o, EVENTS_SCHEMA_VERSION);
	put_lit(&o, ",\"ts\":");
	put_time(&o, boot_to_wall(e->ts_ns, ctx->boot_to_real_ns));
	/* A flow's end decides nothing: no verdict, so that what selects
	 * decisions by it (jq 'select(.verdict)') leaves it out. */
	if (event_is_decision(e)) {
		put_lit(&o, ",\"verdict\":\"");
		put_s(&o, event_verdict_name(e->verdict));
		put_lit(&o, "\"");
	}
	put_lit(&o, ",\"mode\":\"");
	put_s(&o, audit ? "audit" : "enforce");
	put_lit(&o, "\",\"op\":\"");
	put_s(&o, event_op_name(e->op));
	put_lit(&o, "\",\"proto\":\"");
	put_s(&o, event_proto_name(e->protocol, pbuf, sizeof(pbuf)));
	put_lit(&o, "\"");
	if (is_unix_op(e->op) || is_outside_op(e->op))
		put_unix(&o, e, path);
	else if (e->op == WEIR_OP_SOCKET || e->op == WEIR_OP_SETSOCKOPT)
		put(&o, ",\"family\":\"%s\",\"type\":\"%s\"", family_name(e->family),
		    sock_type_name(e->sock_type));
	else
		put_dest(&o, e);
	if (domain) {
		put_lit(&o, ",\"domain\":");
		put_json_str(&o, domain, 256);
	}
	put_rule_memo(&o, ctx, e);
	put_lit(&o, ",\"reason\":\"");
	put_s(&o, event_reason_name(e));
	put_lit(&o, "\"");
	if (event_sent_nothing(e))
		put_lit(&o, ",\"sent\":false");
	if (e->flags & WEIR_EF_MAPPED)
		put_lit(&o, ",\"mapped\":true");
	if (e->flags & WEIR_EF_UNSPEC)
		put_lit(&o, ",\"unspecified\":true");
	if (e->op == WEIR_OP_CLOSE && (e->flags & WEIR_EF_DEST)) /* unconnected UDP */
		put(&o, ",\"datagrams\":%llu,\"duration_ns\":%llu",
		    (unsigned long long)e->datagrams, (unsigned long long)e->duration_ns);
	else if (e->op == WEIR_OP_CLOSE)
		put(&o, ",\"tx_bytes\":%llu,\"rx_bytes\":%llu,\"duration_ns\":%llu",
		    (unsigned long long)e->tx_bytes, (unsigned long long)e->rx_bytes,
		    (unsigned long long)e->duration_ns);
	put_task(&o, ctx, e->pid, e->tid, e->uid, e->gid, e->comm, e->cgroup_id);
	return out_end(&o);
}

int event_format_dns_json(const struct event_ctx *ctx, const struct dns_event *e, char *buf,
			  size_t len)
{
	static const char *const rcodes[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
					      "NOTIMP", "REFUSED" };
	struct out o = { buf, len, 0 };
	const struct weir_asker *a = &e->asker;
	char tbuf[16], rule[32], addr[INET6_ADDRSTRLEN];
	struct timespec now;
	size_t i;

	clock_gettime(CLOCK_REALTIME, &now);
	policy_rule_name(e->rule, rule, sizeof(rule));
	put(&o, "{\"v\":%d,\"ts\":", EVENTS_SCHEMA_VERSION);
	put_time(&o, (__s64)now.tv_sec * 1000000000LL + now.tv_nsec);
	put(&o, ",\"verdict\":\"%s\",\"mode\":\"%s\",\"op\":\"dns\",\"proto\":\"%s\",\"name\":",
	    event_verdict_name(e->verdict),
	    ctx->policy && ctx->policy->mode == POLICY_AUDIT ? "audit" : "enforce",
	    e->protocol == 6 ? "tcp" : "udp");
	put_json_str(&o, e->q.name, sizeof(e->q.name));
	put(&o, ",\"qtype\":\"%s\",\"rule\":\"%s\"", dns_type_name(e->q.qtype, tbuf, sizeof(tbuf)),
	    rule);
	put_origin(&o, ctx, e->rule);
	put(&o, ",\"reason\":\"%s\"", e->reason);
	if (e->rcode >= 0 && e->rcode <= 5)
		put(&o, ",\"rcode\":\"%s\"", rcodes[e->rcode]);
	else if (e->rcode > 5)
		put(&o, ",\"rcode\":\"%d\"", e->rcode);
	put(&o, ",\"answers\":[");
	for (i = 0; i < e->n_answers; i++) {
		inet_ntop(e->answers[i].family, e->answers[i].addr, addr, sizeof(addr));
		put(&o, "%s\"%s\"", i ? "," : "", addr);
	}
	put(&o, "]");
	if (e->have_asker) {
		inet_ntop(a->family, a->ip6, addr, sizeof(addr));
		put(&o, ",\"server\":\"%s\",\"server_port\":%u", addr, a->port);
		put_task(&o, ctx, a->pid, a->tid, a->uid, a->gid, a->comm, a->cgroup_id);
	} else {
		put(&o, "}");
	}
	return out_end(&o);
}

/* comm (and a name) is chosen by the program: nothing that could steer a
 * terminal. */
static void safe_text(const char *in, size_t max, char *out, size_t len)
{
	size_t i, j = 0;

	for (i = 0; i < max && in[i] && j + 5 < len; i++) {
		unsigned char c = in[i];

		j += snprintf(out + j, len - j, c < 0x20 || c >= 0x7f ? "\\x%02x" : "%c", c);
	}
	out[j] = '\0';
}

static void safe_comm(const char *in, char *out, size_t len)
{
	safe_text(in, WEIR_COMM_LEN, out, len);
}

int event_format_dns_human(const struct dns_event *e, char *buf, size_t len)
{
	char tbuf[16], comm[WEIR_COMM_LEN * 4 + 1] = "?";

	if (e->have_asker)
		safe_comm(e->asker.comm, comm, sizeof(comm));
	/* The name came through ldns_rdf2str: non-printable bytes are \DDD. */
	return snprintf(buf, len, "%s dns %s %s (%s pid %u)",
			e->verdict == WEIR_V_WOULD_DENY ? "would refuse" : "refused",
			dns_type_name(e->q.qtype, tbuf, sizeof(tbuf)), e->q.name, comm,
			e->have_asker ? e->asker.pid : 0);
}

/* "web.test:8080" and its address apart, or the address alone: "192.0.2.10:8080". */
static void format_dest_named(const char *domain, const struct weir_event *e, char *dest,
			      size_t dlen, char *addr, size_t alen)
{
	char name[DNS_NAME_MAX * 4];

	*addr = '\0';
	if (!domain) {
		event_format_dest(e, dest, dlen);
		return;
	}
	safe_text(domain, DNS_NAME_MAX, name, sizeof(name));
	snprintf(dest, dlen, "%s:%u", name, e->port);
	format_addr(e, addr, alen);
}

static const char *verdict_words(const struct weir_event *e)
{
	return e->verdict == WEIR_V_WOULD_DENY ? "would deny" :
	       e->verdict == WEIR_V_ALLOW	? "allowed" :
						  "denied";
}

static int format_human(const struct event_ctx *ctx, const struct weir_event *e, const char *path,
			char *buf, size_t len)
{
	char dest[DNS_NAME_MAX * 4 + 8], addr[INET6_ADDRSTRLEN], dbuf[DNS_NAME_MAX];
	char pbuf[8], comm[WEIR_COMM_LEN * 4 + 1], safe[WEIR_UNIX_PATH_MAX * 4 + 8];
	const char *proto = event_proto_name(e->protocol, pbuf, sizeof(pbuf));

	safe_comm(e->comm, comm, sizeof(comm));
	if (is_unix_op(e->op)) {
		safe_text(path ? path : "?", sizeof(safe), safe, sizeof(safe));
		return snprintf(buf, len, "%s unix %s %s to %s (%s pid %u)%s", verdict_words(e),
				sock_type_name(e->sock_type),
				e->op == WEIR_OP_UNIX_CONNECT ? "connect" : "sendmsg", safe, comm,
				e->pid,
				e->reason == WEIR_R_UNIX_BUILTIN ? ": weir's built-in list" :
				e->reason == WEIR_R_UNIX_PATH	 ? ": a path no pattern can judge" :
								   "");
	}
	if (is_outside_op(e->op))
		return snprintf(buf, len, "%s %s on an %s socket made outside the cgroup "
				"(%s pid %u)", verdict_words(e),
				e->op == WEIR_OP_OUTSIDE_CONNECT ? "connect" : "send",
				e->family == 2 ? "IPv4" : "IPv6", comm, e->pid);
	if (e->op == WEIR_OP_SETSOCKOPT)
		return snprintf(buf, len, "%s %s (%s pid %u)",
				e->verdict == WEIR_V_WOULD_DENY ? "would deny" : "denied",
				e->reason != WEIR_R_MULTICAST ? "a source-routing socket option" :
				e->family == 2		      ? "an IPv4 multicast join" :
								"an IPv6 multicast join",
				comm, e->pid);
	if (e->op == WEIR_OP_SOCKET && e->family != 2 && e->family != 10)
		return snprintf(buf, len, "%s %s %s socket (%s pid %u)", verdict_words(e),
				family_name(e->family), sock_type_name(e->sock_type), comm, e->pid);
	if (e->op == WEIR_OP_SOCKET)
		return snprintf(buf, len, "%s %s %s socket (%s pid %u)", verdict_words(e),
				sock_type_name(e->sock_type), proto, comm, e->pid);
	if (e->op == WEIR_OP_INBOUND) { /* no task: nobody inside asked */
		event_format_dest(e, dest, sizeof(dest));
		*strrchr(dest, ':') = '\0';
		return snprintf(buf, len, "%s inbound %s from %s:%u to port %u",
				e->verdict == WEIR_V_WOULD_DENY ? "would refuse" :
				e->verdict == WEIR_V_ALLOW	? "allowed" :
								  "refused",
				proto, dest, e->peer_port, e->port);
	}
	format_dest_named(event_domain(ctx, e, dbuf, sizeof(dbuf)), e, dest, sizeof(dest), addr,
			  sizeof(addr));
	if (event_sent_nothing(e))
		return snprintf(buf, len, "%s %s connect to %s (%s%s%s pid %u): nothing sent%s",
				e->verdict == WEIR_V_WOULD_DENY ? "would refuse" : "refused", proto,
				dest, addr, *addr ? ", " : "", comm, e->pid,
				e->verdict == WEIR_V_WOULD_DENY ? " yet" : "");
	return snprintf(buf, len, "%s %s %s (%s%s%s pid %u)%s", verdict_words(e), proto, dest,
			addr, *addr ? ", " : "", comm, e->pid,
			e->reason == WEIR_R_BUDGET ? ": upload budget spent" : "");
}

/* The line, then " [rule agent.yaml:12]" when the deciding rule is in a file. */
static int human_with_origin(const struct event_ctx *ctx, const struct weir_event *e,
			     const char *path, char *buf, size_t len)
{
	char origin[POLICY_ERR_LEN];
	int n = format_human(ctx, e, path, buf, len);

	policy_rule_origin(ctx ? ctx->policy : NULL, e->rule, origin, sizeof(origin));
	if (n < 0 || (size_t)n >= len || !origin[0])
		return n;
	return n + snprintf(buf + n, len - (size_t)n, " [rule %s]", origin);
}

int event_format_human(const struct event_ctx *ctx, const struct weir_event *e, char *buf,
		       size_t len)
{
	return human_with_origin(ctx, e, NULL, buf, len);
}

int event_format_human_rec(const struct event_ctx *ctx, const void *rec, size_t reclen, char *buf,
			   size_t len)
{
	char path[WEIR_UNIX_PATH_MAX + 2];

	if (reclen < sizeof(struct weir_event))
		return -EINVAL;
	return human_with_origin(ctx, rec, record_path(rec, reclen, path, sizeof(path)), buf,
				 len);
}

/* --- summary --------------------------------------------------------------- */

#define SUMMARY_MAX 4096 /* distinct destinations remembered */
#define SUMMARY_SLOTS (2 * SUMMARY_MAX) /* open addressing, at most half full */

/* One row: a verdict, protocol and port, and the name the addresses were
 * learned from (domain) or else one address. */
struct dest_count {
	__u8 family, verdict;
	__u8 inbound; /* a peer connecting in to port: listed apart */
	__u16 protocol, port;
	__u8 addr[16]; /* with a domain: the first address seen */
	__u8 more; /* with a domain: other addresses too */
	char *domain;
	char *origin; /* the deciding rule's file:line, of the first event */
	__u64 count;
};

/* Destinations by hash, so that a program spraying thousands of them does
 * not slow the reader into losing events. */
struct summary {
	struct dest_count *d; /* in first-seen order */
	size_t n;
	__u32 *slots; /* 1-based index into d, 0 empty */
	__u64 total[3]; /* by verdict */
	__u64 untracked; /* events past SUMMARY_MAX destinations */
	__u64 dns[3]; /* queries by verdict */
	__u64 dns_failed; /* of those forwarded, how many the upstreams failed */
};

struct summary *summary_new(void)
{
	struct summary *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->d = calloc(SUMMARY_MAX, sizeof(*s->d));
	s->slots = calloc(SUMMARY_SLOTS, sizeof(*s->slots));
	if (!s->d || !s->slots) {
		summary_free(s);
		return NULL;
	}
	return s;
}

static bool same_dest(const struct dest_count *d, const struct weir_event *e, const char *domain)
{
	if (d->verdict != e->verdict || d->port != e->port || d->protocol != e->protocol ||
	    d->inbound != (e->op == WEIR_OP_INBOUND))
		return false;
	if (domain || d->domain)
		return domain && d->domain && !strcmp(d->domain, domain);
	return d->family == e->family && !memcmp(d->addr, e->addr, 16);
}

static size_t dest_hash(const struct weir_event *e, const char *domain)
{
	__u64 h = 1469598103934665603ULL;
	size_t i;

	if (domain) {
		for (i = 0; domain[i]; i++)
			h = (h ^ (__u8)domain[i]) * 1099511628211ULL;
	} else {
		for (i = 0; i < 16; i++)
			h = (h ^ e->addr[i]) * 1099511628211ULL;
		h ^= (__u64)e->family << 32;
	}
	h = (h ^ e->port ^ (__u64)e->protocol << 16 ^ (__u64)e->verdict << 24 ^
	     (__u64)(e->op == WEIR_OP_INBOUND) << 32) *
	    1099511628211ULL;
	return h % SUMMARY_SLOTS;
}

static void count_again(struct dest_count *d, const struct weir_event *e)
{
	d->count++;
	if (d->domain && (d->family != e->family || memcmp(d->addr, e->addr, 16)))
		d->more = 1;
}

static void add_origin(struct dest_count *d, const struct policy *p, const struct weir_event *e)
{
	char origin[POLICY_ERR_LEN];

	policy_rule_origin(p, e->rule, origin, sizeof(origin));
	if (origin[0])
		d->origin = strdup(origin); /* out of memory: the row says none */
}

/* A datagram socket's refused connect() sent nothing (glibc's source
 * address probes): in the event stream, not here. */
void summary_add(struct summary *s, const struct event_ctx *ctx, const struct weir_event *e)
{
	char dbuf[DNS_NAME_MAX];

	summary_add_domain(s, ctx ? ctx->policy : NULL, e, event_domain(ctx, e, dbuf, sizeof(dbuf)));
}

void summary_add_domain(struct summary *s, const struct policy *p, const struct weir_event *e,
			const char *domain)
{
	size_t h;

	if (event_sent_nothing(e) || !event_is_decision(e))
		return;
	if (e->verdict <= WEIR_V_WOULD_DENY)
		s->total[e->verdict]++;
	if (e->op == WEIR_OP_SOCKET || e->op == WEIR_OP_SETSOCKOPT || is_unix_op(e->op) ||
	    is_outside_op(e->op))
		return; /* no destination: counted, not listed */
	for (h = dest_hash(e, domain); s->slots[h]; h = (h + 1) % SUMMARY_SLOTS) {
		if (same_dest(&s->d[s->slots[h] - 1], e, domain)) {
			count_again(&s->d[s->slots[h] - 1], e);
			return;
		}
	}
	if (s->n == SUMMARY_MAX) {
		s->untracked++;
		return;
	}
	s->d[s->n] = (struct dest_count){ .family = e->family, .protocol = e->protocol,
					  .verdict = e->verdict, .port = e->port, .count = 1,
					  .inbound = e->op == WEIR_OP_INBOUND };
	memcpy(s->d[s->n].addr, e->addr, 16);
	/* Out of memory: the row is listed by its address instead. */
	if (domain)
		s->d[s->n].domain = strdup(domain);
	add_origin(&s->d[s->n], p, e);
	s->slots[h] = ++s->n;
}

#define SUMMARY_PRINT 20 /* destinations listed per verdict at exit */

static int by_count(const void *a, const void *b)
{
	const struct dest_count *x = *(const struct dest_count *const *)a;
	const struct dest_count *y = *(const struct dest_count *const *)b;

	return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

/* "web.test:8080 (192.0.2.10)", "web.test:443 (192.0.2.10 and others)",
 * "192.0.2.10:8080", or "inbound from 198.51.100.7 to port 8080" */
static void format_row(const struct dest_count *d, char *buf, size_t len)
{
	char dest[DNS_NAME_MAX * 4 + 8], addr[INET6_ADDRSTRLEN];
	struct weir_event e = { .family = d->family, .port = d->port };

	memcpy(e.addr, d->addr, 16);
	if (d->inbound) {
		format_addr(&e, addr, sizeof(addr));
		snprintf(buf, len, "inbound from %s to port %u", addr, d->port);
		return;
	}
	format_dest_named(d->domain, &e, dest, sizeof(dest), addr, sizeof(addr));
	if (*addr)
		snprintf(buf, len, "%s (%s%s)", dest, addr, d->more ? " and others" : "");
	else
		snprintf(buf, len, "%s", dest);
}

/* The busiest destinations of one verdict, then how many more there were. */
static void print_verdict(const struct summary *s, FILE *f, __u8 verdict, const char *label)
{
	const struct dest_count **v = calloc(s->n ? s->n : 1, sizeof(*v));
	char row[DNS_NAME_MAX * 4 + 80], pbuf[8];
	size_t i, n = 0;

	if (!v)
		return;
	for (i = 0; i < s->n; i++)
		if (s->d[i].verdict == verdict)
			v[n++] = &s->d[i];
	qsort(v, n, sizeof(*v), by_count);
	for (i = 0; i < n && i < SUMMARY_PRINT; i++) {
		format_row(v[i], row, sizeof(row));
		fprintf(f, "weir:   %-10s %-6s %-46s x%llu%s%s%s\n", label,
			event_proto_name(v[i]->protocol, pbuf, sizeof(pbuf)), row,
			(unsigned long long)v[i]->count, v[i]->origin ? " [rule " : "",
			v[i]->origin ?: "", v[i]->origin ? "]" : "");
	}
	if (n > SUMMARY_PRINT)
		fprintf(f, "weir:   %-10s ... and %zu more destinations\n", label,
			n - SUMMARY_PRINT);
	free(v);
}

void summary_add_dns(struct summary *s, const struct dns_event *e)
{
	if (e->verdict <= WEIR_V_WOULD_DENY)
		s->dns[e->verdict]++;
	if (e->upstream_failed)
		s->dns_failed++;
}

void summary_print(const struct summary *s, FILE *f, __u64 lost)
{
	fprintf(f, "weir: summary: %llu allowed, %llu denied", (unsigned long long)s->total[1],
		(unsigned long long)s->total[0]);
	if (s->total[2])
		fprintf(f, ", %llu would be denied", (unsigned long long)s->total[2]);
	fprintf(f, "\n");
	print_verdict(s, f, WEIR_V_ALLOW, "allowed");
	print_verdict(s, f, WEIR_V_DENY, "denied");
	print_verdict(s, f, WEIR_V_WOULD_DENY, "would-deny");
	if (s->dns[0] || s->dns[1] || s->dns[2] || s->dns_failed) {
		fprintf(f, "weir:   dns: %llu answered, %llu refused",
			(unsigned long long)(s->dns[1] + s->dns[2] - s->dns_failed),
			(unsigned long long)s->dns[0]);
		if (s->dns_failed)
			fprintf(f, ", %llu failed (upstream unreachable or failing)",
				(unsigned long long)s->dns_failed);
		fprintf(f, "%s\n", s->dns[2] ? " (audit: some answered names are not allowed)" : "");
	}
	if (s->untracked)
		fprintf(f, "weir:   (%llu more decisions to other destinations)\n",
			(unsigned long long)s->untracked);
	if (lost)
		fprintf(f, "weir: WARNING: %llu audit events were lost (ring buffer full); "
			   "verdicts were not affected\n",
			(unsigned long long)lost);
}

void summary_free(struct summary *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; s->d && i < s->n; i++) {
		free(s->d[i].domain);
		free(s->d[i].origin);
	}
	free(s->d);
	free(s->slots);
	free(s);
}

void summary_counts(const struct summary *s, struct summary_counts *out)
{
	memcpy(out->decisions, s->total, sizeof(out->decisions));
	memcpy(out->dns, s->dns, sizeof(out->dns));
	out->dns_failed = s->dns_failed;
}
