/* pdmctl check: is this site ready? Run on the gateway during commissioning.
 *
 *  1. the configuration, validated exactly as `pdm-agent --check` does (same output);
 *  2. one read of every sensor through the agent's own drivers, as a table;
 *  3. a TLS connection to the broker with OpenSSL (the library Paho uses, so the verdict is the
 *     agent's): chain verification against ca_file, host name, every certificate's expiry
 *     (warning at 30 days or fewer), cert_file against key_file, and whether the broker accepts the
 *     client certificate.
 * Exit 0 only when all of it is good; the last line says what is not. A running agent is not
 * disturbed over TCP; on a serial line this tool and the agent would fight over the port, so
 * stop the agent first (the read fails or times out otherwise). */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <fcntl.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "agent/config.h"
#include "drivers/driver.h"
#include "drivers/plan.h"
#include "drivers/onboard.h"
#include "lib/mqtt_uri.h"
#include "agent/onboard_bus.h"
#include "cli.h"
#include "pdmctl.h"

#define NET_TIMEOUT_MS   5000 /* TCP connect and TLS handshake, each */
#define ALERT_WAIT_MS    1000 /* after the handshake: time for the broker to refuse our cert */
#define EXPIRY_WARN_DAYS 30

struct verdict {
    int problems, warnings;
    char summary[1024]; /* "sensor x; TLS chain; ..." for the last line */
};

static void problem(struct verdict *v, const char *what)
{
    size_t l = strlen(v->summary);
    if (v->problems < 6)
        snprintf(v->summary + l, sizeof(v->summary) - l, "%s%s", l ? "; " : "", what);
    else if (v->problems == 6)
        snprintf(v->summary + l, sizeof(v->summary) - l, "; ...");
    v->problems++;
}

/* one line of the TLS report: "  ok    text", "  WARN  text", "  FAIL  text" */
static void line(const char *tag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  %-5s ", tag);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdmctl check [-c FILE]\n\n"
            "Checks that a site is ready for pdm-agent: validates the configuration (as\n"
            "pdm-agent --check), reads every sensor once and prints a table (sensor, bus, unit\n"
            "id, value, unit, ok or the error), then connects to the broker over TLS and\n"
            "reports the certificate chain against ca_file, the host name match, each\n"
            "certificate's expiry (warning under %d days), whether cert_file and key_file\n"
            "belong together, and whether the broker accepts the client certificate.\n"
            "On a serial bus, stop the agent first: one port has one owner.\n\n"
            "  -c, --config FILE  configuration (default /etc/pdm-agent/agent.conf)\n\n"
            "exit status: 0 the site is ready, 1 something is not (the last line says what),\n"
            "2 bad arguments, 78 the configuration has errors\n",
            EXPIRY_WARN_DAYS);
}

/* ---- sensors ---------------------------------------------------------------------------- */

/* One read of each sensor of a sysfs bus (hwmon, thermal zone, file); returns the good ones. */
static uint32_t check_sysfs_bus(const struct pdm_config *cfg, uint32_t b, struct verdict *v)
{
    uint32_t good = 0;
    for (uint32_t i = 0; i < cfg->n_sensors; i++) {
        const struct pdm_sensor_cfg *s = &cfg->sensors[i];
        if (s->bus != b)
            continue;
        struct pdm_onboard_cfg oc;
        struct pdm_onboard_info info;
        pdm_onboard_sysfs_cfg(&cfg->buses[b], s, &oc);
        char err[256] = "", val[32] = "-", result[300] = "ok";
        void *dev = NULL;
        double x = 0;
        int rc = pdm_onboard_sysfs.open(&dev, &oc, &info, err, sizeof(err));
        if (rc == 0)
            rc = pdm_onboard_sysfs.read(dev, &x, 1, err, sizeof(err));
        pdm_onboard_sysfs.close(dev);
        if (rc < 0) {
            snprintf(result, sizeof(result), "ERROR: %s", err);
            char what[96];
            snprintf(what, sizeof(what), "sensor %s", s->name);
            problem(v, what);
        } else {
            snprintf(val, sizeof(val), "%.6g", x * s->scale + s->offset);
            good++;
        }
        printf("%-20s %-12s %4s %14s %-8s %s\n", s->name, cfg->buses[b].name, "-", val, s->unit,
               result);
    }
    return good;
}

static void check_sensors(const struct pdm_config *cfg, struct verdict *v)
{
    printf("\nSENSORS (one read each)\n%-20s %-12s %4s %14s %-8s %s\n", "sensor", "bus", "unit",
           "value", "unit", "result");
    uint32_t good = 0;
    for (uint32_t b = 0; b < cfg->n_buses; b++) {
        const struct pdm_bus_cfg *bc = &cfg->buses[b];
        if (bc->driver == PDM_DRIVER_SYSFS) {
            good += check_sysfs_bus(cfg, b, v);
            continue;
        }
        if (bc->driver != PDM_DRIVER_MODBUS_TCP && bc->driver != PDM_DRIVER_MODBUS_RTU) {
            /* iio: the running agent owns the device's buffer, and one capture window is not a
             * quick read; its thread reports the sensors (pdmctl status). */
            for (uint32_t i = 0; i < cfg->n_sensors; i++)
                if (cfg->sensors[i].bus == b)
                    printf("%-20s %-12s %4s %14s %-8s %s\n", cfg->sensors[i].name, bc->name, "-",
                           "-", cfg->sensors[i].unit,
                           "not read here: IIO window feature, see pdmctl status");
            continue;
        }
        const struct pdm_driver_ops *ops =
            bc->driver == PDM_DRIVER_MODBUS_RTU ? &pdm_driver_modbus_rtu : &pdm_driver_modbus_tcp;
        char bus_err[256] = "";
        void *drv = NULL;
        int open_rc = ops->open(&drv, bc, bus_err, sizeof(bus_err));
        for (uint32_t i = 0; i < cfg->n_sensors; i++) {
            const struct pdm_sensor_cfg *s = &cfg->sensors[i];
            if (s->bus != b)
                continue;
            char val[32] = "-", result[300] = "ok";
            int ok = 0;
            if (open_rc != 0) {
                snprintf(result, sizeof(result), "ERROR: %s", bus_err);
            } else {
                uint16_t regs[PDM_REG_MAX_WORDS] = {0};
                struct pdm_read_req req = {.unit_id = s->unit_id,
                                           .table = s->table,
                                           .address = s->address,
                                           .count = pdm_reg_words(s->type)};
                char err[256] = "";
                double raw;
                int rc = ops->read(drv, &req, regs, err, sizeof(err));
                if (rc != 0) {
                    snprintf(result, sizeof(result), "ERROR: %s", err);
                } else if ((rc = pdm_reg_decode(s->type, s->order, regs, &raw)) != 0) {
                    snprintf(result, sizeof(result), "ERROR: %s",
                             rc == -ERANGE ? "the device reports NaN/Inf (its error value)"
                                           : "cannot decode the registers");
                } else {
                    snprintf(val, sizeof(val), "%.6g", raw * s->scale + s->offset);
                    ok = 1;
                }
            }
            printf("%-20s %-12s %4d %14s %-8s %s\n", s->name, bc->name, s->unit_id, val,
                   s->unit[0] ? s->unit : "-", result);
            if (ok) {
                good++;
            } else {
                char what[128];
                snprintf(what, sizeof(what), "sensor %s does not read", s->name);
                problem(v, what);
            }
        }
        if (drv)
            ops->close(drv);
    }
    printf("%u of %u sensors read\n", good, cfg->n_sensors);
}

/* ---- TLS -------------------------------------------------------------------------------- */

/* The most useful OpenSSL reason on the error queue ("certificate verify failed"), or what. */
static const char *ssl_reason(const char *what)
{
    static char buf[256];
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (!last)
        return what;
    const char *r = ERR_reason_error_string(last);
    snprintf(buf, sizeof(buf), "%s", r ? r : what);
    return buf;
}

/* TCP connect bounded by NET_TIMEOUT_MS; the socket is left blocking, with send/receive
 * timeouts so the handshake is bounded too. -1 with a reason in err. */
static int tcp_connect(const char *host, int port, char *err, size_t errlen)
{
    char ps[8];
    snprintf(ps, sizeof(ps), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(g));
        return -1;
    }
    int fd = -1, e = ETIMEDOUT;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            e = errno;
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int so = 0;
        socklen_t sl = sizeof(so);
        if (poll(&p, 1, NET_TIMEOUT_MS) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) != 0 || so != 0) {
            e = so ? so : ETIMEDOUT;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port, strerror(e));
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = NET_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Prints one certificate's subject and expiry; counts an expired one as a problem and one
 * expiring within EXPIRY_WARN_DAYS as a warning. */
static void report_expiry(X509 *c, const char *role, struct verdict *v)
{
    char subj[256];
    X509_NAME_oneline(X509_get_subject_name(c), subj, sizeof(subj));
    const ASN1_TIME *na = X509_get0_notAfter(c);
    struct tm tm;
    char date[32] = "?";
    if (ASN1_TIME_to_tm(na, &tm) == 1)
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", &tm);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, NULL, na);
    int expired = days < 0 || secs < 0 || X509_cmp_current_time(na) <= 0;
    int not_yet = X509_cmp_current_time(X509_get0_notBefore(c)) >= 0;
    if (expired) {
        line("FAIL", "%s %s expired on %s", role, subj, date);
        char what[96];
        snprintf(what, sizeof(what), "%s expired", role);
        problem(v, what);
    } else if (not_yet) {
        line("FAIL", "%s %s is not valid yet (is the clock right? check the date)", role, subj);
        char what[96];
        snprintf(what, sizeof(what), "%s not valid yet", role);
        problem(v, what);
    } else if (days <= EXPIRY_WARN_DAYS) { /* 30 whole days or fewer left */
        line("WARN", "%s %s expires on %s, in %d days (renew it)", role, subj, date, days);
        v->warnings++;
    } else {
        line("ok", "%s %s expires on %s (%d days)", role, subj, date, days);
    }
}

static void check_tls(const struct pdm_config *cfg, struct verdict *v)
{
    struct pdm_mqtt_uri mu;
    char why[160];
    printf("\nBROKER %s\n", cfg->uri);
    if (pdm_mqtt_uri_parse(cfg->uri, &mu, why, sizeof(why)) != 0) {
        line("FAIL", "cannot parse the broker URI '%s': %s", cfg->uri, why);
        problem(v, "broker URI");
        return;
    }
    const char *host = mu.host;
    int port = mu.port, tls = mu.tls;
    char err[512];
    if (!tls) {
        line("WARN", "plain-text MQTT (allow_plaintext = true): nothing is encrypted or verified");
        v->warnings++;
        int fd = tcp_connect(host, port, err, sizeof(err));
        if (fd < 0) {
            line("FAIL", "%s", err);
            problem(v, "broker unreachable");
            return;
        }
        line("ok", "TCP connection to %s:%d", host, port);
        close(fd);
        return;
    }

    /* local: CA certificates, the client certificate, and whether the key belongs to it */
    FILE *f = fopen(cfg->ca_file, "r");
    int n_ca = 0;
    if (f) {
        X509 *c;
        while ((c = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
            report_expiry(c, "CA (ca_file)", v);
            X509_free(c);
            n_ca++;
        }
        ERR_clear_error();
        fclose(f);
    }
    if (n_ca == 0) {
        line("FAIL", "ca_file %s holds no PEM certificate", cfg->ca_file);
        problem(v, "ca_file unusable");
    }
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    if ((f = fopen(cfg->cert_file, "r")) != NULL) {
        cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (!cert) {
        line("FAIL", "cert_file %s holds no PEM certificate", cfg->cert_file);
        problem(v, "cert_file unusable");
    } else {
        report_expiry(cert, "client certificate (cert_file)", v);
    }
    if ((f = fopen(cfg->key_file, "r")) != NULL) {
        /* no passphrase prompt: the agent runs unattended, so an encrypted key is unusable */
        key = PEM_read_PrivateKey(f, NULL, NULL, (void *)"");
        fclose(f);
    }
    ERR_clear_error();
    int key_ok = 0;
    if (!key) {
        line("FAIL", "key_file %s holds no usable private key (PEM, not encrypted)", cfg->key_file);
        problem(v, "key_file unusable");
    } else if (cert && X509_check_private_key(cert, key) == 1) {
        line("ok", "key_file matches cert_file");
        key_ok = 1;
    } else if (cert) {
        line("FAIL", "key and certificate do not match: key_file %s is not the key of cert_file %s",
             cfg->key_file, cfg->cert_file);
        problem(v, "key and certificate do not match");
    }
    ERR_clear_error();
    X509_free(cert);
    EVP_PKEY_free(key);

    /* remote: the handshake. Verification is done by OpenSSL during the handshake, but we let
     * the handshake finish (SSL_VERIFY_NONE) and read the result, so that the report can show
     * the broker's chain even when it does not verify. */
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    int fd = -1;
    if (!ctx) {
        line("FAIL", "OpenSSL: %s", ssl_reason("cannot create a TLS context"));
        problem(v, "TLS");
        return;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1)
        ERR_clear_error(); /* reported above */
    if (key_ok && (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1 ||
                   SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1)) {
        line("FAIL", "cannot load cert_file/key_file: %s", ssl_reason("?"));
        problem(v, "client certificate");
    }
    fd = tcp_connect(host, port, err, sizeof(err));
    if (fd < 0) {
        line("FAIL", "%s", err);
        problem(v, "broker unreachable");
        goto out;
    }
    ssl = SSL_new(ctx);
    if (!ssl)
        goto out;
    SSL_set_fd(ssl, fd);
    struct in6_addr a6;
    struct in_addr a4;
    int is_ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(ssl, host);
    if (SSL_connect(ssl) != 1) {
        line("FAIL", "TLS handshake with %s:%d failed: %s", host, port,
             ssl_reason("connection closed or timed out"));
        problem(v, "TLS handshake failed");
        goto out;
    }
    line("ok", "TLS connection to %s:%d (%s, %s)", host, port, SSL_get_version(ssl),
         SSL_get_cipher_name(ssl));

    long vr = SSL_get_verify_result(ssl);
    if (vr == X509_V_OK) {
        line("ok", "the broker's certificate chain verifies against ca_file %s", cfg->ca_file);
    } else {
        line("FAIL", "the broker's certificate chain does not verify against ca_file %s: %s",
             cfg->ca_file, X509_verify_cert_error_string(vr));
        problem(v, "broker certificate chain does not verify");
    }
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (!peer) {
        line("FAIL", "the broker presented no certificate");
        problem(v, "no broker certificate");
        goto out;
    }
    int hm = is_ip ? X509_check_ip_asc(peer, host, 0) : X509_check_host(peer, host, 0, 0, NULL);
    if (hm == 1) {
        line("ok", "host name %s matches the broker's certificate", host);
    } else {
        char subj[256];
        X509_NAME_oneline(X509_get_subject_name(peer), subj, sizeof(subj));
        line("FAIL", "host name %s does not match the broker's certificate (%s)", host, subj);
        problem(v, "host name does not match");
    }
    X509_free(peer);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    for (int i = 0; chain && i < sk_X509_num(chain); i++)
        report_expiry(sk_X509_value(chain, i), i == 0 ? "broker certificate" : "broker chain", v);

    /* With TLS 1.3 a broker that refuses our certificate says so just after the handshake:
     * wait briefly for that alert (a broker waits for CONNECT and sends nothing else). */
    struct timeval tv = {.tv_sec = 0, .tv_usec = ALERT_WAIT_MS * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char b;
    int r = SSL_peek(ssl, &b, 1);
    int se = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);
    if (r > 0 || se == SSL_ERROR_WANT_READ || (se == SSL_ERROR_SYSCALL && errno == EAGAIN)) {
        line("ok", "the broker accepted the TLS session%s",
             key_ok ? " with our client certificate" : "");
    } else {
        line("FAIL", "the broker closed the TLS session: %s (it refuses our client certificate?)",
             ssl_reason("connection closed"));
        problem(v, "broker refused the session");
    }
    ERR_clear_error();
out:
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
}

/* The requests the agent will send on each bus (coalesced; drivers/plan.h), so a field
 * engineer sees how many transactions a line carries per period before anything is wired. */
static void print_plans(const struct pdm_config *cfg)
{
    for (uint32_t b = 0; b < cfg->n_buses; b++) {
        if (cfg->buses[b].driver != PDM_DRIVER_MODBUS_TCP &&
            cfg->buses[b].driver != PDM_DRIVER_MODBUS_RTU)
            continue; /* only Modbus lines carry requests */
        struct pdm_plan plan;
        if (pdm_plan_for_bus(&plan, &cfg->buses[b], b, cfg->sensors, cfg->n_sensors) != 0) {
            printf("\nbus %s: cannot plan its requests\n", cfg->buses[b].name);
            continue;
        }
        printf("\nbus %s: %u request%s per cycle\n", cfg->buses[b].name, plan.n_reqs,
               plan.n_reqs == 1 ? "" : "s");
        for (uint32_t r = 0; r < plan.n_reqs; r++) {
            char line[512];
            pdm_plan_format(&plan, r, line, sizeof(line));
            printf("  %s\n", line);
        }
        pdm_plan_free(&plan);
    }
}

int cmd_check(int argc, char **argv)
{
    enum { O_HELP = 256 };
    static const struct option longopts[] = {
        {"config", required_argument, 0, 'c'},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    const char *path = "/etc/pdm-agent/agent.conf";
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return PDMCTL_EXIT_OK;
        default: /* ':' a value is missing, '?' unknown */
            return pdmctl_cli_bad_option("check", c, argv, usage);
        }
    }
    if (optind < argc)
        return pdmctl_cli_extra_arg("check", argv[optind], usage);

    static struct pdm_config cfg; /* large; once */
    struct pdm_diag diag = {.out = stderr};
    int errors = pdm_config_load(path, &cfg, &diag);
    if (errors > 0) {
        fprintf(stderr, "%s: %d error%s in the configuration; not OK\n", path, errors,
                errors == 1 ? "" : "s");
        pdm_config_free(&cfg);
        return PDMCTL_EXIT_CONFIG;
    }
    printf("configuration OK\n");
    print_plans(&cfg);
    fflush(stdout);

    struct verdict v = {0};
    check_sensors(&cfg, &v);
    fflush(stdout);
    check_tls(&cfg, &v);
    pdm_config_free(&cfg);

    if (v.problems) {
        printf("\nNOT READY: %d problem%s: %s\n", v.problems, v.problems == 1 ? "" : "s",
               v.summary);
        return PDMCTL_EXIT_FAIL;
    }
    printf("\nREADY%s\n", v.warnings ? " (with warnings above)" : "");
    return PDMCTL_EXIT_OK;
}
