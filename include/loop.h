/* loop: one io_uring ring per worker, its provided-buffer ring, and the
 * dispatch of completions.
 *
 * The loop knows nothing of connections or protocols. Every request carries
 * in its user_data a pointer to its owner (16-byte aligned) and, in the low 4
 * bits, an operation code; a completion goes to the handler registered for
 * that code. This is the only place where user_data is encoded or decoded. */
#ifndef SNATPROXY_LOOP_H
#define SNATPROXY_LOOP_H

#include <stdint.h>
#include <stdbool.h>
#include <liburing.h>

/* Kernel values that liburing 2.3's headers lack (see docs/engine.md). */
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif

enum loop_op {
	LOOP_OP_IGNORE, /* cancels and other requests whose completion needs nothing */
	LOOP_OP_ACCEPT,
	LOOP_OP_CONNECT,
	LOOP_OP_CONNECT_TIMEOUT,
	LOOP_OP_RECV_CLIENT,
	LOOP_OP_RECV_SERVER,
	LOOP_OP_SEND_CLIENT,
	LOOP_OP_SEND_SERVER,
	LOOP_OP_TICK,
	LOOP_OP_WAKE,
	LOOP_OP_CHECK,
	LOOP_OP_CHECK_TIMEOUT,
	LOOP_OP_DEFER, /* tls = terminate: the server connect waiting for the client */
	LOOP_OP_MAX = 16
};

#define LOOP_BUF_NONE 0xffffu

struct loop;
typedef void (*loop_handler)(void *ctx, void *owner, struct io_uring_cqe *cqe);

/* Histograms of the loop's batches, for finding what holds a request: the
 * completions one batch handled (bucket i: fewer than 2^(i+1), the last
 * for the rest) and the time handling them took (bucket 0: under 16 us,
 * then under 4^(i+1) * 4 us: 64, 256, 1024, 4096 and 16384 us, the last
 * for the rest). */
#define LOOP_HIST 7

struct loop_stats {
	uint64_t submitted, completed, enobufs, cq_overflow;
	uint64_t batch_n[LOOP_HIST], batch_us[LOOP_HIST];
	uint64_t busy_us; /* the sum of the batches' times */
};

struct loop {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	unsigned char *bufs;
	uint16_t *buf_next; /* intrusive queues of received buffers, by buffer id */
	uint32_t *buf_len;  /* bytes the kernel put in each buffer */
	uint32_t buf_size, nbufs, buf_free;
	uint32_t buf_head;    /* ring entries the kernel has consumed, as seen in completions */
	unsigned buf_pending; /* returned to the ring but not yet published */
	uint16_t bgid;
	bool bundles;
	/* The kernel ends a multishot receive after the bytes given in the
	 * SQE's optlen (Linux 6.16); without it, receives are single-shot. */
	bool recv_limit;
	uint64_t now_ms; /* CLOCK_MONOTONIC, refreshed once per batch of completions */
	void *ctx;
	loop_handler handlers[LOOP_OP_MAX];
	struct loop_stats stats;
};

/* Sets up the ring and `nbufs` provided buffers of `buf_size` bytes. Returns
 * 0 or -errno, and a sentence saying what to do in `why` on failure. */
int loop_init(struct loop *l, uint32_t buf_size, uint32_t nbufs, const char **why);
void loop_free(struct loop *l);

/* Checks once, before any worker starts, that this kernel and its settings
 * allow what the engine needs; on failure fills `why` for the operator. */
int loop_probe(char *why, size_t len);

void loop_on(struct loop *l, enum loop_op op, loop_handler fn);

static inline uint64_t loop_ud(const void *owner, enum loop_op op)
{
	return (uint64_t)(uintptr_t)owner | (uint64_t)op;
}

/* A free SQE, submitting what is queued if the SQ is full. Never NULL. */
struct io_uring_sqe *loop_sqe(struct loop *l);

static inline unsigned char *loop_buf(struct loop *l, uint16_t bid)
{
	return l->bufs + (size_t)bid * l->buf_size;
}

/* Takes the buffers a receive completion filled (one, or several in ring
 * order for a bundle), calling fn(arg, bid, len) for each in stream order.
 * Returns 0, or -EPROTO if the completion did not start at the ring's head as
 * counted (a kernel behaviour this engine does not expect: the buffers are
 * still delivered, resynchronised on the completion's, but the caller should
 * stop asking for bundles). */
int loop_recv_bufs(struct loop *l, const struct io_uring_cqe *cqe,
		   void (*fn)(void *arg, uint16_t bid, uint32_t len), void *arg);

/* Gives buffer `bid` back to the kernel; published at the next submit. */
void loop_buf_put(struct loop *l, uint16_t bid);

/* Submits, waits for at least one completion, and dispatches all ready
 * completions. Returns 0 or -errno. */
int loop_run_once(struct loop *l);

void loop_cancel(struct loop *l, const void *owner, enum loop_op op);

/* Closes fd through the ring, after every request queued so far. The kernel
 * looks a request's descriptor up when it is submitted, not when it is
 * prepared: a descriptor closed in between can be reused at once (by another
 * worker's accept: threads share the descriptor table), and the request would
 * then act on another connection's socket. */
void loop_close(struct loop *l, int fd);

#endif
