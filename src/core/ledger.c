#include "core/ledger.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/events.h"
#include "util/buf.h"
#include "util/canon.h"
#include "util/crypto.h"
#include "util/log.h"

json_t *cd_ledger_content(const cd_event *ev)
{
    return json_pack("{sI sI sI ss ss ss ss ss ss ss ss ss ss ss ss ss ss ss sI ss}", "account_id",
                     (json_int_t)ev->account_id, "seq", (json_int_t)ev->seq, "contact_id",
                     (json_int_t)ev->contact_id, "phone", ev->phone, "scope", ev->scope,
                     "old_state", ev->old_state, "new_state", ev->new_state, "surface", ev->surface,
                     "channel", ev->channel, "keyword", ev->keyword, "disclosure_sha256",
                     ev->disclosure_sha256, "ip", ev->ip, "user_agent", ev->user_agent, "site",
                     ev->site, "session", ev->session, "ext_ref", ev->ext_ref, "credential_id",
                     ev->credential_id, "request_id", ev->request_id, "created_ms",
                     (json_int_t)ev->created_ms, "prev_hash", ev->prev_hash);
}

/* The canonical JSON of cd_ledger_content(ev) (cd_ledger_canon), written directly: keys in the
 * order JSON_SORT_KEYS gives them, strings escaped as jansson does. Every consent change hashes an
 * event on the single writer thread, so this skips building and sorting a json_t; a unit test
 * checks that both give the same bytes. */
static size_t canon_plain(const cd_event *ev, bool checked, char *out, size_t cap);

/* `checked`: every string of ev is known to need no escape (cd_ledger_append's copies say
 * so), so canon_plain only measures them. */
static void hash_event(const cd_event *ev, bool checked, char out[65])
{
    char plain[4096];
    size_t n = canon_plain(ev, checked, plain, sizeof plain);
    if (n > 0) { /* issue 16: the common case, without a heap buffer */
        cd_sha256_hex(plain, n, out);
        return;
    }
    cd_buf b = {0};
    cd_ledger_canon(ev, &b);
    cd_sha256_hex(b.data, b.len, out);
    cd_buf_free(&b);
}

void cd_ledger_hash(const cd_event *ev, char out[65])
{
    hash_event(ev, false, out);
}

typedef struct field {
    const char *key;
    const char *str; /* NULL: the integer */
    long long num;
} field;

enum { NFIELDS = 20 };

/* The hashed fields in the order JSON_SORT_KEYS gives them. */
static void event_fields(const cd_event *ev, field f[NFIELDS])
{
    const field all[NFIELDS] = {
        {"account_id", NULL, ev->account_id},
        {"channel", ev->channel, 0},
        {"contact_id", NULL, ev->contact_id},
        {"created_ms", NULL, ev->created_ms},
        {"credential_id", ev->credential_id, 0},
        {"disclosure_sha256", ev->disclosure_sha256, 0},
        {"ext_ref", ev->ext_ref, 0},
        {"ip", ev->ip, 0},
        {"keyword", ev->keyword, 0},
        {"new_state", ev->new_state, 0},
        {"old_state", ev->old_state, 0},
        {"phone", ev->phone, 0},
        {"prev_hash", ev->prev_hash, 0},
        {"request_id", ev->request_id, 0},
        {"scope", ev->scope, 0},
        {"seq", NULL, ev->seq},
        {"session", ev->session, 0},
        {"site", ev->site, 0},
        {"surface", ev->surface, 0},
        {"user_agent", ev->user_agent, 0},
    };
    memcpy(f, all, sizeof all);
}

void cd_ledger_canon(const cd_event *ev, cd_buf *b)
{
    field f[NFIELDS];
    event_fields(ev, f);
    for (size_t i = 0; i < NFIELDS; i++) {
        cd_buf_append(b, i ? ",\"" : "{\"", 2);
        cd_buf_puts(b, f[i].key);
        cd_buf_append(b, "\":", 2);
        if (f[i].str)
            cd_canon_string(b, f[i].str);
        else
            cd_buf_printf(b, "%lld", f[i].num);
    }
    cd_buf_append(b, "}", 1);
}

/* issue 16: cd_ledger_canon for an event whose strings need no escape (printable ASCII
 * without a quote or a backslash, which cd_canon_string copies as they are): the same bytes,
 * written into `out` without a cd_buf. Returns their length, or 0 when a string needs escaping or
 * the result does not fit (the caller then uses cd_ledger_canon). */
static size_t canon_plain(const cd_event *ev, bool checked, char *out, size_t cap)
{
    field f[NFIELDS];
    size_t len = 0;
    event_fields(ev, f);
    for (size_t i = 0; i < NFIELDS; i++) {
        char num[24];
        const char *v = f[i].str;
        size_t kn = strlen(f[i].key), vn;
        if (v && checked) {
            vn = strlen(v);
        } else if (v) {
            const unsigned char *p = (const unsigned char *)v;
            while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
                p++;
            if (*p != '\0')
                return 0;
            vn = (size_t)(p - (const unsigned char *)v);
        } else {
            vn = cd_fmt_int(num, f[i].num);
            v = num;
        }
        if (len + kn + vn + 8 > cap) /* ,"key": plus quotes and the closing brace */
            return 0;
        out[len++] = i ? ',' : '{';
        out[len++] = '"';
        memcpy(out + len, f[i].key, kn);
        len += kn;
        out[len++] = '"';
        out[len++] = ':';
        if (f[i].str)
            out[len++] = '"';
        memcpy(out + len, v, vn);
        len += vn;
        if (f[i].str)
            out[len++] = '"';
    }
    out[len++] = '}';
    return len;
}

/* issue 8 item 12: provenance comes from clients (a raw User-Agent header may hold any
 * bytes) and must hash and export as valid UTF-8, and a cut must not split a character. */
static bool copy(char *dst, size_t n, const char *src)
{
    /* issue 16: ASCII that fits is copied as it is (what cd_canon_text_copy would do).
     * issue 12 (perf): returns whether the copy is plain (canon_plain's test: printable
     * ASCII without a quote or a backslash), so that hashing need not look again. */
    const unsigned char *p = (const unsigned char *)(src ? src : "");
    size_t i = 0;
    while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
        i++;
    bool plain = i < n && p[i] == '\0';
    while (i < n && p[i] != '\0' && p[i] < 0x80)
        i++;
    if (i < n && p[i] == '\0') {
        memcpy(dst, p, i + 1);
        return plain;
    }
    cd_canon_text_copy(dst, n, src);
    return false;
}

void cd_ledger_sign(const unsigned char key[CD_LEDGER_KEY_LEN], int64_t account_id, int64_t seq,
                    const char *head, char out[65])
{
    char msg[128];
    int n = snprintf(msg, sizeof msg, "%lld|%lld|%s", (long long)account_id, (long long)seq, head);
    cd_hmac_sha256_hex(key, CD_LEDGER_KEY_LEN, msg, (size_t)n, out);
}

static int sign_head(cd_db *db, int64_t account_id, int64_t seq, const char *head, cd_err *err)
{
    const unsigned char *key = cd_store_ledger_key(db);
    char sig[65];
    if (key == NULL)
        return 0; /* unit tests without a key; the server always has one */
    cd_ledger_sign(key, account_id, seq, head, sig);
    return cd_store_account_sign_head(db, account_id, sig, err);
}

/* ---- issue 11 and 16: heads written once per batch ----
 *
 * Writing and signing the account's head for every event cost a row update and an HMAC
 * per event. On the writer, the heads of the accounts a batch touches are kept here and
 * written (and signed) once, by the writer's batch hook, before its COMMIT: the committed
 * head is always the newest committed event. A job whose savepoint is rolled back takes
 * its events back, so its job_rollback puts the heads back to where the job found them;
 * when the batch is not committed at all, reset forgets them and the next batch reads the
 * heads again from the database. Off the writer's batch (cd_ledger_batch_begin on another
 * connection), the same table lives from _begin to _end. */

#define MAX_HEADS 16 /* accounts per batch kept here; more are written event by event */

typedef struct head {
    int64_t account_id;
    int64_t seq, stored_seq, job_seq; /* newest, in the database, at the job's start */
    char hash[65], job_hash[65];
} head;

/* Jobs run on the writer thread one at a time and no other thread ever sees this. */
static _Thread_local struct heads {
    cd_db *db;    /* NULL: none open */
    bool writer;  /* joined the writer's batch (else cd_ledger_batch_begin's) */
    int n, n_job; /* heads kept; heads kept when the current job began */
    head h[MAX_HEADS];
} heads;

static void heads_job_begin(void)
{
    heads.n_job = heads.n;
    for (int i = 0; i < heads.n; i++) {
        heads.h[i].job_seq = heads.h[i].seq;
        memcpy(heads.h[i].job_hash, heads.h[i].hash, sizeof heads.h[i].job_hash);
    }
}

static void heads_job_rollback(void)
{
    heads.n = heads.n_job; /* heads first read by this job are as the database has them */
    for (int i = 0; i < heads.n; i++) {
        heads.h[i].seq = heads.h[i].job_seq;
        memcpy(heads.h[i].hash, heads.h[i].job_hash, sizeof heads.h[i].hash);
    }
}

static int heads_finish(cd_db *db, cd_err *err)
{
    for (int i = 0; i < heads.n; i++) {
        head *h = &heads.h[i];
        if (h->seq == h->stored_seq)
            continue; /* no event: the head is as it was */
        if (cd_store_account_set_head(db, h->account_id, h->seq, h->hash, err) != 0 ||
            sign_head(db, h->account_id, h->seq, h->hash, err) != 0)
            return -1;
        h->stored_seq = h->seq;
    }
    return 0;
}

static void heads_reset(void)
{
    heads.db = NULL;
    heads.writer = false;
    heads.n = heads.n_job = 0;
}

static const cd_batch_hook writer_hook = {
    .job_begin = heads_job_begin,
    .job_rollback = heads_job_rollback,
    .finish = heads_finish,
    .reset = heads_reset,
};

/* Whether this append's head goes through the table: joins the writer's batch if need be. */
static bool heads_open(cd_db *db)
{
    if (heads.db == db)
        return true;
    if (heads.db != NULL || !cd_store_batch_join(db, &writer_hook))
        return false;
    heads_reset();
    heads.db = db;
    heads.writer = true;
    return true;
}

int cd_ledger_batch_begin(cd_db *db, int64_t account_id, cd_err *err)
{
    (void)account_id;
    (void)err;
    if (heads_open(db))
        return 0;             /* the writer's batch writes the heads */
    assert(heads.db == NULL); /* batches do not nest */
    heads_reset();
    heads.db = db;
    return 0;
}

int cd_ledger_batch_end(cd_db *db, cd_err *err)
{
    assert(heads.db == db);
    if (heads.writer)
        return 0;
    int rc = heads_finish(db, err);
    heads_reset();
    return rc;
}

void cd_ledger_batch_abort(void)
{
    if (!heads.writer) /* in the writer's batch the failed job's rollback undoes it */
        heads_reset();
}

/* The head to chain to: the one kept in the table, else the account's (then kept, when
 * the table has room: *kept says where). */
static int head_of(cd_db *db, int64_t account_id, cd_account *a, head **kept, cd_err *err)
{
    char idbuf[32];
    *kept = NULL;
    bool open = heads_open(db);
    for (int i = 0; open && i < heads.n; i++) {
        if (heads.h[i].account_id == account_id) {
            *kept = &heads.h[i];
            a->ledger_seq = heads.h[i].seq;
            memcpy(a->ledger_head, heads.h[i].hash, sizeof a->ledger_head);
            return 0;
        }
    }
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)account_id);
    if (cd_store_account_get(db, "id", idbuf, a, err) != 0)
        return -1;
    if (open && heads.n < MAX_HEADS) {
        head *h = &heads.h[heads.n++];
        *h = (head){.account_id = account_id, .seq = a->ledger_seq, .stored_seq = a->ledger_seq};
        memcpy(h->hash, a->ledger_head, sizeof h->hash);
        *kept = h;
    }
    return 0;
}

int cd_ledger_append(cd_db *db, int64_t account_id, const cd_contact *contact, const char *scope,
                     const char *old_state, const char *new_state, const cd_provenance *p,
                     int64_t created_ms, cd_event *out, cd_err *err)
{
    cd_account a;
    head *kept;
    if (head_of(db, account_id, &a, &kept, err) != 0)
        return -1;
    /* issue 12 (perf): built where the caller wants it, with no heap copy in between; the
     * copies below write every text field whole, so only the rest needs zeroes */
    cd_event *ev = out ? out : malloc(sizeof *ev);
    if (ev == NULL)
        return cd_fail(err, CD_EINTERNAL, "", "out of memory");
    ev->id = 0;
    ev->account_id = account_id;
    ev->seq = a.ledger_seq + 1;
    ev->contact_id = contact->id;
    /* & (not &&): every field is copied; plain when all of them are */
    bool plain = copy(ev->phone, sizeof ev->phone, contact->phone);
    plain &= copy(ev->scope, sizeof ev->scope, scope);
    plain &= copy(ev->old_state, sizeof ev->old_state, old_state);
    plain &= copy(ev->new_state, sizeof ev->new_state, new_state);
    plain &= copy(ev->surface, sizeof ev->surface, p->surface);
    plain &= copy(ev->channel, sizeof ev->channel, p->channel);
    plain &= copy(ev->keyword, sizeof ev->keyword, p->keyword);
    if (p->disclosure && *p->disclosure) /* lowercase hex: plain */
        cd_sha256_hex(p->disclosure, strlen(p->disclosure), ev->disclosure_sha256);
    else
        ev->disclosure_sha256[0] = '\0';
    plain &= copy(ev->ip, sizeof ev->ip, p->ip);
    plain &= copy(ev->user_agent, sizeof ev->user_agent, p->user_agent);
    plain &= copy(ev->site, sizeof ev->site, p->site);
    plain &= copy(ev->session, sizeof ev->session, p->session);
    plain &= copy(ev->ext_ref, sizeof ev->ext_ref, p->ext_ref);
    plain &= copy(ev->credential_id, sizeof ev->credential_id, p->credential_id);
    plain &= copy(ev->request_id, sizeof ev->request_id, p->request_id);
    ev->created_ms = created_ms;
    plain &= copy(ev->prev_hash, sizeof ev->prev_hash, a.ledger_head);
    hash_event(ev, plain, ev->hash);
    int rc = cd_store_event_insert(db, ev, err);
    if (rc == 0 && kept) { /* issue 11, 16: written once, at the batch's end */
        kept->seq = ev->seq;
        memcpy(kept->hash, ev->hash, sizeof kept->hash);
    } else if (rc == 0) {
        rc = cd_store_account_set_head(db, account_id, ev->seq, ev->hash, err);
        if (rc == 0)
            rc = sign_head(db, account_id, ev->seq, ev->hash, err);
    }
    if (rc == 0) { /* issue 15: one consent.changed per ledger event, in its transaction */
        int on = cd_events_listening(db, account_id, err);
        rc = on < 0 ? -1 : on > 0 ? cd_events_consent_changed(db, ev, err) : 0;
    }
    if (ev != out)
        free(ev);
    return rc;
}

typedef struct verify_state {
    cd_ledger_report *r;
    int64_t expect;
    char prev[65];
} verify_state;

static int verify_one(const cd_event *ev, void *arg)
{
    verify_state *v = arg;
    char h[65];
    const char *problem = NULL;
    if (ev->seq != v->expect)
        problem = ev->seq > v->expect ? "missing" : "reordered";
    else if (cd_ledger_hash(ev, h), strcmp(h, ev->hash) != 0)
        problem = "hash_mismatch";
    else if (strcmp(ev->prev_hash, v->prev) != 0)
        problem = "reordered";
    if (problem) {
        v->r->ok = false;
        v->r->seq = v->expect;
        v->r->problem = problem;
        return 1; /* stop at the first problem */
    }
    v->r->events++;
    v->expect++;
    memcpy(v->prev, ev->hash, sizeof v->prev);
    return 0;
}

static int verify_account(cd_db *db, const cd_account *a, cd_ledger_report *r, cd_err *err)
{
    verify_state v = {.r = r, .expect = 1};
    memcpy(v.prev, CD_LEDGER_GENESIS, sizeof v.prev);
    r->account_id = a->id;
    snprintf(r->account, sizeof r->account, "%s", a->name);
    if (cd_store_event_scan(db, a->id, verify_one, &v, err) != 0)
        return -1;
    if (r->ok && (a->ledger_seq != v.expect - 1 || strcmp(a->ledger_head, v.prev) != 0)) {
        /* The chain is intact but shorter than the head says: its newest events are gone. */
        r->ok = false;
        r->seq = v.expect;
        r->problem = a->ledger_seq > v.expect - 1 ? "missing" : "head_mismatch";
    }
    const unsigned char *key = cd_store_ledger_key(db);
    r->signature_checked = key != NULL;
    if (r->ok && key) {
        /* The chain matches the head; only the key proves the head is the one we wrote. */
        char sig[65];
        cd_ledger_sign(key, a->id, a->ledger_seq, a->ledger_head, sig);
        if (a->ledger_sig[0] == '\0' || !cd_ct_equal(sig, a->ledger_sig, 64)) {
            r->ok = false;
            r->seq = a->ledger_seq;
            r->problem = a->ledger_sig[0] ? "head_signature" : "head_unsigned";
        }
    }
    return 0;
}

typedef struct all_state {
    cd_db *db;
    cd_ledger_report *r;
    cd_err *err;
    int rc;
} all_state;

static int verify_each(const cd_account *a, void *arg)
{
    all_state *s = arg;
    if (verify_account(s->db, a, s->r, s->err) != 0) {
        s->rc = -1;
        return 1;
    }
    return s->r->ok ? 0 : 1;
}

int cd_ledger_verify(cd_db *db, int64_t account_id, cd_ledger_report *r, cd_err *err)
{
    memset(r, 0, sizeof *r);
    r->ok = true;
    if (account_id != 0) {
        cd_account a;
        char idbuf[32];
        snprintf(idbuf, sizeof idbuf, "%lld", (long long)account_id);
        if (cd_store_account_get(db, "id", idbuf, &a, err) != 0)
            return -1;
        return verify_account(db, &a, r, err);
    }
    all_state s = {.db = db, .r = r, .err = err};
    if (cd_store_account_each(db, verify_each, &s, err) != 0)
        return -1;
    if (r->ok) {
        r->account_id = 0;
        r->account[0] = '\0';
    }
    return s.rc;
}

/* ---- the key file ---- */

static int parse_key(const char *text, size_t n, unsigned char key[CD_LEDGER_KEY_LEN])
{
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    if (n != 2 * CD_LEDGER_KEY_LEN)
        return -1;
    for (size_t i = 0; i < CD_LEDGER_KEY_LEN; i++) {
        unsigned v = 0;
        for (size_t k = 0; k < 2; k++) {
            char c = text[2 * i + k];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                return -1;
            v = v << 4 | (unsigned)d;
        }
        key[i] = (unsigned char)v;
    }
    return 0;
}

/* The key is written to a private temporary file and then linked into place: link() fails
 * when the name exists, so when two processes start at once one key wins and neither ever
 * reads a file that is still being written. Returns 0 when created, 1 when one existed. */
static int create_key(const char *path, cd_err *err)
{
    char hex[2 * CD_LEDGER_KEY_LEN + 2], tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return cd_fail(err, CD_EINTERNAL, "ledger_key", "cannot create %s: %s", tmp,
                       strerror(errno));
    cd_random_hex(hex, CD_LEDGER_KEY_LEN);
    size_t n = strlen(hex);
    hex[n++] = '\n';
    /* fchmod: the umask may have taken bits off 0600, but never adds any. */
    bool ok = write(fd, hex, n) == (ssize_t)n && fchmod(fd, 0600) == 0 && fsync(fd) == 0;
    int e = errno;
    close(fd);
    int rc = ok && link(tmp, path) == 0 ? 0 : -1;
    if (ok && rc != 0) {
        e = errno;
        rc = e == EEXIST ? 1 : -1;
    }
    unlink(tmp);
    if (rc < 0)
        return cd_fail(err, CD_EINTERNAL, "ledger_key", "cannot write %s: %s", path, strerror(e));
    return rc;
}

int cd_ledger_key_load(const char *path, bool create, unsigned char key[CD_LEDGER_KEY_LEN],
                       bool *created, cd_err *err)
{
    if (created)
        *created = false;
    if (create && access(path, F_OK) != 0 && errno == ENOENT) {
        int rc = create_key(path, err);
        if (rc < 0)
            return -1;
        if (rc == 0 && created)
            *created = true;
    }
    char text[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cd_fail(err, errno == ENOENT ? CD_ENOTFOUND : CD_EINTERNAL, "ledger_key",
                       "cannot read the ledger key %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
        cd_logf("warn", "ledger_key_mode", "\"mode\":\"%03o\",\"want\":\"600\"",
                (unsigned)(st.st_mode & 0777));
    ssize_t n = read(fd, text, sizeof text);
    close(fd);
    if (n < 0 || parse_key(text, (size_t)n, key) != 0)
        return cd_fail(err, CD_EINVAL, "ledger_key", "%s is not a ledger key (64 hex digits)",
                       path);
    return 0;
}

typedef struct sign_all {
    cd_db *db;
    cd_err *err;
    int n, rc;
} sign_all;

static int sign_each(const cd_account *a, void *arg)
{
    sign_all *s = arg;
    if (sign_head(s->db, a->id, a->ledger_seq, a->ledger_head, s->err) != 0) {
        s->rc = -1;
        return 1;
    }
    s->n++;
    return 0;
}

int cd_ledger_sign_account(cd_db *db, const cd_account *a, cd_err *err)
{
    return sign_head(db, a->id, a->ledger_seq, a->ledger_head, err);
}

int cd_ledger_sign_all(cd_db *db, int *accounts, cd_err *err)
{
    sign_all s = {.db = db, .err = err};
    if (cd_store_ledger_key(db) == NULL)
        return cd_fail(err, CD_EINTERNAL, "ledger_key", "no ledger key");
    if (cd_store_account_each(db, sign_each, &s, err) != 0)
        return -1;
    if (accounts)
        *accounts = s.n;
    return s.rc;
}

/* ---- export: the hashed content of each event, page by page ---- */

void cd_ledger_csv_header(cd_buf *out)
{
    field f[NFIELDS];
    cd_event none = {0};
    event_fields(&none, f);
    for (size_t i = 0; i < NFIELDS; i++)
        cd_buf_printf(out, "%s,", f[i].key);
    cd_buf_puts(out, "hash\r\n");
}

/* issue 8 item 13: a spreadsheet runs a cell that starts with = + - @ (or a tab or CR) as
 * a formula, so such a cell gets a leading ' (OWASP "CSV injection"). A cell that starts
 * with ' gets one too, so that a reader can always drop exactly one leading ' to get the
 * hashed value back. An E.164 number (+ and digits only) is not a formula that can do
 * harm and is the one value every row has, so it stays as it is. */
bool cd_ledger_csv_neutralise(const char *s)
{
    if (s[0] == '+' && s[1] != '\0' && strspn(s + 1, "0123456789") == strlen(s + 1))
        return false;
    return s[0] != '\0' && strchr("=+-@\t\r'", s[0]) != NULL;
}

static void csv_cell(cd_buf *b, const char *s)
{
    cd_buf_puts(b, cd_ledger_csv_neutralise(s) ? "\"'" : "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            cd_buf_append(b, "\"", 1); /* a quote inside a quoted cell is doubled */
        cd_buf_append(b, p, 1);
    }
    cd_buf_puts(b, "\"");
}

static void csv_row(cd_buf *b, const cd_event *ev)
{
    field f[NFIELDS];
    event_fields(ev, f);
    for (size_t i = 0; i < NFIELDS; i++) {
        if (f[i].str)
            csv_cell(b, f[i].str);
        else
            cd_buf_printf(b, "%lld", f[i].num);
        cd_buf_puts(b, ",");
    }
    cd_buf_printf(b, "%s\r\n", ev->hash);
}

/* JSON: the canonical content with "hash" added as its last member, one event a line. */
static void json_event(cd_buf *b, const cd_event *ev, bool first)
{
    cd_buf_puts(b, first ? "\n" : ",\n");
    cd_ledger_canon(ev, b);
    b->data[--b->len] = '\0'; /* the closing brace */
    cd_buf_printf(b, ",\"hash\":\"%s\"}", ev->hash);
}

typedef struct page_state {
    cd_ledger_export *x;
    cd_buf *out;
    int rows;
} page_state;

static int export_one(const cd_event *ev, void *arg)
{
    page_state *p = arg;
    cd_ledger_export *x = p->x;
    if (ev->seq > x->upto_seq) {
        x->done = true; /* written after the export began: not part of this proof */
        return 1;
    }
    if (x->csv)
        csv_row(p->out, ev);
    else
        json_event(p->out, ev, x->written == 0);
    x->written++;
    x->after_seq = ev->seq;
    p->rows++;
    return 0;
}

int cd_ledger_export_page(cd_ledger_export *x, cd_buf *out, cd_err *err)
{
    if (x->done)
        return 0;
    cd_db *db = cd_store_reader(x->store);
    if (db == NULL)
        return cd_fail(err, CD_ESTORE, "", "cannot open a reader");
    page_state p = {.x = x, .out = out};
    cd_event_filter f = {
        .contact_id = x->contact_id, .after_seq = x->after_seq, .limit = CD_LEDGER_EXPORT_PAGE};
    int rc = cd_store_event_list(db, x->account_id, &f, export_one, &p, err);
    cd_store_release(x->store, db);
    if (rc != 0)
        return -1;
    if (p.rows < CD_LEDGER_EXPORT_PAGE || x->after_seq >= x->upto_seq)
        x->done = true;
    return x->done ? 0 : 1;
}

static int job_sign_all(cd_db *db, void *arg, cd_err *err)
{
    return cd_ledger_sign_all(db, arg, err);
}

int cd_ledger_key_use(cd_store *s, const char *path, bool create, int *signed_heads, cd_err *err)
{
    unsigned char key[CD_LEDGER_KEY_LEN];
    bool created;
    int n = -1;
    if (cd_ledger_key_load(path, create, key, &created, err) != 0)
        return -1;
    cd_store_set_ledger_key(s, key);
    if (created && cd_store_run(s, job_sign_all, &n, err) != 0)
        return -1;
    if (signed_heads)
        *signed_heads = n;
    return 0;
}
