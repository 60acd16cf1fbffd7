/* SPDX-License-Identifier: MIT */
/* A growable byte buffer that always stays NUL-terminated. */
#ifndef DL_BUF_H
#define DL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *ptr;
	size_t len;
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_init(struct buf *b);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_addch(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vaddf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hand the string over to the caller (never NULL); b is reset. */
char *buf_detach(struct buf *b);
/* Append s as a JSON string literal, quotes included. */
void buf_add_json_str(struct buf *b, const char *s);
void buf_add_json_strn(struct buf *b, const char *s, size_t len);
/* Append s as HTML text: < > & " ' escaped, control characters other than
 * tab and newline shown as '?'. NULL appends nothing. */
void buf_add_html(struct buf *b, const char *s);

#endif
