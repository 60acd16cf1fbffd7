/* SPDX-License-Identifier: MIT */
/* One error convention: functions return 0 or a negative value and record a message once. */
#ifndef DL_ERR_H
#define DL_ERR_H

#include <stddef.h>

/*
 * Record the message of the current failure and return -1. The message is
 * kept in a per-thread buffer until the next err_set*() or err_clear().
 * err_set_errno() appends ": strerror(errno)" and keeps errno for callers.
 */
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int err_set_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the recorded message with more context ("while x: <old>"). */
int err_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last message; borrowed until the next err_set*(). Never NULL. */
const char *err_msg(void);
void err_clear(void);

/* Programmer errors stay checked in release builds. */
void err_bug(const char *file, int line, const char *cond) __attribute__((noreturn));
#define BUG_ON(cond) do { if (cond) err_bug(__FILE__, __LINE__, #cond); } while (0)

/* Allocation that aborts on out-of-memory. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
