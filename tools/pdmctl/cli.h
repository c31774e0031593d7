/* The command line of the pdmctl subcommands: getopt_long's option errors and number parsing,
 * one way for every subcommand.
 *
 * A subcommand parses with getopt_long(argc, argv, ":...", longopts, NULL) after optind = 1,
 * opterr = 0 (the leading ':' makes a missing value ':' and an unknown option '?') and hands
 * those two cases to pdmctl_cli_bad_option(). */
#ifndef PDMCTL_CLI_H
#define PDMCTL_CLI_H

#include <getopt.h>
#include <stdio.h>

/* Prints a subcommand's usage to f. */
typedef void (*pdmctl_usage_fn)(FILE *f);

/* The one error tail for getopt_long's ':' (missing value) and '?' (unknown option): prints
 * "pdmctl CMD: OPT needs a value (try: pdmctl CMD --help)" or "pdmctl CMD: unknown option 'OPT'
 * (try: pdmctl CMD --help)", then the usage on stderr. Returns PDMCTL_EXIT_USAGE (2). */
int pdmctl_cli_bad_option(const char *cmd, int c, char *const *argv, pdmctl_usage_fn usage);

/* A whole number min..max in decimal, or hex with 0x (as register maps print addresses; a
 * leading 0 is not octal: '010' is 10). 0, or -1 with "pdmctl CMD: OPT: expected ..." printed. */
int pdmctl_parse_int(const char *cmd, const char *opt, const char *s, long min, long max, int *out);

#endif
