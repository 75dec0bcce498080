/* util/gsm.h -- SMS text coding (3GPP TS 23.038): choose GSM-7 or UCS-2 for a UTF-8
 * text, split it into the parts of a concatenated message, and turn the bytes of an
 * inbound message back into UTF-8.
 *
 * Pure functions: no I/O and no globals, so any thread may call them.
 *
 * Part sizes: a single message holds 160 GSM-7 septets or 70 UTF-16 code units; each part
 * of a concatenated one loses 6 octets to the UDH and holds 153 septets or 67 units. An
 * extension-table character (escape 0x1B + code) costs two septets and a character outside
 * the BMP (a surrogate pair) two units; neither is ever split across parts. */
#ifndef CD_UTIL_GSM_H
#define CD_UTIL_GSM_H

#include <stddef.h>

#include "util/err.h"

#define CD_GSM_CODING_GSM7   0 /* SMPP data_coding 0: SMSC default alphabet, unpacked */
#define CD_GSM_CODING_ASCII  1
#define CD_GSM_CODING_LATIN1 3
#define CD_GSM_CODING_UCS2   8 /* UTF-16BE; surrogate pairs for characters outside the BMP */

#define CD_GSM_MAX_PARTS 255 /* the UDH's part count is one octet */
#define CD_GSM7_SINGLE   160 /* septets */
#define CD_GSM7_PART     153
#define CD_UCS2_SINGLE   70 /* UTF-16 code units */
#define CD_UCS2_PART     67

typedef struct cd_gsm_part {
    unsigned char *data; /* owned by the cd_gsm_msg */
    size_t len;          /* bytes: septets for GSM-7 (one per byte), 2 per unit for UCS-2 */
} cd_gsm_part;

typedef struct cd_gsm_msg {
    int coding;         /* CD_GSM_CODING_GSM7 or CD_GSM_CODING_UCS2: the SMPP data_coding */
    int nparts;         /* 1..CD_GSM_MAX_PARTS; more than 1 means send with a UDH */
    cd_gsm_part *parts; /* nparts entries, the payload only (the caller adds any UDH) */
} cd_gsm_msg;

/* Encodes utf8 into *out (OUT: released with cd_gsm_msg_free, also after a failure, which
 * leaves it empty). GSM-7 when every character is in the default alphabet or its extension
 * table, else UCS-2. Fails with CD_EINVAL for invalid UTF-8 or an empty text, CD_ELIMIT
 * for more than CD_GSM_MAX_PARTS parts. */
int cd_gsm_encode(const char *utf8, cd_gsm_msg *out, cd_err *err);

/* How many parts utf8 needs: 0 for "", more than CD_GSM_MAX_PARTS when it is too long for
 * one concatenated message, -1 for invalid UTF-8 (overlong forms, surrogates, > U+10FFFF,
 * truncated sequences). */
int cd_gsm_parts(const char *utf8);

/* Frees the parts and empties *m. NULL is a no-op. */
void cd_gsm_msg_free(cd_gsm_msg *m);

/* Turns the payload of an inbound message (no UDH) into UTF-8. data_coding: 0 GSM-7 (one
 * septet per byte), 1 ASCII, 3 Latin-1, 8 UCS-2 (UTF-16BE), and the 0xF0 group's GSM-7 and
 * 8-bit (read as Latin-1). Unmappable input becomes U+FFFD rather than an error; NUL bytes
 * are dropped. Returns a string the caller frees with free(), or NULL for a coding that is
 * not text (binary 2 and 4, reserved values). */
char *cd_gsm_decode(const unsigned char *data, size_t len, int data_coding);

#endif
