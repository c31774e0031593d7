/* Broker URIs (see mqtt_uri.h). */
#include "mqtt_uri.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int is_host_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static int is_v6_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
           c == '.';
}

static int fail(char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, arg);
    return -EINVAL;
}

int pdm_mqtt_uri_parse(const char *uri, struct pdm_mqtt_uri *u, char *err, size_t errlen)
{
    static const struct {
        const char *prefix;
        int tls, paho;
    } schemes[] = {
        {"mqtts://", 1, 0},
        {"ssl://", 1, 1},
        {"mqtt://", 0, 0},
        {"tcp://", 0, 1},
    };
    memset(u, 0, sizeof(*u));
    if (err && errlen)
        err[0] = '\0';
    const char *p = NULL;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]) && !p; i++) {
        size_t n = strlen(schemes[i].prefix);
        if (strncmp(uri, schemes[i].prefix, n) == 0) {
            u->tls = schemes[i].tls;
            u->paho_scheme = schemes[i].paho;
            p = uri + n;
        }
    }
    if (!p)
        return fail(err, errlen, "%s", "unknown scheme (mqtts://, or mqtt:// without TLS)");
    const char *hostport = p, *host = p, *host_end;
    if (*p == '[') {
        host = ++p;
        while (is_v6_char(*p))
            p++;
        if (*p != ']' || p == host)
            return fail(err, errlen, "%s", "expected an IPv6 address in brackets, e.g. [::1]");
        host_end = p++;
    } else {
        while (is_host_char(*p))
            p++;
        if (p == host)
            return fail(err, errlen, "%s", *p ? "expected a host name or address" : "no host");
        host_end = p;
    }
    if ((size_t)(host_end - host) >= sizeof(u->host))
        return fail(err, errlen, "%s", "host name too long");
    memcpy(u->host, host, (size_t)(host_end - host));
    u->port = u->tls ? 8883 : 1883;
    if (*p == ':') {
        long port = 0;
        const char *digits = ++p;
        while (*p >= '0' && *p <= '9' && port <= 65535)
            port = port * 10 + (*p++ - '0');
        if (p == digits || (*p >= '0' && *p <= '9') || port < 1 || port > 65535)
            return fail(err, errlen, "%s", "the port must be 1..65535");
        u->port = (int)port;
        u->port_given = 1;
    }
    if (*p)
        return fail(err, errlen, "unexpected '%s' after the host and port", p);
    /* host is below PDM_MQTT_HOST_MAX, so brackets and ":65535" fit */
    snprintf(u->hostport, sizeof(u->hostport), "%.*s", (int)(p - hostport), hostport);
    snprintf(u->paho, sizeof(u->paho), "%s%s", u->tls ? "ssl://" : "tcp://", u->hostport);
    return 0;
}
