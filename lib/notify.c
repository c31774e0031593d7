#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NOTIFY_TEXT_MAX 512 /* bytes: STATUS lines are one short sentence */

int pdm_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    if (!state || !*state)
        return -EINVAL;

    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t plen = strlen(path);
    /* an abstract name needs a byte after the '@'; a path must be absolute */
    if ((path[0] != '@' && path[0] != '/') || plen < 2 || plen >= sizeof(sa.sun_path))
        return -EINVAL;
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract: the length below, not a NUL, ends the name */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    size_t len = strlen(state);
    ssize_t n;
    do
        n = sendto(fd, state, len, MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        rc = -errno;
    else if ((size_t)n != len)
        rc = -EMSGSIZE;
    close(fd);
    return rc;
}

int pdm_notifyf(const char *fmt, ...)
{
    if (!getenv("NOTIFY_SOCKET"))
        return 0; /* skip the formatting too */
    char text[NOTIFY_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return pdm_notify(text);
}

int64_t pdm_notify_watchdog_ms(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    if (!usec || !*usec)
        return 0;
    char *end;
    errno = 0;
    unsigned long long us = strtoull(usec, &end, 10);
    if (errno || *end || us == 0 || usec[0] == '-')
        return 0;
    /* systemd sets WATCHDOG_PID to the main process; a child that inherited it must not ping */
    const char *pid = getenv("WATCHDOG_PID");
    if (pid && *pid) {
        long long p = strtoll(pid, &end, 10);
        if (*end || p != (long long)getpid())
            return 0;
    }
    int64_t ms = (int64_t)(us / 2000); /* half the timeout, in ms */
    return ms > 0 ? ms : 1;
}
