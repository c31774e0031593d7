/* lib/mqtt_uri.c: schemes, host names, [IPv6] hosts, default and explicit ports, and the
 * reason given for each kind of malformed URI. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "lib/mqtt_uri.h"

static void test_schemes_and_ports(void)
{
    struct pdm_mqtt_uri u;
    char err[160];
    CHECK_INT(pdm_mqtt_uri_parse("mqtts://broker.example:8884", &u, err, sizeof(err)), 0);
    CHECK_INT(u.tls, 1);
    CHECK_INT(u.paho_scheme, 0);
    CHECK_STR(u.host, "broker.example");
    CHECK_INT(u.port, 8884);
    CHECK_INT(u.port_given, 1);
    CHECK_STR(u.hostport, "broker.example:8884");
    CHECK_STR(u.paho, "ssl://broker.example:8884");
    CHECK_STR(err, "");

    CHECK_INT(pdm_mqtt_uri_parse("mqtt://127.0.0.1:1883", &u, err, sizeof(err)), 0);
    CHECK_INT(u.tls, 0);
    CHECK_STR(u.paho, "tcp://127.0.0.1:1883");

    /* Paho's own spellings */
    CHECK_INT(pdm_mqtt_uri_parse("ssl://b:1", &u, err, sizeof(err)), 0);
    CHECK_INT(u.tls, 1);
    CHECK_INT(u.paho_scheme, 1);
    CHECK_INT(u.port, 1);
    CHECK_INT(pdm_mqtt_uri_parse("tcp://my_host-1:65535", &u, err, sizeof(err)), 0);
    CHECK_INT(u.tls, 0);
    CHECK_INT(u.paho_scheme, 1);
    CHECK_INT(u.port, 65535);
    CHECK_STR(u.host, "my_host-1");

    /* default ports: 8883 with TLS, 1883 without; the Paho URI stays as written */
    CHECK_INT(pdm_mqtt_uri_parse("mqtts://broker", &u, err, sizeof(err)), 0);
    CHECK_INT(u.port, 8883);
    CHECK_INT(u.port_given, 0);
    CHECK_STR(u.hostport, "broker");
    CHECK_STR(u.paho, "ssl://broker");
    CHECK_INT(pdm_mqtt_uri_parse("mqtt://broker", &u, err, sizeof(err)), 0);
    CHECK_INT(u.port, 1883);
}

static void test_ipv6(void)
{
    struct pdm_mqtt_uri u;
    char err[160];
    CHECK_INT(pdm_mqtt_uri_parse("mqtts://[::1]:8883", &u, err, sizeof(err)), 0);
    CHECK_STR(u.host, "::1");
    CHECK_INT(u.port, 8883);
    CHECK_STR(u.hostport, "[::1]:8883");
    CHECK_STR(u.paho, "ssl://[::1]:8883");
    CHECK_INT(pdm_mqtt_uri_parse("mqtt://[fe80::1:AbCd]", &u, err, sizeof(err)), 0);
    CHECK_STR(u.host, "fe80::1:AbCd");
    CHECK_INT(u.port, 1883);
    CHECK_INT(pdm_mqtt_uri_parse("mqtts://[::ffff:10.0.0.1]:1", &u, err, sizeof(err)), 0);
    CHECK_STR(u.host, "::ffff:10.0.0.1");

    CHECK_INT(pdm_mqtt_uri_parse("mqtts://[]:8883", &u, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "IPv6") != NULL);
    CHECK_INT(pdm_mqtt_uri_parse("mqtts://[::1:8883", &u, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "IPv6") != NULL);
    CHECK_INT(pdm_mqtt_uri_parse("mqtts://[::g]:8883", &u, err, sizeof(err)), -EINVAL);
}

static void test_errors(void)
{
    struct pdm_mqtt_uri u;
    char err[160];
    static const struct {
        const char *uri, *reason;
    } bad[] = {
        {"", "unknown scheme"},
        {"http://b:1", "unknown scheme"},
        {"MQTTS://b:1", "unknown scheme"},
        {"mqtts:/b:1", "unknown scheme"},
        {"mqtts://", "no host"},
        {"mqtts://:8883", "expected a host"},
        {"mqtts://b:", "1..65535"},
        {"mqtts://b:0", "1..65535"},
        {"mqtts://b:65536", "1..65535"},
        {"mqtts://b:99999999999999999999", "1..65535"},
        {"mqtts://b:-1", "1..65535"},
        {"mqtts://b:1x", "unexpected 'x'"},
        {"mqtts://b:1/", "unexpected '/'"},
        {"mqtts://b/path", "unexpected '/path'"},
        {"mqtts://user@b:1", "unexpected '@b:1'"},
        {"mqtts://b c:1", "unexpected ' c:1'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = pdm_mqtt_uri_parse(bad[i].uri, &u, err, sizeof(err));
        CHECK_MSG(rc == -EINVAL, "'%s' gave %d", bad[i].uri, rc);
        CHECK_MSG(strstr(err, bad[i].reason) != NULL, "'%s': reason '%s', expected '%s'",
                  bad[i].uri, err, bad[i].reason);
    }

    /* a host at the size limit, and one byte over */
    char uri[PDM_MQTT_HOST_MAX + 32];
    memcpy(uri, "mqtts://", 8);
    memset(uri + 8, 'h', PDM_MQTT_HOST_MAX - 1);
    strcpy(uri + 8 + PDM_MQTT_HOST_MAX - 1, ":65535");
    CHECK_INT(pdm_mqtt_uri_parse(uri, &u, err, sizeof(err)), 0);
    CHECK_INT(strlen(u.host), PDM_MQTT_HOST_MAX - 1);
    CHECK_INT(u.port, 65535);
    CHECK_INT(strlen(u.paho), strlen("ssl://") + PDM_MQTT_HOST_MAX - 1 + strlen(":65535"));
    memset(uri + 8, 'h', PDM_MQTT_HOST_MAX);
    strcpy(uri + 8 + PDM_MQTT_HOST_MAX, ":1");
    CHECK_INT(pdm_mqtt_uri_parse(uri, &u, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "too long") != NULL);

    /* err may be NULL, and a short err is cut, not overrun */
    CHECK_INT(pdm_mqtt_uri_parse("nope", &u, NULL, 0), -EINVAL);
    char tiny[4] = "xyz";
    CHECK_INT(pdm_mqtt_uri_parse("nope", &u, tiny, sizeof(tiny)), -EINVAL);
    CHECK_STR(tiny, "unk");
}

int main(void)
{
    test_schemes_and_ports();
    test_ipv6();
    test_errors();
    return check_summary("test_mqtt_uri");
}
