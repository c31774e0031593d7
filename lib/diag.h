/* Diagnostics for configuration and model files: every problem is printed as
 *   FILE:LINE: section.key: reason
 * and counted, so a check can report all problems at once and then fail. The daemon puts a
 * syslog priority prefix before each line, so journald files them as errors. */
#ifndef PDM_DIAG_H
#define PDM_DIAG_H

#include <stdio.h>

struct pdm_diag {
    FILE *out;    /* where messages go (stderr, or a test's memstream); NULL: count only */
    int errors;   /* number of pdm_diag_error() calls so far */
    int priority; /* > 0: each line starts with "<priority>" (log.h's PDM_LOG_ERROR for the
                   * daemon, whose stderr journald reads); 0: plain lines for a terminal */
};

/* section: e.g. "sensor comp_temp" is printed as "sensor.comp_temp"; key may be NULL or "".
 * line <= 0 prints "FILE: section.key: reason" (no line known, e.g. a missing key). */
void pdm_diag_error(struct pdm_diag *d, const char *file, int line, const char *section,
                    const char *key, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
