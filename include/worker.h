/* worker: one thread, one io_uring ring, its own listeners and connections.
 * Workers share only the runtime (pools, VIPs, atomic counters). */
#ifndef SNATPROXY_WORKER_H
#define SNATPROXY_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "health.h"
#include "loop.h"
#include "relay.h"
#include "runtime.h"

enum worker_stop { WORKER_RUN, WORKER_DRAIN, WORKER_STOP_NOW };

/* What a worker switches to on reload, prepared by the main thread: the new
 * runtime, the worker's share of it, and its complete set of listeners (the
 * kept ones are the worker's own, the new ones already bound). vips[i] is
 * the VIP of listeners[i] in the new runtime; opened[i] says the plan bound
 * listeners[i] itself. The main thread never reads a kept listener's state
 * (its worker changes it at any time): opened[] alone says what a plan not
 * handed over must close. */
struct worker_reload {
	struct runtime *rt;
	struct relay_gen *gen;
	struct relay_listener **listeners;
	struct runtime_vip **vips;
	bool *opened;
	int nlisteners;
};

struct worker {
	_Alignas(16) int id;
	pthread_t thread;
	pthread_barrier_t *ready; /* the main thread waits for every ring */
	struct runtime *rt;
	struct loop loop;
	struct relay relay;
	struct health_worker health; /* this worker's share of the health checks */
	struct relay_listener **listeners;
	int nlisteners;
	LIST_HEAD(, relay_listener) closed;     /* unlistened, freed once their accept ended */
	_Atomic(struct worker_reload *) reload; /* NULL once applied */
	int wake_fd;
	uint64_t wake_val;
	_Atomic int stop;
	int stopping; /* what this thread has acted on */
	uint64_t deadline_ms;
	struct __kernel_timespec tick;
	int op_tick, op_wake; /* the loop's codes for its own requests */
	int status;           /* 0, or -errno when the worker could not start */
	_Atomic bool exited;
};

/* Opens this worker's listeners; called before any thread starts so that an
 * address that cannot be bound stops the start with a clear message. */
int worker_prepare(struct worker *w, struct runtime *rt, int id);
int worker_start(struct worker *w, pthread_barrier_t *ready);
/* Asks the worker to stop: DRAIN closes its listeners and waits up to
 * `grace` for connections to end, STOP_NOW closes them at once. */
void worker_signal(struct worker *w, enum worker_stop how);
void worker_join(struct worker *w);

/* Reload, from the main thread: prepares the worker's switch to `rt`
 * (binding the addresses it does not listen on yet), then hands it over.
 * worker_reload_pending is true until the worker has switched, and the
 * plan's memory is the worker's from worker_reload on. */
int worker_reload_prepare(struct worker *w, struct runtime *rt, struct worker_reload **out);
void worker_reload_discard(struct worker_reload *plan);
void worker_reload(struct worker *w, struct worker_reload *plan);
bool worker_reload_pending(struct worker *w);
void worker_free(struct worker *w);

#endif
