/* reload: SIGHUP applies a new configuration without stopping.
 *
 * Each valid configuration becomes a generation: a config and the runtime
 * built from it. Workers switch to a new generation between two batches of
 * completions; listeners whose address stays are handed over as they are
 * (their accept request is never interrupted, so no client is refused),
 * others are closed or opened. Connections keep the generation they started
 * in, with its pools and servers, until they end; a generation is freed when
 * no worker and no admin request holds it any more (runtime.refs). */
#ifndef SNATPROXY_RELOAD_H
#define SNATPROXY_RELOAD_H

#include "admin.h"
#include "runtime.h"
#include "worker.h"

struct reload;

/* `root` is the runtime the process started with; it stays allocated by the
 * caller and outlives every generation. Returns NULL without memory. */
struct reload *reload_new(struct runtime *root, struct worker *w, struct admin *admin);
/* Re-reads the configuration file. Errors are logged and change nothing. */
void reload_run(struct reload *rl);
/* Frees the retired generations nobody holds any more. */
void reload_collect(struct reload *rl);
/* The generation new connections go to. */
struct runtime *reload_current(struct reload *rl);
/* Once the workers and the admin endpoint are gone: frees every generation. */
void reload_free(struct reload *rl);

#endif
