/* SPDX-License-Identifier: MIT */
/*
 * Outgoing notifications: libcurl's multi interface driven from the
 * agent's event loop (CURLMOPT_SOCKETFUNCTION puts curl's sockets on our
 * epoll, CURLMOPT_TIMERFUNCTION arms a timerfd), so a slow or hanging
 * receiver never holds up a pass or a drift repair. Each target has a
 * bounded queue (the oldest is dropped and counted), sends one message at
 * a time, retries with exponential backoff, and follows no redirect. The
 * only file that includes <curl/curl.h>.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <curl/curl.h>
#include "cmd/render.h"
#include "daemon/curlloop.h"
#include "http/internal.h"
#include "lib/err.h"
#include "lib/redact.h"

#define NOTIFY_QUEUE 64			/* per target; the oldest waiting is dropped */
#define NOTIFY_ATTEMPTS 5
#define NOTIFY_TIMEOUT_MS 10000		/* a whole request */
#define NOTIFY_CONNECT_TIMEOUT_MS 5000
#define NOTIFY_BACKOFF_MS 1000		/* 1 s, 2 s, 4 s, 8 s */
#define NOTIFY_DEDUPE_MS 60000		/* the same event about the same subject: once a minute */
#define NOTIFY_RECENT 256

struct nmsg {
	int event;
	int64_t when_ms;
	char *subject, *revision, *text;	/* redacted already */
	int attempts;
};

struct ntarget {
	struct notifier *n;
	int index;			/* 1-based, for the log: the URL itself may be a secret */
	char *url;
	char shown[160];		/* scheme://host[:port] only */
	enum notify_format format;
	unsigned events;
	struct nmsg *q[NOTIFY_QUEUE];	/* q[0] is the oldest (and in flight when easy) */
	size_t len;
	CURL *easy;
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
	int64_t next_ms;		/* backoff: not before */
};

struct notifier {
	struct loop *loop;
	struct agent_stats *stats;
	struct curl_loop cl;		/* its own multi handle, on the agent's loop */
	int retry_tfd;
	struct ntarget *t;
	size_t nt;
	struct {
		uint64_t key;
		int64_t at;
	} recent[NOTIFY_RECENT];
	size_t recent_next;
	char host[256];
};

static void nlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void nlog(const char *fmt, ...)
{
	struct buf b = BUF_INIT, out = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	http_redact(&out, b.ptr ? b.ptr : "");
	fprintf(stderr, "%s\n", out.ptr ? out.ptr : "");
	fflush(stderr);
	buf_release(&b);
	buf_release(&out);
}

/* ---- the redaction hook ---- */

static int word_at(const char *s, const char *w)
{
	return !strncasecmp(s, w, strlen(w));
}

void http_redact(struct buf *out, const char *s)
{
	static const char *const keys[] = { "token", "secret", "password", "passwd", "apikey",
		"api_key", "api-key", NULL };
	struct buf tmp = BUF_INIT;
	redact_buf(&tmp, s, strlen(s));
	const char *p = tmp.ptr ? tmp.ptr : "", *run = p;
	for (; *p; p++) {
		/* every key starts with t, s, p or a */
		char c = (char)(*p | 0x20);
		if (c != 't' && c != 's' && c != 'p' && c != 'a')
			continue;
		size_t klen = 0;
		for (int i = 0; keys[i] && !klen; i++)
			if (word_at(p, keys[i]))
				klen = strlen(keys[i]);
		if (!klen)
			continue;
		/* KEY[word chars]["'] *[=:] *["']VALUE */
		const char *q = p + klen;
		while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
		       *q == '_' || *q == '-')
			q++;
		if (*q == '"' || *q == '\'')
			q++;
		while (*q == ' ')
			q++;
		if (*q != '=' && *q != ':') {
			p += klen - 1;
			continue;
		}
		q++;
		while (*q == ' ')
			q++;
		if (*q == '"' || *q == '\'')
			q++;
		const char *v = q;
		while (*q && !strchr(" \t\r\n\"'&,;)}<>", *q))
			q++;
		/* nothing, or a path (secretFile: /etc/...): not a value to hide */
		if (q == v || (q - v >= 2 && v[0] == '/')) {
			p = q - 1;
			continue;
		}
		buf_add(out, run, (size_t)(v - run));
		buf_adds(out, "<redacted>");
		run = q;
		p = q - 1;
	}
	buf_add(out, run, (size_t)(p - run));
	redact_wipe(tmp.ptr, tmp.cap);
	buf_release(&tmp);
}

/* ---- curl on the loop ---- */

static void pump(struct notifier *n);
static void reap(struct notifier *n);

static void reap_cb(void *ctx)
{
	reap(ctx);
}

static void on_retry_tfd(struct loop *l, int fd, uint32_t events, void *ctx)
{
	(void)l;
	(void)events;
	timer_ack(fd);
	pump(ctx);
}

static size_t discard(char *p, size_t size, size_t nmemb, void *ctx)
{
	(void)p;
	(void)ctx;
	return size * nmemb;
}

/* ---- messages ---- */

static void msg_free(struct nmsg *m)
{
	if (!m)
		return;
	free(m->subject);
	free(m->revision);
	free(m->text);
	free(m);
}

static void render_body(const struct ntarget *t, const struct nmsg *m, struct buf *b)
{
	char when[32];
	render_time(when, sizeof(when), m->when_ms);
	if (t->format == NOTIFY_SLACK) {
		struct buf text = BUF_INIT;
		buf_addf(&text, "driftless on %s: %s", t->n->host, m->text);
		buf_adds(b, "{\"text\":");
		buf_add_json_str(b, text.ptr);
		buf_adds(b, "}");
		buf_release(&text);
		return;
	}
	buf_adds(b, "{\"event\":");
	buf_add_json_str(b, notify_event_names[m->event]);
	buf_addf(b, ",\"time\":\"%s\",\"host\":", when);
	buf_add_json_str(b, t->n->host);
	buf_adds(b, ",\"subject\":");
	buf_add_json_str(b, m->subject);
	buf_adds(b, ",\"revision\":");
	buf_add_json_str(b, m->revision);
	buf_adds(b, ",\"text\":");
	buf_add_json_str(b, m->text);
	buf_adds(b, "}");
}

static void start(struct ntarget *t)
{
	struct nmsg *m = t->q[0];
	struct buf body = BUF_INIT;
	render_body(t, m, &body);
	CURL *e = curl_easy_init();
	if (!e) {
		buf_release(&body);
		t->next_ms = mono_ms() + NOTIFY_BACKOFF_MS;
		return;
	}
	t->errbuf[0] = '\0';
	curl_easy_setopt(e, CURLOPT_URL, t->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)body.len);
	curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body.ptr);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "driftless/" DRIFTLESS_VERSION);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)NOTIFY_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)NOTIFY_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE, 1L << 20);
	buf_release(&body);
	if (curl_multi_add_handle(t->n->cl.multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		t->next_ms = mono_ms() + NOTIFY_BACKOFF_MS;
		return;
	}
	t->easy = e;
	m->attempts++;
}

/* Drop q[i] (shifting the rest). */
static void q_remove(struct ntarget *t, size_t i)
{
	msg_free(t->q[i]);
	memmove(&t->q[i], &t->q[i + 1], (t->len - i - 1) * sizeof(*t->q));
	t->len--;
}

static void pump(struct notifier *n)
{
	int64_t now = mono_ms(), next = 0;
	for (size_t i = 0; i < n->nt; i++) {
		struct ntarget *t = &n->t[i];
		if (t->easy || !t->len)
			continue;
		if (t->next_ms <= now)
			start(t);
		if (!t->easy && (!next || t->next_ms < next))
			next = t->next_ms;
	}
	if (next)
		timer_arm(n->retry_tfd, next - now > 0 ? next - now : 1);
}

static void reap(struct notifier *n)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(n->cl.multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *e = msg->easy_handle;
		CURLcode code = msg->data.result;
		struct ntarget *t = NULL;
		long status = 0;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		curl_multi_remove_handle(n->cl.multi, e);
		curl_easy_cleanup(e);
		if (!t)
			continue;
		t->easy = NULL;
		struct nmsg *m = t->q[0];
		const char *ev = notify_event_names[m->event];
		if (code == CURLE_OK && status >= 200 && status < 300) {
			n->stats->notify[0]++;
			nlog("notify: target %d (%s): sent %s about %s", t->index, t->shown, ev, m->subject);
			q_remove(t, 0);
			t->next_ms = 0;
			continue;
		}
		char why[CURL_ERROR_SIZE + 32];
		if (code != CURLE_OK)
			snprintf(why, sizeof(why), "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
		else
			snprintf(why, sizeof(why), "HTTP %ld", status);
		if (m->attempts >= NOTIFY_ATTEMPTS) {
			n->stats->notify[1]++;
			nlog("notify: target %d (%s): %s about %s not delivered after %d attempts (%s); given up",
			     t->index, t->shown, ev, m->subject, m->attempts, why);
			q_remove(t, 0);
			t->next_ms = 0;
			continue;
		}
		int64_t back = (int64_t)NOTIFY_BACKOFF_MS << (m->attempts - 1);
		t->next_ms = mono_ms() + back;
		nlog("notify: target %d (%s): %s about %s not delivered (%s); retry %d in %lld ms", t->index,
		     t->shown, ev, m->subject, why, m->attempts, (long long)back);
	}
	pump(n);
}

/* 1 when the same event about the same subject went out in the last minute. */
static int recently(struct notifier *n, int event, const char *subject)
{
	uint64_t key = 1469598103934665603ull ^ (uint64_t)event;
	for (const char *s = subject; s && *s; s++)
		key = (key ^ (unsigned char)*s) * 1099511628211ull;
	int64_t now = mono_ms();
	for (size_t i = 0; i < NOTIFY_RECENT; i++) {
		if (n->recent[i].key == key && n->recent[i].at && now - n->recent[i].at < NOTIFY_DEDUPE_MS)
			return 1;
	}
	n->recent[n->recent_next].key = key;
	n->recent[n->recent_next].at = now;
	n->recent_next = (n->recent_next + 1) % NOTIFY_RECENT;
	return 0;
}

static char *redacted(const char *s)
{
	struct buf b = BUF_INIT;
	if (!s)
		return NULL;
	http_redact(&b, s);
	return buf_detach(&b);
}

void notify_event(struct notifier *n, int event, const char *subject, const char *revision,
		  const char *text)
{
	if (!n || event < 0 || event >= NOTIFY__EVENTS)
		return;
	unsigned bit = 1u << event;
	int wanted = 0;
	for (size_t i = 0; i < n->nt; i++)
		wanted |= !!(n->t[i].events & bit);
	if (!wanted)
		return;
	if (recently(n, event, subject)) {
		n->stats->notify[3]++;
		return;
	}
	for (size_t i = 0; i < n->nt; i++) {
		struct ntarget *t = &n->t[i];
		if (!(t->events & bit))
			continue;
		if (t->len == NOTIFY_QUEUE) {
			/* full: drop the oldest that is not in flight */
			size_t victim = t->easy ? 1 : 0;
			n->stats->notify[2]++;
			nlog("notify: target %d (%s): queue full; dropped %s about %s", t->index, t->shown,
			     notify_event_names[t->q[victim]->event], t->q[victim]->subject);
			q_remove(t, victim);
		}
		struct nmsg *m = xcalloc(1, sizeof(*m));
		m->event = event;
		m->when_ms = wall_ms();
		m->subject = redacted(subject ? subject : "");
		m->revision = redacted(revision);
		m->text = redacted(text ? text : "");
		t->q[t->len++] = m;
	}
	pump(n);
}

/* "https://user:pw@host:443/x?y" -> "https://host:443" */
static void url_shown(char *out, size_t n, const char *url)
{
	const char *s = strstr(url, "://");
	size_t scheme = s ? (size_t)(s - url) + 3 : 0;
	const char *host = url + scheme;
	size_t hl = strcspn(host, "/?#");
	const char *at = memchr(host, '@', hl);
	if (at) {
		hl -= (size_t)(at + 1 - host);
		host = at + 1;
	}
	snprintf(out, n, "%.*s%.*s", (int)scheme, url, (int)hl, host);
}

int notify_new(struct notifier **out, struct loop *l, const struct config *cfg,
	       struct agent_stats *stats)
{
	static int curl_ready;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return err_set("cannot initialise libcurl");
		curl_ready = 1;
	}
	struct notifier *n = xcalloc(1, sizeof(*n));
	n->loop = l;
	n->stats = stats;
	n->cl.tfd = n->retry_tfd = -1;
	gethostname(n->host, sizeof(n->host) - 1);
	n->t = xcalloc(cfg->nnotify, sizeof(*n->t));
	for (size_t i = 0; i < cfg->nnotify; i++) {
		struct ntarget *t = &n->t[n->nt++];
		t->n = n;
		t->index = (int)i + 1;
		t->url = xstrdup(cfg->notify[i].url);
		t->format = cfg->notify[i].format;
		t->events = cfg->notify[i].events;
		url_shown(t->shown, sizeof(t->shown), t->url);
		t->headers = curl_slist_append(NULL, "Content-Type: application/json");
		t->headers = curl_slist_append(t->headers, "Expect:");
	}
	n->retry_tfd = timer_new();
	if (curl_loop_init(&n->cl, l, reap_cb, n) < 0 || n->retry_tfd < 0 ||
	    loop_add(l, n->retry_tfd, EPOLLIN, on_retry_tfd, n) < 0) {
		notify_free(n);
		return err_set("cannot set up notifications");
	}
	for (size_t i = 0; i < n->nt; i++) {
		struct buf ev = BUF_INIT;
		for (int k = 0; k < NOTIFY__EVENTS; k++)
			if (n->t[i].events & 1u << k)
				buf_addf(&ev, "%s%s", ev.len ? ", " : "", notify_event_names[k]);
		nlog("notify: target %d (%s), %s, for %s", n->t[i].index, n->t[i].shown,
		     n->t[i].format == NOTIFY_SLACK ? "slack" : "json", ev.ptr ? ev.ptr : "nothing");
		buf_release(&ev);
	}
	*out = n;
	return 0;
}

void notify_free(struct notifier *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nt; i++) {
		struct ntarget *t = &n->t[i];
		if (t->easy) {
			curl_multi_remove_handle(n->cl.multi, t->easy);
			curl_easy_cleanup(t->easy);
		}
		while (t->len)
			q_remove(t, t->len - 1);
		curl_slist_free_all(t->headers);
		redact_wipe(t->url, strlen(t->url));
		free(t->url);
	}
	curl_loop_release(&n->cl);
	if (n->retry_tfd >= 0) {
		loop_del(n->loop, n->retry_tfd);
		close(n->retry_tfd);
	}
	free(n->t);
	free(n);
}

void notify_close_in_child(struct notifier *n)
{
	curl_loop_close_in_child(&n->cl);
}
