/* SPDX-License-Identifier: MIT */
/*
 * libcurl, libmicrohttpd and GPGME, loaded when first used.
 *
 * Most runs of driftless are one-shot commands (apply, plan, status) that
 * never send a notification, serve HTTP or verify an OpenPGP signature; yet
 * linking those three libraries pulls some thirty more shared objects (TLS
 * stacks, LDAP, Kerberos, p11-kit) into every process, and relocating them
 * costs more than a no-op pass of a small tree. So, as systemd does for its
 * optional libraries, they are not linked: this file defines the functions
 * the project calls, with the libraries' own prototypes, and each resolves
 * its real counterpart with dlopen/dlsym on first call.
 *
 * If a library cannot be loaded, the functions that start using it (the
 * init, new and start calls) fail the way the library reports failure, and
 * the reason is printed once. The others can only be reached with an object
 * one of those returned, so reaching one without its library is a bug.
 */
#define CURL_DISABLE_TYPECHECK	/* its macros would replace the definitions below */
#include <curl/curl.h>
#include <dlfcn.h>
#include <gpgme.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dynlib {
	const char *soname;
	void *handle;
	int tried;
};

static struct dynlib lib_curl = { "libcurl.so.4", NULL, 0 };
static struct dynlib lib_mhd = { "libmicrohttpd.so.12", NULL, 0 };
static struct dynlib lib_gpgme = { "libgpgme.so.11", NULL, 0 };
static pthread_mutex_t dyn_lock = PTHREAD_MUTEX_INITIALIZER;

/* the address of name in l, or NULL when l cannot be loaded */
static void *dyn_sym(struct dynlib *l, const char *name)
{
	void *sym = NULL;
	pthread_mutex_lock(&dyn_lock);
	if (!l->tried) {
		l->tried = 1;
		l->handle = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
		if (!l->handle)
			fprintf(stderr, "driftless: cannot load %s: %s\n", l->soname, dlerror());
	}
	if (l->handle) {
		sym = dlsym(l->handle, name);
		if (!sym)
			fprintf(stderr, "driftless: %s has no %s\n", l->soname, name);
	}
	pthread_mutex_unlock(&dyn_lock);
	return sym;
}

static void dyn_missing(const char *name)
{
	fprintf(stderr, "driftless: BUG: %s called without its library\n", name);
	abort();
}

/*
 * DYN defines `ret name params` forwarding `args` to the library's name;
 * when it cannot be resolved the function runs `fail` (a return statement,
 * or dyn_missing). The pointer's type is taken from the header's prototype.
 */
#define DYN_RESOLVE(lib, name, fail)                                     \
	static __typeof__(name) *fn;                                     \
	if (!fn) {                                                       \
		void *sym = dyn_sym(&(lib), #name);                      \
		if (!sym) {                                              \
			fail;                                            \
		}                                                        \
		memcpy(&fn, &sym, sizeof(fn));                           \
	}

#define DYN(lib, ret, name, params, args, fail)                          \
	ret name params                                                  \
	{                                                                \
		DYN_RESOLVE(lib, name, fail)                             \
		return fn args;                                          \
	}

#define DYNV(lib, name, params, args)                                    \
	void name params                                                 \
	{                                                                \
		DYN_RESOLVE(lib, name, dyn_missing(#name))               \
		fn args;                                                 \
	}

#define MISSING(name) dyn_missing(#name)

/* ---- libcurl ---- */

DYN(lib_curl, CURLcode, curl_global_init, (long flags), (flags), return CURLE_FAILED_INIT)
DYNV(lib_curl, curl_global_cleanup, (void), ())
DYN(lib_curl, CURL *, curl_easy_init, (void), (), return NULL)
DYNV(lib_curl, curl_easy_cleanup, (CURL *c), (c))
DYN(lib_curl, const char *, curl_easy_strerror, (CURLcode e), (e), return "libcurl is not available")
DYN(lib_curl, CURLM *, curl_multi_init, (void), (), return NULL)
DYN(lib_curl, CURLMcode, curl_multi_add_handle, (CURLM *m, CURL *c), (m, c), MISSING(curl_multi_add_handle))
DYN(lib_curl, CURLMcode, curl_multi_remove_handle, (CURLM *m, CURL *c), (m, c),
    MISSING(curl_multi_remove_handle))
DYN(lib_curl, CURLMcode, curl_multi_assign, (CURLM *m, curl_socket_t s, void *p), (m, s, p),
    MISSING(curl_multi_assign))
DYN(lib_curl, CURLMcode, curl_multi_cleanup, (CURLM *m), (m), MISSING(curl_multi_cleanup))
DYN(lib_curl, CURLMsg *, curl_multi_info_read, (CURLM *m, int *left), (m, left),
    MISSING(curl_multi_info_read))
DYN(lib_curl, CURLMcode, curl_multi_socket_action, (CURLM *m, curl_socket_t s, int ev, int *running),
    (m, s, ev, running), MISSING(curl_multi_socket_action))
DYN(lib_curl, struct curl_slist *, curl_slist_append, (struct curl_slist *l, const char *s), (l, s),
    return NULL)
DYNV(lib_curl, curl_slist_free_all, (struct curl_slist *l), (l))

/*
 * The variadic ones take exactly one argument after the option, whose type
 * libcurl itself derives from the option number's range (CURLOPTTYPE_*):
 * below OBJECTPOINT a long, from OFF_T up to BLOB a curl_off_t, else a
 * pointer (objects, functions and blobs alike on every ABI Linux runs on).
 */
CURLcode curl_easy_setopt(CURL *c, CURLoption opt, ...)
{
	DYN_RESOLVE(lib_curl, curl_easy_setopt, MISSING(curl_easy_setopt))
	va_list ap;
	CURLcode r;
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		r = fn(c, opt, va_arg(ap, long));
	else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
		r = fn(c, opt, va_arg(ap, curl_off_t));
	else
		r = fn(c, opt, va_arg(ap, void *));
	va_end(ap);
	return r;
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption opt, ...)
{
	DYN_RESOLVE(lib_curl, curl_multi_setopt, MISSING(curl_multi_setopt))
	va_list ap;
	CURLMcode r;
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		r = fn(m, opt, va_arg(ap, long));
	else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
		r = fn(m, opt, va_arg(ap, curl_off_t));
	else
		r = fn(m, opt, va_arg(ap, void *));
	va_end(ap);
	return r;
}

/* every CURLINFO takes one pointer to where the answer goes */
CURLcode curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
	DYN_RESOLVE(lib_curl, curl_easy_getinfo, MISSING(curl_easy_getinfo))
	va_list ap;
	va_start(ap, info);
	void *out = va_arg(ap, void *);
	va_end(ap);
	return fn(c, info, out);
}

/* ---- libmicrohttpd ---- */

DYN(lib_mhd, enum MHD_Result, MHD_add_response_header,
    (struct MHD_Response *r, const char *h, const char *v), (r, h, v), MISSING(MHD_add_response_header))
DYN(lib_mhd, struct MHD_Response *, MHD_create_response_from_buffer,
    (size_t size, void *buffer, enum MHD_ResponseMemoryMode mode), (size, buffer, mode),
    MISSING(MHD_create_response_from_buffer))
DYNV(lib_mhd, MHD_destroy_response, (struct MHD_Response *r), (r))
DYN(lib_mhd, enum MHD_Result, MHD_get_timeout, (struct MHD_Daemon *d, MHD_UNSIGNED_LONG_LONG *t),
    (d, t), MISSING(MHD_get_timeout))
DYN(lib_mhd, const char *, MHD_lookup_connection_value,
    (struct MHD_Connection *c, enum MHD_ValueKind kind, const char *key), (c, kind, key),
    MISSING(MHD_lookup_connection_value))
DYN(lib_mhd, enum MHD_Result, MHD_queue_response,
    (struct MHD_Connection *c, unsigned int status, struct MHD_Response *r), (c, status, r),
    MISSING(MHD_queue_response))
DYN(lib_mhd, enum MHD_Result, MHD_run, (struct MHD_Daemon *d), (d), MISSING(MHD_run))
DYNV(lib_mhd, MHD_stop_daemon, (struct MHD_Daemon *d), (d))

/* the info types the project asks for take no argument after the type */
const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *c,
							enum MHD_ConnectionInfoType type, ...)
{
	DYN_RESOLVE(lib_mhd, MHD_get_connection_info, MISSING(MHD_get_connection_info))
	return fn(c, type);
}

const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *d, enum MHD_DaemonInfoType type, ...)
{
	DYN_RESOLVE(lib_mhd, MHD_get_daemon_info, MISSING(MHD_get_daemon_info))
	return fn(d, type);
}

/* the option list goes through the library's own va_list entry point */
struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
				    void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	DYN_RESOLVE(lib_mhd, MHD_start_daemon_va, return NULL)
	va_list ap;
	va_start(ap, dh_cls);
	struct MHD_Daemon *d = fn(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

/* ---- GPGME ---- */

DYN(lib_gpgme, const char *, gpgme_check_version_internal, (const char *req, size_t offset),
    (req, offset), return NULL)
DYN(lib_gpgme, gpgme_error_t, gpgme_new, (gpgme_ctx_t *ctx), (ctx),
    return gpg_err_make(GPG_ERR_SOURCE_GPGME, GPG_ERR_NOT_IMPLEMENTED))
DYNV(lib_gpgme, gpgme_release, (gpgme_ctx_t ctx), (ctx))
DYN(lib_gpgme, gpgme_error_t, gpgme_set_protocol, (gpgme_ctx_t ctx, gpgme_protocol_t proto),
    (ctx, proto), MISSING(gpgme_set_protocol))
DYN(lib_gpgme, gpgme_error_t, gpgme_ctx_set_engine_info,
    (gpgme_ctx_t ctx, gpgme_protocol_t proto, const char *file, const char *home),
    (ctx, proto, file, home), MISSING(gpgme_ctx_set_engine_info))
DYN(lib_gpgme, gpgme_error_t, gpgme_data_new_from_mem,
    (gpgme_data_t *dh, const char *buffer, size_t size, int copy), (dh, buffer, size, copy),
    MISSING(gpgme_data_new_from_mem))
DYNV(lib_gpgme, gpgme_data_release, (gpgme_data_t dh), (dh))
DYN(lib_gpgme, gpgme_error_t, gpgme_op_import, (gpgme_ctx_t ctx, gpgme_data_t keydata),
    (ctx, keydata), MISSING(gpgme_op_import))
DYN(lib_gpgme, gpgme_import_result_t, gpgme_op_import_result, (gpgme_ctx_t ctx), (ctx),
    MISSING(gpgme_op_import_result))
DYN(lib_gpgme, gpgme_error_t, gpgme_op_verify,
    (gpgme_ctx_t ctx, gpgme_data_t sig, gpgme_data_t text, gpgme_data_t plain),
    (ctx, sig, text, plain), MISSING(gpgme_op_verify))
DYN(lib_gpgme, gpgme_verify_result_t, gpgme_op_verify_result, (gpgme_ctx_t ctx), (ctx),
    MISSING(gpgme_op_verify_result))
DYN(lib_gpgme, const char *, gpgme_strerror, (gpgme_error_t err), (err),
    return "GPGME is not available")
