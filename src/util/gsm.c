#include "util/gsm.h"
#include "util/utf8.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/xalloc.h"

#define ESC         0x1B
#define EXT         0x100 /* marks a gsm_code() result that needs the escape first */
#define REPLACEMENT 0xFFFD

/* The GSM 03.38 default alphabet, septet -> Unicode. 0x1B is the escape to the extension
 * table; on its own (an escape followed by an escape, or at the end) it reads as a space. */
static const uint16_t gsm_basic[128] = {
    0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, /* 0x00 */
    0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D, 0x00C5, 0x00E5, /* 0x08 */
    0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, /* 0x10 */
    0x03A3, 0x0398, 0x039E, 0x0020, 0x00C6, 0x00E6, 0x00DF, 0x00C9, /* 0x18 */
    0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027, /* 0x20 */
    0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F, /* 0x28 */
    0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037, /* 0x30 */
    0x0038, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F, /* 0x38 */
    0x00A1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047, /* 0x40 */
    0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D, 0x004E, 0x004F, /* 0x48 */
    0x0050, 0x0051, 0x0052, 0x0053, 0x0054, 0x0055, 0x0056, 0x0057, /* 0x50 */
    0x0058, 0x0059, 0x005A, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7, /* 0x58 */
    0x00BF, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067, /* 0x60 */
    0x0068, 0x0069, 0x006A, 0x006B, 0x006C, 0x006D, 0x006E, 0x006F, /* 0x68 */
    0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077, /* 0x70 */
    0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0, /* 0x78 */
};

/* The extension table: the septet after an escape, and what it stands for. */
static const struct {
    uint8_t code;
    uint16_t cp;
} gsm_ext[] = {
    {0x0A, 0x000C}, {0x14, 0x005E}, {0x28, 0x007B}, {0x29, 0x007D}, {0x2F, 0x005C},
    {0x3C, 0x005B}, {0x3D, 0x007E}, {0x3E, 0x005D}, {0x40, 0x007C}, {0x65, 0x20AC},
};

/* The septet for code point c (EXT | code for the extension table), or -1. ASCII letters,
 * digits and most punctuation keep their value, so they skip the table searches. */
static int gsm_code(uint32_t c)
{
    if ((c >= 0x20 && c <= 0x23) || (c >= 0x25 && c <= 0x3F) || (c >= 'A' && c <= 'Z') ||
        (c >= 'a' && c <= 'z'))
        return (int)c;
    for (size_t i = 0; i < sizeof gsm_ext / sizeof gsm_ext[0]; i++)
        if (gsm_ext[i].cp == c)
            return EXT | gsm_ext[i].code;
    for (int i = 0; i < 128; i++)
        if (gsm_basic[i] == c && i != ESC)
            return i;
    return -1;
}

/* Reads one code point at *p and advances; returns 1, 0 at the end, -1 for invalid UTF-8
 * (truncated or overlong sequences, surrogates, values past U+10FFFF). */
static int utf8_next(const unsigned char **p, uint32_t *cp)
{
    size_t len;
    if (**p == 0)
        return 0;
    long c = cd_utf8_next(*p, 4, &len); /* NUL-terminated: stops at the NUL */
    if (c < 0)
        return -1;
    *cp = (uint32_t)c;
    *p += len;
    return 1;
}

/* The code points of utf8 into *out (OUT: free() it), their count into *n; -1 if invalid. */
static int to_codepoints(const char *utf8, uint32_t **out, size_t *n)
{
    const unsigned char *p = (const unsigned char *)utf8;
    uint32_t *cps = cd_xmalloc((strlen(utf8) + 1) * sizeof *cps);
    size_t k = 0;
    int r;

    while ((r = utf8_next(&p, &cps[k])) == 1)
        k++;
    if (r < 0) {
        free(cps);
        return -1;
    }
    *out = cps;
    *n = k;
    return 0;
}

static bool all_gsm(const uint32_t *cps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (gsm_code(cps[i]) < 0)
            return false;
    return true;
}

/* Septets (GSM-7) or UTF-16 code units (UCS-2) that one code point takes. */
static size_t cost(uint32_t c, int coding)
{
    if (coding == CD_GSM_CODING_GSM7)
        return (gsm_code(c) & EXT) ? 2 : 1;
    return c > 0xFFFF ? 2 : 1;
}

/* Where the part that starts at code point `start` ends (exclusive): as many whole
 * characters as fit in `cap` units, so an escape pair or a surrogate pair is never cut. */
static size_t part_end(const uint32_t *cps, size_t n, size_t start, int coding, size_t cap)
{
    size_t used = 0, i = start;
    while (i < n && used + cost(cps[i], coding) <= cap)
        used += cost(cps[i++], coding);
    return i;
}

/* The per-part capacity for this text: the single-message one when everything fits in a
 * single message, else the smaller concatenated one. */
static size_t part_cap(const uint32_t *cps, size_t n, int coding)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += cost(cps[i], coding);
    if (coding == CD_GSM_CODING_GSM7)
        return total <= CD_GSM7_SINGLE ? CD_GSM7_SINGLE : CD_GSM7_PART;
    return total <= CD_UCS2_SINGLE ? CD_UCS2_SINGLE : CD_UCS2_PART;
}

static int count_parts(const uint32_t *cps, size_t n, int coding)
{
    size_t cap = part_cap(cps, n, coding), start = 0;
    int parts = 0;
    while (start < n) {
        start = part_end(cps, n, start, coding, cap);
        /* Past the UDH's limit the exact count no longer matters to anyone; stopping
         * keeps a multi-megabyte text from costing more than it must. */
        if (++parts > CD_GSM_MAX_PARTS)
            break;
    }
    return parts;
}

int cd_gsm_parts(const char *utf8)
{
    uint32_t *cps;
    size_t n;
    if (utf8 == NULL || to_codepoints(utf8, &cps, &n) != 0)
        return -1;
    int coding = all_gsm(cps, n) ? CD_GSM_CODING_GSM7 : CD_GSM_CODING_UCS2;
    int parts = count_parts(cps, n, coding);
    free(cps);
    return parts;
}

/* Writes code points [from, to) in `coding` into part *p (OUT: its own allocation). */
static void encode_part(const uint32_t *cps, size_t from, size_t to, int coding, cd_gsm_part *p)
{
    unsigned char *d = cd_xmalloc((to - from) * 4 + 1);
    size_t k = 0;
    for (size_t i = from; i < to; i++) {
        uint32_t c = cps[i];
        if (coding == CD_GSM_CODING_GSM7) {
            int g = gsm_code(c);
            if (g & EXT)
                d[k++] = ESC;
            d[k++] = (unsigned char)(g & 0x7F);
        } else if (c > 0xFFFF) {
            uint32_t v = c - 0x10000, hi = 0xD800 | (v >> 10), lo = 0xDC00 | (v & 0x3FF);
            d[k++] = (unsigned char)(hi >> 8), d[k++] = (unsigned char)hi;
            d[k++] = (unsigned char)(lo >> 8), d[k++] = (unsigned char)lo;
        } else {
            d[k++] = (unsigned char)(c >> 8), d[k++] = (unsigned char)c;
        }
    }
    p->data = d;
    p->len = k;
}

int cd_gsm_encode(const char *utf8, cd_gsm_msg *out, cd_err *err)
{
    uint32_t *cps;
    size_t n;

    memset(out, 0, sizeof *out);
    if (utf8 == NULL || to_codepoints(utf8, &cps, &n) != 0)
        return cd_fail(err, CD_EINVAL, "text", "text is not valid UTF-8");
    if (n == 0) {
        free(cps);
        return cd_fail(err, CD_EINVAL, "text", "text is empty");
    }
    int coding = all_gsm(cps, n) ? CD_GSM_CODING_GSM7 : CD_GSM_CODING_UCS2;
    int nparts = count_parts(cps, n, coding);
    if (nparts > CD_GSM_MAX_PARTS) {
        free(cps);
        return cd_fail(err, CD_ELIMIT, "text", "text needs more than %d parts", CD_GSM_MAX_PARTS);
    }
    out->coding = coding;
    out->nparts = nparts;
    out->parts = cd_xcalloc((size_t)nparts, sizeof *out->parts);
    size_t cap = part_cap(cps, n, coding), start = 0;
    for (int i = 0; i < nparts; i++) {
        size_t end = part_end(cps, n, start, coding, cap);
        encode_part(cps, start, end, coding, &out->parts[i]);
        start = end;
    }
    free(cps);
    return 0;
}

void cd_gsm_msg_free(cd_gsm_msg *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < m->nparts; i++)
        free(m->parts[i].data);
    free(m->parts);
    memset(m, 0, sizeof *m);
}

static void put_utf8(cd_buf *b, uint32_t c)
{
    unsigned char u[4];
    size_t n;
    if (c == 0)
        return; /* the result is a C string: a NUL would cut it short */
    if (c < 0x80) {
        u[0] = (unsigned char)c, n = 1;
    } else if (c < 0x800) {
        u[0] = (unsigned char)(0xC0 | (c >> 6)), n = 2;
    } else if (c < 0x10000) {
        u[0] = (unsigned char)(0xE0 | (c >> 12)), n = 3;
    } else {
        u[0] = (unsigned char)(0xF0 | (c >> 18)), n = 4;
    }
    for (size_t i = 1; i < n; i++)
        u[i] = (unsigned char)(0x80 | ((c >> (6 * (n - 1 - i))) & 0x3F));
    cd_buf_append(b, u, n);
}

static void decode_gsm7(cd_buf *b, const unsigned char *d, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned s = d[i] & 0x7F; /* unpacked septets: the top bit carries nothing */
        if (s == ESC && i + 1 < len) {
            unsigned e = d[++i] & 0x7F;
            uint32_t c = gsm_basic[e]; /* 23.038: an unknown extension reads as the base */
            for (size_t k = 0; k < sizeof gsm_ext / sizeof gsm_ext[0]; k++)
                if (gsm_ext[k].code == e)
                    c = gsm_ext[k].cp;
            put_utf8(b, c);
        } else {
            put_utf8(b, gsm_basic[s]);
        }
    }
}

static void decode_ucs2(cd_buf *b, const unsigned char *d, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2) {
        uint32_t u = (uint32_t)d[i] << 8 | d[i + 1];
        if (u >= 0xD800 && u <= 0xDBFF && i + 3 < len) {
            uint32_t lo = (uint32_t)d[i + 2] << 8 | d[i + 3];
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                put_utf8(b, 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
                i += 2;
                continue;
            }
        }
        put_utf8(b, (u >= 0xD800 && u <= 0xDFFF) ? REPLACEMENT : u);
    }
}

char *cd_gsm_decode(const unsigned char *data, size_t len, int data_coding)
{
    cd_buf b = {0};
    int dc = data_coding;

    /* The 0xF0 group (message class set): bit 2 picks 8-bit data over GSM-7. */
    if ((dc & 0xF0) == 0xF0)
        dc = (dc & 0x04) ? CD_GSM_CODING_LATIN1 : CD_GSM_CODING_GSM7;
    switch (dc) {
    case CD_GSM_CODING_GSM7:
        decode_gsm7(&b, data, len);
        break;
    case CD_GSM_CODING_ASCII:
        for (size_t i = 0; i < len; i++)
            put_utf8(&b, data[i] < 0x80 ? data[i] : REPLACEMENT);
        break;
    case CD_GSM_CODING_LATIN1:
        for (size_t i = 0; i < len; i++)
            put_utf8(&b, data[i]);
        break;
    case CD_GSM_CODING_UCS2:
        decode_ucs2(&b, data, len);
        break;
    default:
        return NULL;
    }
    return cd_buf_take(&b); /* "" for an empty payload, never NULL */
}
