/* The command line of the pdmctl subcommands: getopt_long's option errors and number parsing,
 * one way for every subcommand.
 *
 * A subcommand parses with getopt_long(argc, argv, ":...", longopts, NULL) after optind = 1,
 * opterr = 0 (the leading ':' makes a missing value ':' and an unknown option '?') and hands
 * those two cases to pdmctl_cli_bad_option(). getopt_long permutes: operands (an asset, a file,
 * '-' for standard input) may come before, between or after the options and are left at
 * argv[optind..argc-1]; "--" ends the options. A subcommand without operands refuses any left
 * over with pdmctl_cli_extra_arg(). A long option with no value must not have a character as its
 * val (use a number >= 256), so that an unknown short option is told apart from it.
 *
 * Numbers from the command line go through the parsers below: each names the subcommand, the
 * option and the range it expects, and the caller exits PDMCTL_EXIT_USAGE (2). */
#ifndef PDMCTL_CLI_H
#define PDMCTL_CLI_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

/* Prints a subcommand's usage to f. */
typedef void (*pdmctl_usage_fn)(FILE *f);

/* The one error tail for getopt_long's ':' (missing value) and '?' (unknown option): prints
 * "pdmctl CMD: OPT needs a value (try: pdmctl CMD --help)" or "pdmctl CMD: unknown option 'OPT'
 * (try: pdmctl CMD --help)" ("OPT takes no value" for --json=1), then the usage on stderr.
 * Returns PDMCTL_EXIT_USAGE (2). */
int pdmctl_cli_bad_option(const char *cmd, int c, char *const *argv, pdmctl_usage_fn usage);

/* An operand the subcommand does not take: "pdmctl CMD: unexpected argument 'ARG' (try: pdmctl
 * CMD --help)", then the usage on stderr. Returns PDMCTL_EXIT_USAGE (2). */
int pdmctl_cli_extra_arg(const char *cmd, const char *arg, pdmctl_usage_fn usage);

/* Whole numbers: decimal, or hex with 0x (as register maps print addresses; a leading 0 is not
 * octal: '010' is 10), optionally signed; no spaces, nothing after the digits. In 64 bits on
 * every target (long is 32 bits on armhf). 0, or -1 after printing
 * "pdmctl CMD: OPT: expected WHAT MIN..MAX, got 'S'" (WHAT NULL: "a whole number", with
 * "(or 0x hex)" after the range). */
int pdmctl_parse_i64(const char *cmd, const char *opt, const char *what, const char *s, int64_t min,
                     int64_t max, int64_t *out);
/* The same for 0..max in unsigned 64 bits (a seed); no sign. */
int pdmctl_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t max, uint64_t *out);
/* pdmctl_parse_i64 into an int, WHAT "a whole number" (min and max within int). */
int pdmctl_parse_int(const char *cmd, const char *opt, const char *s, long min, long max, int *out);

/* A finite decimal number (strtod's forms: 2, 0.5, 1e-3) min..max. 0, or -1 after printing
 * "pdmctl CMD: OPT: expected a number from MIN to MAX, got 'S'". */
int pdmctl_parse_double(const char *cmd, const char *opt, const char *s, double min, double max,
                        double *out);
/* A finite number greater than 0: "pdmctl CMD: OPT: expected a positive number, got 'S'". */
int pdmctl_parse_positive(const char *cmd, const char *opt, const char *s, double *out);

#endif
