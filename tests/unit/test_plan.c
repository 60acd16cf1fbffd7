/* SPDX-License-Identifier: MIT */
/* Unit tests for pass_plan and pass_apply of File resources against a scratch root. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "core/pass.h"
#include "kinds/kinds.h"
#include "lib/err.h"
#include "state/db.h"

static const char *roots[] = {"/"};

struct fixture {
	char base[64]; /* scratch directory: root/ and state/ */
	char root[96];
	char state[96];
	struct pass p;
	struct policy pol;
	struct db *db;
	int nfiles; /* manifests declared so far */
};

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	snprintf(f->base, sizeof(f->base), "/tmp/driftless-plan-XXXXXX");
	if (!mkdtemp(f->base))
		return -1;
	snprintf(f->root, sizeof(f->root), "%s/root", f->base);
	snprintf(f->state, sizeof(f->state), "%s/state", f->base);
	char etc[128];
	snprintf(etc, sizeof(etc), "%s/etc", f->root);
	if (mkdir(f->root, 0755) < 0 || mkdir(etc, 0755) < 0 || mkdir(f->state, 0700) < 0)
		return -1;
	pass_init(&f->p);
	f->pol.roots = roots;
	f->pol.nroots = 1;
	f->pol.max_file_size = 1u << 20;
	f->p.policy = &f->pol;
	if (fs_root_open(&f->p.root, f->root) < 0)
		return -1;
	*state = f;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	pass_release(&f->p);
	fs_root_close(&f->p.root);
	db_close(f->db);
	nftw(f->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	test_free(f);
	return 0;
}

/* ---- the host, seen from outside the code under test ---- */

static char *host_path(const struct fixture *f, const char *path)
{
	static char buf[4][512];
	static int next;
	char *out = buf[next++ % 4];
	snprintf(out, sizeof(buf[0]), "%s%s", f->root, path);
	return out;
}

static void host_write(const struct fixture *f, const char *path, const char *data, mode_t mode)
{
	int fd = open(host_path(f, path), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* The content of path (static buffer), or NULL when it does not exist. */
static const char *host_read(const struct fixture *f, const char *path)
{
	static char buf[4096];
	int fd = open(host_path(f, path), O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		assert_int_equal(errno, ENOENT);
		return NULL;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static mode_t host_mode(const struct fixture *f, const char *path)
{
	struct stat st;
	assert_int_equal(lstat(host_path(f, path), &st), 0);
	return st.st_mode & 07777;
}

/* ---- manifests ---- */

static void declare_yaml(struct fixture *f, const char *yaml)
{
	char file[32];
	snprintf(file, sizeof(file), "m%d.yaml", ++f->nfiles);
	int r = manifest_parse(&f->p, file, yaml, strlen(yaml));
	if (r < 0)
		diag_print(&f->p.diag, stderr);
	assert_int_equal(r, 0);
}

/*
 * Declare File/name at path, in a manifest of its own. content is inserted
 * in a double-quoted YAML string (so "\\n" is a newline), or left out when
 * NULL; extra are more spec lines, each indented by two.
 */
static void declare(struct fixture *f, const char *name, const char *path, const char *content,
		    const char *extra)
{
	char yaml[1024], body[256] = "";
	if (content)
		snprintf(body, sizeof(body), "  content: \"%s\"\n", content);
	snprintf(yaml, sizeof(yaml),
		 "apiVersion: driftless/v1\n"
		 "kind: File\n"
		 "metadata:\n"
		 "  name: %s\n"
		 "spec:\n"
		 "  path: %s\n"
		 "%s%s",
		 name, path, body, extra ? extra : "");
	declare_yaml(f, yaml);
}

static void validate(struct fixture *f)
{
	int r = pass_validate(&f->p);
	if (r < 0)
		diag_print(&f->p.diag, stderr);
	assert_int_equal(r, 0);
	assert_int_equal(f->p.diag.n, 0);
}

static void plan(struct fixture *f)
{
	validate(f);
	int r = pass_plan(&f->p, f->db);
	if (r < 0)
		fprintf(stderr, "pass_plan: %s\n", err_msg());
	assert_int_equal(r, 0);
	assert_int_equal(f->p.nchanges, f->p.nres);
}

static struct change *change_of(struct fixture *f, const char *id)
{
	for (size_t i = 0; i < f->p.nchanges; i++)
		if (!strcmp(f->p.changes[i].res->id, id))
			return &f->p.changes[i];
	fail_msg("no change for %s", id);
	return NULL;
}

/* A real apply writes its intent to the state database first. */
static void open_db(struct fixture *f)
{
	int r = db_open(&f->db, f->state);
	if (r < 0)
		fprintf(stderr, "db_open: %s\n", err_msg());
	assert_int_equal(r, 0);
	f->p.db = f->db;
	f->p.state_dir = f->state;
}

/* Start the next pass against the same root and state, as the agent would. */
static void next_pass(struct fixture *f)
{
	pass_release(&f->p);
	fs_root_close(&f->p.root);
	pass_init(&f->p);
	f->p.policy = &f->pol;
	f->p.db = f->db;
	f->p.state_dir = f->db ? f->state : NULL;
	assert_int_equal(fs_root_open(&f->p.root, f->root), 0);
	f->nfiles = 0;
}

static void apply(struct fixture *f)
{
	int r = pass_apply(&f->p);
	if (r < 0)
		fprintf(stderr, "pass_apply: %s\n", err_msg());
	assert_int_equal(r, 0);
}

static void expect_contains(const char *s, const char *what)
{
	assert_non_null(s);
	if (!strstr(s, what))
		fail_msg("'%s' does not contain '%s'", s, what);
}

/* ---- plan ---- */

static void test_plan__missing_file_creates(void **state)
{
	struct fixture *f = *state;
	declare(f, "motd", "/etc/motd", "hello\\n", NULL);
	plan(f);
	struct change *c = change_of(f, "File/motd");
	assert_int_equal(c->action, ACT_CREATE);
	assert_int_equal(c->exists, 0);
	assert_int_equal(c->type, NODE_NONE);
	assert_null(c->error);
	assert_int_equal(c->created, 1);
	assert_false(c->res->failed);
}

static void test_plan__missing_parent_creates(void **state)
{
	struct fixture *f = *state;
	/* a missing parent directory is not an error at plan time */
	declare(f, "conf", "/etc/app/conf", "x", NULL);
	plan(f);
	assert_int_equal(change_of(f, "File/conf")->action, ACT_CREATE);
}

static void test_plan__identical_file_is_none(void **state)
{
	struct fixture *f = *state;
	host_write(f, "/etc/motd", "hello\n", 0644);
	declare(f, "motd", "/etc/motd", "hello\\n", "  mode: \"0644\"\n");
	plan(f);
	struct change *c = change_of(f, "File/motd");
	assert_int_equal(c->action, ACT_NONE);
	assert_int_equal(c->exists, 1);
	assert_int_equal(c->type, NODE_FILE);
	assert_int_equal(c->what.len, 0);
	assert_null(c->error);
	/* the blob id of what is there is the one of what is wanted */
	assert_string_equal(c->oid, ((struct file_spec *)c->res->spec)->blob);
}

static void test_plan__different_content_updates(void **state)
{
	struct fixture *f = *state;
	host_write(f, "/etc/motd", "old\n", 0644);
	declare(f, "motd", "/etc/motd", "new\\n", "  adopt: true\n");
	plan(f);
	struct change *c = change_of(f, "File/motd");
	assert_int_equal(c->action, ACT_UPDATE);
	assert_null(c->error);
	assert_string_equal(c->what.ptr, "content");
	assert_int_equal(c->foreign, 1);
	assert_int_equal(c->created, 0);

	/* the kind's diff shows the lines */
	struct buf d = BUF_INIT;
	assert_int_equal(c->res->kind->diff(c, &f->p, &d), 0);
	expect_contains(d.ptr, "-old");
	expect_contains(d.ptr, "+new");
	buf_release(&d);
}

static void test_plan__mode_differs(void **state)
{
	struct fixture *f = *state;
	host_write(f, "/etc/motd", "hello\n", 0600);
	declare(f, "motd", "/etc/motd", "hello\\n", "  mode: \"0644\"\n  adopt: true\n");
	plan(f);
	struct change *c = change_of(f, "File/motd");
	assert_int_equal(c->action, ACT_UPDATE);
	assert_string_equal(c->what.ptr, "mode 0600 -> 0644");
	assert_int_equal(c->mode, 0600);
}

static void test_plan__content_and_mode_differ(void **state)
{
	struct fixture *f = *state;
	host_write(f, "/etc/motd", "old\n", 0600);
	declare(f, "motd", "/etc/motd", "new\\n", "  mode: \"0644\"\n  adopt: true\n");
	plan(f);
	assert_string_equal(change_of(f, "File/motd")->what.ptr, "content, mode 0600 -> 0644");
}

static void test_plan__absent_existing_deletes(void **state)
{
	struct fixture *f = *state;
	host_write(f, "/etc/old.conf", "bye\n", 0644);
	/* no adopt needed to remove what Git says must not be there */
	declare(f, "old.conf", "/etc/old.conf", NULL, "  ensure: absent\n");
	plan(f);
	struct change *c = change_of(f, "File/old.conf");
	assert_int_equal(c->action, ACT_DELETE);
	assert_int_equal(c->exists, 1);
	assert_null(c->error);
}

static void test_plan__absent_missing_is_none(void **state)
{
	struct fixture *f = *state;
	declare(f, "old.conf", "/etc/old.conf", NULL, "  ensure: absent\n");
	plan(f);
	assert_int_equal(change_of(f, "File/old.conf")->action, ACT_NONE);
}

static void test_plan__preexisting_needs_adopt(void **state)
{
	struct fixture *f = *state;
	open_db(f);
	host_write(f, "/etc/motd", "theirs\n", 0644);
	declare(f, "motd", "/etc/motd", "ours\\n", NULL);
	plan(f);
	struct change *c = change_of(f, "File/motd");
	assert_int_equal(c->outcome, OUT_FAILED);
	expect_contains(c->error, "'/etc/motd' already exists and was not created by driftless");
	expect_contains(c->error, "adopt: true");
	assert_true(c->res->failed);

	/* apply leaves it alone and counts it */
	apply(f);
	assert_int_equal(c->outcome, OUT_FAILED);
	assert_int_equal(f->p.counts[OUT_FAILED], 1);
	assert_string_equal(host_read(f, "/etc/motd"), "theirs\n");
	assert_string_equal(pass_result(&f->p), "failed");
}

static void test_plan__directory_in_the_way(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(mkdir(host_path(f, "/etc/motd"), 0755), 0);
	declare(f, "motd", "/etc/motd", "x", "  adopt: true\n");
	plan(f);
	struct change *c = change_of(f, "File/motd");
	assert_int_equal(c->outcome, OUT_FAILED);
	expect_contains(c->error, "'/etc/motd' is a directory; a File cannot replace it");
}

/* ---- apply ---- */

static void test_plan__dry_run_changes_nothing(void **state)
{
	struct fixture *f = *state;
	host_write(f, "/etc/update.conf", "old\n", 0600);
	host_write(f, "/etc/gone.conf", "bye\n", 0644);
	declare(f, "new.conf", "/etc/new.conf", "new\\n", NULL);
	declare(f, "update.conf", "/etc/update.conf", "new\\n",
		"  mode: \"0644\"\n  adopt: true\n");
	declare(f, "gone.conf", "/etc/gone.conf", NULL, "  ensure: absent\n");
	plan(f);
	assert_int_equal(change_of(f, "File/new.conf")->action, ACT_CREATE);
	assert_int_equal(change_of(f, "File/update.conf")->action, ACT_UPDATE);
	assert_int_equal(change_of(f, "File/gone.conf")->action, ACT_DELETE);

	f->p.dry_run = 1;
	apply(f); /* no database: a dry run records no intent */
	assert_int_equal(change_of(f, "File/new.conf")->outcome, OUT_CREATED);
	assert_int_equal(change_of(f, "File/update.conf")->outcome, OUT_UPDATED);
	assert_int_equal(change_of(f, "File/gone.conf")->outcome, OUT_DELETED);
	assert_int_equal(f->p.counts[OUT_CREATED], 1);
	assert_int_equal(f->p.counts[OUT_UPDATED], 1);
	assert_int_equal(f->p.counts[OUT_DELETED], 1);

	assert_null(host_read(f, "/etc/new.conf"));
	assert_string_equal(host_read(f, "/etc/update.conf"), "old\n");
	assert_int_equal(host_mode(f, "/etc/update.conf"), 0600);
	assert_string_equal(host_read(f, "/etc/gone.conf"), "bye\n");
	char backups[160];
	struct stat st;
	snprintf(backups, sizeof(backups), "%s/backups", f->state);
	assert_int_equal(lstat(backups, &st), -1);
}

static void test_plan__apply_creates(void **state)
{
	struct fixture *f = *state;
	open_db(f);
	declare(f, "motd", "/etc/motd", "hello\\n", NULL);
	declare(f, "key", "/etc/key", "secret\\n", "  mode: \"0600\"\n");
	plan(f);
	apply(f);
	struct change *c = change_of(f, "File/motd");
	assert_int_equal(c->outcome, OUT_CREATED);
	assert_null(c->error);
	assert_string_equal(c->new_oid, ((struct file_spec *)c->res->spec)->blob);
	assert_string_equal(host_read(f, "/etc/motd"), "hello\n");
	assert_int_equal(host_mode(f, "/etc/motd"), 0644);
	assert_string_equal(host_read(f, "/etc/key"), "secret\n");
	assert_int_equal(host_mode(f, "/etc/key"), 0600);
	assert_int_equal(f->p.counts[OUT_CREATED], 2);
	assert_string_equal(pass_result(&f->p), "applied");
}

static void test_plan__apply_updates_and_backs_up(void **state)
{
	struct fixture *f = *state;
	open_db(f);
	host_write(f, "/etc/motd", "theirs\n", 0600);
	declare(f, "motd", "/etc/motd", "ours\\n", "  adopt: true\n");
	plan(f);
	struct change *c = change_of(f, "File/motd");
	char old_oid[41];
	memcpy(old_oid, c->oid, sizeof(old_oid));
	assert_int_equal(c->action, ACT_UPDATE);
	apply(f);
	assert_int_equal(c->outcome, OUT_UPDATED);
	assert_string_equal(host_read(f, "/etc/motd"), "ours\n");
	/* no mode in the spec: the host's mode is kept */
	assert_int_equal(host_mode(f, "/etc/motd"), 0600);

	/* what was there before is kept in the state directory by blob id */
	char backup[256];
	snprintf(backup, sizeof(backup), "%s/backups/%.2s/%s", f->state, old_oid, old_oid + 2);
	int fd = open(backup, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	char buf[32] = "";
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 7);
	close(fd);
	assert_string_equal(buf, "theirs\n");
}

static void test_plan__apply_mode_only(void **state)
{
	struct fixture *f = *state;
	open_db(f);
	host_write(f, "/etc/motd", "hello\n", 0600);
	struct stat before, after;
	assert_int_equal(lstat(host_path(f, "/etc/motd"), &before), 0);
	declare(f, "motd", "/etc/motd", "hello\\n", "  mode: \"0644\"\n  adopt: true\n");
	plan(f);
	apply(f);
	assert_int_equal(change_of(f, "File/motd")->outcome, OUT_UPDATED);
	assert_int_equal(host_mode(f, "/etc/motd"), 0644);
	/* changed in place, not replaced */
	assert_int_equal(lstat(host_path(f, "/etc/motd"), &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
}

static void test_plan__apply_deletes(void **state)
{
	struct fixture *f = *state;
	open_db(f);
	host_write(f, "/etc/old.conf", "bye\n", 0644);
	declare(f, "old.conf", "/etc/old.conf", NULL, "  ensure: absent\n");
	plan(f);
	apply(f);
	assert_int_equal(change_of(f, "File/old.conf")->outcome, OUT_DELETED);
	assert_null(host_read(f, "/etc/old.conf"));
}

static void test_plan__failed_observe_skips_dependent(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(mkdir(host_path(f, "/etc/blocked"), 0755), 0);
	declare(f, "blocked", "/etc/blocked", "x", "  adopt: true\n");
	declare(f, "after", "/etc/after.conf", "y", "  dependsOn:\n    - File/blocked\n");
	plan(f);
	struct change *bad = change_of(f, "File/blocked");
	struct change *dep = change_of(f, "File/after");
	assert_int_equal(bad->outcome, OUT_FAILED);
	assert_int_equal(dep->action, ACT_CREATE);

	f->p.dry_run = 1;
	apply(f);
	assert_int_equal(bad->outcome, OUT_FAILED);
	assert_int_equal(dep->outcome, OUT_SKIPPED);
	assert_string_equal(dep->error, "dependency File/blocked failed");
	assert_true(dep->res->failed);
	assert_int_equal(f->p.counts[OUT_FAILED], 1);
	assert_int_equal(f->p.counts[OUT_SKIPPED], 1);
}

static void test_plan__failed_apply_skips_dependent(void **state)
{
	struct fixture *f = *state;
	open_db(f);
	/* the parent of the path is a regular file: observe sees nothing
	 * there, so the plan says create, and the write fails */
	host_write(f, "/etc/notadir", "i am a file\n", 0644);
	declare(f, "inner", "/etc/notadir/inner.conf", "x", NULL);
	declare(f, "after", "/etc/after.conf", "y", "  dependsOn:\n    - File/inner\n");
	declare(f, "other", "/etc/other.conf", "z", NULL);
	plan(f);
	struct change *inner = change_of(f, "File/inner");
	struct change *after = change_of(f, "File/after");
	assert_int_equal(inner->action, ACT_CREATE);
	assert_int_equal(after->action, ACT_CREATE);

	apply(f);
	assert_int_equal(inner->outcome, OUT_FAILED);
	assert_non_null(inner->error);
	assert_int_equal(after->outcome, OUT_SKIPPED);
	expect_contains(after->error, "dependency File/inner failed");
	/* what does not depend on it goes ahead */
	assert_int_equal(change_of(f, "File/other")->outcome, OUT_CREATED);
	assert_null(host_read(f, "/etc/after.conf"));
	assert_string_equal(host_read(f, "/etc/other.conf"), "z");
	assert_string_equal(host_read(f, "/etc/notadir"), "i am a file\n");
	assert_string_equal(pass_result(&f->p), "partial");
}

static void test_plan__second_pass_is_noop(void **state)
{
	struct fixture *f = *state;
	open_db(f);
	declare(f, "motd", "/etc/motd", "hello\\n", "  mode: \"0640\"\n");
	plan(f);
	apply(f);
	assert_int_equal(pass_record(&f->p, "apply"), 0);

	/* a new pass over the same manifests and the same host */
	next_pass(f);
	declare(f, "motd", "/etc/motd", "hello\\n", "  mode: \"0640\"\n");
	plan(f);
	struct change *c = change_of(f, "File/motd");
	assert_non_null(c->inv);
	assert_int_equal(c->action, ACT_NONE);
	assert_int_equal(c->created, 1);
	assert_int_equal(c->foreign, 0);
}

static void test_plan__drift_reported_not_repaired(void **state)
{
	struct fixture *f = *state;
	static const char yaml[] = "apiVersion: driftless/v1\n"
				   "kind: File\n"
				   "metadata:\n"
				   "  name: motd\n"
				   "  annotations:\n"
				   "    driftless/drift: report\n"
				   "spec:\n"
				   "  path: /etc/motd\n"
				   "  content: \"hello\\n\"\n";
	open_db(f);
	declare_yaml(f, yaml);
	plan(f);
	apply(f);
	assert_int_equal(change_of(f, "File/motd")->outcome, OUT_CREATED);
	assert_int_equal(pass_record(&f->p, "apply"), 0);

	/* someone edits the file; the spec did not change */
	host_write(f, "/etc/motd", "edited\n", 0644);
	next_pass(f);
	declare_yaml(f, yaml);
	assert_int_equal(f->p.res[0]->drift, DRIFT_REPORT);
	plan(f);
	struct change *c = change_of(f, "File/motd");
	assert_true(c->drifted);
	assert_int_equal(c->action, ACT_NONE);
	assert_string_equal(c->what.ptr, "content");

	apply(f);
	assert_int_equal(c->outcome, OUT_UNCHANGED);
	assert_string_equal(host_read(f, "/etc/motd"), "edited\n");
}

static void test_plan__drift_repaired(void **state)
{
	struct fixture *f = *state;
	open_db(f);
	declare(f, "motd", "/etc/motd", "hello\\n", NULL);
	plan(f);
	apply(f);
	assert_int_equal(pass_record(&f->p, "apply"), 0);

	host_write(f, "/etc/motd", "edited\n", 0644);
	next_pass(f);
	declare(f, "motd", "/etc/motd", "hello\\n", NULL);
	plan(f);
	struct change *c = change_of(f, "File/motd");
	assert_true(c->drifted);
	assert_int_equal(c->action, ACT_UPDATE);
	assert_null(c->error); /* the agent's own file needs no adopt */
	apply(f);
	assert_int_equal(c->outcome, OUT_UPDATED);
	assert_string_equal(host_read(f, "/etc/motd"), "hello\n");
}

static void test_plan__nothing_declared(void **state)
{
	struct fixture *f = *state;
	plan(f);
	assert_int_equal(f->p.nchanges, 0);
	apply(f);
	assert_string_equal(pass_result(&f->p), "applied");
}

static void test_plan__empty_revision_refused(void **state)
{
	struct fixture *f = *state;
	open_db(f);
	declare(f, "motd", "/etc/motd", "hello\\n", NULL);
	plan(f);
	apply(f);
	assert_int_equal(pass_record(&f->p, "apply"), 0);

	/* a revision that declares nothing would prune everything */
	next_pass(f);
	validate(f);
	assert_int_equal(pass_plan(&f->p, f->db), -1);
	assert_int_equal(f->p.diag.n, 1);
	expect_contains(f->p.diag.v[0].msg, "would remove every managed resource (1); refusing");
	assert_string_equal(host_read(f, "/etc/motd"), "hello\n");

	/* unless the agent is told an empty revision is fine */
	next_pass(f);
	f->p.allow_empty = 1;
	validate(f);
	assert_int_equal(pass_plan(&f->p, f->db), 0);
	assert_int_equal(f->p.nchanges, 1);
	struct change *c = &f->p.changes[0];
	assert_string_equal(c->res->id, "File/motd");
	assert_int_equal(c->action, ACT_DELETE);
	apply(f);
	assert_int_equal(c->outcome, OUT_DELETED);
	assert_null(host_read(f, "/etc/motd"));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_plan__missing_file_creates),
	    T(test_plan__missing_parent_creates),
	    T(test_plan__identical_file_is_none),
	    T(test_plan__different_content_updates),
	    T(test_plan__mode_differs),
	    T(test_plan__content_and_mode_differ),
	    T(test_plan__absent_existing_deletes),
	    T(test_plan__absent_missing_is_none),
	    T(test_plan__preexisting_needs_adopt),
	    T(test_plan__directory_in_the_way),
	    T(test_plan__dry_run_changes_nothing),
	    T(test_plan__apply_creates),
	    T(test_plan__apply_updates_and_backs_up),
	    T(test_plan__apply_mode_only),
	    T(test_plan__apply_deletes),
	    T(test_plan__failed_observe_skips_dependent),
	    T(test_plan__failed_apply_skips_dependent),
	    T(test_plan__second_pass_is_noop),
	    T(test_plan__drift_reported_not_repaired),
	    T(test_plan__drift_repaired),
	    T(test_plan__nothing_declared),
	    T(test_plan__empty_revision_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
