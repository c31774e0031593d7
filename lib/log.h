/* Logging to stderr with syslog priority prefixes ("<3>" ...) so journald keeps the level.
 *
 * pdm_complain()/pdm_release() keep logs readable on a flaky line: the first failure of a
 * condition is logged, repeats are logged with growing intervals, and the recovery is logged
 * once. State lives in a caller-owned struct pdm_complaint (no allocation). */
#ifndef PDM_LOG_H
#define PDM_LOG_H

#include <stdint.h>

enum pdm_log_level {
    PDM_LOG_ERROR = 3,
    PDM_LOG_WARNING = 4,
    PDM_LOG_INFO = 6,
    PDM_LOG_DEBUG = 7,
};

void pdm_log_set_level(enum pdm_log_level level);
enum pdm_log_level pdm_log_get_level(void);
/* Parses "error|warning|info|debug"; returns 0 or -EINVAL. */
int pdm_log_level_parse(const char *s, enum pdm_log_level *out);

void pdm_log(enum pdm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pdm_err(...)   pdm_log(PDM_LOG_ERROR, __VA_ARGS__)
#define pdm_warn(...)  pdm_log(PDM_LOG_WARNING, __VA_ARGS__)
#define pdm_info(...)  pdm_log(PDM_LOG_INFO, __VA_ARGS__)
#define pdm_debug(...) pdm_log(PDM_LOG_DEBUG, __VA_ARGS__)

struct pdm_complaint {
    int64_t next_ms;     /* monotonic time of the next repeat worth logging */
    int64_t interval_ms; /* doubles on every repeat, up to one hour */
    uint64_t repeats;    /* failures since the last logged line */
    int active;
};

/* Logs at WARNING the first time and then at growing intervals while the condition lasts. */
void pdm_complain(struct pdm_complaint *c, int64_t now_mono_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Logs at INFO once when a complained-about condition ends; silent otherwise. */
void pdm_release(struct pdm_complaint *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
