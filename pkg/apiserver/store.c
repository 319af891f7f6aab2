/* sqlite object storage; see store.h. WAL with synchronous=NORMAL: a crash may lose the last
 * transactions but never corrupts the file; every write is one transaction unless grouped. */
#include "apiserver/store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct tn_store {
    sqlite3 *db;
    int64_t rv;
    int in_tx;
    sqlite3_stmt *get, *put, *del, *delown, *putown, *setrv, *deps, *uidq;
};

static const char *schema_sql =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "PRAGMA foreign_keys=OFF;"
    "CREATE TABLE IF NOT EXISTS objects(res TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,"
    " rv INTEGER NOT NULL, uid TEXT, data TEXT NOT NULL, PRIMARY KEY(res, ns, name)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS objects_uid ON objects(uid);"
    "CREATE TABLE IF NOT EXISTS owners(owner TEXT NOT NULL, res TEXT NOT NULL, ns TEXT NOT NULL,"
    " name TEXT NOT NULL, PRIMARY KEY(owner, res, ns, name)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS owners_dep ON owners(res, ns, name);"
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO meta(k, v) VALUES('rv', 0);";

static int prep(struct tn_store *s, sqlite3_stmt **st, const char *sql, struct tn_err *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return tn_err_set(err, TN_EIO, "sqlite: %s", sqlite3_errmsg(s->db));
    return 0;
}

struct tn_store *tn_store_open(const char *path, struct tn_err *err)
{
    struct tn_store *s = calloc(1, sizeof(*s));
    if (!s) {
        tn_err_set(err, TN_ENOMEM, "out of memory");
        return NULL;
    }
    if (sqlite3_open(path, &s->db) != SQLITE_OK) {
        tn_err_set(err, TN_EIO, "cannot open database %s: %s", path,
                   s->db ? sqlite3_errmsg(s->db) : "out of memory");
        tn_store_close(s);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(s->db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
        tn_err_set(err, TN_EIO, "cannot initialise database %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        tn_store_close(s);
        return NULL;
    }
    if (prep(s, &s->get, "SELECT data, rv FROM objects WHERE res=?1 AND ns=?2 AND name=?3", err) ||
        prep(s, &s->put,
             "INSERT OR REPLACE INTO objects(res, ns, name, rv, uid, data) "
             "VALUES(?1,?2,?3,?4,?5,?6)",
             err) ||
        prep(s, &s->del, "DELETE FROM objects WHERE res=?1 AND ns=?2 AND name=?3", err) ||
        prep(s, &s->delown, "DELETE FROM owners WHERE res=?1 AND ns=?2 AND name=?3", err) ||
        prep(s, &s->putown,
             "INSERT OR IGNORE INTO owners(owner, res, ns, name) VALUES(?1,?2,?3,?4)", err) ||
        prep(s, &s->setrv, "UPDATE meta SET v=?1 WHERE k='rv'", err) ||
        prep(s, &s->deps, "SELECT res, ns, name FROM owners WHERE owner=?1", err) ||
        prep(s, &s->uidq, "SELECT 1 FROM objects WHERE uid=?1 LIMIT 1", err)) {
        tn_store_close(s);
        return NULL;
    }
    sqlite3_stmt *st;
    if (prep(s, &st, "SELECT v FROM meta WHERE k='rv'", err)) {
        tn_store_close(s);
        return NULL;
    }
    if (sqlite3_step(st) == SQLITE_ROW) s->rv = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return s;
}

void tn_store_close(struct tn_store *s)
{
    if (!s) return;
    sqlite3_stmt *all[] = {s->get,    s->put,   s->del,  s->delown,
                           s->putown, s->setrv, s->deps, s->uidq};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        sqlite3_finalize(all[i]);
    sqlite3_close(s->db);
    free(s);
}

int64_t tn_store_rv(const struct tn_store *s)
{
    return s->rv;
}

int64_t tn_store_next_rv(struct tn_store *s)
{
    return ++s->rv;
}

static int step_done(struct tn_store *s, sqlite3_stmt *st, struct tn_err *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return tn_err_set(err, TN_EIO, "sqlite: %s", sqlite3_errmsg(s->db));
    return 0;
}

int tn_store_begin(struct tn_store *s)
{
    if (s->in_tx++) return 0;
    return sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : TN_EIO;
}

int tn_store_commit(struct tn_store *s)
{
    if (--s->in_tx > 0) return 0;
    sqlite3_bind_int64(s->setrv, 1, s->rv);
    step_done(s, s->setrv, NULL);
    return sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : TN_EIO;
}

int tn_store_get(struct tn_store *s, const char *res, const char *ns, const char *name, char **data,
                 int64_t *rv, struct tn_err *err)
{
    sqlite3_stmt *st = s->get;
    sqlite3_bind_text(st, 1, res, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns ? ns : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (data) *data = strdup((const char *)sqlite3_column_text(st, 0));
        if (rv) *rv = sqlite3_column_int64(st, 1);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return TN_ENOTFOUND;
    return tn_err_set(err, TN_EIO, "sqlite: %s", sqlite3_errmsg(s->db));
}

int tn_store_put(struct tn_store *s, const char *res, const char *ns, const char *name,
                 const char *data, int64_t rv, const char *uid, const char *const *owners,
                 size_t nowners, struct tn_err *err)
{
    int rc = tn_store_begin(s);
    if (rc) return tn_err_set(err, TN_EIO, "sqlite: cannot begin: %s", sqlite3_errmsg(s->db));
    sqlite3_stmt *st = s->put;
    sqlite3_bind_text(st, 1, res, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns ? ns : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, rv);
    if (uid)
        sqlite3_bind_text(st, 5, uid, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_text(st, 6, data, -1, SQLITE_STATIC);
    rc = step_done(s, st, err);
    sqlite3_bind_text(s->delown, 1, res, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->delown, 2, ns ? ns : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s->delown, 3, name, -1, SQLITE_STATIC);
    if (!rc) rc = step_done(s, s->delown, err);
    for (size_t i = 0; !rc && i < nowners; i++) {
        sqlite3_bind_text(s->putown, 1, owners[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(s->putown, 2, res, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->putown, 3, ns ? ns : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(s->putown, 4, name, -1, SQLITE_STATIC);
        rc = step_done(s, s->putown, err);
    }
    if (tn_store_commit(s) && !rc)
        rc = tn_err_set(err, TN_EIO, "sqlite: cannot commit: %s", sqlite3_errmsg(s->db));
    return rc;
}

int tn_store_delete(struct tn_store *s, const char *res, const char *ns, const char *name,
                    struct tn_err *err)
{
    int rc = tn_store_begin(s);
    if (rc) return tn_err_set(err, TN_EIO, "sqlite: cannot begin: %s", sqlite3_errmsg(s->db));
    sqlite3_stmt *sts[] = {s->del, s->delown};
    for (int i = 0; i < 2 && !rc; i++) {
        sqlite3_bind_text(sts[i], 1, res, -1, SQLITE_STATIC);
        sqlite3_bind_text(sts[i], 2, ns ? ns : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(sts[i], 3, name, -1, SQLITE_STATIC);
        rc = step_done(s, sts[i], err);
    }
    if (tn_store_commit(s) && !rc)
        rc = tn_err_set(err, TN_EIO, "sqlite: cannot commit: %s", sqlite3_errmsg(s->db));
    return rc;
}

/* Prepares "SELECT <cols> FROM objects WHERE <res, ns, after (ns, name)> <tail>" with its
 * parameters bound, for lists and counts alike. Within one namespace it compares the name alone:
 * a row-value comparison there makes sqlite sort the remaining rows for every page. */
static int prepare_range(struct tn_store *s, const char *cols, const char *res, const char *ns,
                         const char *after_ns, const char *after_name, const char *tail, long limit,
                         sqlite3_stmt **st)
{
    char sql[512];
    const char *after = !after_ns ? "" : ns ? " AND name > ?4" : " AND (ns, name) > (?3, ?4)";
    snprintf(sql, sizeof(sql), "SELECT %s FROM objects WHERE res=?1%s%s%s%s", cols,
             ns ? " AND ns=?2" : "", after, tail, limit > 0 ? " LIMIT ?5" : "");
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) return TN_EIO;
    sqlite3_bind_text(*st, 1, res, -1, SQLITE_STATIC);
    if (ns) sqlite3_bind_text(*st, 2, ns, -1, SQLITE_STATIC);
    if (after_ns) {
        if (!ns) sqlite3_bind_text(*st, 3, after_ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(*st, 4, after_name ? after_name : "", -1, SQLITE_STATIC);
    }
    if (limit > 0) sqlite3_bind_int64(*st, 5, limit);
    return 0;
}

int tn_store_list(struct tn_store *s, const char *res, const char *ns, const char *after_ns,
                  const char *after_name, long limit, tn_store_row_fn fn, void *arg)
{
    sqlite3_stmt *st;
    if (prepare_range(s, "ns, name, data, rv", res, ns, after_ns, after_name, " ORDER BY ns, name",
                      limit, &st))
        return TN_EIO;
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        if (fn((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
               (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3), arg))
            break;
    }
    sqlite3_finalize(st);
    return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? n : TN_EIO;
}

long tn_store_count_after(struct tn_store *s, const char *res, const char *ns, const char *after_ns,
                          const char *after_name)
{
    sqlite3_stmt *st;
    if (prepare_range(s, "count(*)", res, ns, after_ns, after_name, "", 0, &st)) return TN_EIO;
    long n = sqlite3_step(st) == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : TN_EIO;
    sqlite3_finalize(st);
    return n;
}

long tn_store_count(struct tn_store *s, const char *res, const char *ns)
{
    return tn_store_count_after(s, res, ns, NULL, NULL);
}

static int collect_refs(sqlite3_stmt *st, tn_store_ref_fn fn, void *arg)
{
    /* copy rows first: fn may write to the store and reset this statement */
    struct row {
        char *a, *b, *c;
    } *rows = NULL;
    size_t n = 0, cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct row *nr = realloc(rows, cap * sizeof(*nr));
            if (!nr) break;
            rows = nr;
        }
        rows[n].a = strdup((const char *)sqlite3_column_text(st, 0));
        rows[n].b = strdup((const char *)sqlite3_column_text(st, 1));
        rows[n].c = strdup((const char *)sqlite3_column_text(st, 2));
        n++;
    }
    sqlite3_reset(st);
    int stop = 0;
    for (size_t i = 0; i < n; i++) {
        if (!stop && rows[i].a && rows[i].b && rows[i].c)
            stop = fn(rows[i].a, rows[i].b, rows[i].c, arg);
        free(rows[i].a);
        free(rows[i].b);
        free(rows[i].c);
    }
    free(rows);
    return (int)n;
}

int tn_store_dependents(struct tn_store *s, const char *owner_uid, tn_store_ref_fn fn, void *arg)
{
    sqlite3_bind_text(s->deps, 1, owner_uid, -1, SQLITE_TRANSIENT);
    return collect_refs(s->deps, fn, arg);
}

int tn_store_dangling_owners(struct tn_store *s, tn_store_ref_fn fn, void *arg)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT res, ns, name FROM owners o WHERE NOT EXISTS "
                           "(SELECT 1 FROM objects x WHERE x.uid = o.owner)",
                           -1, &st, NULL) != SQLITE_OK)
        return TN_EIO;
    int n = collect_refs(st, fn, arg);
    sqlite3_finalize(st);
    return n;
}

int tn_store_uid_exists(struct tn_store *s, const char *uid)
{
    sqlite3_bind_text(s->uidq, 1, uid, -1, SQLITE_STATIC);
    int found = sqlite3_step(s->uidq) == SQLITE_ROW;
    sqlite3_reset(s->uidq);
    return found;
}
