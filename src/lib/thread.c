/* SPDX-License-Identifier: MIT */
/* Threads with a small stack (see thread.h). */
#include "lib/thread.h"

#define THREAD_STACK (1u << 20)

int thread_start(pthread_t *t, void *(*fn)(void *), void *arg, int detached)
{
	pthread_attr_t attr;
	int r = pthread_attr_init(&attr);
	if (r)
		return r;
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	if (detached)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return r;
}
