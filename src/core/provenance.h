/* core/provenance.h -- where a consent change came from, as the ledger records it. A leaf
 * of its own so that core/consent (which appends to the ledger) and core/ledger (which
 * stores the provenance) do not include each other (issue 9 part 7). */
#ifndef CD_CORE_PROVENANCE_H
#define CD_CORE_PROVENANCE_H

/* Where a change came from: the ledger's provenance. Strings are borrowed; NULL = "". */
typedef struct cd_provenance {
    const char *surface; /* "native", "protexting", ... */
    const char *channel; /* "api", "sms", "web", "email", "paper", "import" */
    const char *keyword;
    const char *disclosure; /* the text shown; only its SHA-256 is kept */
    const char *ip;
    const char *user_agent;
    const char *site;
    const char *session;
    const char *ext_ref;
    const char *credential_id;
    const char *request_id;
} cd_provenance;

#endif
