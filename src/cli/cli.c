/* cli/cli.c -- serve, account, key, token, ledger verify, migrate.
 * Output for machines is one JSON document on stdout; errors go to stderr. */
#include "cli/cli.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/account.h"
#include "core/contact.h"
#include "core/ledger.h"
#include "core/pool.h"
#include "core/profile.h"
#include "core/usecase.h"
#include "server.h"
#include "util/log.h"
#include "util/timeutil.h"

static const char *opt(int argc, char **argv, const char *flag)
{
    size_t n = strlen(flag);
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], flag, n) != 0)
            continue;
        if (argv[i][n] == '=')
            return argv[i] + n + 1;
        if (argv[i][n] == '\0' && i + 1 < argc)
            return argv[i + 1];
    }
    return NULL;
}

/* The first argument that is neither a flag nor a flag's value. */
static const char *positional(int argc, char **argv, int skip)
{
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0) {
            if (strchr(argv[i], '=') == NULL)
                i++;
            continue;
        }
        if (skip-- == 0)
            return argv[i];
    }
    return NULL;
}

/* issue 9 part 10: a flag the command does not know is a usage error (exit 2), not
 * silently ignored: `--acount acme` must not act on no account or on the wrong one.
 * `known` is a NULL-terminated list; the global flags were already taken out by main. */
static int unknown_flag(int argc, char **argv, const char *const *known)
{
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            continue;
        size_t n = strcspn(argv[i], "=");
        const char *const *k = known;
        while (*k && (strlen(*k) != n || strncmp(*k, argv[i], n) != 0))
            k++;
        if (*k == NULL) {
            fprintf(stderr, "consentd: unknown flag %.*s\n", (int)n, argv[i]);
            return 1;
        }
        if (argv[i][n] == '\0')
            i++; /* its value */
    }
    return 0;
}

static int fail(const char *what, const cd_err *err)
{
    if (err->field[0])
        fprintf(stderr, "consentd: %s: %s (%s)\n", what, err->msg, err->field);
    else
        fprintf(stderr, "consentd: %s: %s\n", what, err->msg);
    return 1;
}

static cd_store *open_store(const cd_config *cfg)
{
    cd_err err = {0};
    cd_store *s = cd_store_open(cfg->db, &err);
    if (s == NULL)
        fail("cannot open the database", &err);
    return s;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
    json_decref(j);
}

static json_t *time_json(int64_t ms)
{
    char t[CD_TIME_LEN];
    if (ms == 0)
        return json_null();
    cd_time_format(ms, t);
    return json_string(t);
}

/* Runs `fn` on a reader. */
typedef int (*read_fn)(cd_db *db, void *arg, cd_err *err);
static int with_reader(cd_store *s, read_fn fn, void *arg, cd_err *err)
{
    cd_db *db = cd_store_reader(s);
    if (db == NULL)
        return cd_fail(err, CD_ESTORE, "", "cannot open a reader");
    int rc = fn(db, arg, err);
    cd_store_release(s, db);
    return rc;
}

typedef struct find_account {
    const char *name;
    cd_account a;
} find_account;

static int read_account(cd_db *db, void *arg, cd_err *err)
{
    find_account *f = arg;
    return cd_store_account_get(db, "name", f->name, &f->a, err);
}

static int load_account(cd_store *s, const char *name, cd_account *out)
{
    cd_err err = {0};
    find_account f = {.name = name};
    if (name == NULL) {
        fprintf(stderr, "consentd: --account NAME is required\n");
        return -1;
    }
    if (with_reader(s, read_account, &f, &err) != 0) {
        fprintf(stderr, "consentd: no account named %s\n", name);
        return -1;
    }
    *out = f.a;
    return 0;
}

/* The store, with the account named by --account in *a; NULL (the store closed again, the
 * reason printed) when either cannot be had. */
static cd_store *open_account(const cd_config *cfg, int argc, char **argv, cd_account *a)
{
    cd_store *s = open_store(cfg);
    if (s != NULL && load_account(s, opt(argc, argv, "--account"), a) != 0) {
        cd_store_close(s);
        return NULL;
    }
    return s;
}

/* ---- serve ---- */

int cd_cli_serve(cd_config *cfg, int argc, char **argv)
{
    static const char *const none[] = {NULL};
    if (unknown_flag(argc, argv, none)) {
        fprintf(stderr, "usage: consentd serve [FLAGS]: run consentd without arguments for "
                        "the list\n");
        return 2;
    }
    cd_server srv;
    cd_err err = {0};
    sigset_t set;
    int sig = 0;
    /* Block the stop signals before any thread starts, so that they all inherit the mask
     * and only sigwait() below ever sees SIGINT or SIGTERM. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    cd_log_start_async();
    if (cd_server_start(&srv, cfg, &err) != 0) {
        cd_log_stop_async();
        return fail("cannot start", &err);
    }
    cd_logf("info", "listening", "\"host\":\"%s\",\"port\":%d,\"db\":\"%s\",\"threads\":%d",
            cfg->host, cd_http_port(srv.http),
            strncmp(cfg->db, "sqlite:", 7) == 0 ? cfg->db : "postgres", cfg->threads);
    sigwait(&set, &sig);
    cd_logf("info", "stopping", "\"signal\":%d", sig);
    cd_server_stop(&srv);
    cd_log("info", "stopped", NULL);
    cd_log_stop_async();
    return 0;
}

/* ---- account ---- */

typedef struct account_job {
    cd_account_in in;
    cd_account out;
    char key[CD_KEY_LEN];
} account_job;

static int job_account_create(cd_db *db, void *arg, cd_err *err)
{
    account_job *j = arg;
    if (cd_account_create(db, &j->in, &j->out, j->key, err) != 0)
        return -1;
    return cd_ledger_sign_account(db, &j->out, err); /* issue 8 item 12 */
}

/* issue 8 item 12: the key that signs ledger heads, created (0600) if this is the first
 * use of the data directory, as `serve` does. */
static int use_ledger_key(cd_store *s, const cd_config *cfg, cd_err *err)
{
    char path[1100];
    cd_config_ledger_key_path(cfg, path, sizeof path);
    return cd_ledger_key_use(s, path, true, NULL, err);
}

static json_t *account_json(const cd_account *a)
{
    return json_pack("{sI ss ss ss ss ss so}", "id", (json_int_t)a->id, "name", a->name, "login",
                     a->login, "brand", a->brand, "region", a->region, "timezone", a->timezone,
                     "created_at", time_json(a->created_ms));
}

static int account_each_print(const cd_account *a, void *arg)
{
    json_array_append_new(arg, account_json(a));
    return 0;
}

static int read_accounts(cd_db *db, void *arg, cd_err *err)
{
    return cd_store_account_each(db, account_each_print, arg, err);
}

int cd_cli_account(cd_config *cfg, int argc, char **argv)
{
    static const char *const account_flags[] = {"--login", "--brand", "--region", "--timezone",
                                                NULL};
    const char *verb = positional(argc, argv, 0);
    if (verb == NULL || (strcmp(verb, "create") != 0 && strcmp(verb, "list") != 0) ||
        unknown_flag(argc, argv, account_flags)) {
        fprintf(stderr, "usage: consentd account create NAME [--login EMAIL] [--brand ABBR] "
                        "[--region US] [--timezone TZ]\n       consentd account list\n");
        return 2;
    }
    cd_store *s = open_store(cfg);
    if (s == NULL)
        return 1;
    cd_err err = {0};
    int rc = 0;
    if (strcmp(verb, "list") == 0) {
        json_t *list = json_array();
        if (with_reader(s, read_accounts, list, &err) != 0) {
            json_decref(list);
            rc = fail("cannot list accounts", &err);
        } else {
            print_json(list);
        }
    } else {
        account_job j = {.in = {.name = positional(argc, argv, 1),
                                .login = opt(argc, argv, "--login"),
                                .brand = opt(argc, argv, "--brand"),
                                .region = opt(argc, argv, "--region"),
                                .timezone = opt(argc, argv, "--timezone")}};
        if (use_ledger_key(s, cfg, &err) != 0 ||
            cd_store_run(s, job_account_create, &j, &err) != 0) {
            rc = fail("cannot create the account", &err);
        } else {
            json_t *o = account_json(&j.out);
            json_object_set_new(o, "api_key", json_string(j.key));
            print_json(o);
        }
    }
    cd_store_close(s);
    return rc;
}

/* ---- keys ---- */

typedef struct key_job {
    int64_t account_id;
    const char *name, *id;
    cd_apikey k;
    char key[CD_KEY_LEN];
} key_job;

static int job_key_create(cd_db *db, void *arg, cd_err *err)
{
    key_job *j = arg;
    return cd_key_create(db, j->account_id, j->name, &j->k, j->key, err);
}

static int job_key_revoke(cd_db *db, void *arg, cd_err *err)
{
    key_job *j = arg;
    return cd_store_key_revoke(db, j->account_id, j->id, cd_now_ms(), err);
}

static int key_each_print(const cd_apikey *k, void *arg)
{
    json_array_append_new(arg, json_pack("{ss ss so so}", "id", k->id, "name", k->name,
                                         "created_at", time_json(k->created_ms), "revoked_at",
                                         time_json(k->revoked_ms)));
    return 0;
}

typedef struct key_list {
    int64_t account_id;
    json_t *out;
} key_list;

static int read_keys(cd_db *db, void *arg, cd_err *err)
{
    key_list *l = arg;
    return cd_store_key_each(db, l->account_id, key_each_print, l->out, err);
}

int cd_cli_key(cd_config *cfg, int argc, char **argv)
{
    const char *verb = positional(argc, argv, 0);
    static const char *const key_flags[] = {"--account", "--name", NULL};
    if (verb == NULL ||
        (strcmp(verb, "create") && strcmp(verb, "revoke") && strcmp(verb, "list")) ||
        unknown_flag(argc, argv, key_flags)) {
        fprintf(stderr, "usage: consentd key create|list --account NAME [--name LABEL]\n"
                        "       consentd key revoke --account NAME KEY_ID\n");
        return 2;
    }
    cd_account a;
    cd_store *s = open_account(cfg, argc, argv, &a);
    cd_err err = {0};
    int rc = 0;
    if (s == NULL)
        return 1;
    key_job j = {.account_id = a.id, .name = opt(argc, argv, "--name")};
    if (strcmp(verb, "create") == 0) {
        if (cd_store_run(s, job_key_create, &j, &err) != 0)
            rc = fail("cannot create a key", &err);
        else
            print_json(json_pack("{ss ss}", "id", j.k.id, "key", j.key));
    } else if (strcmp(verb, "revoke") == 0) {
        j.id = positional(argc, argv, 1);
        if (j.id == NULL) {
            fprintf(stderr, "consentd: key revoke needs a KEY_ID\n");
            rc = 2;
        } else if (cd_store_run(s, job_key_revoke, &j, &err) != 0) {
            rc = fail("cannot revoke", &err);
        } else {
            print_json(json_pack("{ss sb}", "id", j.id, "revoked", 1));
        }
    } else {
        key_list l = {.account_id = a.id, .out = json_array()};
        if (with_reader(s, read_keys, &l, &err) != 0) {
            json_decref(l.out);
            rc = fail("cannot list keys", &err);
        } else {
            print_json(l.out);
        }
    }
    cd_store_close(s);
    return rc;
}

/* ---- token ---- */

static int token_revoke(cd_config *cfg, int argc, char **argv);

int cd_cli_token(cd_config *cfg, int argc, char **argv)
{
    static const char *const token_flags[] = {"--account", "--ttl", NULL};
    const char *verb = positional(argc, argv, 0);
    if (verb && strcmp(verb, "revoke") == 0) /* issue 14 */
        return token_revoke(cfg, argc, argv);
    if (unknown_flag(argc, argv, token_flags) || verb != NULL) {
        fprintf(stderr, "usage: consentd token --account NAME [--ttl SECONDS]\n"
                        "       consentd token revoke --account NAME TOKEN\n");
        return 2;
    }
    cd_account a;
    cd_store *s = open_account(cfg, argc, argv, &a);
    cd_err err = {0};
    if (s == NULL)
        return 1;
    cd_store_close(s);
    const char *ttl = opt(argc, argv, "--ttl");
    long secs = ttl ? atol(ttl) : 3600;
    if (secs <= 0 || secs > 10L * 365 * 86400) {
        fprintf(stderr, "consentd: --ttl must be 1..315360000 seconds\n");
        return 2;
    }
    char *tok = cd_jwt_mint(&a, secs, &err);
    if (tok == NULL)
        return fail("cannot mint a token", &err);
    puts(tok);
    free(tok);
    return 0;
}

/* ---- ledger verify ---- */

typedef struct verify_job {
    int64_t account_id;
    cd_ledger_report r;
} verify_job;

static int read_verify(cd_db *db, void *arg, cd_err *err)
{
    verify_job *v = arg;
    return cd_ledger_verify(db, v->account_id, &v->r, err);
}

int cd_cli_ledger(cd_config *cfg, int argc, char **argv)
{
    const char *verb = positional(argc, argv, 0);
    static const char *const ledger_flags[] = {"--account", NULL};
    if (verb == NULL || strcmp(verb, "verify") != 0 || unknown_flag(argc, argv, ledger_flags)) {
        fprintf(stderr, "usage: consentd ledger verify [--account NAME] [--ledger-key FILE]\n");
        return 2;
    }
    cd_err err = {0};
    verify_job v = {0};
    /* issue 8 item 12: without the key the heads' signatures cannot be checked, and a
     * ledger rewritten by someone with the database but not the key would pass. */
    char path[1100];
    unsigned char key[CD_LEDGER_KEY_LEN];
    cd_config_ledger_key_path(cfg, path, sizeof path);
    if (cd_ledger_key_load(path, false, key, NULL, &err) != 0) {
        fprintf(stderr,
                "consentd: cannot check the ledger head signatures: %s "
                "(give the key with --ledger-key FILE or CONSENTD_LEDGER_KEY)\n",
                err.msg);
        return 1;
    }
    cd_store *s = open_store(cfg);
    if (s == NULL)
        return 1;
    cd_store_set_ledger_key(s, key);
    const char *name = opt(argc, argv, "--account");
    if (name) {
        cd_account a;
        if (load_account(s, name, &a) != 0) {
            cd_store_close(s);
            return 1;
        }
        v.account_id = a.id;
    }
    int rc = with_reader(s, read_verify, &v, &err);
    cd_store_close(s);
    if (rc != 0)
        return fail("cannot verify", &err);
    if (v.r.ok) {
        print_json(json_pack("{sb sI}", "ok", 1, "events", (json_int_t)v.r.events));
        return 0;
    }
    print_json(json_pack("{sb ss sI sI ss}", "ok", 0, "account", v.r.account, "account_id",
                         (json_int_t)v.r.account_id, "seq", (json_int_t)v.r.seq, "problem",
                         v.r.problem));
    fprintf(stderr, "consentd: ledger of account %s is broken at seq %lld: %s\n", v.r.account,
            (long long)v.r.seq, v.r.problem);
    return 1;
}

/* ---- export ----
 * issue 8 items 11 and 12: the same proof as GET /api/v1/export, for one contact or for
 * the whole account (then every link of the chain can be checked), written a page of
 * events at a time: nothing is built up in memory and no read lasts long. */

typedef struct export_job {
    const cd_account *a;
    const char *phone;
    cd_contact c;
    json_t *consents;
} export_job;

static int consent_each(const cd_consent *c, void *arg)
{
    json_array_append_new(arg, json_pack("{ss ss so}", "scope", c->scope, "state", c->state,
                                         "updated_at", time_json(c->updated_ms)));
    return 0;
}

static int read_contact(cd_db *db, void *arg, cd_err *err)
{
    export_job *j = arg;
    if (cd_contact_find(db, j->a->id, j->a->region, j->phone, &j->c, err) != 0)
        return -1;
    return cd_store_consent_list(db, j->a->id, j->c.id, consent_each, j->consents, err);
}

/* The JSON document up to the opening of "events" (malloc'd), or NULL. */
static char *export_head(const cd_account *a, const export_job *j)
{
    json_t *o = json_pack("{ss ss ss}", "account", a->name, "hash_algorithm",
                          CD_LEDGER_HASH_ALGORITHM, "canonical_json", CD_LEDGER_CANONICAL_JSON);
    if (j->phone) {
        json_object_set_new(o, "contact",
                            json_pack("{sI ss}", "id", (json_int_t)j->c.id, "phone", j->c.phone));
        json_object_set(o, "consents", j->consents);
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text)
        text[strlen(text) - 1] = '\0'; /* the closing brace: the events follow */
    return text;
}

static int export_events(cd_store *s, const cd_account *a, int64_t contact_id, bool csv)
{
    cd_err err = {0};
    cd_buf b = {0};
    cd_ledger_export x = {.store = s,
                          .account_id = a->id,
                          .contact_id = contact_id,
                          .upto_seq = a->ledger_seq,
                          .csv = csv};
    int rc;
    if (csv)
        cd_ledger_csv_header(&b);
    do {
        rc = cd_ledger_export_page(&x, &b, &err);
        if (b.len && fwrite(b.data, 1, b.len, stdout) != b.len)
            rc = cd_fail(&err, CD_EINTERNAL, "", "cannot write the export");
        b.len = 0;
    } while (rc > 0);
    cd_buf_free(&b);
    if (rc < 0)
        return fail("cannot export", &err);
    if (!csv)
        fputs("\n]}\n", stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}

int cd_cli_export(cd_config *cfg, int argc, char **argv)
{
    const char *format = opt(argc, argv, "--format");
    bool csv = format && strcmp(format, "csv") == 0;
    static const char *const export_flags[] = {"--account", "--contact", "--format", NULL};
    if ((format && !csv && strcmp(format, "json") != 0) || unknown_flag(argc, argv, export_flags)) {
        fprintf(stderr, "usage: consentd export --account NAME [--contact NUMBER] "
                        "[--format json|csv]\n");
        return 2;
    }
    cd_account a;
    /* The head read here bounds the export: later events belong to a later proof. */
    cd_store *s = open_account(cfg, argc, argv, &a);
    cd_err err = {0};
    if (s == NULL)
        return 1;
    export_job j = {.a = &a, .phone = opt(argc, argv, "--contact"), .consents = json_array()};
    int rc = 0;
    if (j.phone && with_reader(s, read_contact, &j, &err) != 0) {
        rc = fail("cannot export", &err);
    } else if (!csv) {
        char *head = export_head(&a, &j);
        if (head)
            printf("%s,\"events\":[", head);
        else
            rc = 1;
        free(head);
    }
    if (rc == 0)
        rc = export_events(s, &a, j.phone ? j.c.id : 0, csv);
    if (j.phone)
        cd_contact_clear(&j.c);
    json_decref(j.consents);
    cd_store_close(s);
    return rc;
}

/* ---- inbound unrouted ---- */

typedef struct unrouted_read {
    int limit;
    json_t *list;
} unrouted_read;

static int unrouted_each(const cd_unrouted *u, void *arg)
{
    json_array_append_new(arg, json_pack("{sI ss ss ss ss ss so}", "id", (json_int_t)u->id, "from",
                                         u->from, "to", u->to, "text", u->text ? u->text : "",
                                         "provider_id", u->provider_id, "transport", u->transport,
                                         "received_at", time_json(u->received_ms)));
    return 0;
}

static int read_unrouted(cd_db *db, void *arg, cd_err *err)
{
    unrouted_read *r = arg;
    return cd_store_unrouted_list(db, r->limit, unrouted_each, r->list, err);
}

/* issue 8 item 4: inbound messages to numbers no account owns, newest first, as a JSON
 * array, so an operator sees what would otherwise be lost. */
int cd_cli_inbound(cd_config *cfg, int argc, char **argv)
{
    const char *verb = positional(argc, argv, 0);
    const char *lim = opt(argc, argv, "--limit");
    static const char *const inbound_flags[] = {"--limit", NULL};
    char *end = NULL;
    long limit = lim ? strtol(lim, &end, 10) : 100;
    if (verb == NULL || strcmp(verb, "unrouted") != 0 || (lim && (*end || limit < 1)) ||
        limit > 100000 || unknown_flag(argc, argv, inbound_flags)) {
        fprintf(stderr, "usage: consentd inbound unrouted [--limit N]\n");
        return 2;
    }
    cd_store *s = open_store(cfg);
    cd_err err = {0};
    if (s == NULL)
        return 1;
    unrouted_read r = {.limit = (int)limit, .list = json_array()};
    int rc = with_reader(s, read_unrouted, &r, &err);
    cd_store_close(s);
    if (rc != 0) {
        json_decref(r.list);
        return fail("cannot list unrouted inbound messages", &err);
    }
    print_json(r.list);
    return 0;
}

/* ---- migrate ---- */

int cd_cli_migrate(cd_config *cfg, int argc, char **argv)
{
    static const char *const none[] = {NULL};
    if (unknown_flag(argc, argv, none)) {
        fprintf(stderr, "usage: consentd migrate [--db URL]\n");
        return 2;
    }
    cd_store *s = open_store(cfg);
    if (s == NULL)
        return 1;
    print_json(json_pack("{sb si}", "ok", 1, "schema", cd_store_schema_version(s)));
    cd_store_close(s);
    return 0;
}

/* ---- issue 14: token revoke, sender add|list|lease|release ---- */

typedef struct revoke_job {
    const cd_account *a;
    const char *token;
} revoke_job;

static int job_token_revoke(cd_db *db, void *arg, cd_err *err)
{
    revoke_job *j = arg;
    return cd_jwt_revoke(db, j->a, j->token, err);
}

/* consentd token revoke --account NAME TOKEN: the token is refused from now on. */
static int token_revoke(cd_config *cfg, int argc, char **argv)
{
    static const char *const flags[] = {"--account", NULL};
    revoke_job j = {.token = positional(argc, argv, 1)};
    if (unknown_flag(argc, argv, flags) || j.token == NULL) {
        fprintf(stderr, "usage: consentd token revoke --account NAME TOKEN\n");
        return 2;
    }
    cd_account a;
    cd_store *s = open_account(cfg, argc, argv, &a);
    cd_err err = {0};
    int rc = 0;
    if (s == NULL)
        return 1;
    j.a = &a;
    if (cd_store_run(s, job_token_revoke, &j, &err) != 0)
        rc = fail("cannot revoke the token", &err);
    else
        print_json(json_pack("{sb}", "revoked", 1));
    cd_store_close(s);
    return rc;
}

typedef struct sender_job {
    const cd_account *a;
    const char *verb, *number, *profile;
    cd_sender_in in;
    cd_sender out;
    json_t *list;
    cd_db *db; /* the reader, while listing */
} sender_job;

static json_t *sender_view(cd_db *db, const cd_sender *s)
{
    bool healthy = true;
    json_t *settings = NULL;
    (void)cd_pool_sender_healthy(db, s->account_id, s->number, &healthy, NULL);
    (void)cd_store_settings_get(db, s->account_id, &settings, NULL);
    const char *def = json_string_value(json_object_get(settings, "default_sender"));
    json_t *o = cd_sender_view(s, def && strcmp(def, s->number) == 0, healthy);
    json_decref(settings);
    return o;
}

static int job_sender(cd_db *db, void *arg, cd_err *err)
{
    sender_job *j = arg;
    char number[CD_PHONE_MAX];
    snprintf(number, sizeof number, "%s", j->number);
    if (strcmp(j->verb, "add") == 0)
        return cd_sender_add(db, j->a, &j->in, &j->out, NULL, err);
    if (cd_phone_normalize(j->number, j->a->region, "number", number, NULL) != 0)
        snprintf(number, sizeof number, "%.23s", j->number);
    if (strcmp(j->verb, "lease") == 0)
        return cd_sender_lease(db, j->a->id, number, j->profile, &j->out, err);
    return cd_sender_release(db, j->a->id, number, err);
}

static int sender_collect(const cd_sender *s, void *arg)
{
    sender_job *j = arg;
    json_array_append_new(j->list, sender_view(j->db, s));
    return 0;
}

static int read_senders(cd_db *db, void *arg, cd_err *err)
{
    sender_job *j = arg;
    j->db = db;
    j->list = json_array();
    return cd_store_sender_list(db, j->a->id, sender_collect, j, err);
}

static int read_sender_view(cd_db *db, void *arg, cd_err *err)
{
    sender_job *j = arg;
    if (cd_store_sender_get(db, j->out.number, &j->out, err) != 0)
        return -1;
    j->list = strcmp(j->verb, "lease") == 0 ? cd_lease_view(&j->out) : sender_view(db, &j->out);
    return 0;
}

static int sender_usage(void)
{
    fprintf(stderr, "usage: consentd sender add --account NAME NUMBER [--type long_code|"
                    "toll_free|short_code] [--transport sink|smpp|http]\n"
                    "       consentd sender list --account NAME\n"
                    "       consentd sender lease --account NAME NUMBER --profile UUID\n"
                    "       consentd sender release --account NAME NUMBER\n");
    return 2;
}

/* The arguments of one sender verb; 0, or 2 for a usage error. */
static int sender_args(int argc, char **argv, sender_job *j)
{
    static const char *const flags[] = {"--account", "--type", "--transport", "--profile", NULL};
    j->verb = positional(argc, argv, 0);
    j->number = positional(argc, argv, 1);
    j->profile = opt(argc, argv, "--profile");
    j->in = (cd_sender_in){.number = j->number,
                           .transport = opt(argc, argv, "--transport"),
                           .type = opt(argc, argv, "--type")};
    if (j->verb == NULL || unknown_flag(argc, argv, flags))
        return 2;
    bool list = strcmp(j->verb, "list") == 0, lease = strcmp(j->verb, "lease") == 0;
    if (!list && strcmp(j->verb, "add") && !lease && strcmp(j->verb, "release"))
        return 2;
    if ((!list && j->number == NULL) || (lease && j->profile == NULL))
        return 2;
    if (j->in.type && !cd_sender_type_valid(j->in.type))
        return 2;
    return 0;
}

int cd_cli_sender(cd_config *cfg, int argc, char **argv)
{
    sender_job j = {0};
    if (sender_args(argc, argv, &j) != 0)
        return sender_usage();
    cd_account a;
    cd_store *s = open_account(cfg, argc, argv, &a);
    cd_err err = {0};
    int rc = 0;
    if (s == NULL)
        return 1;
    j.a = &a;
    if (strcmp(j.verb, "list") == 0) {
        rc = with_reader(s, read_senders, &j, &err) != 0 ? fail("cannot list senders", &err) : 0;
    } else if (cd_store_run(s, job_sender, &j, &err) != 0) {
        rc = fail(strcmp(j.verb, "add") == 0 ? "cannot add the sender" : "cannot change the lease",
                  &err);
    } else if (strcmp(j.verb, "release") == 0) {
        j.list = json_pack("{ss sb}", "number", j.number, "released", 1);
    } else if (with_reader(s, read_sender_view, &j, &err) != 0) {
        rc = fail("cannot read the sender", &err);
    }
    if (rc == 0)
        print_json(j.list);
    else
        json_decref(j.list);
    cd_store_close(s);
    return rc;
}
