/* The agent: wires buses, engine, store and uplink together around one poll() loop.
 *
 *  bus threads --(pdm_queue + eventfd)--> main loop --> engine (windows, score, alert policy)
 *                                            |  \--> store (SQLite: every row and alert first)
 *                                            v
 *                          uplink (Paho threads) --(events + eventfd: PUBACKs)--> main loop
 *
 * The main loop is the only user of the store and the engine; durability decisions (what counts
 * as delivered) are made here, from the broker's acknowledgements. */
#ifndef PDM_AGENT_H
#define PDM_AGENT_H

struct pdm_config;

/* Runs until SIGTERM or SIGINT. Returns a process exit status (0 on a clean stop, 1 when the
 * agent could not start: the reason has been logged). */
int pdm_agent_run(struct pdm_config *cfg);

#endif
