/* The option errors and number parsing every pdmctl subcommand shares (cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>

#include "pdmctl.h"

int pdmctl_cli_bad_option(const char *cmd, int c, char *const *argv, pdmctl_usage_fn usage)
{
    /* getopt_long has moved past the option in both cases */
    const char *opt = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        fprintf(stderr, "pdmctl %s: %s needs a value (try: pdmctl %s --help)\n", cmd, opt, cmd);
    else
        fprintf(stderr, "pdmctl %s: unknown option '%s' (try: pdmctl %s --help)\n", cmd, opt, cmd);
    if (usage)
        usage(stderr);
    return PDMCTL_EXIT_USAGE;
}

int pdmctl_parse_int(const char *cmd, const char *opt, const char *s, long min, long max, int *out)
{
    int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    char *end;
    errno = 0;
    long v = strtol(s, &end, hex ? 16 : 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "pdmctl %s: %s: expected a whole number %ld..%ld (or 0x hex), got '%s'\n",
                cmd, opt, min, max, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}
