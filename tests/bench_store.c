/* Store throughput: 1,000,000 readings put and committed every 1000 rows, then read back with
 * next_rows in batches of 1000 and marked delivered batch by batch, as the outbox does.
 *
 *   bench_store [parent-dir] [rows] [cap-MB]     (default: /tmp, 1000000, 16)
 *
 * The cap (pdm_store_set_limits) is on, and small enough by default that 1,000,000 rows
 * (about 45 MB) pass it: the ingest figure includes eviction of the oldest undelivered rows.
 * 0 turns the cap off.
 * The database lives in a fresh folder under parent-dir (use a folder on the disk you care
 * about: tmpfs makes fsync free) and is removed afterwards. Not a test: numbers only. */
#include "lib/clock.h"
#include "agent/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 1000

static void cleanup(const char *dir)
{
    static const char *const files[] = {"pdm-agent.db", "pdm-agent.db-wal", "pdm-agent.db-shm",
                                        "seq.reserve"};
    char path[512];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static double rate(uint64_t n, int64_t ms)
{
    return ms > 0 ? (double)n * 1000.0 / (double)ms : 0.0;
}

int main(int argc, char **argv)
{
    const char *parent = argc > 1 ? argv[1] : "/tmp";
    uint64_t total = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
    uint64_t cap_mb = argc > 3 ? strtoull(argv[3], NULL, 10) : 16;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/bench_store.XXXXXX", parent);
    if (!mkdtemp(dir)) {
        perror(dir);
        return 2;
    }
    struct pdm_store *s = NULL;
    char err[512];
    int64_t t0 = pdm_mono_ms();
    if (pdm_store_open(&s, dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        cleanup(dir);
        return 1;
    }
    if (pdm_store_set_limits(s, cap_mb << 20, 0) != 0) {
        fprintf(stderr, "cannot set a cap of %llu MB\n", (unsigned long long)cap_mb);
        return 1;
    }
    int64_t ts = pdm_wall_ms();
    for (uint64_t i = 0; i < total; i++) {
        int rc = pdm_store_put_row(s, PDM_ROW_READING, (uint32_t)(i % 16) + 1, ts + (int64_t)i,
                                   (double)i * 0.5, NULL);
        if (rc == 0 && (i + 1) % BATCH == 0)
            rc = pdm_store_commit(s);
        if (rc != 0) {
            fprintf(stderr, "put/commit failed at row %llu: %s\n", (unsigned long long)i,
                    strerror(-rc));
            return 1;
        }
    }
    if (pdm_store_commit(s) != 0)
        return 1;
    int64_t t1 = pdm_mono_ms();
    printf("put+commit/%d, cap %llu MB: %llu rows in %lld ms: %.0f rows/s\n", BATCH,
           (unsigned long long)cap_mb, (unsigned long long)total, (long long)(t1 - t0),
           rate(total, t1 - t0));

    struct pdm_store_stats st;
    int64_t ts0 = pdm_mono_ms();
    for (int i = 0; i < 100; i++)
        pdm_store_stats(s, &st);
    int64_t ts1 = pdm_mono_ms();
    printf("stats with %llu pending: %.3f ms per call; %.1f MB on disk, %llu rows dropped by "
           "the cap\n",
           (unsigned long long)st.rows_pending, (double)(ts1 - ts0) / 100.0,
           st.db_bytes / 1048576.0, (unsigned long long)st.rows_dropped);

    static struct pdm_row rows[BATCH];
    uint64_t read = 0, after = 0;
    for (;;) {
        int n = pdm_store_next_rows(s, after, rows, BATCH);
        if (n < 0) {
            fprintf(stderr, "next_rows: %s\n", strerror(-n));
            return 1;
        }
        if (n == 0)
            break;
        if (pdm_store_mark_rows_delivered(s, rows[0].seq, rows[n - 1].seq) != 0)
            return 1;
        after = rows[n - 1].seq;
        read += (uint64_t)n;
    }
    int64_t t2 = pdm_mono_ms();
    printf("next_rows/%d + mark delivered: %llu rows in %lld ms: %.0f rows/s\n", BATCH,
           (unsigned long long)read, (long long)(t2 - t1), rate(read, t2 - t1));

    pdm_store_stats(s, &st);
    printf("after delivery: %llu pending, next_seq %llu\n", (unsigned long long)st.rows_pending,
           (unsigned long long)st.next_seq);
    int64_t t3 = pdm_mono_ms();
    pdm_store_prune(s, 100000);
    int64_t t4 = pdm_mono_ms();
    printf("prune keeping 100000: %lld ms\n", (long long)(t4 - t3));
    pdm_store_close(s);
    printf("close (checkpoint): %lld ms\n", (long long)(pdm_mono_ms() - t4));
    cleanup(dir);
    return read + st.rows_dropped == total ? 0 : 1;
}
