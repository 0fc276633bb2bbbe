#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "addr.h"
#include "listener.h"
#include "log.h"
#include "worker.h"

/* Timeouts are checked this often; an idle timeout fires within one tick. */
#define WORKER_TICK_MS 100

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
			const struct sockaddr *sa = (const struct sockaddr *)&vip->listen[i];
			int fd = listener_open(sa, why, sizeof(why));
			if (fd < 0) {
				log_err("%s:%d: vip %s: %s", cfg->path, vip->line, vip->name, why);
				return fd;
			}
			struct relay_listener *ls = &w->listeners[w->nlisteners++];
			ls->fd = fd;
			ls->port = htons(addr_port(sa));
			ls->vip = &rt->vips[v];
		}
	}
	w->wake_fd = eventfd(0, EFD_CLOEXEC);
	return w->wake_fd < 0 ? -errno : 0;
}

static void worker_arm_tick(struct worker *w)
{
	struct io_uring_sqe *sqe = loop_sqe(&w->loop);
	w->tick.tv_sec = 0;
	w->tick.tv_nsec = WORKER_TICK_MS * 1000000LL;
	io_uring_prep_timeout(sqe, &w->tick, 0, 0);
	io_uring_sqe_set_data64(sqe, loop_ud(w, LOOP_OP_TICK));
}

static void worker_arm_wake(struct worker *w)
{
	struct io_uring_sqe *sqe = loop_sqe(&w->loop);
	io_uring_prep_read(sqe, w->wake_fd, &w->wake_val, sizeof(w->wake_val), 0);
	io_uring_sqe_set_data64(sqe, loop_ud(w, LOOP_OP_WAKE));
}

static void worker_on_tick(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	struct worker *w = owner;
	(void)cqe;
	relay_tick(ctx);
	worker_arm_tick(w);
}

static void worker_on_wake(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	(void)ctx;
	(void)cqe;
	worker_arm_wake(owner);
}

/* Acts on a stop request; returns true when the thread may leave its loop. */
static bool worker_check_stop(struct worker *w)
{
	int want = atomic_load(&w->stop);

	if (want > w->stopping) {
		if (w->stopping == WORKER_RUN) {
			for (int i = 0; i < w->nlisteners; i++)
				relay_unlisten(&w->relay, &w->listeners[i]);
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
	return w->relay.nconns == 0 && health_worker_idle(&w->health);
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
	loop_on(&w->loop, LOOP_OP_TICK, worker_on_tick);
	loop_on(&w->loop, LOOP_OP_WAKE, worker_on_wake);
	for (int i = 0; i < w->nlisteners; i++)
		relay_listen(&w->relay, &w->listeners[i]);
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
		if (worker_check_stop(w))
			break;
	}
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

void worker_free(struct worker *w)
{
	for (int i = 0; w->listeners && i < w->nlisteners; i++)
		if (w->listeners[i].fd >= 0)
			close(w->listeners[i].fd);
	free(w->listeners);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	w->listeners = NULL;
	w->wake_fd = -1;
}
