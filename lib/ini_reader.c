#include "ini_reader.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* State shared by the reader (called by inih for every line) and the key handler (called by
 * inih for the line the reader just handed over). */
struct reader {
    FILE *f;
    struct pdm_ini_doc *doc;
    int line;
    /* index of the section keys go to; NO_SECTION before the first header, SKIP_SECTION after a
     * header we rejected (its keys are dropped so they cannot land in the previous section) */
    long cur;
    char cur_name[256]; /* for messages, also when the header was rejected */
    char last_key[64];  /* the key an indented line would have continued */
    char *buf;          /* getline buffer */
    size_t cap;
    int err; /* -ENOMEM seen in a callback */
};

#define NO_SECTION   (-1)
#define SKIP_SECTION (-2)

void pdm_ini_error(const struct pdm_ini_doc *doc, int line, const struct pdm_ini_section *s,
                   const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pdm_diag_error(doc->diag, doc->path, line, s ? s->name : NULL, key, "%s", msg);
}

/* Reader errors name the section being read even when its header was rejected. */
static void reader_error(struct reader *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reader_error(struct reader *r, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pdm_diag_error(r->doc->diag, r->doc->path, r->line, r->cur_name, key, "%s", msg);
}

static int is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

/* Copies the first word of text (up to '=', ':' or a blank) into out, for messages. */
static void first_word(const char *text, char *out, size_t outlen)
{
    while (is_blank((unsigned char)*text))
        text++;
    size_t n = 0;
    while (text[n] && !is_blank((unsigned char)text[n]) && text[n] != '=' && text[n] != ':' &&
           n + 1 < outlen)
        n++;
    memcpy(out, text, n);
    out[n] = '\0';
}

/* Position of the key/value separator in a key line as inih finds it ('=' or ':', whichever
 * comes first, before an inline comment, which is ';' after a blank), or NULL. */
static const char *find_separator(const char *p)
{
    int was_blank = 0;
    for (; *p; p++) {
        if (*p == '=' || *p == ':')
            return p;
        if (*p == ';' && was_blank)
            return NULL;
        was_blank = is_blank((unsigned char)*p);
    }
    return NULL;
}

static int add_section(struct reader *r, const char *inner, size_t len)
{
    struct pdm_ini_doc *doc = r->doc;
    while (len && is_blank((unsigned char)*inner))
        inner++, len--;
    while (len && is_blank((unsigned char)inner[len - 1]))
        len--;
    size_t kind_len = 0;
    while (kind_len < len && !is_blank((unsigned char)inner[kind_len]))
        kind_len++;
    const char *arg = inner + kind_len;
    size_t arg_len = len - kind_len;
    while (arg_len && is_blank((unsigned char)*arg))
        arg++, arg_len--;

    /* name = "kind arg" with exactly one space, as diag turns it into kind.arg */
    char *name = malloc(len + 2);
    char *kind = malloc(kind_len + 1);
    if (!name || !kind) {
        free(name);
        free(kind);
        return -ENOMEM;
    }
    memcpy(kind, inner, kind_len);
    kind[kind_len] = '\0';
    memcpy(name, inner, kind_len);
    if (arg_len) {
        name[kind_len] = ' ';
        memcpy(name + kind_len + 1, arg, arg_len);
        name[kind_len + 1 + arg_len] = '\0';
    } else {
        name[kind_len] = '\0';
    }
    snprintf(r->cur_name, sizeof(r->cur_name), "%s", name);
    r->last_key[0] = '\0';

    if (!len) {
        reader_error(r, NULL, "empty section name []; the keys below it are ignored");
        goto skip;
    }
    for (size_t i = 0; i < doc->n_sections; i++) {
        if (strcmp(doc->sections[i].name, name) == 0) {
            reader_error(r, NULL, "duplicate section (first at line %d); its keys are ignored",
                         doc->sections[i].line);
            goto skip;
        }
    }
    if (doc->n_sections == doc->cap_sections) {
        size_t cap = doc->cap_sections ? doc->cap_sections * 2 : 8;
        struct pdm_ini_section *s = realloc(doc->sections, cap * sizeof(*s));
        if (!s) {
            free(name);
            free(kind);
            return -ENOMEM;
        }
        doc->sections = s;
        doc->cap_sections = cap;
    }
    struct pdm_ini_section *s = &doc->sections[doc->n_sections];
    memset(s, 0, sizeof(*s));
    s->name = name;
    s->kind = kind;
    s->arg = arg_len ? name + kind_len + 1 : "";
    s->line = r->line;
    r->cur = (long)doc->n_sections++;
    return 0;
skip:
    free(name);
    free(kind);
    r->cur = SKIP_SECTION;
    return 0;
}

/* Screens one physical line; returns what inih should get for it (the line, or "" when the
 * line was a comment, blank or rejected). text has no line terminator. */
static const char *screen_line(struct reader *r, char *text, size_t len, int max_len)
{
    char word[64];
    if (strlen(text) != len) {
        first_word(text, word, sizeof(word));
        reader_error(r, word, "line contains a NUL byte: is this a text file?");
        return "";
    }
    if (len > (size_t)max_len) {
        /* inih would read the rest of the line as a line of its own */
        first_word(text, word, sizeof(word));
        reader_error(r, word, "line is %zu characters long; at most %d are allowed", len, max_len);
        return "";
    }
    const char *p = text;
    while (is_blank((unsigned char)*p))
        p++;
    if (!*p || *p == ';' || *p == '#')
        return "";
    if (p > text) {
        /* inih would append this line to the previous value */
        const char *key = r->last_key;
        if (find_separator(p)) {
            first_word(p, word, sizeof(word));
            key = word;
        }
        reader_error(r, key,
                     "indented line: remove the leading spaces, continuation lines are not "
                     "supported");
        return "";
    }
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (!end) {
            r->cur = SKIP_SECTION;
            /* name it as the user meant it: "[bus plant" -> bus.plant */
            size_t n = 0;
            for (const char *q = p + 1; *q && n + 1 < sizeof(r->cur_name); q++) {
                if (!is_blank((unsigned char)*q))
                    r->cur_name[n++] = *q;
                else if (n && !is_blank((unsigned char)q[1]) && q[1])
                    r->cur_name[n++] = ' ';
            }
            r->cur_name[n] = '\0';
            reader_error(r, NULL, "section header without ']'; the keys below it are ignored");
            return "";
        }
        int rc = add_section(r, p + 1, (size_t)(end - p - 1));
        if (rc < 0) {
            r->err = rc;
            return "";
        }
        const char *q = end + 1;
        while (is_blank((unsigned char)*q))
            q++;
        if (*q && *q != ';' && *q != '#')
            reader_error(r, NULL, "unexpected text after ']': '%s'", q);
        return "";
    }
    const char *sep = find_separator(p);
    if (!sep) {
        first_word(p, word, sizeof(word));
        reader_error(r, word, "expected 'key = value', a [section] header or a comment");
        return "";
    }
    if (sep == p) {
        reader_error(r, NULL, "missing key name before '%c'", *sep);
        return "";
    }
    first_word(p, r->last_key, sizeof(r->last_key));
    return text;
}

/* The ini_reader for inih: one physical line per call, so r->line is the line inih is on. */
static char *read_line(char *str, int num, void *stream)
{
    struct reader *r = stream;
    ssize_t n = getline(&r->buf, &r->cap, r->f);
    if (n < 0)
        return NULL;
    r->line++;
    size_t len = (size_t)n;
    if (len && r->buf[len - 1] == '\n')
        len--;
    if (len && r->buf[len - 1] == '\r')
        len--;
    r->buf[len] = '\0';
    char *text = r->buf;
    if (r->line == 1 && len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    /* inih needs room for '\r', '\n' and '\0' after the longest line (ini.h) */
    const char *out = screen_line(r, text, len, num - 3);
    size_t out_len = strlen(out); /* <= num - 3 */
    memcpy(str, out, out_len);
    str[out_len] = '\n';
    str[out_len + 1] = '\0';
    return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    (void)section; /* inih's idea of the section: we track our own (see screen_line) */
    struct reader *r = user;
    if (r->cur == NO_SECTION) {
        reader_error(r, name, "key outside any section: put it under a [section] header");
        return 1;
    }
    if (r->cur == SKIP_SECTION)
        return 1;
    struct pdm_ini_section *s = &r->doc->sections[r->cur];
    const struct pdm_ini_entry *prev = pdm_ini_get(s, name);
    if (prev) {
        pdm_ini_error(r->doc, r->line, s, name, "duplicate key (first set at line %d)", prev->line);
        return 1;
    }
    if (s->n_entries == s->cap_entries) {
        size_t cap = s->cap_entries ? s->cap_entries * 2 : 8;
        struct pdm_ini_entry *e = realloc(s->entries, cap * sizeof(*e));
        if (!e) {
            r->err = -ENOMEM;
            return 1;
        }
        s->entries = e;
        s->cap_entries = cap;
    }
    struct pdm_ini_entry *e = &s->entries[s->n_entries];
    e->key = strdup(name);
    e->value = strdup(value);
    e->line = r->line;
    if (!e->key || !e->value) {
        free(e->key);
        free(e->value);
        r->err = -ENOMEM;
        return 1;
    }
    s->n_entries++;
    return 1;
}

int pdm_ini_load(const char *path, struct pdm_ini_doc *doc, struct pdm_diag *diag)
{
    memset(doc, 0, sizeof(*doc));
    doc->path = path;
    doc->diag = diag;
    struct reader r = {.doc = doc, .cur = NO_SECTION};
    r.f = fopen(path, "r");
    if (!r.f)
        return -errno;
    int rc = ini_parse_stream(read_line, &r, on_key, &r);
    int read_err = ferror(r.f);
    fclose(r.f);
    free(r.buf);
    if (r.err)
        return r.err;
    if (rc == -2)
        return -ENOMEM;
    if (read_err)
        return -EIO;
    if (rc > 0) {
        /* screen_line hands inih only lines it accepts; this is a safety net */
        r.line = rc;
        reader_error(&r, NULL, "cannot parse this line");
    }
    return 0;
}

void pdm_ini_free(struct pdm_ini_doc *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->n_sections; i++) {
        struct pdm_ini_section *s = &doc->sections[i];
        for (size_t j = 0; j < s->n_entries; j++) {
            free(s->entries[j].key);
            free(s->entries[j].value);
        }
        free(s->entries);
        free(s->name);
        free(s->kind);
    }
    free(doc->sections);
    doc->sections = NULL;
    doc->n_sections = doc->cap_sections = 0;
}

const struct pdm_ini_entry *pdm_ini_get(const struct pdm_ini_section *s, const char *key)
{
    for (size_t i = 0; i < s->n_entries; i++)
        if (strcmp(s->entries[i].key, key) == 0)
            return &s->entries[i];
    return NULL;
}

int pdm_ini_int(const struct pdm_ini_doc *doc, const struct pdm_ini_section *s,
                const struct pdm_ini_entry *e, long long min, long long max, long long *out)
{
    const char *v = e->value;
    char *end = NULL;
    errno = 0;
    long long x = *v && !isspace((unsigned char)*v) ? strtoll(v, &end, 10) : 0;
    if (!end || *end || errno || x < min || x > max) {
        pdm_ini_error(doc, e->line, s, e->key, "expected an integer from %lld to %lld, got '%s'",
                      min, max, v);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

static int parse_finite(const char *v, double *out)
{
    char *end = NULL;
    errno = 0;
    /* strtod follows LC_NUMERIC; the agent never calls setlocale(), so '.' is the point */
    double x = *v && !isspace((unsigned char)*v) ? strtod(v, &end) : 0;
    if (!end || *end || !isfinite(x))
        return -EINVAL;
    *out = x;
    return 0;
}

int pdm_ini_double(const struct pdm_ini_doc *doc, const struct pdm_ini_section *s,
                   const struct pdm_ini_entry *e, double *out)
{
    if (parse_finite(e->value, out) < 0) {
        pdm_ini_error(doc, e->line, s, e->key, "expected a finite number, got '%s'", e->value);
        return -EINVAL;
    }
    return 0;
}

int pdm_ini_double_range(const struct pdm_ini_doc *doc, const struct pdm_ini_section *s,
                         const struct pdm_ini_entry *e, double min, double max, double *out)
{
    double x;
    if (parse_finite(e->value, &x) < 0 || x < min || x > max) {
        pdm_ini_error(doc, e->line, s, e->key, "expected a number from %g to %g, got '%s'", min,
                      max, e->value);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

/* Optimal string alignment distance (Levenshtein plus adjacent transpositions, the commonest
 * typo), with three rolling rows on the stack. Longer words get no suggestion. */
#define SUGGEST_MAX 64
static int osa_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > SUGGEST_MAX || lb > SUGGEST_MAX)
        return 1000;
    int rows[3][SUGGEST_MAX + 1];
    int *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (prev[j - 1] + cost < v)
                v = prev[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            cur[j] = v;
        }
        int *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *pdm_ini_suggest(const char *word, const char *const *known, size_t n)
{
    const char *best = NULL;
    int best_d = 1000;
    size_t lw = strlen(word);
    for (size_t i = 0; i < n; i++) {
        size_t lk = strlen(known[i]);
        size_t shorter = lw < lk ? lw : lk;
        /* one slip in a short word, two in a longer one; more is a different word */
        int limit = shorter <= 4 ? 1 : 2;
        int d = osa_distance(word, known[i]);
        if (d <= limit && d < best_d) {
            best = known[i];
            best_d = d;
        }
    }
    return best;
}

void pdm_ini_unknown_key(const struct pdm_ini_doc *doc, const struct pdm_ini_section *s,
                         const struct pdm_ini_entry *e, const char *const *known, size_t n)
{
    const char *hint = pdm_ini_suggest(e->key, known, n);
    if (hint)
        pdm_ini_error(doc, e->line, s, e->key, "unknown key '%s' (did you mean '%s'?)", e->key,
                      hint);
    else
        pdm_ini_error(doc, e->line, s, e->key, "unknown key '%s'", e->key);
}

int pdm_ini_is_name(const char *s, size_t max, int allow_dot)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || (allow_dot && c == '.');
        if (!ok)
            return 0;
    }
    return n >= 1 && n <= max;
}
