/* The one parser of a broker URI, for the agent's configuration and uplink and for pdmctl.
 *
 *   SCHEME://HOST[:PORT]
 *
 * SCHEME is mqtts or ssl (TLS) or mqtt or tcp (plain text); ssl and tcp are Paho's own
 * spellings, which pdmctl and the uplink accept and agent.conf does not (config.c asks for
 * mqtts:// or mqtt:// and a port). HOST is a name or IPv4 address (letters, digits, '.', '-',
 * '_') or an IPv6 address in brackets ([::1]). PORT is 1..65535; without it, 8883 with TLS and
 * 1883 without, as Paho assumes. Nothing may follow the port (no path, no query). */
#ifndef PDM_MQTT_URI_H
#define PDM_MQTT_URI_H

#include <stddef.h>

#define PDM_MQTT_HOST_MAX 256

struct pdm_mqtt_uri {
    int tls;                      /* mqtts:// or ssl:// */
    int paho_scheme;              /* written ssl:// or tcp:// rather than mqtts:// or mqtt:// */
    int port;                     /* as written, or the default (8883 with TLS, 1883 without) */
    int port_given;               /* the URI names the port */
    char host[PDM_MQTT_HOST_MAX]; /* without the brackets of an IPv6 address */
    char hostport[PDM_MQTT_HOST_MAX + 8]; /* HOST[:PORT] as written, brackets kept */
    char paho[PDM_MQTT_HOST_MAX + 16];    /* ssl:// or tcp:// + hostport, for MQTTAsync_create */
};

/* Fills *u from uri. 0, or -EINVAL with the reason in err ("unknown scheme ...", "no host",
 * "port must be 1..65535", ...; err may be NULL). */
int pdm_mqtt_uri_parse(const char *uri, struct pdm_mqtt_uri *u, char *err, size_t errlen);

#endif
