#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "addr.h"
#include "ledger.h"
#include "listener.h"
#include "log.h"
#include "worker.h"

/* Timeouts are checked this often; an idle timeout fires within one tick. */
#define WORKER_TICK_MS 100

/* Binds listen address i of VIP v; logs why not and returns NULL. */
static struct relay_listener *worker_listener_open(const struct config *cfg, int v, int i,
						   char *why, size_t len)
{
	const struct config_vip *vip = &cfg->vips[v];
	const struct sockaddr *sa = (const struct sockaddr *)&vip->listen[i];
	struct relay_listener *ls = calloc(1, sizeof(*ls));
	int fd = ls ? listener_open(sa, why, len) : -ENOMEM;

	if (fd < 0) {
		log_err("%s:%d: vip %s: %s", cfg->path, vip->line, vip->name,
			ls ? why : "out of memory");
		free(ls);
		return NULL;
	}
	ls->fd = fd;
	ls->port = htons(addr_port(sa));
	memcpy(&ls->addr, sa, addr_len(sa));
	return ls;
}

int worker_prepare(struct worker *w, struct runtime *rt, int id)
{
	const struct config *cfg = rt->cfg;
	char why[256];
	int n = 0;

	memset(w, 0, sizeof(*w));
	w->id = id;
	w->rt = rt;
	w->wake_fd = -1;
	for (int v = 0; v < cfg->nvips; v++)
		n += cfg->vips[v].nlisten;
	w->listeners = calloc((size_t)n, sizeof(*w->listeners));
	if (!w->listeners)
		return -ENOMEM;
	for (int v = 0; v < cfg->nvips; v++) {
		const struct config_vip *vip = &cfg->vips[v];
		for (int i = 0; i < vip->nlisten; i++) {
			struct relay_listener *ls =
			    worker_listener_open(cfg, v, i, why, sizeof(why));
			if (!ls)
				return -EADDRNOTAVAIL;
			ls->vip = &rt->vips[v];
			w->listeners[w->nlisteners++] = ls;
		}
	}
	w->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (w->wake_fd < 0)
		return -errno;
	ledger_set_wake(rt->root->ledger, id, w->wake_fd);
	return 0;
}

static void worker_arm_tick(struct worker *w)
{
	struct io_uring_sqe *sqe = loop_sqe(&w->loop);
	w->tick.tv_sec = 0;
	w->tick.tv_nsec = WORKER_TICK_MS * 1000000LL;
	io_uring_prep_timeout(sqe, &w->tick, 0, 0);
	io_uring_sqe_set_data64(sqe, loop_ud(w, w->op_tick));
}

static void worker_arm_wake(struct worker *w)
{
	struct io_uring_sqe *sqe = loop_sqe(&w->loop);
	io_uring_prep_read(sqe, w->wake_fd, &w->wake_val, sizeof(w->wake_val), 0);
	io_uring_sqe_set_data64(sqe, loop_ud(w, w->op_wake));
}

static void worker_sweep_closed(struct worker *w);
static void worker_apply_reload(struct worker *w);

LOOP_OWNER(struct worker);

/* For the admin endpoint: the loop's counters, copied once per tick so that
 * the loop keeps plain (non-atomic) increments. */
static void worker_publish(struct worker *w)
{
	struct runtime_worker_stats *s = &w->rt->root->wstats[w->id];
	const struct loop *l = &w->loop;

	atomic_store_explicit(&s->submitted, l->stats.submitted, memory_order_relaxed);
	atomic_store_explicit(&s->completed, l->stats.completed, memory_order_relaxed);
	atomic_store_explicit(&s->cq_overflow, l->stats.cq_overflow, memory_order_relaxed);
	atomic_store_explicit(&s->enobufs, l->stats.enobufs, memory_order_relaxed);
	_Static_assert(RUNTIME_HIST == LOOP_HIST, "one histogram, two names");
	for (int i = 0; i < LOOP_HIST; i++) {
		atomic_store_explicit(&s->batch_n[i], l->stats.batch_n[i], memory_order_relaxed);
		atomic_store_explicit(&s->batch_us[i], l->stats.batch_us[i], memory_order_relaxed);
	}
	atomic_store_explicit(&s->busy_us, l->stats.busy_us, memory_order_relaxed);
	atomic_store_explicit(&s->buffers_free, l->buf_free, memory_order_relaxed);
	atomic_store_explicit(&s->buffers, l->nbufs, memory_order_relaxed);
}

static void worker_on_tick(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	struct worker *w = owner;
	(void)ctx;
	(void)cqe;
	relay_tick(&w->relay);
	worker_publish(w);
	worker_sweep_closed(w);
	worker_arm_tick(w);
}

static void worker_on_wake(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	(void)ctx;
	(void)cqe;
	worker_arm_wake(owner);
}

/* Listeners still open: each takes what its queue holds once its accept
 * request has ended (relay_stop_listen). */
static bool worker_listening(const struct worker *w)
{
	for (int i = 0; i < w->nlisteners; i++)
		if (w->listeners[i]->fd >= 0)
			return true;
	return false;
}

/* Acts on a stop request; returns true when the thread may leave its loop. */
static bool worker_check_stop(struct worker *w)
{
	int want = atomic_load(&w->stop);

	if (want > w->stopping) {
		if (w->stopping == WORKER_RUN) {
			for (int i = 0; i < w->nlisteners; i++)
				relay_stop_listen(&w->relay, w->listeners[i]);
			w->deadline_ms = w->loop.now_ms + w->rt->cfg->grace_ms;
		}
		w->stopping = want;
	}
	if (w->stopping == WORKER_RUN)
		return false;
	health_worker_stop(&w->health);
	if (w->stopping == WORKER_STOP_NOW || w->loop.now_ms >= w->deadline_ms) {
		if (w->relay.live)
			log_info("worker %d: closing %d connection(s) still open", w->id,
				 w->relay.live);
		relay_close_all(&w->relay);
	}
	return w->relay.nconns == 0 && health_worker_idle(&w->health) && !worker_listening(w);
}

static int worker_setup(struct worker *w)
{
	const char *why = "";
	int ret = loop_init(&w->loop, w->rt->cfg->buffer_size, w->rt->cfg->buffers, &why);

	if (ret < 0) {
		log_err("worker %d: %s: %s", w->id, why, strerror(-ret));
		return ret;
	}
	ret = relay_init(&w->relay, &w->loop, w->rt, w->id);
	if (ret < 0) {
		log_err("worker %d: %s", w->id, strerror(-ret));
		return ret;
	}
	ret = health_worker_init(&w->health, &w->loop, w->rt, w->id);
	if (ret < 0) {
		log_err("worker %d: health checks: %s", w->id, strerror(-ret));
		return ret;
	}
	w->op_tick = loop_register(&w->loop, worker_on_tick, w);
	w->op_wake = loop_register(&w->loop, worker_on_wake, w);
	if (w->op_tick < 0 || w->op_wake < 0) {
		log_err("worker %d: more operation codes than the loop holds", w->id);
		return -ENOSPC;
	}
	for (int i = 0; i < w->nlisteners; i++)
		relay_listen(&w->relay, w->listeners[i]);
	worker_arm_tick(w);
	worker_arm_wake(w);
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	w->status = worker_setup(w);
	pthread_barrier_wait(w->ready);
	while (w->status == 0) {
		int ret = loop_run_once(&w->loop);
		if (ret < 0) {
			log_err("worker %d: io_uring_enter: %s", w->id, strerror(-ret));
			w->status = ret;
			break;
		}
		relay_resume(&w->relay);
		ledger_serve(w->rt->root->ledger, w->id, &w->relay, false);
		worker_apply_reload(w);
		if (worker_check_stop(w))
			break;
	}
	ledger_serve(w->rt->root->ledger, w->id, &w->relay, true);
	relay_free(&w->relay);
	health_worker_free(&w->health);
	loop_free(&w->loop);
	atomic_store(&w->exited, true);
	return NULL;
}

int worker_start(struct worker *w, pthread_barrier_t *ready)
{
	w->ready = ready;
	int ret = pthread_create(&w->thread, NULL, worker_main, w);
	if (ret == 0) { /* as top -H and perf name it */
		char name[16];
		snprintf(name, sizeof(name), "worker%d", w->id);
		pthread_setname_np(w->thread, name);
	}
	return -ret;
}

void worker_signal(struct worker *w, enum worker_stop how)
{
	uint64_t one = 1;
	if (atomic_load(&w->stop) < (int)how)
		atomic_store(&w->stop, (int)how);
	if (write(w->wake_fd, &one, sizeof(one)) < 0)
		log_warn("worker %d: cannot wake it: %s", w->id, strerror(errno));
}

void worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
}

static void worker_free_listener(struct relay_listener *ls)
{
	if (ls->fd >= 0)
		close(ls->fd);
	free(ls);
}

void worker_free(struct worker *w)
{
	for (int i = 0; w->listeners && i < w->nlisteners; i++)
		worker_free_listener(w->listeners[i]);
	struct relay_listener *ls;

	while ((ls = LIST_FIRST(&w->closed))) {
		LIST_REMOVE(ls, closed_link);
		worker_free_listener(ls);
	}
	worker_reload_discard(atomic_exchange(&w->reload, NULL));
	free(w->listeners);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	w->listeners = NULL;
	w->wake_fd = -1;
}

/* ---- reload ---- */

/* On the main thread: w->listeners and their addresses change only when the
 * worker applies a plan, which happens before it clears w->reload (the
 * atomic that hands the plan over and back), and a reload starts only once
 * every worker has cleared it. */
static struct relay_listener *worker_find_listener(struct worker *w,
						   const struct sockaddr_storage *addr)
{
	for (int i = 0; i < w->nlisteners; i++)
		if (addr_equal((const struct sockaddr *)&w->listeners[i]->addr,
			       (const struct sockaddr *)addr))
			return w->listeners[i];
	return NULL;
}

static int worker_plan_alloc(struct worker_reload *plan, int n)
{
	plan->listeners = calloc((size_t)n + 1, sizeof(*plan->listeners));
	plan->vips = calloc((size_t)n + 1, sizeof(*plan->vips));
	plan->opened = calloc((size_t)n + 1, sizeof(*plan->opened));
	return plan->listeners && plan->vips && plan->opened ? 0 : -ENOMEM;
}

int worker_reload_prepare(struct worker *w, struct runtime *rt, struct worker_reload **out)
{
	const struct config *cfg = rt->cfg;
	struct worker_reload *plan = calloc(1, sizeof(*plan));
	char why[256];
	int n = 0;

	*out = NULL;
	for (int v = 0; v < cfg->nvips; v++)
		n += cfg->vips[v].nlisten;
	if (!plan || worker_plan_alloc(plan, n) < 0 || !(plan->gen = relay_gen_new(rt))) {
		worker_reload_discard(plan);
		return -ENOMEM;
	}
	plan->rt = rt;
	for (int v = 0; v < cfg->nvips; v++)
		for (int i = 0; i < cfg->vips[v].nlisten; i++) {
			struct relay_listener *ls =
			    worker_find_listener(w, &cfg->vips[v].listen[i]);
			if (!ls) {
				ls = worker_listener_open(cfg, v, i, why, sizeof(why));
				if (!ls) {
					worker_reload_discard(plan);
					return -EADDRNOTAVAIL;
				}
				plan->opened[plan->nlisteners] = true;
			}
			plan->vips[plan->nlisteners] = &rt->vips[v];
			plan->listeners[plan->nlisteners++] = ls;
		}
	*out = plan;
	return 0;
}

/* Frees a plan not handed over: only the listeners it opened are its own
 * (never armed); the kept ones belong to the worker. */
void worker_reload_discard(struct worker_reload *plan)
{
	if (!plan)
		return;
	for (int i = 0; i < plan->nlisteners; i++)
		if (plan->opened[i])
			worker_free_listener(plan->listeners[i]);
	relay_gen_discard(plan->gen);
	free(plan->listeners);
	free(plan->vips);
	free(plan->opened);
	free(plan);
}

void worker_reload(struct worker *w, struct worker_reload *plan)
{
	uint64_t one = 1;

	atomic_store(&w->reload, plan);
	if (write(w->wake_fd, &one, sizeof(one)) < 0)
		log_warn("worker %d: cannot wake it: %s", w->id, strerror(errno));
}

bool worker_reload_pending(struct worker *w)
{
	return atomic_load(&w->reload) != NULL;
}

static bool worker_in_plan(const struct worker_reload *plan, const struct relay_listener *ls)
{
	for (int i = 0; i < plan->nlisteners; i++)
		if (plan->listeners[i] == ls)
			return true;
	return false;
}

/* On the worker's thread, between two batches of completions: listeners not
 * in the new set stop, the kept ones serve the new VIPs (their accept goes
 * on: no client sees the switch), the new ones start. */
static void worker_apply_reload(struct worker *w)
{
	struct worker_reload *plan = atomic_load(&w->reload);

	if (!plan)
		return;
	for (int i = 0; i < w->nlisteners; i++) {
		struct relay_listener *ls = w->listeners[i];
		if (worker_in_plan(plan, ls))
			continue;
		relay_unlisten(&w->relay, ls);
		ls->retired = true;
		LIST_INSERT_HEAD(&w->closed, ls, closed_link);
	}
	relay_switch(&w->relay, plan->gen);
	for (int i = 0; i < plan->nlisteners; i++) {
		struct relay_listener *ls = plan->listeners[i];
		ls->vip = plan->vips[i];
		if (plan->opened[i] && w->stopping == WORKER_RUN)
			relay_listen(&w->relay, ls);
	}
	free(w->listeners);
	w->listeners = plan->listeners;
	w->nlisteners = plan->nlisteners;
	w->rt = plan->rt;
	if (health_worker_switch(&w->health, w->rt) < 0)
		log_err("worker %d: out of memory: some servers of the new configuration are "
			"not checked",
			w->id);
	free(plan->vips);
	free(plan->opened);
	free(plan);
	atomic_store(&w->reload, NULL);
}

/* Closed listeners whose accept request has ended. */
static void worker_sweep_closed(struct worker *w)
{
	struct relay_listener *ls = LIST_FIRST(&w->closed), *next;

	for (; ls; ls = next) {
		next = LIST_NEXT(ls, closed_link);
		if (ls->armed)
			continue;
		LIST_REMOVE(ls, closed_link);
		worker_free_listener(ls);
	}
}
