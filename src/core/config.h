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
	int64_t interval_ms;
	int64_t full_resync_ms;
	struct policy policy;
	int prune;
	int allow_empty;
	const char *listen;
};

void config_init(struct config *c);
void config_release(struct config *c);
/* Read file into c; diagnostics as FILE:LINE:COL into diag. */
int config_load(struct config *c, const char *file, struct diag *diag);
/* "90s", "10m", "1h", "500ms" -> milliseconds; -1 when invalid. */
int64_t config_duration(const char *s);

#endif
