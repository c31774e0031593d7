/* pdmctl subcommands. Each takes the arguments after its own name (argv[0] is the subcommand
 * name) and returns the process exit status:
 *   0 success, 1 the operation failed (device did not answer, message did not decode, ...),
 *   2 bad command line (the message says which argument and why), 78 bad configuration. */
#ifndef PDMCTL_H
#define PDMCTL_H

#define PDMCTL_EXIT_OK     0
#define PDMCTL_EXIT_FAIL   1
#define PDMCTL_EXIT_USAGE  2
#define PDMCTL_EXIT_CONFIG 78

#include <stddef.h>

int cmd_baseline(int argc, char **argv);
int cmd_buffer(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_enroll(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_publish(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_sign_model(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_subscribe(int argc, char **argv);
int cmd_train(int argc, char **argv);

/* The control socket (cmd_status.c): one request line, the whole answer into buf. 0, or -1 with
 * the reason in err (also when the agent answered "error: ..."). */
int pdmctl_control_query(const char *path, const char *request, char *buf, size_t cap, char *err,
                         size_t errlen);
/* The socket path from -c FILE (its data_dir) or --socket PATH or the default; -1 when the
 * configuration has errors (printed). */
int pdmctl_socket_path(const char *conf, const char *sock, char *path, size_t len);

#endif
