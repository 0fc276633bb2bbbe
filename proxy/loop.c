#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <time.h>

#include "loop.h"

/* Sized for thousands of multishot completions per batch: a CQ overflow ends
 * every multishot request in flight, which costs a re-arm each. */
#define LOOP_SQ_ENTRIES 1024
#define LOOP_CQ_ENTRIES 16384
#define LOOP_BGID       0

static uint64_t loop_clock_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t loop_clock_ms(void)
{
	return loop_clock_us() / 1000;
}

static unsigned loop_log2(uint64_t v)
{
	return v ? 63u - (unsigned)__builtin_clzll(v) : 0;
}

static void loop_count_batch(struct loop_stats *s, unsigned n, uint64_t us)
{
	unsigned i = loop_log2(n), j = us < 16 ? 0 : (loop_log2(us) - 4) / 2 + 1;

	s->batch_n[i < LOOP_HIST ? i : LOOP_HIST - 1]++;
	s->batch_us[j < LOOP_HIST ? j : LOOP_HIST - 1]++;
	s->busy_us += us;
}

static void loop_ignore(void *ctx, void *owner, struct io_uring_cqe *cqe)
{
	(void)ctx;
	(void)owner;
	(void)cqe;
}

/* Only flags that liburing 2.3 knows: a newer setup flag is accepted by the
 * kernel but then liburing maps the ring wrongly (docs/engine.md). */
static int loop_setup(struct io_uring *ring, unsigned extra_flags, struct io_uring_params *p)
{
	memset(p, 0, sizeof(*p));
	p->flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | extra_flags;
	p->cq_entries = LOOP_CQ_ENTRIES;
	return io_uring_queue_init_params(LOOP_SQ_ENTRIES, ring, p);
}

static int loop_setup_buffers(struct loop *l, uint32_t buf_size, uint32_t nbufs)
{
	size_t ring_bytes = (size_t)nbufs * sizeof(struct io_uring_buf);
	void *mem =
	    mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	l->br = mem;
	io_uring_buf_ring_init(l->br);
	struct io_uring_buf_reg reg = {
	    .ring_addr = (uintptr_t)mem, .ring_entries = nbufs, .bgid = LOOP_BGID};
	int ret = io_uring_register_buf_ring(&l->ring, &reg, 0);
	if (ret < 0)
		return ret;
	/* Buffers are touched only when the kernel first fills them, so an idle
	 * worker's resident memory stays small. */
	l->bufs = mmap(NULL, (size_t)nbufs * buf_size, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (l->bufs == MAP_FAILED) {
		l->bufs = NULL;
		return -errno;
	}
	l->buf_next = calloc(nbufs, sizeof(*l->buf_next));
	l->buf_len = calloc(nbufs, sizeof(*l->buf_len));
	if (!l->buf_next || !l->buf_len)
		return -ENOMEM;
	l->buf_size = buf_size;
	l->nbufs = nbufs;
	l->bgid = LOOP_BGID;
	for (uint32_t i = 0; i < nbufs; i++)
		io_uring_buf_ring_add(l->br, loop_buf(l, i), buf_size, i,
				      io_uring_buf_ring_mask(nbufs), i);
	io_uring_buf_ring_advance(l->br, nbufs);
	l->buf_free = nbufs;
	return 0;
}

int loop_init(struct loop *l, uint32_t buf_size, uint32_t nbufs, const char **why)
{
	struct io_uring_params p;
	int ret;

	memset(l, 0, sizeof(*l));
	/* DEFER_TASKRUN runs completions only when this thread waits: no
	 * interrupts of the worker mid-batch. It needs SINGLE_ISSUER (6.1). */
	ret = loop_setup(&l->ring, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, &p);
	if (ret == -EINVAL)
		ret = loop_setup(&l->ring, IORING_SETUP_COOP_TASKRUN, &p);
	if (ret < 0) {
		*why = "io_uring_setup failed (see `snatproxy -t` for the probe's advice)";
		return ret;
	}
	l->bundles = (p.features & IORING_FEAT_RECVSEND_BUNDLE) != 0;
	l->recv_limit = true; /* until a receive says EINVAL (relay.c) */
	ret = loop_setup_buffers(l, buf_size, nbufs);
	if (ret < 0) {
		*why = ret == -ENOMEM || ret == -EPERM
			   ? "cannot register provided buffers: raise RLIMIT_MEMLOCK "
			     "(LimitMEMLOCK=infinity) or lower `buffers`"
			   : "cannot register a provided-buffer ring (snatproxy needs Linux 6.0 or "
			     "later)";
		loop_free(l);
		return ret;
	}
	for (int i = 0; i < LOOP_OPS; i++)
		l->ops[i].fn = loop_ignore;
	l->nops = LOOP_OP_IGNORE + 1;
	l->now_ms = loop_clock_ms();
	return 0;
}

void loop_free(struct loop *l)
{
	if (l->ring.ring_fd > 0) {
		io_uring_submit(&l->ring); /* the closes still queued */
		io_uring_queue_exit(&l->ring);
	}
	if (l->br)
		munmap(l->br, (size_t)l->nbufs * sizeof(struct io_uring_buf));
	if (l->bufs)
		munmap(l->bufs, (size_t)l->nbufs * l->buf_size);
	free(l->buf_next);
	free(l->buf_len);
	memset(l, 0, sizeof(*l));
}

static int loop_probe_sysctl(void)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	int v = 0;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

int loop_probe(char *why, size_t len)
{
	static const struct {
		int op;
		const char *name;
	} need[] = {
	    {IORING_OP_ACCEPT, "accept"},       {IORING_OP_CONNECT, "connect"},
	    {IORING_OP_RECV, "recv"},           {IORING_OP_SEND, "send"},
	    {IORING_OP_TIMEOUT, "timeout"},     {IORING_OP_LINK_TIMEOUT, "link_timeout"},
	    {IORING_OP_ASYNC_CANCEL, "cancel"}, {IORING_OP_READ, "read"},
	};
	struct io_uring ring;
	int ret = io_uring_queue_init(8, &ring, 0);

	if (ret == -EPERM || ret == -ENOSYS) {
		int disabled = loop_probe_sysctl();
		if (disabled)
			snprintf(why, len,
				 "io_uring is disabled by sysctl kernel.io_uring_disabled=%d: "
				 "set it to 0 (sysctl -w kernel.io_uring_disabled=0)",
				 disabled);
		else
			snprintf(
			    why, len,
			    "io_uring_setup is refused (%s): a seccomp profile such as "
			    "Docker's default blocks it; run on the host or allow io_uring_setup, "
			    "io_uring_enter and io_uring_register",
			    strerror(-ret));
		return ret;
	}
	if (ret < 0) {
		snprintf(why, len, "io_uring_setup failed: %s", strerror(-ret));
		return ret;
	}
	struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
	ret = 0;
	for (size_t i = 0; probe && i < sizeof(need) / sizeof(need[0]); i++) {
		if (!io_uring_opcode_supported(probe, need[i].op)) {
			snprintf(why, len,
				 "this kernel's io_uring lacks the %s operation: "
				 "snatproxy needs Linux 6.0 or later",
				 need[i].name);
			ret = -EOPNOTSUPP;
			break;
		}
	}
	if (probe)
		io_uring_free_probe(probe);
	io_uring_queue_exit(&ring);
	return ret;
}

int loop_register(struct loop *l, loop_handler fn, void *ctx)
{
	if (l->nops == LOOP_OPS)
		return -ENOSPC;
	l->ops[l->nops].fn = fn;
	l->ops[l->nops].ctx = ctx;
	return l->nops++;
}

static void loop_publish_buffers(struct loop *l)
{
	if (l->buf_pending) {
		io_uring_buf_ring_advance(l->br, l->buf_pending);
		l->buf_pending = 0;
	}
}

void loop_submit(struct loop *l)
{
	loop_publish_buffers(l);
	int ret = io_uring_submit(&l->ring);
	if (ret > 0)
		l->stats.submitted += (unsigned)ret;
}

struct io_uring_sqe *loop_sqe(struct loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	while (!sqe) {
		loop_submit(l);
		sqe = io_uring_get_sqe(&l->ring);
	}
	return sqe;
}

/* The kernel consumes ring entries strictly from the head, and a completion
 * is posted together with its buffers' consumption, so counting the entries
 * completions have taken tells where each one's buffers start. A bundle's
 * buffers are the consecutive ring entries from there, each filled whole
 * except the last. The entries stay readable until the ring wraps onto them,
 * which cannot happen while their buffers are out of it. */
int loop_recv_bufs(struct loop *l, const struct io_uring_cqe *cqe,
		   void (*fn)(void *arg, uint16_t bid, uint32_t len), void *arg)
{
	const uint32_t mask = io_uring_buf_ring_mask(l->nbufs);
	uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	uint32_t left = (uint32_t)cqe->res;
	int ret = 0;

	if (l->br->bufs[l->buf_head & mask].bid != bid) {
		/* Out of step: trust the completion for its first buffer and
		 * resynchronise on it, but tell the caller, who stops bundling. */
		for (uint32_t k = 1; k < l->nbufs; k++)
			if (l->br->bufs[(l->buf_head + k) & mask].bid == bid) {
				l->buf_head += k;
				break;
			}
		ret = -EPROTO;
	}
	for (;;) {
		uint32_t len = left < l->buf_size ? left : l->buf_size;
		l->buf_head++;
		l->buf_free--;
		fn(arg, bid, len);
		left -= len;
		if (!left)
			return ret;
		bid = l->br->bufs[l->buf_head & mask].bid;
	}
}

void loop_buf_put(struct loop *l, uint16_t bid)
{
	io_uring_buf_ring_add(l->br, loop_buf(l, bid), l->buf_size, bid,
			      io_uring_buf_ring_mask(l->nbufs), l->buf_pending);
	l->buf_pending++;
	l->buf_free++;
}

void loop_cancel(struct loop *l, const void *owner, int op)
{
	struct io_uring_sqe *sqe = loop_sqe(l);
	io_uring_prep_cancel64(sqe, loop_ud(owner, op), 0);
	io_uring_sqe_set_data64(sqe, loop_ud(NULL, LOOP_OP_IGNORE));
}

/* As a request queued after the ones that may use fd: requests take their
 * reference to the socket when the kernel issues them, in queue order, so
 * they hold it before the close runs, and the number is not free for reuse
 * until then. No extra system call, and no completion on success. */
void loop_close(struct loop *l, int fd)
{
	struct io_uring_sqe *sqe = loop_sqe(l);

	io_uring_prep_close(sqe, fd);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, loop_ud(NULL, LOOP_OP_IGNORE));
}

int loop_run_once(struct loop *l)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;

	loop_publish_buffers(l);
	int ret = io_uring_submit_and_wait(&l->ring, 1);
	if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
		return ret;
	if (ret > 0)
		l->stats.submitted += (unsigned)ret;
	uint64_t t0 = loop_clock_us();
	l->now_ms = t0 / 1000;
	io_uring_for_each_cqe(&l->ring, head, cqe)
	{
		uint64_t ud = cqe->user_data;
		const int op = (int)(ud & (LOOP_OPS - 1));
		seen++;
		l->ops[op].fn(l->ops[op].ctx, (void *)(uintptr_t)(ud & ~(uint64_t)(LOOP_OPS - 1)),
			      cqe);
	}
	io_uring_cq_advance(&l->ring, seen);
	l->stats.completed += seen;
	if (seen)
		loop_count_batch(&l->stats, seen, loop_clock_us() - t0);
	if (*l->ring.cq.koverflow)
		l->stats.cq_overflow = *l->ring.cq.koverflow;
	return 0;
}
