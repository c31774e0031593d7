/* agent.conf reader (schema in config.h and examples/agent.conf).
 *
 * Two passes over the file as read by ini_reader.c: the first counts and names the [bus],
 * [sensor] and [asset] sections and allocates cfg's arrays (the only allocation, at start-up:
 * about 1.7 KB per bus, 0.6 KB per sensor, 4 KB per asset); the second checks every section in
 * file order, so references may point further down the file.
 *
 * Each key is declared once, as one line of its section's table with its default: the key
 * engine is config_keys.c, the [agent], [mqtt], [bus], [sensor] and [asset] tables and the
 * rules between their keys are config_sections.c; this file has the [device] sections and
 * their profile files, and the whole file (section kinds, counting, order). */
#include "config_keys.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where `cmake --install` puts the shipped profiles (set by CMakeLists.txt). */
#ifndef PDM_PROFILE_DIR
#define PDM_PROFILE_DIR "/usr/local/share/pdm-agent/profiles"
#endif

/* [device NAME]: a Modbus device described by a profile file instead of [sensor] sections. */
struct device_cfg {
    uint32_t bus;
    int unit_id;
    int period_ms;
    char profile[PDM_NAME_MAX + 1];
    char only[512]; /* "reg1, reg2": a subset of the profile's registers; "" = all */
};

static const struct key_def device_keys[] = {
    {"bus", V_BUSREF, F_REQ, 0, 0, AT(device_cfg, bus), DEF_NONE},
    {"unit_id", V_INT, 0, 1, 247, AT(device_cfg, unit_id), DEF_I(1)},
    {"profile", V_DEVICE_ID, F_REQ, 0, 0, AT(device_cfg, profile), DEF_NONE},
    {"period_ms", V_INT, 0, 10, 86400000, AT(device_cfg, period_ms), DEF_I(1000)},
    {"only", V_STR, 0, 0, 0, AT(device_cfg, only), DEF_S("")},
};

/* A profile file: [profile] (name, description, defaults for its registers) and one
 * [register NAME] per value, with the same keys and meaning as a Modbus [sensor]. */
struct profile_head {
    char name[PDM_NAME_MAX + 1];
    char description[256];
    enum pdm_reg_table table;
    enum pdm_reg_type type;
    enum pdm_word_order order;
};

enum { HK_NAME, HK_DESCRIPTION, HK_TABLE, HK_TYPE, HK_ORDER }; /* indexes into profile_keys */
static const struct key_def profile_keys[] = {
    [HK_NAME] = {"name", V_DEVICE_ID, F_REQ, 0, 0, AT(profile_head, name), DEF_NONE},
    [HK_DESCRIPTION] = {"description", V_STR, F_REQ, 0, 0, AT(profile_head, description), DEF_NONE},
    [HK_TABLE] = {"table", V_TABLE, 0, 0, 0, AT(profile_head, table), DEF_I(PDM_TABLE_HOLDING)},
    [HK_TYPE] = {"type", V_TYPE, 0, 0, 0, AT(profile_head, type), DEF_NONE},
    [HK_ORDER] = {"word_order", V_ORDER, 0, 0, 0, AT(profile_head, order), DEF_I(PDM_ORDER_ABCD)},
};

/* A register starts as a [sensor] with every default of sensor_keys, then takes the [profile]
 * defaults (table, type, word_order): its own keys have no defaults of their own. */
enum { RK_TABLE, RK_ADDRESS, RK_TYPE }; /* indexes into register_keys */
static const struct key_def register_keys[] = {
    [RK_TABLE] = {"table", V_TABLE, 0, 0, 0, AT(pdm_sensor_cfg, table), DEF_NONE},
    [RK_ADDRESS] = {"address", V_INT, F_REQ, 0, 65535, AT(pdm_sensor_cfg, address), DEF_NONE},
    [RK_TYPE] = {"type", V_TYPE, 0, 0, 0, AT(pdm_sensor_cfg, type), DEF_NONE},
    {"word_order", V_ORDER, 0, 0, 0, AT(pdm_sensor_cfg, order), DEF_NONE},
    {"scale", V_NONZERO, 0, 0, 0, AT(pdm_sensor_cfg, scale), DEF_NONE},
    {"offset", V_DOUBLE, 0, 0, 0, AT(pdm_sensor_cfg, offset), DEF_NONE},
    {"unit", V_STR, 0, 0, 0, AT(pdm_sensor_cfg, unit), DEF_NONE},
};

static const char *const section_kinds[] = {"agent", "mqtt", "bus", "sensor", "asset", "device"};

/* A profile as read for the devices that name it; each file is read once per load. */
struct profile {
    char name[PDM_NAME_MAX + 1];
    char path[PDM_PATH_MAX];     /* "" when no file was found */
    int ok;                      /* found and read without errors */
    struct pdm_sensor_cfg *regs; /* one per [register]: name = register name; no bus yet */
    uint32_t n_regs;
};

/* ---- device profiles ------------------------------------------------------------------- */

const char *pdm_config_profile_dir(void)
{
    return PDM_PROFILE_DIR;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "a, b, c" (sorted) of the NAME.profile files in dir, appended to buf; returns how many. */
static size_t list_profiles(const char *dir, char *buf, size_t len)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char *names[64];
    size_t n = 0;
    const struct dirent *de;
    while ((de = readdir(d)) != NULL && n < N_ELEMS(names)) {
        size_t l = strlen(de->d_name);
        if (l > 8 && strcmp(de->d_name + l - 8, ".profile") == 0 &&
            (names[n] = strndup(de->d_name, l - 8)) != NULL)
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(buf);
        if (used + strlen(names[i]) + 8 < len)
            snprintf(buf + used, len - used, "%s%s", used ? ", " : "", names[i]);
        else if (used + 5 < len && !strstr(buf, ", ..."))
            strcat(buf, ", ...");
        free(names[i]);
    }
    return n;
}

/* Reads p->path into p (register templates). Errors name the profile file and its lines. */
static void read_profile(struct ctx *c, struct profile *p, const struct pdm_ini_section *dev,
                         const struct pdm_ini_entry *at)
{
    struct pdm_diag *diag = c->doc.diag;
    int before = diag->errors;
    struct ctx pc = {.cfg = c->cfg};
    int rc = pdm_ini_load(p->path, &pc.doc, diag);
    if (rc < 0) {
        pdm_ini_error(&c->doc, at->line, dev, at->key, "cannot read profile %s: %s", p->path,
                      strerror(-rc));
        pdm_ini_free(&pc.doc);
        return;
    }
    const struct pdm_ini_doc *doc = &pc.doc;
    size_t n = 0;
    for (size_t i = 0; i < doc->n_sections; i++)
        n += strcmp(doc->sections[i].kind, "register") == 0;
    if (n && !(p->regs = calloc(n, sizeof(*p->regs)))) {
        pdm_ini_free(&pc.doc);
        pdm_ini_error(&c->doc, at->line, dev, at->key, "out of memory reading %s", p->path);
        return;
    }

    /* the [profile] defaults apply to every register, wherever the section is in the file */
    struct profile_head head = {0};
    keys_defaults(profile_keys, N_ELEMS(profile_keys), &head);
    const struct pdm_ini_section *head_s = NULL;
    uint32_t head_ok = 0;
    static const char *const kinds[] = {"profile", "register"};
    for (size_t i = 0; i < doc->n_sections; i++) {
        const struct pdm_ini_section *s = &doc->sections[i];
        if (strcmp(s->kind, "profile") == 0) {
            if (*s->arg)
                pdm_ini_error(doc, s->line, s, NULL, "[profile] takes no name");
            head_ok = keys_apply(&pc, s, profile_keys, N_ELEMS(profile_keys), &head, NULL);
            head_s = s;
        } else if (strcmp(s->kind, "register") != 0) {
            const char *hint = pdm_ini_suggest(s->kind, kinds, N_ELEMS(kinds));
            pdm_ini_error(doc, s->line, s, NULL, "unknown section kind '%s' (%s%s%s)", s->kind,
                          hint ? "did you mean '" : "expected profile or register",
                          hint ? hint : "", hint ? "'?" : "");
        }
    }
    if (!head_s) {
        pdm_diag_error(diag, p->path, 0, "profile", NULL,
                       "required section [profile] is missing (name, description)");
    } else {
        const struct pdm_ini_entry *e = pdm_ini_get(head_s, "name");
        if ((head_ok >> HK_NAME) & 1u && strcmp(head.name, p->name) != 0)
            pdm_ini_error(doc, e->line, head_s, e->key,
                          "the file is %s.profile but names profile '%s': they must match", p->name,
                          head.name);
        e = pdm_ini_get(head_s, "type");
        if ((head_ok >> HK_TYPE) & 1u && head.type == PDM_TYPE_BOOL) {
            pdm_ini_error(doc, e->line, head_s, e->key,
                          "bool is implied by table = coil or discrete; it is no default type");
            head_ok &= ~(1u << HK_TYPE);
        }
    }
    int has_head_type = head_s && pdm_ini_get(head_s, "type");
    int head_type_ok = (head_ok >> HK_TYPE) & 1u;

    for (size_t i = 0; i < doc->n_sections; i++) {
        const struct pdm_ini_section *s = &doc->sections[i];
        if (strcmp(s->kind, "register") != 0)
            continue;
        if (!pdm_ini_is_name(s->arg, PDM_NAME_MAX, 0)) {
            pdm_ini_error(doc, s->line, s, NULL,
                          "register name must be 1 to %d characters from A-Z a-z 0-9 _ - (no "
                          "'.': sensors are named DEVICE.REGISTER)",
                          PDM_NAME_MAX);
            continue;
        }
        struct pdm_sensor_cfg *sn = &p->regs[p->n_regs++];
        pdm_config_sensor_defaults(sn);
        strcpy(sn->name, s->arg);
        sn->line = s->line;
        sn->table = head.table;
        if (head_type_ok)
            sn->type = head.type;
        sn->order = head.order;
        uint32_t ok = keys_apply(&pc, s, register_keys, N_ELEMS(register_keys), sn, NULL);
        int own_type = pdm_ini_get(s, "type") != NULL;
        config_check_register(&pc, s, sn, own_type || has_head_type,
                              own_type ? (int)((ok >> RK_TYPE) & 1u) : head_type_ok,
                              (ok >> RK_ADDRESS) & 1u);
    }
    if (!n)
        pdm_diag_error(diag, p->path, 0, "register", NULL,
                       "no [register NAME] section: a profile needs at least one");
    pdm_ini_free(&pc.doc);
    p->ok = diag->errors == before;
}

/* The profile a [device] names (entry at), read on first use. NULL when there is no such file
 * or the name is not valid (reported by load_device). */
static struct profile *find_profile(struct ctx *c, const struct pdm_ini_section *dev,
                                    const struct pdm_ini_entry *at)
{
    if (!pdm_ini_is_name(at->value, PDM_NAME_MAX, 0))
        return NULL;
    for (size_t i = 0; i < c->n_profiles; i++)
        if (strcmp(c->profiles[i].name, at->value) == 0)
            return &c->profiles[i];
    struct profile *grown = realloc(c->profiles, (c->n_profiles + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    c->profiles = grown;
    struct profile *p = &c->profiles[c->n_profiles++];
    memset(p, 0, sizeof(*p));
    strcpy(p->name, at->value);

    char local[PDM_PATH_MAX + 16];
    snprintf(local, sizeof(local), "%s/profiles", c->cfg->dir); /* dir < PDM_PATH_MAX: fits */
    const char *dirs[] = {local, PDM_PROFILE_DIR};
    for (size_t i = 0; i < N_ELEMS(dirs) && !p->path[0]; i++) {
        int w = snprintf(p->path, sizeof(p->path), "%s/%s.profile", dirs[i], p->name);
        if (w < 0 || (size_t)w >= sizeof(p->path) || access(p->path, F_OK) != 0)
            p->path[0] = '\0';
    }
    if (p->path[0]) {
        read_profile(c, p, dev, at);
        return p;
    }
    char found[400] = "";
    size_t n = list_profiles(local, found, sizeof(found));
    n += list_profiles(PDM_PROFILE_DIR, found, sizeof(found));
    pdm_ini_error(&c->doc, at->line, dev, at->key,
                  "no profile '%s': looked for %s.profile in %s and %s; profiles there: %s",
                  p->name, p->name, local, PDM_PROFILE_DIR, n ? found : "none");
    return p;
}

/* Comma-separated register names of `only` into sel[p->n_regs]; reports unknown names. */
static void select_registers(struct ctx *c, const struct pdm_ini_section *s,
                             const struct pdm_ini_entry *e, const struct profile *p,
                             unsigned char *sel)
{
    const char *names[256];
    size_t n_names = 0;
    for (uint32_t k = 0; k < p->n_regs && n_names < N_ELEMS(names); k++)
        names[n_names++] = p->regs[k].name;
    const char *v = e->value;
    for (;;) {
        v += strspn(v, " \t");
        size_t len = strcspn(v, ",");
        size_t end = len;
        while (end && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        char name[PDM_NAME_MAX + 1];
        if (!end) {
            pdm_ini_error(&c->doc, e->line, s, e->key,
                          "expected register names separated by commas, got '%s'", e->value);
            return;
        }
        snprintf(name, sizeof(name), "%.*s", (int)end, v);
        uint32_t k = 0;
        while (k < p->n_regs && (end > PDM_NAME_MAX || strcmp(p->regs[k].name, name) != 0))
            k++;
        if (k < p->n_regs && sel[k]) {
            pdm_ini_error(&c->doc, e->line, s, e->key, "register '%s' is listed twice", name);
        } else if (k < p->n_regs) {
            sel[k] = 1;
        } else {
            const char *hint = pdm_ini_suggest(name, names, n_names);
            char list[300] = "";
            for (size_t i = 0; !hint && i < n_names; i++) {
                size_t used = strlen(list);
                if (used + strlen(names[i]) + 8 >= sizeof(list)) {
                    strcat(list, ", ...");
                    break;
                }
                snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);
            }
            pdm_ini_error(&c->doc, e->line, s, e->key,
                          "profile '%s' has no register '%.*s' (%s%s%s)", p->name, (int)end, v,
                          hint ? "did you mean '" : "registers: ", hint ? hint : list,
                          hint ? "'?" : "");
        }
        if (!v[len])
            return;
        v += len + 1;
    }
}

/* A [device NAME] section becomes one sensor per (selected) register of its profile, named
 * NAME.REGISTER, appended to cfg->sensors (sized for them by register_sections). */
static void load_device(struct ctx *c, const struct pdm_ini_section *s)
{
    struct pdm_config *cfg = c->cfg;
    struct device_cfg d = {0};
    keys_defaults(device_keys, N_ELEMS(device_keys), &d);
    unsigned driver = config_sensor_driver(c, s);
    uint32_t ok = keys_apply(c, s, device_keys, N_ELEMS(device_keys), &d, NULL);
    const struct pdm_ini_entry *bus_e = pdm_ini_get(s, "bus");
    if (driver && !(driver & F_MODBUS)) {
        char name[16];
        pdm_ini_error(&c->doc, bus_e->line, s, bus_e->key,
                      "[bus %s] is a %s bus: a profile describes Modbus registers; put the "
                      "device on a modbus-tcp or modbus-rtu bus",
                      bus_e->value, keys_driver_names(driver, name, sizeof(name)));
    }
    const struct pdm_ini_entry *prof_e = pdm_ini_get(s, "profile");
    const struct profile *p = prof_e ? find_profile(c, s, prof_e) : NULL;
    if (!p || !p->ok)
        return;
    unsigned char sel[256];
    const struct pdm_ini_entry *only_e = pdm_ini_get(s, "only");
    if (p->n_regs > sizeof(sel)) {
        pdm_ini_error(&c->doc, prof_e->line, s, prof_e->key,
                      "profile '%s' has %u registers: at most %zu per device", p->name, p->n_regs,
                      sizeof(sel));
        return;
    }
    memset(sel, only_e ? 0 : 1, sizeof(sel));
    if (only_e)
        select_registers(c, s, only_e, p, sel);

    for (uint32_t k = 0; k < p->n_regs; k++) {
        if (!sel[k])
            continue;
        char name[2 * PDM_NAME_MAX + 2];
        snprintf(name, sizeof(name), "%s.%s", s->arg, p->regs[k].name);
        if (strlen(name) > PDM_NAME_MAX) {
            pdm_ini_error(&c->doc, s->line, s, NULL,
                          "sensor name '%s' is longer than %d characters: shorten the device "
                          "name",
                          name, PDM_NAME_MAX);
            continue;
        }
        int clash = pdm_config_sensor_index(cfg, name);
        if (clash >= 0) {
            pdm_ini_error(&c->doc, s->line, s, NULL,
                          "register '%s' of profile '%s' makes sensor '%s', which is also "
                          "[sensor %s] (line %d): rename one of them",
                          p->regs[k].name, p->name, name, name, cfg->sensors[clash].line);
            continue;
        }
        struct pdm_sensor_cfg *sn = &cfg->sensors[cfg->n_sensors++];
        *sn = p->regs[k];
        strcpy(sn->name, name);
        sn->bus = (ok & 1u) ? d.bus : 0;
        sn->unit_id = d.unit_id;
        sn->period_ms = d.period_ms;
        sn->line = s->line;
    }
}

static void free_profiles(struct ctx *c)
{
    for (size_t i = 0; i < c->n_profiles; i++)
        free(c->profiles[i].regs);
    free(c->profiles);
    c->profiles = NULL;
    c->n_profiles = 0;
}

/* ---- whole file ------------------------------------------------------------------------ */

enum kind { K_AGENT, K_MQTT, K_BUS, K_SENSOR, K_ASSET, K_DEVICE, K_UNKNOWN };

static enum kind kind_of(const struct pdm_ini_section *s)
{
    for (size_t k = 0; k < N_ELEMS(section_kinds); k++)
        if (strcmp(s->kind, section_kinds[k]) == 0)
            return (enum kind)k;
    return K_UNKNOWN;
}

/* 1 if the header's name fits its kind; reports why not when report is set. */
static int header_ok(struct ctx *c, const struct pdm_ini_section *s, int report)
{
    enum kind k = kind_of(s);
    if (k == K_AGENT || k == K_MQTT) {
        if (*s->arg && report)
            pdm_ini_error(&c->doc, s->line, s, NULL, "[%s] takes no name; its keys are ignored",
                          s->kind);
        return !*s->arg;
    }
    if (!*s->arg) {
        if (report)
            pdm_ini_error(&c->doc, s->line, s, NULL, "needs a name: [%s NAME]", s->kind);
        return 0;
    }
    if (!pdm_ini_is_name(s->arg, PDM_NAME_MAX, 1)) {
        if (report)
            pdm_ini_error(&c->doc, s->line, s, NULL,
                          "%s name must be 1 to %d characters from A-Z a-z 0-9 _ . -; its keys "
                          "are ignored",
                          s->kind, PDM_NAME_MAX);
        return 0;
    }
    return 1;
}

/* Counts, allocates and names the per-kind arrays so that any section can refer to any other. */
static int register_sections(struct ctx *c)
{
    struct pdm_config *cfg = c->cfg;
    size_t n[K_UNKNOWN] = {0};
    for (size_t i = 0; i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *s = &c->doc.sections[i];
        if (kind_of(s) != K_UNKNOWN && header_ok(c, s, 0))
            n[kind_of(s)]++;
    }
    /* a device's sensors are its profile's registers: read the profiles now to count them */
    for (size_t i = 0; i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *s = &c->doc.sections[i];
        const struct pdm_ini_entry *e =
            kind_of(s) == K_DEVICE && header_ok(c, s, 0) ? pdm_ini_get(s, "profile") : NULL;
        const struct profile *p = e ? find_profile(c, s, e) : NULL;
        if (p && p->ok)
            n[K_SENSOR] += p->n_regs;
    }
    if ((n[K_BUS] && !(cfg->buses = calloc(n[K_BUS], sizeof(*cfg->buses)))) ||
        (n[K_SENSOR] && !(cfg->sensors = calloc(n[K_SENSOR], sizeof(*cfg->sensors)))) ||
        (n[K_ASSET] && !(cfg->assets = calloc(n[K_ASSET], sizeof(*cfg->assets)))))
        return -ENOMEM;
    for (size_t i = 0; i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *s = &c->doc.sections[i];
        if (!header_ok(c, s, 0))
            continue;
        switch (kind_of(s)) {
        case K_BUS: {
            struct pdm_bus_cfg *b = &cfg->buses[cfg->n_buses++];
            pdm_config_bus_defaults(b);
            strcpy(b->name, s->arg);
            b->line = s->line;
            break;
        }
        case K_SENSOR: {
            struct pdm_sensor_cfg *sn = &cfg->sensors[cfg->n_sensors++];
            pdm_config_sensor_defaults(sn);
            strcpy(sn->name, s->arg);
            sn->line = s->line;
            break;
        }
        case K_ASSET: {
            struct pdm_asset_cfg *a = &cfg->assets[cfg->n_assets++];
            pdm_config_asset_defaults(a);
            strcpy(a->name, s->arg);
            a->line = s->line;
            break;
        }
        default:
            break;
        }
    }
    /* after every [sensor], so a clash is found whatever the order in the file */
    for (size_t i = 0; i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *s = &c->doc.sections[i];
        if (kind_of(s) == K_DEVICE && header_ok(c, s, 0))
            load_device(c, s);
    }
    return 0;
}

/* An iio sensor yields one value per window of its bus: that is its period. */
static void iio_sensor_periods(struct pdm_config *cfg)
{
    for (uint32_t i = 0; i < cfg->n_sensors; i++) {
        struct pdm_sensor_cfg *sn = &cfg->sensors[i];
        const struct pdm_bus_cfg *b = sn->bus < cfg->n_buses ? &cfg->buses[sn->bus] : NULL;
        if (b && b->driver == PDM_DRIVER_IIO && b->rate_hz > 0) {
            int64_t ms = ((int64_t)b->window * 1000 + b->rate_hz / 2) / b->rate_hz;
            sn->period_ms = ms < 1 ? 1 : ms > 86400000 ? 86400000 : (int)ms;
        }
    }
}

/* One owner per serial line: two [bus] sections on the same device would be two threads
 * talking over each other on one RS-485 pair (garbled frames, timeouts on both). */
static void check_serial_owners(struct ctx *c)
{
    for (size_t i = 0; i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *s = &c->doc.sections[i];
        const struct pdm_ini_entry *drv = kind_of(s) == K_BUS ? pdm_ini_get(s, "driver") : NULL;
        const struct pdm_ini_entry *dev = drv ? pdm_ini_get(s, "device") : NULL;
        if (!dev || strcmp(drv->value, "modbus-rtu") != 0)
            continue;
        for (size_t j = 0; j < i; j++) {
            const struct pdm_ini_section *o = &c->doc.sections[j];
            const struct pdm_ini_entry *odrv =
                kind_of(o) == K_BUS ? pdm_ini_get(o, "driver") : NULL;
            const struct pdm_ini_entry *odev = odrv ? pdm_ini_get(o, "device") : NULL;
            if (!odev || strcmp(odrv->value, "modbus-rtu") != 0 ||
                strcmp(odev->value, dev->value) != 0)
                continue;
            pdm_ini_error(&c->doc, dev->line, s, "device",
                          "%s is already the line of [bus %s] (line %d): one bus section per "
                          "serial line; put all the devices on it there, each with its unit_id",
                          dev->value, o->arg, o->line);
            break;
        }
    }
}

static void check_sections(struct ctx *c)
{
    struct pdm_config *cfg = c->cfg;
    int have_agent = 0, have_mqtt = 0;
    for (size_t i = 0; i < c->doc.n_sections; i++) {
        const struct pdm_ini_section *s = &c->doc.sections[i];
        enum kind k = kind_of(s);
        if (k == K_UNKNOWN) {
            const char *hint = pdm_ini_suggest(s->kind, section_kinds, N_ELEMS(section_kinds));
            if (hint)
                pdm_ini_error(&c->doc, s->line, s, NULL,
                              "unknown section kind '%s' (did you mean '%s'?)", s->kind, hint);
            else
                pdm_ini_error(&c->doc, s->line, s, NULL,
                              "unknown section kind '%s' (expected agent, mqtt, bus, sensor, "
                              "asset or device)",
                              s->kind);
            continue;
        }
        if (!header_ok(c, s, 1))
            continue;
        switch (k) {
        case K_AGENT:
            have_agent = 1;
            config_load_agent(c, s);
            break;
        case K_MQTT:
            have_mqtt = 1;
            config_load_mqtt(c, s);
            break;
        case K_BUS:
            config_load_bus(c, s, &cfg->buses[pdm_config_bus_index(cfg, s->arg)]);
            break;
        case K_SENSOR:
            config_load_sensor(c, s, &cfg->sensors[pdm_config_sensor_index(cfg, s->arg)]);
            break;
        case K_ASSET:
            for (uint32_t a = 0; a < cfg->n_assets; a++)
                if (strcmp(cfg->assets[a].name, s->arg) == 0)
                    config_load_asset(c, s, &cfg->assets[a]);
            break;
        case K_DEVICE: /* expanded into sensors by register_sections */
        case K_UNKNOWN:
            break;
        }
    }
    iio_sensor_periods(cfg);
    check_serial_owners(c);
    struct pdm_diag *d = c->doc.diag;
    if (!have_agent)
        pdm_diag_error(d, cfg->path, 0, "agent", NULL, "required section [agent] is missing");
    if (!have_mqtt)
        pdm_diag_error(d, cfg->path, 0, "mqtt", NULL, "required section [mqtt] is missing");
    if (!cfg->n_buses)
        pdm_diag_error(d, cfg->path, 0, "bus", NULL, "no [bus NAME] section: at least one needed");
    if (!cfg->n_sensors)
        pdm_diag_error(d, cfg->path, 0, "sensor", NULL,
                       "no [sensor NAME] or [device NAME] section: at least one needed");
    if (!cfg->n_assets)
        pdm_diag_error(d, cfg->path, 0, "asset", NULL,
                       "no [asset NAME] section: at least one needed");
}

/* cfg->dir = absolute folder of path (symbolic links resolved). */
static int config_dir(struct pdm_config *cfg, const char *path)
{
    char folder[PDM_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        strcpy(folder, ".");
    else if (slash == path)
        strcpy(folder, "/");
    else
        snprintf(folder, sizeof(folder), "%.*s", (int)(slash - path), path);
    char *abs = realpath(folder, NULL);
    if (!abs)
        return -errno;
    int rc = strlen(abs) < sizeof(cfg->dir) ? 0 : -ENAMETOOLONG;
    if (rc == 0)
        strcpy(cfg->dir, abs);
    free(abs);
    return rc;
}

int pdm_config_load(const char *path, struct pdm_config *cfg, struct pdm_diag *diag)
{
    struct pdm_diag count_only = {0};
    if (!diag)
        diag = &count_only;
    memset(cfg, 0, sizeof(*cfg));
    config_main_defaults(cfg);
    int before = diag->errors;
    if (strlen(path) >= sizeof(cfg->path)) {
        pdm_diag_error(diag, path, 0, "config", NULL, "path too long: at most %zu characters",
                       sizeof(cfg->path) - 1);
        return diag->errors - before;
    }
    strcpy(cfg->path, path);

    struct ctx c = {.cfg = cfg};
    int rc = config_dir(cfg, path);
    if (rc == 0)
        rc = pdm_ini_load(cfg->path, &c.doc, diag);
    if (rc == 0)
        rc = register_sections(&c);
    if (rc == 0)
        check_sections(&c);
    else
        pdm_diag_error(diag, cfg->path, 0, "config", NULL, "cannot read the configuration: %s",
                       strerror(-rc));
    free_profiles(&c);
    pdm_ini_free(&c.doc);
    return diag->errors - before;
}

void pdm_config_free(struct pdm_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->buses);
    free(cfg->sensors);
    free(cfg->assets);
    cfg->buses = NULL;
    cfg->sensors = NULL;
    cfg->assets = NULL;
    cfg->n_buses = cfg->n_sensors = cfg->n_assets = 0;
}

int pdm_config_sensor_index(const struct pdm_config *cfg, const char *name)
{
    for (uint32_t i = 0; i < cfg->n_sensors; i++)
        if (strcmp(cfg->sensors[i].name, name) == 0)
            return (int)i;
    return -1;
}

int pdm_config_asset_index(const struct pdm_config *cfg, const char *name)
{
    for (uint32_t i = 0; i < cfg->n_assets; i++)
        if (strcmp(cfg->assets[i].name, name) == 0)
            return (int)i;
    return -1;
}

int pdm_config_bus_index(const struct pdm_config *cfg, const char *name)
{
    for (uint32_t i = 0; i < cfg->n_buses; i++)
        if (strcmp(cfg->buses[i].name, name) == 0)
            return (int)i;
    return -1;
}
