/* Decoding stored rows, shared by the agent's store (store.c, store_txn.c, store_service.c) and
 * the read-only store for pdmctl (store_read.c), so that a column added to the rows table is
 * read in one place. Defined in store.c. */
#ifndef PDM_STORE_ROW_H
#define PDM_STORE_ROW_H

#include <sqlite3.h>

#include "store.h"

/* The columns of a stored reading, in the order store_decode_row() reads them: a SELECT of
 * STORE_ROW_COLUMNS (first) is decoded by it. */
#define STORE_ROW_COLUMNS "seq, kind, ref, ts_ms, value, quality"

/* The current row of st, selected as STORE_ROW_COLUMNS, as a struct pdm_row. */
void store_decode_row(sqlite3_stmt *st, struct pdm_row *row);

/* The current row of st, selected as "seq, asset, alert_id, state, severity" (first), as a
 * struct pdm_stored_alert (NULL text becomes ""). */
void store_decode_alert(sqlite3_stmt *st, struct pdm_stored_alert *a);

#endif
