/* The systemd notification protocol (sd_notify) without libsystemd.
 *
 * A message is one datagram of "KEY=VALUE" lines sent to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a leading '@' names an abstract socket). When the variable is unset, as when
 * the agent runs by hand or under another supervisor, every call is a no-op that returns 0.
 * Each call opens and closes its own socket: it happens a few times a minute at most, and no
 * descriptor is held across a fork or left to leak. */
#ifndef PDM_NOTIFY_H
#define PDM_NOTIFY_H

#include <stdint.h>

/* Sends STATE (e.g. "READY=1", "STATUS=connected to broker", several lines joined by '\n').
 * Returns 0 (also when $NOTIFY_SOCKET is unset) or a negative errno: -EINVAL for a malformed
 * socket name or empty STATE, otherwise what socket()/sendto() reported. */
int pdm_notify(const char *state);

/* Like pdm_notify() with a printf format; text beyond 512 bytes is cut. */
int pdm_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The interval in ms at which the main loop should send "WATCHDOG=1": half of $WATCHDOG_USEC
 * (at least 1 ms), or 0 when no watchdog is asked for: $WATCHDOG_USEC unset, not a positive
 * number, or $WATCHDOG_PID set to a process other than this one. */
int64_t pdm_notify_watchdog_ms(void);

#endif
