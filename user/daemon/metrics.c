// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Prometheus text for weir daemon. daemon_metrics() (the core) writes the
 * enforcement metrics with the helpers here; this file adds the API's own,
 * and serves the page on --metrics HOST:PORT: a second libmicrohttpd daemon
 * on TCP, GET /metrics only. It carries no credentials check (Prometheus
 * scrapes without any), so the example binds 127.0.0.1: the page names
 * attachment labels and policies, nothing that changes enforcement.
 */
#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "httpd.h"

#include "api.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "weir.h"

/* Bytes of the UTF-8 sequence at P (1-4), 0 if it is not one. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] < 0xe0)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] < 0xf0)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	/* no overlong forms, surrogates, or code points past U+10FFFF */
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;
	return n;
}

/*
 * A label value as the text format takes it: \\, \" and \n escaped, and a
 * label that is not UTF-8 (a cgroup's name may hold any byte but '/') made
 * so, U+FFFD for each bad byte, or Prometheus refuses the whole page; other
 * control characters become '?'.
 */
void metrics_label(FILE *f, const char *value)
{
	const unsigned char *p = (const unsigned char *)value;
	size_t n;

	fputc('"', f);
	while (*p) {
		n = utf8_len(p);
		if (*p == '\\' || *p == '"')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (!n)
			fputs("\xef\xbf\xbd", f);
		else if (*p < 0x20 || *p == 0x7f)
			fputc('?', f);
		else
			fwrite(p, 1, n, f);
		p += n ?: 1;
	}
	fputc('"', f);
}

/* The upper bounds, in ns; their text is what the le label says. */
static const __u64 hist_bound_ns[METRICS_HIST_BUCKETS] = {
	100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
	25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000ULL,
};
static const char *const hist_le[METRICS_HIST_BUCKETS] = {
	"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
	"0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
};

void metrics_hist_observe(struct metrics_hist *h, __u64 ns)
{
	int i = 0;

	while (i < METRICS_HIST_BUCKETS && ns > hist_bound_ns[i])
		i++;
	__atomic_fetch_add(&h->bucket[i], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum_ns, ns, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
}

void metrics_hist_print(FILE *f, const char *name, const char *help,
			const struct metrics_hist *h)
{
	unsigned long long cum = 0, sum;
	int i;

	fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (i = 0; i <= METRICS_HIST_BUCKETS; i++) {
		cum += __atomic_load_n(&h->bucket[i], __ATOMIC_RELAXED);
		fprintf(f, "%s_bucket{le=\"%s\"} %llu\n", name,
			i < METRICS_HIST_BUCKETS ? hist_le[i] : "+Inf", cum);
	}
	sum = __atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED);
	fprintf(f, "%s_sum %llu.%09llu\n", name, sum / 1000000000ULL, sum % 1000000000ULL);
	/* the +Inf bucket, not a second read of count: the two must agree */
	fprintf(f, "%s_count %llu\n", name, cum);
}

/* The statuses the API answers with; anything else is counted as 500. */
static const unsigned int api_codes[] = { 200, 201, 400, 403, 404, 405, 409, 413, 500 };
#define API_CODES (sizeof(api_codes) / sizeof(api_codes[0]))
static unsigned long long api_requests[API_CODES];

void metrics_count_request(unsigned int status)
{
	size_t i;

	for (i = 0; i < API_CODES - 1 && api_codes[i] != status; i++)
		;
	__atomic_fetch_add(&api_requests[i], 1, __ATOMIC_RELAXED);
}

static void metrics_own(FILE *f)
{
	size_t i;

	fputs("# HELP weir_api_requests_total Requests answered on the daemon's API socket, "
	      "by HTTP status.\n# TYPE weir_api_requests_total counter\n", f);
	for (i = 0; i < API_CODES; i++)
		fprintf(f, "weir_api_requests_total{code=\"%u\"} %llu\n", api_codes[i],
			__atomic_load_n(&api_requests[i], __ATOMIC_RELAXED));
	fputs("# HELP weir_build_info The weir version serving these metrics.\n"
	      "# TYPE weir_build_info gauge\nweir_build_info{version=", f);
	metrics_label(f, weir_version());
	fputs("} 1\n", f);
}

int metrics_render(struct daemon *d, char **text, size_t *len)
{
	FILE *f = open_memstream(text, len);

	if (!f)
		return -errno;
	daemon_metrics(d, f);
	metrics_own(f);
	if (fclose(f)) {
		free(*text);
		*text = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* --- the --metrics server --------------------------------------------------- */

static struct MHD_Daemon *metrics_httpd;

static enum MHD_Result metrics_reply(struct MHD_Connection *conn, unsigned int status,
				     const char *type, char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = body ? mhd.create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) : NULL;
	if (!r) {
		free(body);
		return MHD_NO;
	}
	mhd.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		mhd.add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = mhd.queue_response(conn, status, r);
	mhd.destroy_response(r);
	return ret;
}

static enum MHD_Result metrics_text(struct MHD_Connection *conn, unsigned int status,
				    const char *msg)
{
	return metrics_reply(conn, status, "text/plain", strdup(msg), strlen(msg));
}

static enum MHD_Result metrics_handler(void *cls, struct MHD_Connection *conn, const char *url,
				       const char *method, const char *version,
				       const char *upload, size_t *upload_len, void **req)
{
	char *text;
	size_t len;

	if (strcmp(url, "/metrics"))
		return metrics_text(conn, MHD_HTTP_NOT_FOUND,
				    "no such page: the metrics are at /metrics\n");
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return metrics_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "/metrics: GET only\n");
	if (metrics_render(cls, &text, &len))
		return MHD_NO;
	return metrics_reply(conn, MHD_HTTP_OK, METRICS_CONTENT_TYPE, text, len);
}

/* HOST:PORT, [V6]:PORT or :PORT into host (NULL: any) and port. */
static int metrics_split(const char *addr, char *host, size_t hlen, const char **port)
{
	const char *colon = strrchr(addr, ':'), *h = addr;
	size_t n;

	if (!colon || !colon[1])
		return -EINVAL;
	n = colon - addr;
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		h++;
		n -= 2;
	} else if (memchr(addr, ':', n)) {
		return -EINVAL; /* a bare IPv6 address: its port is ambiguous */
	}
	if (n >= hlen)
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

static int metrics_listen(const char *addr, char *err, size_t len)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM }, *res, *ai;
	char host[256];
	const char *port;
	int fd = -1, one = 1, ret;

	if (metrics_split(addr, host, sizeof(host), &port)) {
		snprintf(err, len, "--metrics '%s': not HOST:PORT (127.0.0.1:9477, [::1]:9477)",
			 addr);
		return -EINVAL;
	}
	ret = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (ret) {
		snprintf(err, len, "--metrics '%s': %s", addr, gai_strerror(ret));
		return -EINVAL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 64))
			break;
		ret = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, len, "--metrics %s: cannot listen: %s", addr, strerror(-ret));
	return fd < 0 ? ret : fd;
}

int metrics_start(struct daemon *d, const char *addr, char *err, size_t len)
{
	int fd = httpd_load(err, len);

	fd = fd ?: metrics_listen(addr, err, len);
	if (fd < 0)
		return fd;
	/* epoll: the daemon holds thousands of descriptors (pins, resolver
	 * sockets), beyond select()'s FD_SETSIZE */
	metrics_httpd = mhd.start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0,
					 NULL, NULL, metrics_handler, d,
					 MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log, NULL,
					 MHD_OPTION_LISTEN_SOCKET, fd,
					 MHD_OPTION_CONNECTION_TIMEOUT, 30U,
					 MHD_OPTION_CONNECTION_LIMIT, 64U, MHD_OPTION_END);
	if (!metrics_httpd) {
		close(fd);
		snprintf(err, len, "--metrics %s: the HTTP server did not start", addr);
		return -EIO;
	}
	pr_info("metrics on http://%s/metrics\n", addr);
	return 0;
}

void metrics_stop(void)
{
	if (metrics_httpd)
		mhd.stop_daemon(metrics_httpd);
	metrics_httpd = NULL;
}
