#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static enum pdm_log_level g_level = PDM_LOG_INFO;

void pdm_log_set_level(enum pdm_log_level level)
{
    g_level = level;
}

enum pdm_log_level pdm_log_get_level(void)
{
    return g_level;
}

int pdm_log_level_parse(const char *s, enum pdm_log_level *out)
{
    static const struct {
        const char *name;
        enum pdm_log_level level;
    } names[] = {{"error", PDM_LOG_ERROR},
                 {"warning", PDM_LOG_WARNING},
                 {"info", PDM_LOG_INFO},
                 {"debug", PDM_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -EINVAL;
}

static void vlog(enum pdm_log_level level, const char *fmt, va_list ap)
{
    /* One fprintf per line: stderr is unbuffered, so build the line first and write it whole,
     * keeping lines from several threads apart. */
    char line[1024];
    int n = snprintf(line, sizeof(line), "<%d>", (int)level);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    line[len] = '\0';
    fputs(line, stderr);
}

void pdm_log(enum pdm_log_level level, const char *fmt, ...)
{
    if (level > g_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

#define COMPLAIN_FIRST_MS 10000   /* first repeat after 10 s */
#define COMPLAIN_MAX_MS   3600000 /* then at most once an hour */

void pdm_complain(struct pdm_complaint *c, int64_t now_mono_ms, const char *fmt, ...)
{
    if (c->active && now_mono_ms < c->next_ms) {
        c->repeats++;
        return;
    }
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!c->active) {
        pdm_warn("%s", msg);
        c->active = 1;
        c->interval_ms = COMPLAIN_FIRST_MS;
    } else {
        pdm_warn("%s (repeated %llu times)", msg, (unsigned long long)c->repeats + 1);
        c->interval_ms =
            c->interval_ms * 2 > COMPLAIN_MAX_MS ? COMPLAIN_MAX_MS : c->interval_ms * 2;
    }
    c->repeats = 0;
    c->next_ms = now_mono_ms + c->interval_ms;
}

void pdm_release(struct pdm_complaint *c, const char *fmt, ...)
{
    if (!c->active)
        return;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pdm_info("%s", msg);
    c->active = 0;
    c->repeats = 0;
}
