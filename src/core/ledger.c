#include "core/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/canon.h"
#include "util/crypto.h"

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

/* The canonical JSON of cd_ledger_content(ev), written directly: keys in the order
 * JSON_SORT_KEYS gives them, strings escaped as jansson does. Every consent change hashes
 * an event on the single writer thread, so this skips building and sorting a json_t; a
 * unit test checks that both give the same bytes. */
void cd_ledger_hash(const cd_event *ev, char out[65])
{
    const struct {
        const char *key;
        const char *str; /* NULL: the integer */
        long long num;
    } f[] = {
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
    cd_buf b = {0};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        cd_buf_append(&b, i ? ",\"" : "{\"", 2);
        cd_buf_puts(&b, f[i].key);
        cd_buf_append(&b, "\":", 2);
        if (f[i].str)
            cd_canon_string(&b, f[i].str);
        else
            cd_buf_printf(&b, "%lld", f[i].num);
    }
    cd_buf_append(&b, "}", 1);
    cd_sha256_hex(b.data, b.len, out);
    cd_buf_free(&b);
}

static void copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

int cd_ledger_append(cd_db *db, int64_t account_id, const cd_contact *contact, const char *scope,
                     const char *old_state, const char *new_state, const cd_provenance *p,
                     int64_t created_ms, cd_event *out, cd_err *err)
{
    cd_account a;
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)account_id);
    if (cd_store_account_get(db, "id", idbuf, &a, err) != 0)
        return -1;
    cd_event *ev = calloc(1, sizeof *ev);
    if (ev == NULL)
        return cd_fail(err, CD_EINTERNAL, "", "out of memory");
    ev->account_id = account_id;
    ev->seq = a.ledger_seq + 1;
    ev->contact_id = contact->id;
    copy(ev->phone, sizeof ev->phone, contact->phone);
    copy(ev->scope, sizeof ev->scope, scope);
    copy(ev->old_state, sizeof ev->old_state, old_state);
    copy(ev->new_state, sizeof ev->new_state, new_state);
    copy(ev->surface, sizeof ev->surface, p->surface);
    copy(ev->channel, sizeof ev->channel, p->channel);
    copy(ev->keyword, sizeof ev->keyword, p->keyword);
    if (p->disclosure && *p->disclosure)
        cd_sha256_hex(p->disclosure, strlen(p->disclosure), ev->disclosure_sha256);
    copy(ev->ip, sizeof ev->ip, p->ip);
    copy(ev->user_agent, sizeof ev->user_agent, p->user_agent);
    copy(ev->site, sizeof ev->site, p->site);
    copy(ev->session, sizeof ev->session, p->session);
    copy(ev->ext_ref, sizeof ev->ext_ref, p->ext_ref);
    copy(ev->credential_id, sizeof ev->credential_id, p->credential_id);
    copy(ev->request_id, sizeof ev->request_id, p->request_id);
    ev->created_ms = created_ms;
    copy(ev->prev_hash, sizeof ev->prev_hash, a.ledger_head);
    cd_ledger_hash(ev, ev->hash);
    int rc = cd_store_event_insert(db, ev, err);
    if (rc == 0)
        rc = cd_store_account_set_head(db, account_id, ev->seq, ev->hash, err);
    if (rc == 0 && out)
        *out = *ev;
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
