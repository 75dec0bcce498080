/* delivery/upkeep.h -- what the delivery worker does between deliveries, on its own thread:
 * expires pending double opt-ins (issue 8 item 2: their pending states are withdrawn in the
 * ledger) once a second, and purges Idempotency-Key records older than 7 days once a minute
 * (issue 8 item 11), in small writer jobs so that requests are committed in between. */
#ifndef CD_DELIVERY_UPKEEP_H
#define CD_DELIVERY_UPKEEP_H

#include <stdint.h>

#include "store/store.h"

typedef struct cd_upkeep {
    int64_t next_sweep_ms, next_purge_ms; /* 0: at the first call */
} cd_upkeep;

/* Does what is due now; returns at once when nothing is. */
void cd_upkeep_run(cd_store *s, cd_upkeep *u);

#endif
