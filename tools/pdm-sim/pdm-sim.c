/* pdm-sim: a Modbus TCP server that plays a refrigeration compressor, for demos and tests.
 *
 * Register map (holding registers, and the same values in input registers):
 *   0-1  temperature   degC  float32
 *   2-3  vibration RMS mm/s  float32
 *   4-5  power         W     float32
 *   6    running flag        u16 (1)
 * Float words follow --word-order. The scenario runs on the time since start: healthy for
 * --healthy-s, then a linear drift over --degrade-s to the failing values, which then stay.
 * Noise is a function of (--seed, 100 ms time slot), so two runs with one seed agree.
 *
 * One process, one poll() loop over the listening socket, the clients and a signalfd; signals
 * are blocked and read from the signalfd, so SIGTERM/SIGINT stop the loop at once. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <modbus.h>

#include "agent/clock.h"
#include "drivers/registers.h"

#define MAX_CLIENTS   32   /* connections served at once; more are accepted and closed */
#define PROGRESS_MS   5000 /* one progress line per 5 s */
#define NOISE_SLOT_MS 100  /* noise changes every 100 ms */
#define N_REGS        7

enum scenario { SCEN_DEGRADING, SCEN_HEALTHY, SCEN_FAILING };

struct opts {
    int port;
    char bind[64];
    enum pdm_word_order order;
    enum scenario scenario;
    long healthy_s, degrade_s;
    int unit_id; /* -1 = answer every unit id */
    uint64_t seed;
    int quiet;
};

struct state {
    double temp, vib, power;
    const char *phase;
};

static const struct state healthy = {45.0, 2.5, 800.0, "healthy"};
static const struct state failing = {62.0, 9.0, 1050.0, "failing"};

static void usage(FILE *f)
{
    fprintf(f, "usage: pdm-sim [OPTIONS]\n"
               "Modbus TCP simulator of a refrigeration compressor.\n\n"
               "  --port N            TCP port (default 1502)\n"
               "  --bind ADDR         IPv4 address to listen on (default 127.0.0.1)\n"
               "  --word-order ORDER  big|little|ABCD|CDAB|BADC|DCBA for the float32 registers\n"
               "                      (default ABCD)\n"
               "  --scenario S        degrading|healthy|failing (default degrading)\n"
               "  --healthy-s N       seconds healthy before degrading (default 20)\n"
               "  --degrade-s N       seconds from healthy to failing (default 20)\n"
               "  --unit-id N         answer only this unit id (1..247); others get no answer\n"
               "  --seed N            noise seed (default 1)\n"
               "  --quiet             no progress lines\n"
               "  --help, --version\n\n"
               "registers (holding and input): 0-1 temperature degC float32, 2-3 vibration mm/s\n"
               "float32, 4-5 power W float32, 6 running flag u16.\n"
               "SIGUSR1 jumps to the failing state; SIGTERM/SIGINT stop.\n");
}

static int parse_long(const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "pdm-sim: %s: expected a whole number %ld..%ld, got '%s'\n", opt, min, max,
                s);
        return -1;
    }
    *out = v;
    return 0;
}

/* splitmix64: a small, well-mixed hash; enough for reproducible noise. */
static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* Uniform in [-1, 1), fixed for (seed, slot, channel). */
static double noise(uint64_t seed, int64_t slot, int channel)
{
    uint64_t h = mix(seed ^ mix((uint64_t)slot * 4 + (uint64_t)channel));
    return (double)(h >> 11) / 4503599627370496.0 - 1.0; /* 53 bits / 2^52 - 1 */
}

static void compute(const struct opts *o, int64_t elapsed_ms, int forced_fail, struct state *st)
{
    double t = (double)elapsed_ms / 1000.0, frac;
    if (forced_fail || o->scenario == SCEN_FAILING)
        frac = 1.0;
    else if (o->scenario == SCEN_HEALTHY || t < (double)o->healthy_s)
        frac = 0.0;
    else if (o->degrade_s > 0 && t < (double)(o->healthy_s + o->degrade_s))
        frac = (t - (double)o->healthy_s) / (double)o->degrade_s;
    else
        frac = 1.0;
    st->phase = frac <= 0.0 ? "healthy" : frac >= 1.0 ? "failing" : "degrading";

    int64_t slot = elapsed_ms / NOISE_SLOT_MS;
    st->temp = healthy.temp + frac * (failing.temp - healthy.temp) + 0.3 * noise(o->seed, slot, 0);
    st->vib = healthy.vib + frac * (failing.vib - healthy.vib) + 0.1 * noise(o->seed, slot, 1);
    st->power =
        healthy.power + frac * (failing.power - healthy.power) + 8.0 * noise(o->seed, slot, 2);
}

static void store(modbus_mapping_t *map, enum pdm_word_order order, const struct state *st)
{
    uint16_t r[N_REGS];
    pdm_reg_encode(PDM_TYPE_FLOAT32, order, st->temp, &r[0]);
    pdm_reg_encode(PDM_TYPE_FLOAT32, order, st->vib, &r[2]);
    pdm_reg_encode(PDM_TYPE_FLOAT32, order, st->power, &r[4]);
    r[6] = 1;
    memcpy(map->tab_registers, r, sizeof(r));
    memcpy(map->tab_input_registers, r, sizeof(r));
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    enum {
        O_PORT = 256,
        O_BIND,
        O_ORDER,
        O_SCEN,
        O_HEALTHY,
        O_DEGRADE,
        O_UNIT,
        O_SEED,
        O_QUIET,
        O_HELP,
        O_VERSION
    };
    static const struct option longopts[] = {
        {"port", required_argument, 0, O_PORT},
        {"bind", required_argument, 0, O_BIND},
        {"word-order", required_argument, 0, O_ORDER},
        {"scenario", required_argument, 0, O_SCEN},
        {"healthy-s", required_argument, 0, O_HEALTHY},
        {"degrade-s", required_argument, 0, O_DEGRADE},
        {"unit-id", required_argument, 0, O_UNIT},
        {"seed", required_argument, 0, O_SEED},
        {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},
        {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0},
    };
    long v;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case O_PORT:
            if (parse_long("--port", optarg, 1, 65535, &v) < 0)
                return 2;
            o->port = (int)v;
            break;
        case O_BIND: {
            struct in_addr a;
            if (strlen(optarg) >= sizeof(o->bind) || inet_pton(AF_INET, optarg, &a) != 1) {
                fprintf(stderr, "pdm-sim: --bind: expected an IPv4 address, got '%s'\n", optarg);
                return 2;
            }
            strcpy(o->bind, optarg);
            break;
        }
        case O_ORDER:
            if (pdm_word_order_parse(optarg, &o->order) < 0) {
                fprintf(stderr,
                        "pdm-sim: --word-order: expected big|little|ABCD|CDAB|BADC|DCBA, got "
                        "'%s'\n",
                        optarg);
                return 2;
            }
            break;
        case O_SCEN:
            if (strcmp(optarg, "degrading") == 0)
                o->scenario = SCEN_DEGRADING;
            else if (strcmp(optarg, "healthy") == 0)
                o->scenario = SCEN_HEALTHY;
            else if (strcmp(optarg, "failing") == 0)
                o->scenario = SCEN_FAILING;
            else {
                fprintf(stderr,
                        "pdm-sim: --scenario: expected degrading|healthy|failing, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case O_HEALTHY:
            if (parse_long("--healthy-s", optarg, 0, 86400 * 365, &o->healthy_s) < 0)
                return 2;
            break;
        case O_DEGRADE:
            if (parse_long("--degrade-s", optarg, 0, 86400 * 365, &o->degrade_s) < 0)
                return 2;
            break;
        case O_UNIT:
            if (parse_long("--unit-id", optarg, 1, 247, &v) < 0)
                return 2;
            o->unit_id = (int)v;
            break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 0);
            if (errno || end == optarg || *end || optarg[0] == '-') {
                fprintf(stderr, "pdm-sim: --seed: expected a non-negative number, got '%s'\n",
                        optarg);
                return 2;
            }
            o->seed = s;
            break;
        }
        case O_QUIET:
            o->quiet = 1;
            break;
        case O_HELP:
            usage(stdout);
            return 0;
        case O_VERSION:
            printf("pdm-sim %s\n", PDM_VERSION);
            return 0;
        case ':':
            fprintf(stderr, "pdm-sim: %s needs a value (try --help)\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "pdm-sim: unknown option '%s' (try --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pdm-sim: unexpected argument '%s' (try --help)\n", argv[optind]);
        return 2;
    }
    return -1; /* go on */
}

static unsigned long long n_answered, n_ignored; /* requests, reported at exit */

/* Serves one readable client. Returns -1 when the connection is to be closed. */
static int serve(modbus_t *mb, int fd, const struct opts *o, modbus_mapping_t *map,
                 int64_t elapsed_ms, int forced_fail)
{
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    modbus_set_socket(mb, fd);
    int n = modbus_receive(mb, query);
    if (n < 0)
        return -1; /* closed by the peer, or a broken frame */
    if (n == 0)
        return 0;
    /* The TCP server in libmodbus ignores the unit id (MBAP byte 6): filter it here, and stay
     * silent like an absent device behind a gateway. */
    int hl = modbus_get_header_length(mb);
    if (o->unit_id > 0 && hl >= 1 && n >= hl && query[hl - 1] != o->unit_id) {
        n_ignored++;
        return 0;
    }
    n_answered++;
    struct state st;
    compute(o, elapsed_ms, forced_fail, &st);
    store(map, o->order, &st);
    return modbus_reply(mb, query, n, map) < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct opts o = {
        .port = 1502,
        .bind = "127.0.0.1",
        .order = PDM_ORDER_ABCD,
        .scenario = SCEN_DEGRADING,
        .healthy_s = 20,
        .degrade_s = 20,
        .unit_id = -1,
        .seed = 1,
    };
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        perror("pdm-sim: signalfd");
        return 1;
    }

    modbus_t *mb = modbus_new_tcp(o.bind, o.port);
    modbus_mapping_t *map = modbus_mapping_new(0, 0, N_REGS, N_REGS);
    if (!mb || !map) {
        fprintf(stderr, "pdm-sim: cannot set up the Modbus server: %s\n", modbus_strerror(errno));
        return 1;
    }
    /* a client that sends half a frame may hold the loop for at most this long */
    modbus_set_indication_timeout(mb, 1, 0);
    modbus_set_byte_timeout(mb, 0, 500000);
    int lfd = modbus_tcp_listen(mb, 8);
    if (lfd < 0) {
        fprintf(stderr, "pdm-sim: cannot listen on %s:%d: %s\n", o.bind, o.port,
                modbus_strerror(errno));
        modbus_mapping_free(map);
        modbus_free(mb);
        return 1;
    }

    int64_t start = pdm_mono_ms();
    struct state st;
    compute(&o, 0, 0, &st);
    store(map, o.order, &st);
    char unit[16] = "any";
    if (o.unit_id > 0)
        snprintf(unit, sizeof(unit), "%d", o.unit_id);
    printf("pdm-sim: listening on %s:%d, unit id %s, word order %s, scenario %s "
           "(healthy %ld s, degrading %ld s)\n",
           o.bind, o.port, unit, pdm_word_order_name(o.order),
           o.scenario == SCEN_HEALTHY   ? "healthy"
           : o.scenario == SCEN_FAILING ? "failing"
                                        : "degrading",
           o.healthy_s, o.degrade_s);
    fflush(stdout);

    struct pollfd pfd[2 + MAX_CLIENTS];
    int nclients = 0, forced_fail = 0, running = 1;
    int64_t next_progress = start + PROGRESS_MS;
    while (running) {
        pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = lfd, .events = POLLIN};
        int64_t now = pdm_mono_ms();
        int timeout = next_progress > now ? (int)(next_progress - now) : 0;
        int n = poll(pfd, (nfds_t)(2 + nclients), timeout);
        if (n < 0 && errno != EINTR) {
            perror("pdm-sim: poll");
            break;
        }
        now = pdm_mono_ms();
        if (now >= next_progress) {
            if (!o.quiet) {
                compute(&o, now - start, forced_fail, &st);
                printf("pdm-sim: t=%llds phase=%s temp=%.1f vib=%.1f power=%.0f clients=%d\n",
                       (long long)(now - start) / 1000, st.phase, st.temp, st.vib, st.power,
                       nclients);
                fflush(stdout);
            }
            next_progress += PROGRESS_MS;
            if (next_progress <= now)
                next_progress = now + PROGRESS_MS;
        }
        if (n <= 0)
            continue;

        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGUSR1) {
                    forced_fail = 1;
                    printf("pdm-sim: SIGUSR1: now failing\n");
                    fflush(stdout);
                } else {
                    running = 0;
                }
            }
        }
        /* clients first: accepting rewrites the pollfd array */
        for (int i = 0; i < nclients; i++) {
            if (!pfd[2 + i].revents)
                continue;
            if (serve(mb, pfd[2 + i].fd, &o, map, now - start, forced_fail) < 0) {
                close(pfd[2 + i].fd);
                pfd[2 + i] = pfd[2 + nclients - 1];
                nclients--;
                i--;
            }
        }
        if (pfd[1].revents & POLLIN) {
            int s = lfd;
            int cfd = modbus_tcp_accept(mb, &s);
            if (cfd >= 0) {
                if (nclients < MAX_CLIENTS)
                    pfd[2 + nclients++] = (struct pollfd){.fd = cfd, .events = POLLIN};
                else
                    close(cfd);
            }
        }
    }

    /* also with --quiet: tests count the requests a backed-off unit id still receives */
    printf("pdm-sim: stopping after %llu requests answered, %llu ignored for other unit ids\n",
           n_answered, n_ignored);
    for (int i = 0; i < nclients; i++)
        close(pfd[2 + i].fd);
    close(lfd);
    close(sfd);
    modbus_set_socket(mb, -1);
    modbus_mapping_free(map);
    modbus_free(mb);
    return 0;
}
