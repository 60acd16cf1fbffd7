/* SPDX-License-Identifier: MIT */
/* driftless fleet status: the hosts, revisions and rollouts that the agents publish in etcd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd/cmd.h"
#include "cmd/render.h"
#include "fleet/etcd.h"
#include "http/webhook.h"
#include "lib/err.h"
#include "lib/redact.h"

#define FLEET_USAGE "driftless fleet status [-c FILE] [-o text|json]"

struct host {
	const char *group, *name;
	struct json *v;			/* the published value, NULL when unreadable */
	const char *raw;
	size_t rawlen;
	int64_t lease;
};

struct group {
	const char *name;
	struct rollout ro;
	int has_rollout;
	const char *target;		/* the revision being rolled out, or NULL */
	int hosts, on_target;
};

static const char *vstr(const struct json *v, const char *k)
{
	const char *s = json_str(json_get(v, k));
	return s ? s : "";
}

static int64_t vint(const struct json *v, const char *k)
{
	int64_t n = 0;
	return json_int(json_get(v, k), &n) < 0 ? 0 : n;
}

static struct group *group_of(struct group **gs, size_t *n, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*gs)[i].name, name))
			return &(*gs)[i];
	*gs = xrealloc(*gs, (*n + 1) * sizeof(**gs));
	struct group *g = &(*gs)[(*n)++];
	memset(g, 0, sizeof(*g));
	g->name = name;
	return g;
}

static void ago(char *out, size_t n, int64_t ms, int64_t now)
{
	int64_t s = (now - ms) / 1000;
	if (!ms)
		snprintf(out, n, "-");
	else if (s < 1)
		snprintf(out, n, "now");
	else if (s < 120)
		snprintf(out, n, "%llds ago", (long long)s);
	else if (s < 7200)
		snprintf(out, n, "%lldm ago", (long long)(s / 60));
	else
		snprintf(out, n, "%lldh ago", (long long)(s / 3600));
}

/* The group's target: the revision its slots and waiting hosts name most. */
static void find_target(struct group *g, struct host *hs, size_t nh)
{
	size_t best = 0;
	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < nh + g->ro.nslots; i++) {
			const char *cand = i < nh ? (strcmp(hs[i].group, g->name) ? "" : vstr(hs[i].v, "pending"))
						  : g->ro.slots[i - nh].revision;
			if (!*cand)
				continue;
			size_t cnt = 0;
			for (size_t j = 0; j < nh; j++)
				cnt += !strcmp(hs[j].group, g->name) && (!strcmp(vstr(hs[j].v, "pending"), cand) ||
									 !strcmp(vstr(hs[j].v, "applied"), cand));
			if (pass == 0 && cnt > best)
				best = cnt;
			if (pass == 1 && cnt == best) {
				g->target = cand;
				return;
			}
		}
	}
}

static int read_prefix(struct etcd *e, struct arena *a, const char *prefix, struct etcd_resp *r)
{
	struct buf b = BUF_INIT;
	etcdreq_range(&b, prefix, 1);
	int ret = etcd_call_sync(e, "/v3/kv/range", b.ptr, a, r);
	buf_release(&b);
	return ret;
}

static void print_text(struct buf *o, struct group *gs, size_t ng, struct host *hs, size_t nh,
		       const char *prefix, int64_t now)
{
	char t[32];
	for (size_t i = 0; i < ng; i++) {
		struct group *g = &gs[i];
		buf_addf(o, "group %s: %d host%s", g->name, g->hosts, g->hosts == 1 ? "" : "s");
		if (g->target)
			buf_addf(o, ", rolling out %.12s: %d of %d on it", g->target, g->on_target, g->hosts);
		else
			buf_adds(o, ", no rollout in progress");
		buf_addch(o, '\n');
		for (size_t k = 0; k < g->ro.nslots; k++) {
			struct fleet_slot *s = &g->ro.slots[k];
			ago(t, sizeof(t), s->since_ms, now);
			buf_addf(o, "  slot %d: %s applying %.12s (since %s)\n", s->index, s->host, s->revision, t);
		}
		if (g->ro.halt.present) {
			render_time(t, sizeof(t), g->ro.halt.at_ms);
			buf_addf(o, "  HALTED: revision %.12s failed on %s at %s: %s\n"
				 "    the group's other hosts will not apply it; clear with: etcdctl del %s/rollout/%s/halt\n",
				 g->ro.halt.revision, g->ro.halt.host, t, g->ro.halt.reason, prefix, g->name);
		}
	}
	if (!nh) {
		buf_adds(o, "no hosts registered\n");
		return;
	}
	buf_addf(o, "%-20s %-12s %-9s %-9s %-12s %-12s %-8s %6s  %s\n", "HOST", "GROUP", "STATE", "HEALTH",
		 "REVISION", "PENDING", "RESULT", "DRIFT", "UPDATED");
	for (size_t i = 0; i < nh; i++) {
		struct host *h = &hs[i];
		ago(t, sizeof(t), vint(h->v, "updated"), now);
		buf_addf(o, "%-20s %-12s %-9s %-9s %-12.12s %-12.12s %-8s %6lld  %s\n", h->name, h->group,
			 h->v ? vstr(h->v, "state") : "?", vstr(h->v, "health"),
			 *vstr(h->v, "applied") ? vstr(h->v, "applied") : "-",
			 *vstr(h->v, "pending") ? vstr(h->v, "pending") : "-",
			 *vstr(h->v, "result") ? vstr(h->v, "result") : "-", (long long)vint(h->v, "drift"), t);
		if (*vstr(h->v, "lastError"))
			buf_addf(o, "  %s: %s\n", h->name, vstr(h->v, "lastError"));
	}
}

static void print_json(struct buf *o, struct group *gs, size_t ng, struct host *hs, size_t nh)
{
	buf_adds(o, "{\"groups\":[");
	for (size_t i = 0; i < ng; i++) {
		struct group *g = &gs[i];
		buf_addf(o, "%s{\"name\":", i ? "," : "");
		buf_add_json_str(o, g->name);
		buf_addf(o, ",\"hosts\":%d,\"target\":", g->hosts);
		buf_add_json_str(o, g->target);
		buf_addf(o, ",\"onTarget\":%d,\"slots\":[", g->on_target);
		for (size_t k = 0; k < g->ro.nslots; k++) {
			struct fleet_slot *s = &g->ro.slots[k];
			buf_addf(o, "%s{\"index\":%d,\"host\":", k ? "," : "", s->index);
			buf_add_json_str(o, s->host);
			buf_adds(o, ",\"revision\":");
			buf_add_json_str(o, s->revision);
			buf_addf(o, ",\"since\":%lld}", (long long)s->since_ms);
		}
		buf_adds(o, "],\"halt\":");
		if (g->ro.halt.present) {
			buf_adds(o, "{\"revision\":");
			buf_add_json_str(o, g->ro.halt.revision);
			buf_adds(o, ",\"host\":");
			buf_add_json_str(o, g->ro.halt.host);
			buf_adds(o, ",\"reason\":");
			buf_add_json_str(o, g->ro.halt.reason);
			buf_addf(o, ",\"at\":%lld}", (long long)g->ro.halt.at_ms);
		} else {
			buf_adds(o, "null");
		}
		buf_addch(o, '}');
	}
	buf_adds(o, "],\"hosts\":[");
	for (size_t i = 0; i < nh; i++) {
		buf_addf(o, "%s", i ? "," : "");
		if (hs[i].v) {
			buf_add(o, hs[i].raw, hs[i].rawlen);	/* what the agent published, checked JSON */
		} else {
			buf_adds(o, "{\"name\":");
			buf_add_json_str(o, hs[i].name);
			buf_adds(o, ",\"group\":");
			buf_add_json_str(o, hs[i].group);
			buf_adds(o, ",\"state\":\"unreadable\"}");
		}
	}
	buf_adds(o, "]}\n");
}

static int fleet_status(struct opts *o)
{
	const struct fleet_config *fc = &o->cfg.fleet;
	struct loop l;
	struct etcd *e = NULL;
	struct arena a;
	struct etcd_resp hr, rr;
	struct group *gs = NULL;
	struct host *hs = NULL;
	size_t ng = 0, nh = 0;
	char *password = NULL;
	int ret = EXIT_ERR;
	arena_init(&a);
	l.epfd = -1;
	if (!fc->enabled) {
		fprintf(stderr, "error: no fleet configured: add 'fleet' with 'endpoints' to %s\n",
			opts_config_file(o) ? opts_config_file(o) : "the config (-c FILE)");
		goto out;
	}
	if (fc->password_file) {
		size_t n;
		if (!(password = secret_file_read(fc->password_file, "fleet.auth.passwordFile", &n))) {
			fprintf(stderr, "error: %s\n", err_msg());
			goto out;
		}
		redact_add(password, n);
	}
	struct etcd_opts eo = { .endpoints = fc->endpoints, .nendpoints = fc->nendpoints,
				.ca_file = fc->ca_file, .cert_file = fc->cert_file, .key_file = fc->key_file,
				.username = fc->username, .password = password, .timeout_ms = fc->timeout_ms };
	char *hosts_prefix = arena_printf(&a, "%s/hosts/", fc->prefix);
	char *rollout_prefix = arena_printf(&a, "%s/rollout/", fc->prefix);
	if (loop_init(&l) < 0 || etcd_new(&e, &l, &eo) < 0 || read_prefix(e, &a, hosts_prefix, &hr) < 0 ||
	    read_prefix(e, &a, rollout_prefix, &rr) < 0) {
		/* one retry on each other endpoint is the client's own business */
		fprintf(stderr, "error: %s\n", err_msg());
		goto out;
	}
	int64_t now = wall_ms();
	size_t hpl = strlen(hosts_prefix), rpl = strlen(rollout_prefix);
	hs = hr.nkvs ? xcalloc(hr.nkvs, sizeof(*hs)) : NULL;
	for (size_t i = 0; i < hr.nkvs; i++) {
		const struct etcd_kv *kv = &hr.kvs[i];
		const char *rest = kv->key + hpl, *slash = strchr(rest, '/');
		if (kv->klen <= hpl || !slash || slash == rest || !slash[1] || strchr(slash + 1, '/'))
			continue;
		struct host *h = &hs[nh++];
		h->group = arena_strndup(&a, rest, (size_t)(slash - rest));
		h->name = slash + 1;
		h->lease = kv->lease;
		h->raw = kv->val;
		h->rawlen = kv->vlen;
		if (json_parse(&a, kv->val, kv->vlen, &h->v) < 0 || h->v->type != JSON_OBJECT)
			h->v = NULL;
		group_of(&gs, &ng, h->group)->hosts++;
	}
	for (size_t i = 0; i < rr.nkvs; i++) {
		const struct etcd_kv *kv = &rr.kvs[i];
		const char *rest = kv->key + rpl, *slash = strchr(rest, '/');
		if (kv->klen <= rpl || !slash || slash == rest)
			continue;
		char *gname = arena_strndup(&a, rest, (size_t)(slash - rest));
		struct group *g = group_of(&gs, &ng, gname);
		if (g->has_rollout)
			continue;
		g->has_rollout = 1;
		rollout_read(&a, rr.kvs, rr.nkvs, arena_printf(&a, "%s%s/", rollout_prefix, gname), &g->ro);
	}
	for (size_t i = 0; i < ng; i++) {
		find_target(&gs[i], hs, nh);
		for (size_t j = 0; gs[i].target && j < nh; j++)
			gs[i].on_target += !strcmp(hs[j].group, gs[i].name) &&
					   !strcmp(vstr(hs[j].v, "applied"), gs[i].target);
	}
	struct buf out = BUF_INIT;
	if (o->json)
		print_json(&out, gs, ng, hs, nh);
	else
		print_text(&out, gs, ng, hs, nh, fc->prefix, now);
	fwrite(out.ptr ? out.ptr : "", 1, out.len, stdout);
	buf_release(&out);
	ret = EXIT_OK;
out:
	etcd_free(e);
	if (l.epfd >= 0)
		loop_release(&l);
	if (password) {
		redact_wipe(password, strlen(password));
		free(password);
	}
	free(gs);
	free(hs);
	arena_release(&a);
	return ret;
}

int cmd_fleet(int argc, char **argv)
{
	struct opts o;
	if (argc < 2 || strcmp(argv[1], "status")) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			printf("usage: %s\n", FLEET_USAGE);
			return EXIT_OK;
		}
		if (argc < 2)
			fprintf(stderr, "error: a subcommand is needed\nusage: %s\n", FLEET_USAGE);
		else
			fprintf(stderr, "error: unknown subcommand '%s'\nusage: %s\n", argv[1], FLEET_USAGE);
		return EXIT_USAGE;
	}
	int ret = opts_parse(&o, argc - 1, argv + 1, FLEET_USAGE, "co");
	if (ret)
		return ret;
	ret = opts_config(&o) < 0 ? EXIT_ERR : fleet_status(&o);
	opts_release(&o);
	return ret;
}
