/* SPDX-License-Identifier: MIT */
/* The command table: driftless COMMAND [ARGS]. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include "cmd/cmd.h"
#include "source/git.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
	{ "apply", cmd_apply, "make the host equal to a revision of the repository" },
	{ "plan", cmd_plan, "show what apply would change, with diffs" },
	{ "validate", cmd_validate, "check manifests without touching the host" },
	{ "agent", cmd_agent, "reconcile forever: poll, apply, repair drift the moment it happens" },
	{ "status", cmd_status, "show the applied and attempted revisions" },
	{ "history", cmd_history, "list past passes and their outcomes" },
	{ "suspend", cmd_suspend, "hold repairs and new revisions for a stated time and reason" },
	{ "resume", cmd_resume, "end a suspension now" },
	{ "drift", cmd_drift, "list what differs from the applied revision, and why it stays" },
	{ "capture", cmd_capture, "turn hand fixes into a commit in a local clone, for review" },
	{ "report", cmd_report, "every change, drift event and suspension of a period, for auditors" },
	{ "fleet", cmd_fleet, "the hosts, revisions and rollouts of a fleet, from etcd" },
	{ "secret", cmd_secret, "make this host's age identity, print it, seal secrets for hosts" },
	{ "ack", cmd_ack, "settle an Exec whose interrupted run has an unknown outcome" },
	{ "version", cmd_version, "print the version" },
	{ NULL, NULL, NULL },
};

static void usage(FILE *fp)
{
	fprintf(fp, "usage: driftless COMMAND [OPTIONS]\n\ncommands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(fp, "  %-10s %s\n", c->name, c->help);
	fprintf(fp, "\nrun 'driftless COMMAND --help' for the options of a command\n");
}

int main(int argc, char **argv)
{
	/* one malloc arena: the few helper threads are short and allocate
	 * little, and each extra arena reserves 64 MiB of address space, which
	 * counts against an RLIMIT_AS memory cap */
	mallopt(M_ARENA_MAX, 1);
	/* a fixed threshold: what is bigger than 128 KiB is mapped on its own
	 * and given back when freed. Left to adjust itself, malloc raises it
	 * past any large block freed (libgit2's, after a clone), and from then
	 * on the pass's big arrays come from the heap, where a realloc or a
	 * free leaves the old pages resident: 15 MB of a first apply's peak at
	 * 100,000 files. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(1, argv + 1);
	for (const struct command *c = commands; c->name; c++) {
		if (strcmp(c->name, argv[1]))
			continue;
		int ret = c->fn(argc - 1, argv + 1);
		gitsrc_warmup_wait();	/* before exit handlers unload what it uses */
		return ret;
	}
	fprintf(stderr, "error: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
