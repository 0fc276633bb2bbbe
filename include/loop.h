/* loop: one io_uring ring per worker, its provided-buffer ring, and the
 * dispatch of completions.
 *
 * The loop knows nothing of connections or protocols, nor of who uses it.
 * Every request carries in its user_data a pointer to its owner (16-byte
 * aligned: LOOP_OWNER) and, in the low 4 bits, an operation code; a consumer
 * registers a handler and gets its code back (loop_register), and a
 * completion goes to the handler of its code, with the context given then.
 * This is the only place where user_data is encoded or decoded. */
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

/* Code 0 is for requests whose completion needs nothing (cancels, closes);
 * loop_register hands out the others, as many as the tag's 4 bits hold. */
#define LOOP_OP_IGNORE 0
#define LOOP_OPS       16

/* Declares that objects of `type` may own requests: their low 4 bits must
 * be free for the operation code. */
#define LOOP_OWNER(type)                                                                           \
	_Static_assert(_Alignof(type) >= LOOP_OPS,                                                 \
		       #type " owns loop requests: it must be 16-byte aligned (_Alignas(16))")

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
	struct {
		loop_handler fn;
		void *ctx;
	} ops[LOOP_OPS];
	int nops; /* codes handed out, LOOP_OP_IGNORE's included */
	struct loop_stats stats;
};

/* Sets up the ring and `nbufs` provided buffers of `buf_size` bytes. Returns
 * 0 or -errno, and a sentence saying what to do in `why` on failure. */
int loop_init(struct loop *l, uint32_t buf_size, uint32_t nbufs, const char **why);
void loop_free(struct loop *l);

/* Checks once, before any worker starts, that this kernel and its settings
 * allow what the engine needs; on failure fills `why` for the operator. */
int loop_probe(char *why, size_t len);

/* Registers fn, called with ctx for every completion of a request whose
 * user_data is loop_ud(owner, code). Returns the code, or -ENOSPC when all
 * 15 are taken. */
int loop_register(struct loop *l, loop_handler fn, void *ctx);

static inline uint64_t loop_ud(const void *owner, int op)
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

void loop_cancel(struct loop *l, const void *owner, int op);

/* Closes fd through the ring, after every request queued so far. The kernel
 * looks a request's descriptor up when it is submitted, not when it is
 * prepared: a descriptor closed in between can be reused at once (by another
 * worker's accept: threads share the descriptor table), and the request would
 * then act on another connection's socket. */
void loop_close(struct loop *l, int fd);

/* Submits what is queued now, rather than when the batch of completions
 * ends: the closes among it free their descriptors before this returns. */
void loop_submit(struct loop *l);

#endif
