/* SPDX-License-Identifier: MIT */
#ifndef DL_THREAD_H
#define DL_THREAD_H

#include <pthread.h>

/*
 * Start fn(arg) on a thread with a small stack (the project's threads only
 * stat, read files and initialise libgit2), detached or joinable. Returns
 * pthread_create's result. A thread's default stack reserves 8 MiB of
 * address space, which counts against an RLIMIT_AS memory cap.
 */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg, int detached);

#endif
