/* SPDX-License-Identifier: MIT */
/* Parsing agent.yaml: local, root-owned configuration that Git can never widen. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/check.h"
#include "core/config.h"
#include "core/vars.h"
#include "lib/err.h"
#include "lib/semver.h"
#include "source/verify.h"
#include "source/yaml.h"

void config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	arena_init(&c->arena);
	static const char *const all[] = { "/" };
	c->policy.roots = (const char **)all;
	c->policy.nroots = 1;
	c->policy.max_file_size = 64u << 20;
	c->prune = 1;
	c->interval_ms = 60000;
	c->full_resync_ms = 600000;
	c->fetch_timeout_ms = 300000;
	c->max_fetch_size = (uint64_t)1 << 30;
	c->listen = NULL;	/* the HTTP surface is off unless configured (docs/http.md) */
}

void config_release(struct config *c)
{
	arena_release(&c->arena);
}

int64_t config_duration(const char *s)
{
	char *end;
	if (!s || !*s)
		return -1;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	if (!strcmp(end, "ms"))
		return (int64_t)v;
	if (!strcmp(end, "s") || !*end)
		return (int64_t)(v * 1000);
	if (!strcmp(end, "m"))
		return (int64_t)(v * 60000);
	if (!strcmp(end, "h"))
		return (int64_t)(v * 3600000);
	return -1;
}

static const char *str(struct diag *d, const char *file, struct ynode *n, const char *what)
{
	if (!n || n->type != YNODE_SCALAR || yaml_is_null(n)) {
		if (n)
			diag_add(d, file, n->line, n->col, "'%s' must be a string", what);
		return NULL;
	}
	return n->str;
}

static int boolean(struct diag *d, const char *file, struct ynode *n, const char *what, int *out)
{
	if (n->type == YNODE_SCALAR && !n->quoted && !strcmp(n->str, "true"))
		*out = 1;
	else if (n->type == YNODE_SCALAR && !n->quoted && !strcmp(n->str, "false"))
		*out = 0;
	else {
		diag_add(d, file, n->line, n->col, "'%s' must be true or false", what);
		return -1;
	}
	return 0;
}

static void known(struct diag *d, const char *file, struct ynode *m, const char *prefix,
		  const char *const *keys)
{
	for (size_t i = 0; i < m->n; i++) {
		int ok = 0;
		for (const char *const *k = keys; *k; k++)
			ok |= !strcmp(*k, m->keys[i]->str);
		if (!ok)
			diag_add(d, file, m->keys[i]->line, m->keys[i]->col, "unknown field '%s%s'",
				 prefix, m->keys[i]->str);
	}
}

static void duration(struct diag *d, const char *file, struct ynode *n, const char *what, int64_t *out)
{
	const char *s = str(d, file, n, what);
	int64_t v = config_duration(s);
	if (s && v <= 0)
		diag_add(d, file, n->line, n->col, "'%s' must be a duration like \"60s\" or \"10m\"", what);
	else if (s)
		*out = v;
}

const char *const notify_event_names[NOTIFY__EVENTS] = { "sync-succeeded", "sync-failed",
	"drift-detected", "drift-repaired", "health-degraded" };

int config_listen_parse(const char *s, char *host, size_t hostlen, int *port)
{
	const char *h = "127.0.0.1", *p = s;
	size_t hl = 9;
	int v6 = 0;
	if (!s || !*s)
		return -1;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -1;
		h = s + 1;
		hl = (size_t)(close - h);
		p = close + 2;
		v6 = 1;
	} else if (strchr(s, ':')) {
		const char *colon = strrchr(s, ':');
		if (memchr(s, ':', (size_t)(colon - s)))
			return -1;	/* an IPv6 address needs brackets */
		if (colon > s) {
			h = s;
			hl = (size_t)(colon - s);
		}
		p = colon + 1;
	}
	if (!*p || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p) || hl == 0 || hl >= hostlen)
		return -1;
	int n = atoi(p);
	if (n < 1 || n > 65535)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	unsigned char addr[16];
	if (!(!v6 && !strcmp(host, "localhost")) &&
	    inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1)
		return -1;
	*port = n;
	return 0;
}

/* listen, apiTokenFile, allowedHosts, webhook and notify (docs/http.md). */
static void http_keys(struct config *c, struct ynode *root, struct diag *d)
{
	const char *f = c->file;
	struct ynode *v;
	char host[64];
	int port;
	if ((v = yaml_map_get(root, "listen")) && c->listen &&
	    config_listen_parse(c->listen, host, sizeof(host), &port) < 0)
		diag_add(d, f, v->line, v->col, "'listen' must be HOST:PORT, [IPV6]:PORT or :PORT, with"
			 " HOST an IP address or localhost");
	if ((v = yaml_map_get(root, "apiTokenFile")) &&
	    (c->api_token_file = str(d, f, v, "apiTokenFile")) && c->api_token_file[0] != '/')
		diag_add(d, f, v->line, v->col, "'apiTokenFile' must be an absolute path");
	if ((v = yaml_map_get(root, "allowedHosts"))) {
		if (v->type != YNODE_SEQ) {
			diag_add(d, f, v->line, v->col, "'allowedHosts' must be a list of host names");
		} else {
			c->allowed_hosts = arena_alloc(&c->arena, (v->n + 1) * sizeof(char *));
			for (size_t i = 0; i < v->n; i++) {
				struct ynode *it = v->vals[i];
				if (it->type != YNODE_SCALAR || !*it->str ||
				    strspn(it->str, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					   "0123456789.-:") != strlen(it->str)) {
					diag_add(d, f, it->line, it->col, "'allowedHosts' entries must be host"
						 " names or IP addresses, without a port");
					continue;
				}
				c->allowed_hosts[c->nallowed_hosts++] = it->str;
			}
		}
	}
	if ((v = yaml_map_get(root, "webhook"))) {
		static const char *const keys[] = { "provider", "secretFile", "insecure", NULL };
		static const char *const providers[] = { "github", "gitlab", "gitea", "generic", NULL };
		struct ynode *w;
		if (v->type != YNODE_MAP) {
			diag_add(d, f, v->line, v->col, "'webhook' must be a mapping");
			goto notify;
		}
		known(d, f, v, "webhook.", keys);
		if ((w = yaml_map_get(v, "provider"))) {
			const char *p = str(d, f, w, "webhook.provider");
			int i = 0;
			while (p && providers[i] && strcmp(providers[i], p))
				i++;
			if (p && !providers[i])
				diag_add(d, f, w->line, w->col, "'webhook.provider' must be github, gitlab,"
					 " gitea or generic");
			else
				c->webhook.provider = p;
		} else {
			diag_add(d, f, v->line, v->col, "'webhook.provider' is required (github, gitlab,"
				 " gitea or generic)");
		}
		if ((w = yaml_map_get(v, "secretFile")) &&
		    (c->webhook.secret_file = str(d, f, w, "webhook.secretFile")) &&
		    c->webhook.secret_file[0] != '/')
			diag_add(d, f, w->line, w->col, "'webhook.secretFile' must be an absolute path");
		if ((w = yaml_map_get(v, "insecure")))
			boolean(d, f, w, "webhook.insecure", &c->webhook.insecure);
		if (!c->webhook.secret_file && !c->webhook.insecure && !yaml_map_get(v, "secretFile"))
			diag_add(d, f, v->line, v->col, "'webhook.secretFile' is required; set"
				 " 'webhook.insecure: true' to accept unsigned deliveries");
	}
notify:
	if (!(v = yaml_map_get(root, "notify")))
		return;
	if (v->type != YNODE_SEQ) {
		diag_add(d, f, v->line, v->col, "'notify' must be a list of targets");
		return;
	}
	if (v->n > NOTIFY_MAX_TARGETS) {
		diag_add(d, f, v->line, v->col, "'notify' has more than %d targets", NOTIFY_MAX_TARGETS);
		return;
	}
	c->notify = arena_alloc(&c->arena, (v->n + 1) * sizeof(*c->notify));
	for (size_t i = 0; i < v->n; i++) {
		static const char *const keys[] = { "url", "format", "events", NULL };
		struct ynode *t = v->vals[i], *w;
		struct notify_target *nt = &c->notify[c->nnotify];
		char what[32];
		if (t->type != YNODE_MAP) {
			diag_add(d, f, t->line, t->col, "'notify[%zu]' must be a mapping with 'url'", i);
			continue;
		}
		snprintf(what, sizeof(what), "notify[%zu].", i);
		known(d, f, t, what, keys);
		/* never echo the URL: webhook URLs carry their own secret */
		if (!(w = yaml_map_get(t, "url")))
			diag_add(d, f, t->line, t->col, "'notify[%zu].url' is required", i);
		else if ((nt->url = str(d, f, w, "notify[].url")) && strncasecmp(nt->url, "http://", 7) &&
			 strncasecmp(nt->url, "https://", 8))
			diag_add(d, f, w->line, w->col, "'notify[%zu].url' must be an http:// or https:// URL",
				 i);
		if ((w = yaml_map_get(t, "format"))) {
			const char *fm = str(d, f, w, "notify[].format");
			if (fm && !strcmp(fm, "slack"))
				nt->format = NOTIFY_SLACK;
			else if (fm && strcmp(fm, "json"))
				diag_add(d, f, w->line, w->col, "'notify[%zu].format' must be slack or json", i);
		}
		nt->events = (1u << NOTIFY__EVENTS) - 1;
		if ((w = yaml_map_get(t, "events"))) {
			if (w->type != YNODE_SEQ || !w->n) {
				diag_add(d, f, w->line, w->col, "'notify[%zu].events' must be a list of events", i);
			} else {
				nt->events = 0;
				for (size_t j = 0; j < w->n; j++) {
					struct ynode *e = w->vals[j];
					int k = 0;
					while (e->type == YNODE_SCALAR && k < NOTIFY__EVENTS &&
					       strcmp(notify_event_names[k], e->str))
						k++;
					if (e->type == YNODE_SCALAR && !strcmp(e->str, "drift"))
						nt->events |= 1u << NOTIFY_DRIFT_DETECTED | 1u << NOTIFY_DRIFT_REPAIRED;
					else if (e->type == YNODE_SCALAR && k < NOTIFY__EVENTS)
						nt->events |= 1u << k;
					else
						diag_add(d, f, e->line, e->col, "'notify[%zu].events': unknown event"
							 " '%s' (sync-succeeded, sync-failed, drift-detected,"
							 " drift-repaired, health-degraded or drift)", i,
							 e->type == YNODE_SCALAR ? e->str : "?");
				}
			}
		}
		if (nt->url)
			c->nnotify++;
	}
}

/* An absolute path setting of a mapping under source:. */
static const char *abs_path(struct config *c, struct ynode *m, const char *key, const char *what,
			    struct diag *d)
{
	struct ynode *v = yaml_map_get(m, key);
	const char *p = v ? str(d, c->file, v, what) : NULL;
	if (p && p[0] != '/') {
		diag_add(d, c->file, v->line, v->col, "'%s' must be an absolute path", what);
		return NULL;
	}
	return p;
}

/* "1048576", "512k", "64M", "1G" (powers of 1024) -> bytes; 0 when invalid. */
static uint64_t byte_size(const char *s)
{
	char *end;
	if (!s || !*s || *s < '0' || *s > '9')
		return 0;
	unsigned long long v = strtoull(s, &end, 10);
	int shift = 0;
	if (*end == 'k' || *end == 'K')
		shift = 10;
	else if (*end == 'M')
		shift = 20;
	else if (*end == 'G')
		shift = 30;
	if (shift)
		end++;
	if (*end == 'i' && shift)
		end++;
	if (*end == 'B' && shift)
		end++;
	if (*end || v > (UINT64_MAX >> shift))
		return 0;
	return (uint64_t)v << shift;
}

/* source.auth, source.verify, source.timeout and source.maxFetchSize. */
static void source_security(struct config *c, struct ynode *s, struct diag *d)
{
	const char *f = c->file;
	struct ynode *v;
	if ((v = yaml_map_get(s, "timeout")))
		duration(d, f, v, "source.timeout", &c->fetch_timeout_ms);
	if ((v = yaml_map_get(s, "maxFetchSize"))) {
		const char *t = str(d, f, v, "source.maxFetchSize");
		uint64_t n = byte_size(t);
		if (t && !n)
			diag_add(d, f, v->line, v->col, "'source.maxFetchSize' must be a size like"
				 " 1073741824, 512M or 1G");
		else if (t)
			c->max_fetch_size = n;
	}
	if ((v = yaml_map_get(s, "auth"))) {
		static const char *const keys[] = { "tokenFile", "username", "passwordFile", "sshKey",
			"knownHosts", NULL };
		if (v->type != YNODE_MAP) {
			diag_add(d, f, v->line, v->col, "'source.auth' must be a mapping like {tokenFile:"
				 " FILE} or {sshKey: FILE, knownHosts: FILE}");
		} else {
			known(d, f, v, "source.auth.", keys);
			c->auth.token_file = abs_path(c, v, "tokenFile", "source.auth.tokenFile", d);
			c->auth.password_file = abs_path(c, v, "passwordFile", "source.auth.passwordFile", d);
			c->auth.ssh_key = abs_path(c, v, "sshKey", "source.auth.sshKey", d);
			c->auth.known_hosts = abs_path(c, v, "knownHosts", "source.auth.knownHosts", d);
			struct ynode *u = yaml_map_get(v, "username");
			if (u)
				c->auth.username = str(d, f, u, "source.auth.username");
			if (c->auth.token_file && c->auth.password_file)
				diag_add(d, f, v->line, v->col, "'source.auth' takes 'tokenFile' or"
					 " 'passwordFile', not both");
			if (c->auth.password_file && !c->auth.username && !u)
				diag_add(d, f, v->line, v->col, "'source.auth.passwordFile' needs"
					 " 'source.auth.username'");
			if (c->auth.ssh_key && !c->auth.known_hosts && !yaml_map_get(v, "knownHosts"))
				diag_add(d, f, v->line, v->col, "'source.auth.sshKey' needs"
					 " 'source.auth.knownHosts' to pin the server's host key");
		}
	}
	if ((v = yaml_map_get(s, "verify"))) {
		static const char *const keys[] = { "allowedSigners", "gpgKeyring", "mode", NULL };
		if (v->type != YNODE_MAP) {
			diag_add(d, f, v->line, v->col, "'source.verify' must be a mapping like"
				 " {allowedSigners: FILE, mode: head}");
			return;
		}
		known(d, f, v, "source.verify.", keys);
		c->verify.allowed_signers = abs_path(c, v, "allowedSigners",
						     "source.verify.allowedSigners", d);
		c->verify.gpg_keyring = abs_path(c, v, "gpgKeyring", "source.verify.gpgKeyring", d);
		c->verify.mode = VERIFY_HEAD;
		struct ynode *m = yaml_map_get(v, "mode");
		const char *ms = m ? str(d, f, m, "source.verify.mode") : NULL;
		if (ms && !strcmp(ms, "strict"))
			c->verify.mode = VERIFY_STRICT;
		else if (ms && strcmp(ms, "head"))
			diag_add(d, f, m->line, m->col, "'source.verify.mode' must be head or strict");
		if (!yaml_map_get(v, "allowedSigners") && !yaml_map_get(v, "gpgKeyring"))
			diag_add(d, f, v->line, v->col, "'source.verify' needs 'allowedSigners' or"
				 " 'gpgKeyring'");
	}
}

/* fleet: etcd endpoints, identity in the fleet, rollout pacing, TLS and
 * authentication (docs/fleet.md). */
static int fleet_name_valid(const char *s)
{
	return s && *s && strlen(s) <= 253 && strcmp(s, ".") && strcmp(s, "..") &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == strlen(s);
}

static void fleet_keys(struct config *c, struct ynode *root, struct diag *d)
{
	static const char *const keys[] = { "endpoints", "prefix", "name", "group", "leaseTTL",
		"timeout", "rollout", "tls", "auth", NULL };
	const char *f = c->file;
	struct fleet_config *fc = &c->fleet;
	struct ynode *m = yaml_map_get(root, "fleet"), *v, *w;
	if (!m)
		return;
	if (m->type != YNODE_MAP) {
		diag_add(d, f, m->line, m->col, "'fleet' must be a mapping with 'endpoints'");
		return;
	}
	known(d, f, m, "fleet.", keys);
	fc->enabled = 1;
	if (!(v = yaml_map_get(m, "endpoints")) || v->type != YNODE_SEQ || !v->n) {
		diag_add(d, f, v ? v->line : m->line, v ? v->col : m->col,
			 "'fleet.endpoints' must be a list of etcd URLs like http://127.0.0.1:2379");
	} else {
		fc->endpoints = arena_alloc(&c->arena, v->n * sizeof(char *));
		for (size_t i = 0; i < v->n; i++) {
			struct ynode *it = v->vals[i];
			const char *u = it->type == YNODE_SCALAR ? it->str : NULL;
			const char *host = u && !strncmp(u, "http://", 7) ? u + 7 :
					   u && !strncmp(u, "https://", 8) ? u + 8 : NULL;
			size_t hl = host ? strcspn(host, "/") : 0;
			if (!host || !hl || memchr(host, '@', hl) || strspn(host + hl, "/") != strlen(host + hl) ||
			    strpbrk(u, " \t\r\n")) {
				diag_add(d, f, it->line, it->col, "'fleet.endpoints' entries must be"
					 " http://HOST:PORT or https://HOST:PORT, without user or path");
				continue;
			}
			fc->endpoints[fc->nendpoints++] = u;
		}
	}
	fc->prefix = "/driftless";
	if ((v = yaml_map_get(m, "prefix")) && (fc->prefix = str(d, f, v, "fleet.prefix")) &&
	    (fc->prefix[0] != '/' || strstr(fc->prefix, "//") || fc->prefix[strlen(fc->prefix) - 1] == '/' ||
	     strpbrk(fc->prefix, " \t\r\n")))
		diag_add(d, f, v->line, v->col, "'fleet.prefix' must start with '/' and not end with"
			 " '/', like /driftless");
	if ((v = yaml_map_get(m, "name")) && (fc->name = str(d, f, v, "fleet.name")) &&
	    !fleet_name_valid(fc->name))
		diag_add(d, f, v->line, v->col, "'fleet.name' must be letters, digits, '.', '_' and '-'");
	fc->group = "default";
	if ((v = yaml_map_get(m, "group")) && (fc->group = str(d, f, v, "fleet.group")) &&
	    !fleet_name_valid(fc->group))
		diag_add(d, f, v->line, v->col, "'fleet.group' must be letters, digits, '.', '_' and '-'");
	fc->lease_ttl_ms = 15000;
	if ((v = yaml_map_get(m, "leaseTTL"))) {
		duration(d, f, v, "fleet.leaseTTL", &fc->lease_ttl_ms);
		if (fc->lease_ttl_ms < 2000 || fc->lease_ttl_ms > 3600000)
			diag_add(d, f, v->line, v->col, "'fleet.leaseTTL' must be between 2s and 1h");
	}
	fc->timeout_ms = 5000;
	if ((v = yaml_map_get(m, "timeout")))
		duration(d, f, v, "fleet.timeout", &fc->timeout_ms);
	fc->max_parallel = 1;
	if ((v = yaml_map_get(m, "rollout"))) {
		static const char *const rk[] = { "maxParallel", "settle", NULL };
		if (v->type != YNODE_MAP) {
			diag_add(d, f, v->line, v->col, "'fleet.rollout' must be a mapping like {maxParallel: 5}");
		} else {
			known(d, f, v, "fleet.rollout.", rk);
			const char *t;
			if ((w = yaml_map_get(v, "maxParallel")) && (t = str(d, f, w, "fleet.rollout.maxParallel"))) {
				if (strspn(t, "0123456789") != strlen(t) || strlen(t) > 4 || atoi(t) < 1)
					diag_add(d, f, w->line, w->col, "'fleet.rollout.maxParallel' must be a"
						 " number from 1 to 9999");
				else
					fc->max_parallel = atoi(t);
			}
			if ((w = yaml_map_get(v, "settle"))) {
				const char *s = str(d, f, w, "fleet.rollout.settle");
				int64_t ms = config_duration(s);
				if (s && ms < 0)
					diag_add(d, f, w->line, w->col, "'fleet.rollout.settle' must be a duration"
						 " like \"0s\" or \"30s\"");
				else if (s)
					fc->settle_ms = ms;
			}
		}
	}
	if ((v = yaml_map_get(m, "tls"))) {
		static const char *const tk[] = { "caFile", "certFile", "keyFile", NULL };
		static const char *const names[] = { "fleet.tls.caFile", "fleet.tls.certFile",
			"fleet.tls.keyFile" };
		const char **dst[] = { &fc->ca_file, &fc->cert_file, &fc->key_file };
		if (v->type != YNODE_MAP) {
			diag_add(d, f, v->line, v->col, "'fleet.tls' must be a mapping like {caFile: FILE,"
				 " certFile: FILE, keyFile: FILE}");
		} else {
			known(d, f, v, "fleet.tls.", tk);
			for (int i = 0; i < 3; i++)
				if ((w = yaml_map_get(v, tk[i])) && (*dst[i] = str(d, f, w, names[i])) &&
				    (*dst[i])[0] != '/')
					diag_add(d, f, w->line, w->col, "'%s' must be an absolute path", names[i]);
			if (!yaml_map_get(v, "certFile") != !yaml_map_get(v, "keyFile"))
				diag_add(d, f, v->line, v->col, "'fleet.tls' needs both 'certFile' and"
					 " 'keyFile' for a client certificate");
		}
	}
	if ((v = yaml_map_get(m, "auth"))) {
		static const char *const ak[] = { "username", "passwordFile", NULL };
		if (v->type != YNODE_MAP) {
			diag_add(d, f, v->line, v->col, "'fleet.auth' must be a mapping like {username: NAME,"
				 " passwordFile: FILE}");
		} else {
			known(d, f, v, "fleet.auth.", ak);
			if ((w = yaml_map_get(v, "username")))
				fc->username = str(d, f, w, "fleet.auth.username");
			if ((w = yaml_map_get(v, "passwordFile")) &&
			    (fc->password_file = str(d, f, w, "fleet.auth.passwordFile")) &&
			    fc->password_file[0] != '/')
				diag_add(d, f, w->line, w->col, "'fleet.auth.passwordFile' must be an absolute path");
			if (!yaml_map_get(v, "username") || !yaml_map_get(v, "passwordFile"))
				diag_add(d, f, v->line, v->col, "'fleet.auth' needs 'username' and 'passwordFile'");
		}
	}
}

/* source.semver (checked here, so a bad range fails at load) and source.allowRewind. */
static void source_refs(struct config *c, struct ynode *s, struct diag *d)
{
	struct ynode *v;
	struct semver_range r;
	int refs = 0;
	static const char *const keys[] = { "branch", "tag", "commit", NULL };
	for (int i = 0; keys[i]; i++)
		refs += yaml_map_get(s, keys[i]) != NULL;
	/* branch + tag is older (the branch wins); semver goes alone */
	if (refs && yaml_map_get(s, "semver"))
		diag_add(d, c->file, s->line, s->col, "'source.semver' goes alone: not with 'branch',"
			 " 'tag' or 'commit' (set at most one ref)");
	if ((v = yaml_map_get(s, "semver")) && c->semver && semver_range_parse(c->semver, &r) < 0)
		diag_add(d, c->file, v->line, v->col, "'source.semver': %s", err_msg());
	if ((v = yaml_map_get(s, "allowRewind")))
		boolean(d, c->file, v, "source.allowRewind", &c->allow_rewind);
}

/* vars: {KEY: value}, the values of ${vars.KEY} in manifests (docs/layers.md). */
static void config_vars(struct config *c, struct ynode *root, struct diag *d)
{
	struct ynode *m = yaml_map_get(root, "vars");
	if (!m)
		return;
	if (m->type != YNODE_MAP) {
		diag_add(d, c->file, m->line, m->col, "'vars' must be a mapping of names to strings");
		return;
	}
	if (m->n > CONFIG_MAX_VARS) {
		diag_add(d, c->file, m->line, m->col, "'vars' has more than %d entries", CONFIG_MAX_VARS);
		return;
	}
	c->var_keys = arena_alloc(&c->arena, (m->n + 1) * sizeof(*c->var_keys));
	c->var_vals = arena_alloc(&c->arena, (m->n + 1) * sizeof(*c->var_vals));
	for (size_t i = 0; i < m->n; i++) {
		struct ynode *k = m->keys[i], *v = m->vals[i];
		const char *e = vars_check_key(k->str);
		if (e) {
			diag_add(d, c->file, k->line, k->col, "'vars' key '%s' %s", k->str, e);
			continue;
		}
		if (v->type != YNODE_SCALAR || (yaml_is_null(v) && !v->quoted)) {
			diag_add(d, c->file, v->line, v->col, "'vars.%s' must be a string", k->str);
			continue;
		}
		if (v->len > CONFIG_MAX_VAR_SIZE || memchr(v->str, '\0', v->len)) {
			diag_add(d, c->file, v->line, v->col, "'vars.%s' must be text of at most %d bytes",
				 k->str, CONFIG_MAX_VAR_SIZE);
			continue;
		}
		c->var_keys[c->nvars] = k->str;
		c->var_vals[c->nvars++] = v->str;
	}
}

int config_load(struct config *c, const char *file, struct diag *diag)
{
	static const char *const top[] = { "source", "policy", "prune", "allowEmpty", "fullResync",
		"secrets", "listen", "apiTokenFile", "allowedHosts", "webhook", "notify", "fleet", "vars",
		NULL };
	static const char *const src[] = { "url", "branch", "tag", "semver", "commit", "path",
		"interval", "auth", "verify", "caFile", "timeout", "maxFetchSize", "allowRewind", NULL };
	static const char *const pol[] = { "roots", "kinds", "allowSetid", "maxFileSize", "owners",
		"groups", "allowRootAccounts", NULL };
	FILE *fp = fopen(file, "re");
	struct buf b = BUF_INIT;
	size_t before = diag->n;

	if (!fp)
		return err_set_errno("cannot read config '%s'", file);
	char tmp[8192];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0 && b.len < (1u << 20))
		buf_add(&b, tmp, n);
	fclose(fp);
	c->file = arena_strdup(&c->arena, file);
	struct ystream ys = { 0 };
	if (yaml_parse(&c->arena, c->file, b.ptr ? b.ptr : "", b.len, &yaml_default_limits, &ys, diag) < 0) {
		buf_release(&b);
		return -1;
	}
	buf_release(&b);
	if (!ys.n)
		return 0;
	struct ynode *root = ys.docs[0].root;
	if (root->type != YNODE_MAP) {
		diag_add(diag, c->file, root->line, root->col, "the config must be a mapping");
		return -1;
	}
	known(diag, c->file, root, "", top);
	struct ynode *s = yaml_map_get(root, "source");
	if (s && s->type == YNODE_MAP) {
		known(diag, c->file, s, "source.", src);
		struct ynode *v;
		if ((v = yaml_map_get(s, "url")))
			c->url = str(diag, c->file, v, "source.url");
		if ((v = yaml_map_get(s, "branch")))
			c->branch = str(diag, c->file, v, "source.branch");
		if ((v = yaml_map_get(s, "tag")))
			c->tag = str(diag, c->file, v, "source.tag");
		if ((v = yaml_map_get(s, "semver")))
			c->semver = str(diag, c->file, v, "source.semver");
		if ((v = yaml_map_get(s, "commit")))
			c->commit = str(diag, c->file, v, "source.commit");
		if ((v = yaml_map_get(s, "path")))
			c->path = str(diag, c->file, v, "source.path");
		if ((v = yaml_map_get(s, "caFile")))
			c->ca_file = str(diag, c->file, v, "source.caFile");
		if ((v = yaml_map_get(s, "interval")))
			duration(diag, c->file, v, "source.interval", &c->interval_ms);
		source_security(c, s, diag);
		source_refs(c, s, diag);
	} else if (s) {
		diag_add(diag, c->file, s->line, s->col, "'source' must be a mapping");
	}
	struct ynode *p = yaml_map_get(root, "policy");
	if (p && p->type != YNODE_MAP)
		diag_add(diag, c->file, p->line, p->col, "'policy' must be a mapping");
	if (p && p->type == YNODE_MAP) {
		known(diag, c->file, p, "policy.", pol);
		struct ynode *r = yaml_map_get(p, "roots");
		if (r && r->type == YNODE_SEQ) {
			c->policy.roots = arena_alloc(&c->arena, (r->n + 1) * sizeof(char *));
			c->policy.nroots = 0;
			for (size_t i = 0; i < r->n; i++) {
				const char *norm, *e;
				struct ynode *it = r->vals[i];
				if (it->type != YNODE_SCALAR ||
				    (e = check_host_path(&c->arena, it->str, it->len, &norm))) {
					diag_add(diag, c->file, it->line, it->col,
						 "'policy.roots' entries must be absolute paths");
					continue;
				}
				c->policy.roots[c->policy.nroots++] = norm;
			}
		} else if (r) {
			diag_add(diag, c->file, r->line, r->col, "'policy.roots' must be a list of paths");
		}
		struct ynode *k = yaml_map_get(p, "kinds");
		if (k && k->type == YNODE_SEQ) {
			c->policy.kinds = arena_alloc(&c->arena, (k->n + 1) * sizeof(char *));
			c->policy.nkinds = 0;
			for (size_t i = 0; i < k->n; i++) {
				struct ynode *it = k->vals[i];
				if (it->type != YNODE_SCALAR || !kind_find(it->str)) {
					diag_add(diag, c->file, it->line, it->col,
						 "'policy.kinds' names '%s', which is not a kind",
						 it->type == YNODE_SCALAR ? it->str : "?");
					continue;
				}
				c->policy.kinds[c->policy.nkinds++] = it->str;
			}
			c->policy.kinds_set = 1;
		} else if (k) {
			diag_add(diag, c->file, k->line, k->col, "'policy.kinds' must be a list of kinds");
		}
		static const char *const lists[2] = { "owners", "groups" };
		for (int li = 0; li < 2; li++) {
			struct ynode *o = yaml_map_get(p, lists[li]);
			if (!o)
				continue;
			if (o->type != YNODE_SEQ) {
				diag_add(diag, c->file, o->line, o->col,
					 "'policy.%s' must be a list of names or ids", lists[li]);
				continue;
			}
			const char **v = arena_alloc(&c->arena, (o->n + 1) * sizeof(char *));
			size_t cnt = 0;
			for (size_t i = 0; i < o->n; i++) {
				struct ynode *it = o->vals[i];
				if (it->type != YNODE_SCALAR || check_account(it->str)) {
					diag_add(diag, c->file, it->line, it->col,
						 "'policy.%s' entries must be account names or ids", lists[li]);
					continue;
				}
				v[cnt++] = it->str;
			}
			if (li == 0) {
				c->policy.owners = v;
				c->policy.nowners = cnt;
				c->policy.owners_set = 1;
			} else {
				c->policy.groups = v;
				c->policy.ngroups = cnt;
				c->policy.groups_set = 1;
			}
		}
		struct ynode *v;
		if ((v = yaml_map_get(p, "allowSetid")))
			boolean(diag, c->file, v, "policy.allowSetid", &c->policy.allow_setid);
		if ((v = yaml_map_get(p, "allowRootAccounts")))
			boolean(diag, c->file, v, "policy.allowRootAccounts",
				&c->policy.allow_root_accounts);
		if ((v = yaml_map_get(p, "maxFileSize"))) {
			const char *t = str(diag, c->file, v, "policy.maxFileSize");
			char *end;
			unsigned long long sz = t ? strtoull(t, &end, 10) : 0;
			if (t && (*end || !sz))
				diag_add(diag, c->file, v->line, v->col, "'policy.maxFileSize' must be a number of bytes");
			else if (t)
				c->policy.max_file_size = sz;
		}
	}
	struct ynode *v;
	if ((v = yaml_map_get(root, "prune")))
		boolean(diag, c->file, v, "prune", &c->prune);
	if ((v = yaml_map_get(root, "allowEmpty")))
		boolean(diag, c->file, v, "allowEmpty", &c->allow_empty);
	if ((v = yaml_map_get(root, "fullResync")))
		duration(diag, c->file, v, "fullResync", &c->full_resync_ms);
	if ((v = yaml_map_get(root, "listen")))
		c->listen = str(diag, c->file, v, "listen");
	http_keys(c, root, diag);
	fleet_keys(c, root, diag);
	if ((v = yaml_map_get(root, "secrets"))) {
		static const char *const sec[] = { "identity", NULL };
		struct ynode *id;
		if (v->type != YNODE_MAP)
			diag_add(diag, c->file, v->line, v->col, "'secrets' must be a mapping");
		else {
			known(diag, c->file, v, "secrets.", sec);
			if ((id = yaml_map_get(v, "identity")) &&
			    (c->identity = str(diag, c->file, id, "secrets.identity")) &&
			    c->identity[0] != '/')
				diag_add(diag, c->file, id->line, id->col,
					 "'secrets.identity' must be an absolute path");
		}
	}
	config_vars(c, root, diag);
	return diag->n > before ? -1 : 0;
}
