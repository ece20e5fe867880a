// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Recorded events back into decisions: json-c parses each line. */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "evread.h"

struct reader {
	const char *file;
	unsigned long line;
	char *err;
};

static int bad(struct reader *rd, const char *what, const char *detail)
{
	snprintf(rd->err, EVREAD_ERR_LEN, "%s:%lu: %s%s%s", rd->file, rd->line, what,
		 detail ? ": " : "", detail ? detail : "");
	return -EINVAL;
}

static const char *str_field(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A string field copied into buf; a missing one is "" unless required. */
static int copy_field(struct reader *rd, json_object *o, const char *key, char *buf, size_t len,
		      bool required)
{
	const char *s = str_field(o, key);

	buf[0] = '\0';
	if (!s)
		return required ? bad(rd, "missing string field", key) : 0;
	if (strlen(s) >= len)
		return bad(rd, "field too long", key);
	strcpy(buf, s);
	return 0;
}

static int parse_addr(const char *s, int *family, __u8 addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, addr) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

/* IPPROTO_* of the proto field: names weir writes, or a number. */
static int parse_proto(const char *s, __u16 *protocol)
{
	static const struct {
		const char *name;
		__u16 nr;
	} names[] = { { "tcp", 6 }, { "udp", 17 }, { "udplite", 136 }, { "icmp", 1 },
		      { "icmpv6", 58 }, { "sctp", 132 } };
	char *end;
	unsigned long n;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i].name)) {
			*protocol = names[i].nr;
			return 0;
		}
	}
	errno = 0;
	n = strtoul(s, &end, 10);
	if (!*s || *end || errno || n > 65535)
		return -EINVAL;
	*protocol = (__u16)n;
	return 0;
}

static int conn_fields(struct reader *rd, json_object *o, struct evrec *r)
{
	json_object *v;
	int64_t port;

	if (copy_field(rd, o, "dst", r->dst, sizeof(r->dst), true) ||
	    copy_field(rd, o, "proto", r->proto, sizeof(r->proto), true) ||
	    copy_field(rd, o, "domain", r->domain, sizeof(r->domain), false))
		return -EINVAL;
	if (parse_addr(r->dst, &r->family, r->addr))
		return bad(rd, "dst is not an IP address", r->dst);
	if (parse_proto(r->proto, &r->protocol))
		return bad(rd, "unknown proto", r->proto);
	if (!json_object_object_get_ex(o, "port", &v) || !json_object_is_type(v, json_type_int))
		return bad(rd, "missing integer field", "port");
	port = json_object_get_int64(v);
	if (port < 0 || port > 65535)
		return bad(rd, "port out of range", NULL);
	r->port = (__u16)port;
	r->sent_nothing = json_object_object_get_ex(o, "sent", &v) &&
			  json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v);
	return 0;
}

/* A byte count of a close event: absent is 0, anything but a whole
 * number >= 0 is an error. */
static int bytes_field(struct reader *rd, json_object *o, const char *key, __u64 *out)
{
	json_object *v;
	int64_t n;

	*out = 0;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return bad(rd, "not an integer", key);
	n = json_object_get_int64(v);
	if (n < 0)
		return bad(rd, "negative byte count", key);
	*out = (__u64)n;
	return 0;
}

static int close_fields(struct reader *rd, json_object *o, struct evrec *r)
{
	return conn_fields(rd, o, r) ?: bytes_field(rd, o, "tx_bytes", &r->tx_bytes) ?:
	       bytes_field(rd, o, "rx_bytes", &r->rx_bytes);
}

static int dns_fields(struct reader *rd, json_object *o, struct evrec *r)
{
	json_object *ans, *a;
	size_t i, n;

	if (copy_field(rd, o, "name", r->name, sizeof(r->name), true) ||
	    copy_field(rd, o, "qtype", r->qtype, sizeof(r->qtype), false) ||
	    copy_field(rd, o, "rcode", r->rcode, sizeof(r->rcode), false))
		return -EINVAL;
	if (!json_object_object_get_ex(o, "answers", &ans))
		return 0;
	if (!json_object_is_type(ans, json_type_array))
		return bad(rd, "answers is not a list", NULL);
	n = json_object_array_length(ans);
	for (i = 0; i < n && r->n_answers < EVREAD_ANSWERS; i++) {
		struct evaddr *e = &r->answers[r->n_answers];

		a = json_object_array_get_idx(ans, i);
		if (!json_object_is_type(a, json_type_string) ||
		    parse_addr(json_object_get_string(a), &e->family, e->addr))
			return bad(rd, "an answer is not an IP address", NULL);
		r->n_answers++;
	}
	return 0;
}

static bool blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

/* 1: a decision in r; 0: a record to skip; <0: not an event. */
static int parse_line(struct reader *rd, const char *line, size_t len, struct evrec *r)
{
	enum json_tokener_error jerr;
	json_tokener *tok;
	json_object *o, *v;
	const char *op;
	int ret = 0;

	tok = json_tokener_new();
	if (!tok)
		return bad(rd, "out of memory", NULL);
	o = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	if (o && jerr == json_tokener_success &&
	    !blank(line + json_tokener_get_parse_end(tok), len - json_tokener_get_parse_end(tok))) {
		json_tokener_free(tok);
		json_object_put(o);
		return bad(rd, "not a JSON event", "something follows the JSON value");
	}
	json_tokener_free(tok);
	if (!o || jerr != json_tokener_success) {
		json_object_put(o);
		return bad(rd, "not a JSON event",
			   jerr == json_tokener_continue ? "the line ends inside the JSON value" :
							   json_tokener_error_desc(jerr));
	}
	if (!json_object_is_type(o, json_type_object)) {
		ret = bad(rd, "not a JSON object", NULL);
		goto out;
	}
	if (!json_object_object_get_ex(o, "v", &v) || !json_object_is_type(v, json_type_int)) {
		ret = bad(rd, "missing integer field", "v");
		goto out;
	}
	if (json_object_get_int64(v) != 1) {
		ret = bad(rd, "unknown schema version (this weir reads \"v\":1)", NULL);
		goto out;
	}
	op = str_field(o, "op");
	if (!op) {
		ret = bad(rd, "missing string field", "op");
		goto out;
	}
	memset(r, 0, sizeof(*r));
	r->file = rd->file;
	r->line = rd->line;
	if (!strcmp(op, "dns"))
		r->kind = EV_DNS;
	else if (!strncmp(op, "connect", 7) || !strncmp(op, "sendmsg", 7) || !strcmp(op, "egress"))
		r->kind = EV_CONN;
	else if (!strcmp(op, "close"))
		r->kind = EV_CLOSE;
	else
		goto out; /* run records, messages, sockets, inbound: nothing to replay */
	if (copy_field(rd, o, "verdict", r->verdict, sizeof(r->verdict), r->kind != EV_CLOSE) ||
	    copy_field(rd, o, "reason", r->reason, sizeof(r->reason), r->kind != EV_CLOSE) ||
	    copy_field(rd, o, "comm", r->comm, sizeof(r->comm), false) ||
	    (r->kind == EV_DNS	 ? dns_fields(rd, o, r) :
	     r->kind == EV_CLOSE ? close_fields(rd, o, r) :
				   conn_fields(rd, o, r)))
		ret = -EINVAL;
	else
		ret = 1;
out:
	json_object_put(o);
	return ret;
}

static int read_stream(FILE *f, struct reader *rd, evrec_fn fn, void *ctx)
{
	struct evrec *r = malloc(sizeof(*r));
	size_t cap = 0;
	char *line = NULL;
	ssize_t n;
	int ret = 0;

	if (!r)
		return bad(rd, "out of memory", NULL);
	while (!ret && (n = getline(&line, &cap, f)) >= 0) {
		rd->line++;
		if (blank(line, (size_t)n))
			continue;
		if (memchr(line, '\0', (size_t)n)) {
			ret = bad(rd, "not a JSON event", "a NUL byte in the line");
			break;
		}
		ret = parse_line(rd, line, (size_t)n, r);
		if (ret == 1)
			ret = fn(r, ctx);
	}
	if (!ret && ferror(f)) {
		ret = -EIO;
		snprintf(rd->err, EVREAD_ERR_LEN, "%s: read error", rd->file);
	}
	free(line);
	free(r);
	return ret;
}

int evread_files(char *const *files, int n, evrec_fn fn, void *ctx, char err[EVREAD_ERR_LEN])
{
	struct reader rd = { .file = "-", .err = err };
	int i, ret = 0;

	if (!files || n <= 0)
		return read_stream(stdin, &rd, fn, ctx);
	for (i = 0; !ret && i < n; i++) {
		FILE *f = strcmp(files[i], "-") ? fopen(files[i], "re") : stdin;

		if (!f) {
			ret = -errno;
			snprintf(err, EVREAD_ERR_LEN, "cannot open %s: %s", files[i], strerror(errno));
			break;
		}
		rd.file = files[i];
		rd.line = 0;
		ret = read_stream(f, &rd, fn, ctx);
		if (f != stdin)
			fclose(f);
	}
	return ret;
}
