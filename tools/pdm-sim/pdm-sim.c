/* pdm-sim: a Modbus TCP or RTU server that plays a refrigeration compressor, for demos and tests.
 *
 * Register map (holding registers, and the same values in input registers):
 *   0-1  temperature   degC  float32
 *   2-3  vibration RMS mm/s  float32
 *   4-5  power         W     float32
 *   6    running flag        u16 (1)
 * Coil 0 is "compressor running" (1) and discrete input 0 "door open" (1 during the failing
 * phase of the cycle scenario, else 0).
 * Float words follow --word-order. --max-read and --hole make it refuse reads like real devices
 * do (exception 3 for reads larger than it takes, exception 2 for unmapped addresses), and the
 * requests it answered are counted per function code and printed at stop, so tests can see on
 * the wire how many requests an agent makes. The scenario runs on the time since start: healthy for
 * --healthy-s, then a linear drift over --degrade-s to the failing values, which then stay.
 * "cycle" repeats healthy -> degrading -> failing -> recovering forever (failing lasts
 * --degrade-s / 2, recovering drifts back over --degrade-s), so an agent raises, escalates and
 * clears alerts again and again: crash and outage tests get many alert events from one run.
 * Noise is a function of (--seed, 100 ms time slot), so two runs with one seed agree.
 *
 * One process, one poll() loop over the listening socket and the clients (TCP) or the serial
 * port (RTU), plus a signalfd; signals are blocked and read from the signalfd, so SIGTERM/SIGINT
 * stop the loop at once.
 *
 * RTU framing is done here, not by modbus_receive(): libmodbus 3.1.6 drops a request for another
 * slave and then also swallows the next frame as that slave's answer, so a live unit behind a
 * dead one on the same line would lose every other request (checked over a socat pty pair). It
 * can also filter only one slave id, and a test wants several on one line. modbus_reply() still
 * builds the answers. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
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

#include "lib/clock.h"
#include "drivers/registers.h"

#define MAX_CLIENTS   32   /* connections served at once; more are accepted and closed */
#define PROGRESS_MS   5000 /* one progress line per 5 s */
#define NOISE_SLOT_MS 100  /* noise changes every 100 ms */
#define N_REGS        7
#define FRAME_GAP_MS                                                                               \
    50 /* an unfinished RTU frame idle this long is dropped (3.5 chars at 1200                     \
          baud are 32 ms; a pty delivers a frame in one piece) */
#define MAX_UNIT 247

enum scenario { SCEN_DEGRADING, SCEN_HEALTHY, SCEN_FAILING, SCEN_CYCLE };

struct opts {
    int port;
    char bind[64];
    enum pdm_word_order order;
    enum scenario scenario;
    long healthy_s, degrade_s;
    unsigned char unit_on[MAX_UNIT + 1]; /* unit ids answered; none set = answer every one */
    int n_units;
    char unit_list[128]; /* as given, for the start line */
    char rtu[PATH_MAX];  /* serial device; empty = Modbus TCP */
    int baud, data_bits, stop_bits;
    char parity;
    uint64_t seed;
    int quiet;
    int max_read;         /* registers per read before exception 3; 0 = protocol limit */
    int hole_lo, hole_hi; /* registers answering exception 2; hole_lo < 0 = none */
    long freeze_s;        /* values stop changing after this many seconds; < 0 = never */
};

struct state {
    double temp, vib, power;
    const char *phase;
    int door_open;
};

static const struct state healthy = {45.0, 2.5, 800.0, "healthy", 0};
static const struct state failing = {62.0, 9.0, 1050.0, "failing", 0};

static void usage(FILE *f)
{
    fprintf(f, "usage: pdm-sim [OPTIONS]\n"
               "Modbus TCP or RTU simulator of a refrigeration compressor.\n\n"
               "  --port N            TCP port (default 1502)\n"
               "  --bind ADDR         IPv4 address to listen on (default 127.0.0.1)\n"
               "  --rtu DEVICE        serve Modbus RTU on this serial port instead of TCP\n"
               "  --baud N            RTU: 1200..921600 (default 9600)\n"
               "  --parity P          RTU: N|E|O (default N)\n"
               "  --data-bits N       RTU: 7|8 (default 8)\n"
               "  --stop-bits N       RTU: 1|2 (default 1)\n"
               "  --word-order ORDER  big|little|ABCD|CDAB|BADC|DCBA for the float32 registers\n"
               "                      (default ABCD)\n"
               "  --scenario S        degrading|healthy|failing|cycle (default degrading)\n"
               "                      cycle: healthy -> degrading -> failing -> recovering ->\n"
               "                      healthy, over and over; failing lasts --degrade-s/2 and\n"
               "                      recovering --degrade-s (needs --degrade-s >= 1)\n"
               "  --healthy-s N       seconds healthy before degrading (default 20)\n"
               "  --degrade-s N       seconds from healthy to failing (default 20)\n"
               "  --unit-id N[,N...]  answer only these unit ids (1..247), each with the same\n"
               "                      compressor; others get no answer (default: every id)\n"
               "  --max-read N        answer exception 3 (illegal data value) to register reads\n"
               "                      of more than N registers, like devices that reject large\n"
               "                      reads (1..125)\n"
               "  --hole A[-B]        registers A..B are unmapped: reads touching them get\n"
               "                      exception 2 (illegal data address)\n"
               "  --freeze N          values stop changing after N seconds, like a device\n"
               "                      whose sensor input froze (0..86400)\n"
               "  --seed N            noise seed (default 1)\n"
               "  --quiet             no progress lines\n"
               "  --help, --version\n\n"
               "registers (holding and input): 0-1 temperature degC float32, 2-3 vibration mm/s\n"
               "float32, 4-5 power W float32, 6 running flag u16. Coil 0: compressor running (1).\n"
               "Discrete input 0: door open (1 in the failing phase of --scenario cycle).\n"
               "At stop it prints the requests answered and those ignored for other unit ids,\n"
               "and the answered ones by function code with the exceptions among them.\n"
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

/* "1,3,7": each id 1..247, at most once. */
static int parse_units(const char *s, struct opts *o)
{
    if (strlen(s) >= sizeof(o->unit_list)) {
        fprintf(stderr, "pdm-sim: --unit-id: list too long: '%s'\n", s);
        return -1;
    }
    char buf[sizeof(o->unit_list)];
    strcpy(buf, s);
    memset(o->unit_on, 0, sizeof(o->unit_on));
    o->n_units = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long v;
        if (parse_long("--unit-id", tok, 1, MAX_UNIT, &v) < 0)
            return -1;
        if (o->unit_on[v]) {
            fprintf(stderr, "pdm-sim: --unit-id: %ld is listed twice\n", v);
            return -1;
        }
        o->unit_on[v] = 1;
        o->n_units++;
    }
    if (o->n_units == 0) {
        fprintf(stderr, "pdm-sim: --unit-id: expected ids 1..247 separated by ',', got '%s'\n", s);
        return -1;
    }
    strcpy(o->unit_list, s);
    return 0;
}

static int unit_served(const struct opts *o, int unit)
{
    return unit >= 1 && unit <= MAX_UNIT && (o->n_units == 0 || o->unit_on[unit]);
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

/* Position in one cycle of --scenario cycle, in ms: healthy, degrading (ramp up over degrade),
 * failing (degrade / 2), recovering (ramp down over degrade). Sets *phase; returns 0..1. */
static double cycle_frac(const struct opts *o, int64_t elapsed_ms, const char **phase)
{
    int64_t h = (int64_t)o->healthy_s * 1000, d = (int64_t)o->degrade_s * 1000;
    int64_t t = elapsed_ms % (h + d + d / 2 + d); /* d >= 1000: parse_args checks it */
    if (t < h) {
        *phase = "healthy";
        return 0.0;
    }
    t -= h;
    if (t < d) {
        *phase = "degrading";
        return (double)t / (double)d;
    }
    t -= d;
    if (t < d / 2) {
        *phase = "failing";
        return 1.0;
    }
    t -= d / 2;
    *phase = "recovering";
    return 1.0 - (double)t / (double)d;
}

static void compute(const struct opts *o, int64_t elapsed_ms, int forced_fail, struct state *st)
{
    /* a frozen device repeats its last values bit for bit, noise included */
    if (o->freeze_s >= 0 && elapsed_ms > o->freeze_s * 1000)
        elapsed_ms = o->freeze_s * 1000;
    double t = (double)elapsed_ms / 1000.0, frac;
    const char *phase = NULL;
    if (forced_fail || o->scenario == SCEN_FAILING)
        frac = 1.0;
    else if (o->scenario == SCEN_CYCLE)
        frac = cycle_frac(o, elapsed_ms, &phase);
    else if (o->scenario == SCEN_HEALTHY || t < (double)o->healthy_s)
        frac = 0.0;
    else if (o->degrade_s > 0 && t < (double)(o->healthy_s + o->degrade_s))
        frac = (t - (double)o->healthy_s) / (double)o->degrade_s;
    else
        frac = 1.0;
    if (!phase)
        phase = frac <= 0.0 ? "healthy" : frac >= 1.0 ? "failing" : "degrading";
    st->phase = phase;
    /* the door is an on/off signal that changes while the agent watches: in the cycle only */
    st->door_open = o->scenario == SCEN_CYCLE && strcmp(phase, "failing") == 0;

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
    map->tab_bits[0] = 1; /* compressor running */
    map->tab_input_bits[0] = (uint8_t)st->door_open;
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
        O_RTU,
        O_BAUD,
        O_PARITY,
        O_DATA_BITS,
        O_STOP_BITS,
        O_MAX_READ,
        O_HOLE,
        O_FREEZE,
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
        {"rtu", required_argument, 0, O_RTU},
        {"baud", required_argument, 0, O_BAUD},
        {"parity", required_argument, 0, O_PARITY},
        {"data-bits", required_argument, 0, O_DATA_BITS},
        {"stop-bits", required_argument, 0, O_STOP_BITS},
        {"max-read", required_argument, 0, O_MAX_READ},
        {"hole", required_argument, 0, O_HOLE},
        {"freeze", required_argument, 0, O_FREEZE},
        {"help", no_argument, 0, O_HELP},
        {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0},
    };
    long v;
    int c, tcp_opt = 0, serial_opt = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case O_PORT:
            if (parse_long("--port", optarg, 1, 65535, &v) < 0)
                return 2;
            o->port = (int)v;
            tcp_opt = 1;
            break;
        case O_BIND: {
            struct in_addr a;
            if (strlen(optarg) >= sizeof(o->bind) || inet_pton(AF_INET, optarg, &a) != 1) {
                fprintf(stderr, "pdm-sim: --bind: expected an IPv4 address, got '%s'\n", optarg);
                return 2;
            }
            strcpy(o->bind, optarg);
            tcp_opt = 1;
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
            else if (strcmp(optarg, "cycle") == 0)
                o->scenario = SCEN_CYCLE;
            else {
                fprintf(stderr,
                        "pdm-sim: --scenario: expected degrading|healthy|failing|cycle, got "
                        "'%s'\n",
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
            if (parse_units(optarg, o) < 0)
                return 2;
            break;
        case O_RTU:
            if (!*optarg || strlen(optarg) >= sizeof(o->rtu)) {
                fprintf(stderr, "pdm-sim: --rtu: expected a serial device path, got '%s'\n",
                        optarg);
                return 2;
            }
            strcpy(o->rtu, optarg);
            break;
        case O_BAUD:
            if (parse_long("--baud", optarg, 1200, 921600, &v) < 0)
                return 2;
            o->baud = (int)v;
            serial_opt = 1;
            break;
        case O_PARITY:
            if (strlen(optarg) != 1 || !strchr("NEOneo", optarg[0])) {
                fprintf(stderr, "pdm-sim: --parity: expected N|E|O, got '%s'\n", optarg);
                return 2;
            }
            o->parity = optarg[0] == 'n'   ? 'N'
                        : optarg[0] == 'e' ? 'E'
                        : optarg[0] == 'o' ? 'O'
                                           : optarg[0];
            serial_opt = 1;
            break;
        case O_DATA_BITS:
            if (parse_long("--data-bits", optarg, 7, 8, &v) < 0)
                return 2;
            o->data_bits = (int)v;
            serial_opt = 1;
            break;
        case O_STOP_BITS:
            if (parse_long("--stop-bits", optarg, 1, 2, &v) < 0)
                return 2;
            o->stop_bits = (int)v;
            serial_opt = 1;
            break;
        case O_MAX_READ:
            if (parse_long("--max-read", optarg, 1, 125, &v) < 0)
                return 2;
            o->max_read = (int)v;
            break;
        case O_FREEZE:
            if (parse_long("--freeze", optarg, 0, 86400, &v) < 0)
                return 2;
            o->freeze_s = v;
            break;
        case O_HOLE: {
            char lo[16], *dash = strchr(optarg, '-');
            long a, b;
            if (strlen(optarg) >= sizeof(lo) * 2 ||
                (dash && (size_t)(dash - optarg) >= sizeof(lo))) {
                fprintf(stderr, "pdm-sim: --hole: expected A or A-B (addresses), got '%s'\n",
                        optarg);
                return 2;
            }
            snprintf(lo, sizeof(lo), "%.*s", dash ? (int)(dash - optarg) : (int)strlen(optarg),
                     optarg);
            if (parse_long("--hole", lo, 0, 65535, &a) < 0 ||
                parse_long("--hole", dash ? dash + 1 : lo, a, 65535, &b) < 0)
                return 2;
            o->hole_lo = (int)a;
            o->hole_hi = (int)b;
            break;
        }
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
    if (o->rtu[0] && tcp_opt) {
        fprintf(stderr, "pdm-sim: --port and --bind are for Modbus TCP; not with --rtu\n");
        return 2;
    }
    if (!o->rtu[0] && serial_opt) {
        fprintf(stderr, "pdm-sim: --baud, --parity, --data-bits and --stop-bits need --rtu\n");
        return 2;
    }
    if (o->scenario == SCEN_CYCLE && o->degrade_s < 1) {
        fprintf(stderr, "pdm-sim: --scenario cycle needs --degrade-s of at least 1 (the failing "
                        "and recovering phases are derived from it)\n");
        return 2;
    }
    return -1; /* go on */
}

static unsigned long long n_answered, n_ignored; /* requests, reported at exit */
static unsigned long long n_by_fc[5];            /* answered reads by function code 1..4 */
static unsigned long long n_exceptions;          /* answers that were exceptions */
static unsigned long long n_garbled;             /* RTU frames dropped (CRC, unknown, cut off) */

/* Shared by both transports: what the loop needs besides its file descriptors. */
struct sim {
    const struct opts *o;
    modbus_t *mb;
    modbus_mapping_t *map;
    int sfd;
    int64_t start;
    int forced_fail;
    int running;
    int64_t next_progress;
    int serving; /* the transport is up: the request counts are worth printing at stop */
};

/* The second half of the start line, after the transport. */
static void print_scenario(struct sim *s)
{
    const struct opts *o = s->o;
    printf("word order %s, scenario %s (healthy %ld s, degrading %ld s",
           pdm_word_order_name(o->order),
           o->scenario == SCEN_HEALTHY   ? "healthy"
           : o->scenario == SCEN_FAILING ? "failing"
           : o->scenario == SCEN_CYCLE   ? "cycle"
                                         : "degrading",
           o->healthy_s, o->degrade_s);
    if (o->scenario == SCEN_CYCLE)
        printf(", failing %.1f s, recovering %ld s, repeating", (double)o->degrade_s / 2.0,
               o->degrade_s);
    printf(")\n");
    if (o->max_read)
        printf("pdm-sim: register reads of more than %d registers get exception 3\n", o->max_read);
    if (o->hole_lo >= 0)
        printf("pdm-sim: registers %d..%d are unmapped (exception 2)\n", o->hole_lo, o->hole_hi);
    fflush(stdout);
    s->serving = 1;
}

/* Prints the progress line when due; returns the ms until the next one. */
static int progress_tick(struct sim *s, int64_t now, const char *extra)
{
    if (now >= s->next_progress) {
        if (!s->o->quiet) {
            struct state st;
            compute(s->o, now - s->start, s->forced_fail, &st);
            printf("pdm-sim: t=%llds phase=%s temp=%.1f vib=%.1f power=%.0f %s\n",
                   (long long)(now - s->start) / 1000, st.phase, st.temp, st.vib, st.power, extra);
            fflush(stdout);
        }
        s->next_progress += PROGRESS_MS;
        if (s->next_progress <= now)
            s->next_progress = now + PROGRESS_MS;
    }
    return (int)(s->next_progress - now);
}

static void read_signals(struct sim *s)
{
    struct signalfd_siginfo si;
    while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGUSR1) {
            s->forced_fail = 1;
            printf("pdm-sim: SIGUSR1: now failing\n");
            fflush(stdout);
        } else {
            s->running = 0;
        }
    }
}

/* The exception --max-read or --hole asks for this read, or 0. libmodbus answers every other
 * refusal itself (addresses outside the map: exception 2). */
static int refusal(const struct opts *o, int fc, int addr, int count)
{
    if (fc != 3 && fc != 4)
        return 0;
    if (o->max_read && count > o->max_read)
        return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
    if (o->hole_lo >= 0 && addr <= o->hole_hi && addr + count - 1 >= o->hole_lo)
        return MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS;
    return 0;
}

/* Answers one well-formed request for a served unit with the registers of this moment. */
static int answer(struct sim *s, const uint8_t *req, int len)
{
    struct state st;
    n_answered++;
    compute(s->o, pdm_mono_ms() - s->start, s->forced_fail, &st);
    store(s->map, s->o->order, &st);
    int hl = modbus_get_header_length(s->mb);
    if (len < hl + 5)
        return modbus_reply(s->mb, req, len, s->map);
    int fc = req[hl], addr = req[hl + 1] << 8 | req[hl + 2], count = req[hl + 3] << 8 | req[hl + 4];
    if (fc >= 1 && fc <= 4)
        n_by_fc[fc]++;
    int exc = refusal(s->o, fc, addr, count);
    if (exc) {
        n_exceptions++;
        return modbus_reply_exception(s->mb, req, (unsigned)exc);
    }
    /* what libmodbus will refuse: past the end of the table it serves */
    int size = fc == 1   ? s->map->nb_bits
               : fc == 2 ? s->map->nb_input_bits
               : fc == 3 ? s->map->nb_registers
               : fc == 4 ? s->map->nb_input_registers
                         : 0;
    if (fc >= 1 && fc <= 4 && addr + count > size)
        n_exceptions++;
    return modbus_reply(s->mb, req, len, s->map);
}

/* Serves one readable client. Returns -1 when the connection is to be closed. */
static int serve_tcp(struct sim *s, int fd)
{
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    modbus_set_socket(s->mb, fd);
    int n = modbus_receive(s->mb, query);
    if (n < 0)
        return -1; /* closed by the peer, or a broken frame */
    if (n == 0)
        return 0;
    /* The TCP server in libmodbus ignores the unit id (MBAP byte 6): filter it here, and stay
     * silent like an absent device behind a gateway. */
    int hl = modbus_get_header_length(s->mb);
    if (hl >= 1 && n >= hl && !unit_served(s->o, query[hl - 1])) {
        n_ignored++;
        return 0;
    }
    return answer(s, query, n) < 0 ? -1 : 0;
}

static int run_tcp(struct sim *s)
{
    const struct opts *o = s->o;
    int lfd = modbus_tcp_listen(s->mb, 8);
    if (lfd < 0) {
        fprintf(stderr, "pdm-sim: cannot listen on %s:%d: %s\n", o->bind, o->port,
                modbus_strerror(errno));
        return 1;
    }
    printf("pdm-sim: listening on %s:%d, unit id %s, ", o->bind, o->port,
           o->n_units ? o->unit_list : "any");
    print_scenario(s);

    struct pollfd pfd[2 + MAX_CLIENTS];
    int nclients = 0;
    char extra[32];
    while (s->running) {
        pfd[0] = (struct pollfd){.fd = s->sfd, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = lfd, .events = POLLIN};
        snprintf(extra, sizeof(extra), "clients=%d", nclients);
        int timeout = progress_tick(s, pdm_mono_ms(), extra);
        int n = poll(pfd, (nfds_t)(2 + nclients), timeout);
        if (n < 0 && errno != EINTR) {
            perror("pdm-sim: poll");
            break;
        }
        if (n <= 0)
            continue;
        if (pfd[0].revents & POLLIN)
            read_signals(s);
        /* clients first: accepting rewrites the pollfd array */
        for (int i = 0; i < nclients; i++) {
            if (!pfd[2 + i].revents)
                continue;
            if (serve_tcp(s, pfd[2 + i].fd) < 0) {
                close(pfd[2 + i].fd);
                pfd[2 + i] = pfd[2 + nclients - 1];
                nclients--;
                i--;
            }
        }
        if (pfd[1].revents & POLLIN) {
            int l = lfd;
            int cfd = modbus_tcp_accept(s->mb, &l);
            if (cfd >= 0) {
                if (nclients < MAX_CLIENTS)
                    pfd[2 + nclients++] = (struct pollfd){.fd = cfd, .events = POLLIN};
                else
                    close(cfd);
            }
        }
    }
    for (int i = 0; i < nclients; i++)
        close(pfd[2 + i].fd);
    close(lfd);
    modbus_set_socket(s->mb, -1);
    return 0;
}

/* Modbus CRC-16 (polynomial 0xA001 reflected, start 0xFFFF), sent low byte first. */
static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xFFFF;
    while (n--) {
        crc ^= *p++;
        for (int i = 0; i < 8; i++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

/* Length of the RTU request at the start of buf including its CRC; 0 if more bytes are needed
 * to tell, -1 for a function code a server cannot frame. */
static int rtu_request_len(const uint8_t *buf, size_t have)
{
    if (have < 2)
        return 0;
    switch (buf[1]) {
    case 0x01: /* read coils / discrete inputs / holding / input registers */
    case 0x02:
    case 0x03:
    case 0x04:
    case 0x05: /* write single coil / register */
    case 0x06:
    case 0x08: /* diagnostics: sub-function + one word */
        return 8;
    case 0x07: /* read exception status, comm event counter/log, report slave id */
    case 0x0B:
    case 0x0C:
    case 0x11:
        return 4;
    case 0x16: /* mask write register */
        return 10;
    case 0x0F: /* write multiple coils / registers: byte count at offset 6 */
    case 0x10:
        return have < 7 ? 0 : 9 + buf[6];
    case 0x17: /* read/write multiple registers: byte count at offset 10 */
        return have < 11 ? 0 : 13 + buf[10];
    default:
        return -1;
    }
}

static int run_rtu(struct sim *s)
{
    const struct opts *o = s->o;
    if (modbus_connect(s->mb) < 0) {
        fprintf(stderr, "pdm-sim: cannot open %s: %s\n", o->rtu, modbus_strerror(errno));
        return 1;
    }
    int fd = modbus_get_socket(s->mb);
    printf("pdm-sim: serving Modbus RTU on %s (%d %d%c%d), unit id %s, ", o->rtu, o->baud,
           o->data_bits, o->parity, o->stop_bits, o->n_units ? o->unit_list : "any");
    print_scenario(s);

    /* Bytes of the frame being received. Frames are cut by length (from the function code) and
     * checked by CRC; after a bad frame everything is dropped until the line is quiet for
     * FRAME_GAP_MS, which is how a slave on a shared line finds the next frame start. */
    uint8_t buf[MODBUS_RTU_MAX_ADU_LENGTH];
    size_t have = 0;
    int resync = 0, rc = 0;
    int64_t last_byte = 0;
    char extra[48];
    while (s->running) {
        struct pollfd pfd[2] = {{.fd = s->sfd, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
        int64_t now = pdm_mono_ms();
        if ((have || resync) && now - last_byte >= FRAME_GAP_MS) {
            if (have && !resync)
                n_garbled++; /* cut off mid-frame */
            have = 0;
            resync = 0;
        }
        snprintf(extra, sizeof(extra), "requests=%llu", n_answered + n_ignored);
        int timeout = progress_tick(s, now, extra);
        if ((have || resync) && last_byte + FRAME_GAP_MS - now < timeout)
            timeout = (int)(last_byte + FRAME_GAP_MS - now);
        int n = poll(pfd, 2, timeout < 0 ? 0 : timeout);
        if (n < 0 && errno != EINTR) {
            perror("pdm-sim: poll");
            rc = 1;
            break;
        }
        if (n <= 0)
            continue;
        if (pfd[0].revents & POLLIN)
            read_signals(s);
        if (!(pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t got = read(fd, buf + have, sizeof(buf) - have);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (got <= 0) {
            /* a pty whose other end went away reads EIO: nothing more will come */
            fprintf(stderr, "pdm-sim: %s: cannot read the serial port: %s; stopping\n", o->rtu,
                    got < 0 ? strerror(errno) : "end of file");
            rc = 1;
            break;
        }
        last_byte = pdm_mono_ms();
        if (resync)
            continue; /* still inside a frame we could not make sense of */
        have += (size_t)got;
        while (have > 0) {
            int len = rtu_request_len(buf, have);
            if (len == 0 || (len > 0 && (size_t)len > have))
                break; /* wait for the rest */
            if (len < 0 || len > (int)sizeof(buf) ||
                crc16(buf, (size_t)len - 2) != (uint16_t)(buf[len - 2] | buf[len - 1] << 8)) {
                n_garbled++;
                have = 0;
                resync = 1;
                break;
            }
            /* unit 0 is a broadcast: nobody answers it on RTU, and this device only reads */
            if (!unit_served(o, buf[0])) {
                n_ignored++;
            } else {
                modbus_set_slave(s->mb, buf[0]);
                if (answer(s, buf, len) < 0)
                    fprintf(stderr, "pdm-sim: %s: cannot answer unit %d: %s\n", o->rtu, buf[0],
                            modbus_strerror(errno));
            }
            have -= (size_t)len;
            memmove(buf, buf + len, have);
        }
        if (have == sizeof(buf)) { /* cannot happen with the lengths above; be safe */
            n_garbled++;
            have = 0;
            resync = 1;
        }
    }
    modbus_close(s->mb);
    if (n_garbled)
        printf("pdm-sim: dropped %llu garbled or cut-off frames\n", n_garbled);
    return rc;
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
        .seed = 1,
        .baud = 9600,
        .parity = 'N',
        .data_bits = 8,
        .stop_bits = 1,
        .hole_lo = -1,
        .hole_hi = -1,
        .freeze_s = -1,
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

    modbus_t *mb = o.rtu[0] ? modbus_new_rtu(o.rtu, o.baud, o.parity, o.data_bits, o.stop_bits)
                            : modbus_new_tcp(o.bind, o.port);
    modbus_mapping_t *map = modbus_mapping_new(1, 1, N_REGS, N_REGS);
    if (!mb || !map) {
        fprintf(stderr, "pdm-sim: cannot set up the Modbus server: %s\n", modbus_strerror(errno));
        return 1;
    }
    /* a client that sends half a frame may hold the loop for at most this long */
    modbus_set_indication_timeout(mb, 1, 0);
    modbus_set_byte_timeout(mb, 0, 500000);

    struct sim s = {
        .o = &o,
        .mb = mb,
        .map = map,
        .sfd = sfd,
        .start = pdm_mono_ms(),
        .running = 1,
    };
    s.next_progress = s.start + PROGRESS_MS;
    struct state st;
    compute(&o, 0, 0, &st);
    store(map, o.order, &st);

    rc = o.rtu[0] ? run_rtu(&s) : run_tcp(&s);
    if (s.serving) {
        /* also with --quiet: tests count the requests a backed-off unit id still receives */
        printf("pdm-sim: stopping after %llu requests answered, %llu ignored for other unit ids\n",
               n_answered, n_ignored);
        printf("pdm-sim: answered by function: coils=%llu discrete=%llu holding=%llu input=%llu "
               "exceptions=%llu\n",
               n_by_fc[1], n_by_fc[2], n_by_fc[3], n_by_fc[4], n_exceptions);
    }
    close(sfd);
    modbus_mapping_free(map);
    modbus_free(mb);
    return rc;
}
