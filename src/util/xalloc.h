/* util/xalloc.h -- allocation that never returns NULL: on exhaustion it logs and aborts,
 * as redis zmalloc and kore_calloc do. Sizes that come from a client are checked by the
 * caller before they get here. */
#ifndef CD_UTIL_XALLOC_H
#define CD_UTIL_XALLOC_H

#include <stddef.h>

void *cd_xmalloc(size_t n);
void *cd_xcalloc(size_t count, size_t size);
void *cd_xrealloc(void *p, size_t n);
char *cd_xstrdup(const char *s); /* NULL in, NULL out */
char *cd_xstrndup(const char *s, size_t n);

#endif
