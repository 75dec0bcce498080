/* store/keys.c -- issue 10 (perf): the API keys that checked out, remembered.
 *
 * Why: every authenticated request read its key and the key's account from SQLite, about
 * a tenth of the HTTP threads' time. A key row is remembered here once read, and used
 * again while nothing may have made it stale. What can: a revocation (keys are never
 * deleted, accounts never change what a principal holds but their ledger head, which no
 * caller takes from it). So every remembered row carries the keys' epoch, a counter that
 * moves once a revocation is durable:
 *   - in this process (cd_store__keys_revoked, after the revoking job's commit is synced);
 *   - in any other process on the same database, such as the CLI beside a running server:
 *     that one adds to a counter in the first 8 bytes of the server's lock file
 *     ("<db>.lock", sqlite_files.c), which the server keeps mapped, so reading the epoch
 *     costs a memory load and no system call.
 * A row is remembered with the epoch read before its reader's snapshot began
 * (cd_store__keys_began), so that a row read from a snapshot older than a revocation is
 * never taken for newer. And a row is forgotten after KEYS_TTL_MS whatever happens, in case
 * someone edits the database by hand. Readers only: the writer never looks a key up. */
#include "store/store_int.h"

#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/timeutil.h"

#define KEYS_TTL_MS 10000

static uint64_t epoch(cd_store *s)
{
    uint64_t e = atomic_load(&s->keys_epoch);
    if (s->keys_shared)
        e += __atomic_load_n(s->keys_shared, __ATOMIC_ACQUIRE);
    return e;
}

static unsigned slot(const char *key_id)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key_id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % CD_STORE_KEYS_SLOTS;
}

void cd_store__keys_began(cd_db *db)
{
    db->keys_epoch = epoch(db->store);
    db->keys_reader = true;
}

bool cd_store__keys_recall(cd_db *db, const char *key_id, cd_apikey *key, cd_account *account)
{
    cd_store *s = db->store;
    if (!db->keys_reader || strlen(key_id) >= sizeof s->keys[0].key.id)
        return false;
    uint64_t now_epoch = epoch(s);
    int64_t now = cd_now_ms();
    cd_store_known_key *k = &s->keys[slot(key_id)];
    pthread_mutex_lock(&s->keys_lock);
    bool hit = k->until_ms > now && k->epoch == now_epoch && strcmp(k->key.id, key_id) == 0;
    if (hit) {
        *key = k->key;
        *account = k->account;
    }
    pthread_mutex_unlock(&s->keys_lock);
    return hit;
}

void cd_store__keys_remember(cd_db *db, const cd_apikey *key, const cd_account *account)
{
    cd_store *s = db->store;
    if (!db->keys_reader || key->revoked_ms != 0)
        return;
    cd_store_known_key *k = &s->keys[slot(key->id)];
    pthread_mutex_lock(&s->keys_lock);
    k->key = *key;
    k->account = *account;
    k->epoch = db->keys_epoch;
    k->until_ms = cd_now_ms() + KEYS_TTL_MS;
    pthread_mutex_unlock(&s->keys_lock);
}

/* A revocation is durable: this process forgets every row it read before, and tells the
 * server that holds the lock file, if any (it may be this process). */
static void revoked(void *arg, bool durable)
{
    cd_store *s = arg;
    if (!durable)
        return;
    atomic_fetch_add(&s->keys_epoch, 1);
    if (s->ops->serve_notify)
        s->ops->serve_notify(s->url);
}

void cd_store__keys_revoked(cd_db *db)
{
    if (!cd_store_after_durable(db, revoked, db->store))
        revoked(db->store, true); /* off a batch: the write is committed already */
}

void cd_store__keys_map(cd_store *s, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_size < 8 && ftruncate(fd, 8) != 0))
        return; /* then other processes' revocations reach it only through the TTL */
    void *p = mmap(NULL, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED)
        s->keys_shared = p;
}

void cd_store__keys_unmap(cd_store *s)
{
    if (s->keys_shared)
        munmap((void *)s->keys_shared, 8);
    s->keys_shared = NULL;
}
