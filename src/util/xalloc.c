#include "util/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(size_t n)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory\",\"bytes\":%zu}\n", n);
    abort();
}

void *cd_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        die(n);
    return p;
}

void *cd_xcalloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        die(SIZE_MAX);
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        die(count * size);
    return p;
}

void *cd_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        die(n);
    return q;
}

char *cd_xstrdup(const char *s)
{
    return s ? cd_xstrndup(s, strlen(s)) : NULL;
}

char *cd_xstrndup(const char *s, size_t n)
{
    char *d = cd_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
