/* SPDX-License-Identifier: MIT */
/* The agent configuration and local policy (agent.yaml); command-line flags override it. */
#ifndef DL_CONFIG_H
#define DL_CONFIG_H

#include <stdint.h>
#include "core/model.h"

struct config {
	struct arena arena;
	const char *file;		/* where it was read from, or NULL */
	const char *url, *branch, *tag, *semver, *commit, *path, *ca_file;
	/* source.auth, source.verify, source.timeout, source.maxFetchSize (docs/sources.md) */
	struct {
		const char *token_file, *username, *password_file, *ssh_key, *known_hosts;
	} auth;
	struct {
		int mode;		/* enum verify_mode (source/verify.h); 0: off */
		const char *allowed_signers, *gpg_keyring;
	} verify;
	int64_t fetch_timeout_ms;	/* one fetch, connect to last byte */
	uint64_t max_fetch_size;	/* bytes one fetch may download */
	int64_t interval_ms;
	int64_t full_resync_ms;
	struct policy policy;
	int prune;
	int allow_empty;
	int allow_rewind;		/* source.allowRewind: accept a remote that went backwards */
	const char **var_keys, **var_vals;	/* vars: ${vars.KEY} in manifests */
	size_t nvars;
	const char *listen;
	const char *identity;		/* secrets.identity: this host's age identity file */
	/* the HTTP surface (docs/http.md) */
	const char *api_token_file;
	const char **allowed_hosts;
	size_t nallowed_hosts;
	struct {
		const char *provider;	/* github, gitlab, gitea, generic; NULL: no webhook */
		const char *secret_file;
		int insecure;
	} webhook;
	struct notify_target *notify;
	size_t nnotify;
	struct fleet_config {		/* fleet: etcd coordination (docs/fleet.md); off when !enabled */
		int enabled;
		const char **endpoints;
		size_t nendpoints;
		const char *prefix;	/* default "/driftless" */
		const char *name;	/* NULL: the host name */
		const char *group;	/* default "default" */
		int64_t lease_ttl_ms, timeout_ms;
		int max_parallel;	/* rollout.maxParallel */
		int64_t settle_ms;	/* rollout.settle: the slot is kept this long after a good pass */
		const char *ca_file, *cert_file, *key_file;
		const char *username, *password_file;
	} fleet;
};

/* Notifications (docs/http.md): what can be sent, in which format, where. */
enum notify_event {
	NOTIFY_SYNC_SUCCEEDED, NOTIFY_SYNC_FAILED, NOTIFY_DRIFT_DETECTED, NOTIFY_DRIFT_REPAIRED,
	NOTIFY_HEALTH_DEGRADED, NOTIFY__EVENTS
};
extern const char *const notify_event_names[NOTIFY__EVENTS];
enum notify_format { NOTIFY_JSON, NOTIFY_SLACK };
#define NOTIFY_MAX_TARGETS 16

struct notify_target {
	const char *url;
	enum notify_format format;
	unsigned events;		/* 1u << enum notify_event */
};

#define CONFIG_MAX_VARS 1000
#define CONFIG_MAX_VAR_SIZE 65536

#define DEFAULT_IDENTITY "/etc/driftless/identity.age"

void config_init(struct config *c);
void config_release(struct config *c);
/* Read file into c; diagnostics as FILE:LINE:COL into diag. */
int config_load(struct config *c, const char *file, struct diag *diag);
/* "90s", "10m", "1h", "500ms" -> milliseconds; -1 when invalid. */
int64_t config_duration(const char *s);
/* A listen address: "HOST:PORT", "[IPV6]:PORT", ":PORT" or "PORT" (host
 * 127.0.0.1); HOST is an IP address or "localhost". -1 when malformed. */
int config_listen_parse(const char *s, char *host, size_t hostlen, int *port);

#endif
