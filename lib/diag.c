#include "diag.h"

#include <stdarg.h>
#include <string.h>

void pdm_diag_error(struct pdm_diag *d, const char *file, int line, const char *section,
                    const char *key, const char *fmt, ...)
{
    d->errors++;
    if (!d->out)
        return;
    /* "sensor comp_temp" -> "sensor.comp_temp" */
    char sec[160];
    snprintf(sec, sizeof(sec), "%s", section ? section : "");
    for (char *p = sec; *p; p++)
        if (*p == ' ')
            *p = '.';
    char where[512];
    if (key && *key)
        snprintf(where, sizeof(where), "%s%s%s", sec, *sec ? "." : "", key);
    else
        snprintf(where, sizeof(where), "%s", sec);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char prio[16] = "";
    if (d->priority > 0)
        snprintf(prio, sizeof(prio), "<%d>", d->priority);
    if (line > 0)
        fprintf(d->out, "%s%s:%d: %s: %s\n", prio, file, line, where, msg);
    else
        fprintf(d->out, "%s%s: %s: %s\n", prio, file, where, msg);
}
