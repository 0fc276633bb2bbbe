/* balance: the algorithms' sequences and limits, on pools built from
 * configuration structs as config_load would make them. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "balance.h"
#include "unit.h"

#define MAXS 8

struct fixture {
	struct config_server srv[MAXS];
	struct config_pool cfg;
	struct balance_pool p;
};

/* spec: "name:weight[:max_conn][:b]" per server. */
static void pool(struct fixture *f, enum config_balance algo, int n, const char *const *spec)
{
	memset(f, 0, sizeof(*f));
	for (int i = 0; i < n; i++) {
		char buf[64], *save = NULL;
		snprintf(buf, sizeof(buf), "%s", spec[i]);
		snprintf(f->srv[i].name, sizeof(f->srv[i].name), "%s", strtok_r(buf, ":", &save));
		char *w = strtok_r(NULL, ":", &save), *m = strtok_r(NULL, ":", &save);
		char *b = strtok_r(NULL, ":", &save);
		f->srv[i].weight = w ? atoi(w) : 1;
		f->srv[i].max_conn = m ? atoi(m) : 0;
		f->srv[i].backup = b && *b == 'b';
	}
	f->cfg.balance = algo;
	f->cfg.servers = f->srv;
	f->cfg.nservers = n;
	CHECK_EQ(balance_pool_init(&f->p, &f->cfg), 0);
}

/* The names of n picks, released at once so that limits do not interfere. */
static void sequence(struct fixture *f, int n, char *out, size_t len)
{
	size_t k = 0;
	for (int i = 0; i < n && k + 1 < len; i++) {
		int s = balance_pick(&f->p, 0, -1);
		out[k++] = s < 0 ? '-' : f->srv[s].name[0];
		if (s >= 0)
			balance_release(&f->p, s);
	}
	out[k] = 0;
}

static void test_smooth_round_robin(void)
{
	struct fixture f;
	char seq[32];

	/* nginx's example: weights 5,1,1 interleave rather than burst. */
	pool(&f, CONFIG_BALANCE_ROUNDROBIN, 3, (const char *[]){"a:5", "b:1", "c:1"});
	sequence(&f, 14, seq, sizeof(seq));
	CHECK_STR(seq, "aabacaaaabacaa");
	balance_pool_free(&f.p);

	pool(&f, CONFIG_BALANCE_ROUNDROBIN, 2, (const char *[]){"a", "b"});
	sequence(&f, 6, seq, sizeof(seq));
	CHECK_STR(seq, "ababab");
	/* A server down is skipped, and the other takes every turn. */
	atomic_store(&f.p.srv[0].flags, BALANCE_DOWN);
	sequence(&f, 4, seq, sizeof(seq));
	CHECK_STR(seq, "bbbb");
	atomic_store(&f.p.srv[1].flags, BALANCE_DRAIN);
	CHECK_EQ(balance_pick(&f.p, 0, -1), -EAGAIN);
	balance_pool_free(&f.p);
}

static void test_backup_and_avoid(void)
{
	struct fixture f;
	char seq[32];

	pool(&f, CONFIG_BALANCE_ROUNDROBIN, 3, (const char *[]){"a", "b", "s:1:0:b"});
	sequence(&f, 4, seq, sizeof(seq));
	CHECK_STR(seq, "abab"); /* the backup is not used while a primary is */
	/* A retry avoiding the failed server goes to the other primary... */
	CHECK_EQ(balance_pick(&f.p, 0, 0), 1);
	balance_release(&f.p, 1);
	/* ...and to the backup when the other primary is down too. */
	atomic_store(&f.p.srv[1].flags, BALANCE_DOWN);
	CHECK_EQ(balance_pick(&f.p, 0, 0), 2);
	balance_release(&f.p, 2);
	atomic_store(&f.p.srv[0].flags, BALANCE_DISABLED);
	sequence(&f, 3, seq, sizeof(seq));
	CHECK_STR(seq, "sss");
	atomic_store(&f.p.srv[2].flags, BALANCE_DOWN);
	CHECK_EQ(balance_pick(&f.p, 0, -1), -EAGAIN);
	balance_pool_free(&f.p);
}

/* N connections when every connect to server DEAD fails and is retried at
 * once, as relay.c does: the first attempts' names go to `first`, the
 * retries' to `retry`. */
static void failing(struct fixture *f, int n, int dead, char *first, char *retry)
{
	int k = 0;

	for (int i = 0; i < n; i++) {
		int s = balance_pick(&f->p, 0, -1);
		first[i] = s < 0 ? '-' : f->srv[s].name[0];
		if (s < 0)
			continue;
		balance_release(&f->p, s);
		if (s != dead)
			continue;
		s = balance_pick(&f->p, 0, dead);
		retry[k++] = s < 0 ? '-' : f->srv[s].name[0];
		if (s >= 0)
			balance_release(&f->p, s);
	}
	first[n] = retry[k] = 0;
}

/* A retry takes no round-robin step: the failed server keeps its share of
 * first attempts (a third of three), where the step a retry took made the
 * connection after each failure start at the failed server again (half of
 * the first attempts with three servers, all of them with two). */
static void test_retry_rotation(void)
{
	struct fixture f;
	char first[32], retry[32];

	pool(&f, CONFIG_BALANCE_ROUNDROBIN, 3, (const char *[]){"a", "b", "c"});
	failing(&f, 9, 1, first, retry);
	CHECK_STR(first, "abcabcabc");
	CHECK_STR(retry, "ccc");
	balance_pool_free(&f.p);

	pool(&f, CONFIG_BALANCE_ROUNDROBIN, 2, (const char *[]){"a", "b"});
	failing(&f, 6, 1, first, retry);
	CHECK_STR(first, "ababab");
	CHECK_STR(retry, "aaa");
	balance_pool_free(&f.p);

	/* Weights keep their smooth sequence through retries. */
	pool(&f, CONFIG_BALANCE_ROUNDROBIN, 3, (const char *[]){"a:5", "b:1", "c:1"});
	failing(&f, 14, 1, first, retry);
	CHECK_STR(first, "aabacaaaabacaa");
	balance_pool_free(&f.p);
}

/* The pool as balance_pool_init makes it with check = none and fail_timeout. */
static void pool_fail_timeout(struct fixture *f, enum config_balance algo, int n,
			      const char *const *spec, uint64_t fail_timeout_ms)
{
	pool(f, algo, n, spec);
	balance_pool_free(&f->p);
	f->cfg.fail_timeout_ms = fail_timeout_ms;
	CHECK_EQ(balance_pool_init(&f->p, &f->cfg), 0);
}

/* The wait is over: as if fail_timeout had passed. */
static void wait_over(struct fixture *f, int i)
{
	atomic_store(&f->p.srv[i].retry_ms, balance_now_ms() - 1);
}

static int count_of(const char *seq, char c)
{
	int n = 0;
	for (; *seq; seq++)
		n += *seq == c;
	return n;
}

/* Without active checks, a server that failed is skipped for fail_timeout,
 * then given one trial connection; a success brings it back. */
static void test_fail_timeout(void)
{
	struct fixture f;
	char seq[32];

	pool_fail_timeout(&f, CONFIG_BALANCE_ROUNDROBIN, 3, (const char *[]){"a", "b", "c"}, 10000);
	CHECK_EQ(f.p.fail_timeout_ms, 10000);
	CHECK(balance_fail(&f.p, 1));
	CHECK(!balance_fail(&f.p, 1)); /* already down: only renews the wait */
	CHECK(atomic_load(&f.p.srv[1].retry_ms) >= balance_now_ms() + 9000);
	sequence(&f, 6, seq, sizeof(seq));
	CHECK_STR(seq, "acacac"); /* skipped, and the others alternate evenly */
	wait_over(&f, 1);
	sequence(&f, 9, seq, sizeof(seq));
	CHECK_EQ(count_of(seq, 'b'), 1); /* one trial, and the wait starts again */
	CHECK(atomic_load(&f.p.srv[1].retry_ms) >= balance_now_ms() + 9000);
	CHECK(balance_recover(&f.p, 1)); /* the trial connected */
	CHECK(!balance_recover(&f.p, 1));
	sequence(&f, 6, seq, sizeof(seq));
	CHECK_EQ(count_of(seq, 'b'), 2);
	/* An operator's flag is not lifted by the wait's end. */
	balance_fail(&f.p, 1);
	atomic_fetch_or(&f.p.srv[1].flags, BALANCE_DRAIN);
	wait_over(&f, 1);
	sequence(&f, 6, seq, sizeof(seq));
	CHECK_EQ(count_of(seq, 'b'), 0);
	balance_pool_free(&f.p);

	/* leastconn: the trial goes to the idle server once, then not again. */
	pool_fail_timeout(&f, CONFIG_BALANCE_LEASTCONN, 2, (const char *[]){"a", "b"}, 10000);
	balance_fail(&f.p, 1);
	CHECK_EQ(balance_pick(&f.p, 0, -1), 0);
	wait_over(&f, 1);
	CHECK_EQ(balance_pick(&f.p, 0, -1), 1);
	balance_release(&f.p, 1);
	CHECK_EQ(balance_pick(&f.p, 0, -1), 0);
	balance_pool_free(&f.p);

	/* With active checks, down lasts until the checks say up: no trial. */
	pool(&f, CONFIG_BALANCE_ROUNDROBIN, 2, (const char *[]){"a", "b"});
	balance_pool_free(&f.p);
	f.cfg.check.type = CONFIG_CHECK_TCP;
	f.cfg.fail_timeout_ms = 10000;
	CHECK_EQ(balance_pool_init(&f.p, &f.cfg), 0);
	CHECK_EQ(f.p.fail_timeout_ms, 0);
	atomic_store(&f.p.srv[1].flags, BALANCE_DOWN);
	sequence(&f, 4, seq, sizeof(seq));
	CHECK_STR(seq, "aaaa");
	balance_pool_free(&f.p);
}

static void test_max_conn(void)
{
	struct fixture f;

	pool(&f, CONFIG_BALANCE_ROUNDROBIN, 2, (const char *[]){"a:1:2", "b:1:1"});
	int got[3];
	for (int i = 0; i < 3; i++)
		got[i] = balance_pick(&f.p, 0, -1);
	CHECK_EQ(got[0], 0);
	CHECK_EQ(got[1], 1);
	CHECK_EQ(got[2], 0);
	CHECK_EQ(balance_pick(&f.p, 0, -1), -EAGAIN); /* both full */
	CHECK_EQ(atomic_load(&f.p.srv[0].active), 2);
	balance_release(&f.p, 1);
	CHECK_EQ(balance_pick(&f.p, 0, -1), 1);
	balance_pool_free(&f.p);
}

static void test_leastconn(void)
{
	struct fixture f;
	char seq[32];

	pool(&f, CONFIG_BALANCE_LEASTCONN, 3, (const char *[]){"a", "b", "c"});
	/* Idle pool: ties rotate, so every server gets a turn. */
	sequence(&f, 3, seq, sizeof(seq));
	CHECK(strchr(seq, 'a') && strchr(seq, 'b') && strchr(seq, 'c'));
	/* Held connections steer new ones to the least loaded server. */
	int a = balance_pick(&f.p, 0, -1), b = balance_pick(&f.p, 0, -1);
	CHECK(a != b);
	int c = balance_pick(&f.p, 0, -1);
	CHECK(c != a && c != b);
	balance_release(&f.p, b);
	CHECK_EQ(balance_pick(&f.p, 0, -1), b);
	balance_pool_free(&f.p);

	/* Weights: b (weight 3) takes three connections for a's one. */
	pool(&f, CONFIG_BALANCE_LEASTCONN, 2, (const char *[]){"a:1", "b:3"});
	int count[2] = {0, 0};
	for (int i = 0; i < 8; i++)
		count[balance_pick(&f.p, 0, -1)]++;
	CHECK_EQ(count[0], 2);
	CHECK_EQ(count[1], 6);
	balance_pool_free(&f.p);
}

static uint32_t key_of(int i)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(40000)};
	sin.sin_addr.s_addr = htonl(0xc6120000u + (uint32_t)i); /* 198.18.x.y */
	return balance_hash_addr((struct sockaddr *)&sin);
}

static void test_source(void)
{
	struct fixture f;
	int first[1000], count[4] = {0};

	/* The port is not part of the key. */
	struct sockaddr_in x = {.sin_family = AF_INET, .sin_port = htons(1)};
	struct sockaddr_in y = {.sin_family = AF_INET, .sin_port = htons(2)};
	CHECK_EQ(balance_hash_addr((struct sockaddr *)&x),
		 balance_hash_addr((struct sockaddr *)&y));

	pool(&f, CONFIG_BALANCE_SOURCE, 4, (const char *[]){"a", "b", "c", "d"});
	for (int i = 0; i < 1000; i++) {
		first[i] = balance_pick(&f.p, key_of(i), -1);
		balance_release(&f.p, first[i]);
		count[first[i]]++;
		CHECK_EQ(balance_pick(&f.p, key_of(i), -1), first[i]); /* sticky */
		balance_release(&f.p, first[i]);
	}
	for (int s = 0; s < 4; s++) /* an even spread: 250 each, give or take */
		CHECK(count[s] > 180 && count[s] < 320);
	/* c goes down: only its clients move, and the others stay put. */
	atomic_store(&f.p.srv[2].flags, BALANCE_DOWN);
	int moved = 0;
	for (int i = 0; i < 1000; i++) {
		int s = balance_pick(&f.p, key_of(i), -1);
		balance_release(&f.p, s);
		CHECK(s != 2);
		if (first[i] != 2)
			CHECK_EQ(s, first[i]);
		moved += s != first[i];
	}
	CHECK_EQ(moved, count[2]);
	atomic_store(&f.p.srv[2].flags, 0);
	for (int i = 0; i < 1000; i++) { /* and come back with it */
		CHECK_EQ(balance_pick(&f.p, key_of(i), -1), first[i]);
		balance_release(&f.p, first[i]);
	}
	balance_pool_free(&f.p);
}

/* Workers pick and release at once: max_conn must hold, and the counts must
 * come back to zero. */
static struct fixture shared;
static atomic_int over_limit, granted[2];

static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 200000; i++) {
		int s = balance_pick(&shared.p, (uint32_t)i, -1);
		if (s < 0)
			continue;
		/* Counted here, not in `active`, which a losing racer raises
		 * for an instant before it backs off. */
		if (atomic_fetch_add(&granted[s], 1) + 1 > shared.p.srv[s].max_conn)
			atomic_fetch_add(&over_limit, 1);
		atomic_fetch_sub(&granted[s], 1);
		balance_release(&shared.p, s);
	}
	return NULL;
}

static void test_concurrent_limits(void)
{
	pthread_t t[4];

	pool(&shared, CONFIG_BALANCE_LEASTCONN, 2, (const char *[]){"a:1:2", "b:1:1"});
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, hammer, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(atomic_load(&over_limit), 0);
	CHECK_EQ(atomic_load(&shared.p.srv[0].active), 0);
	CHECK_EQ(atomic_load(&shared.p.srv[1].active), 0);
	balance_pool_free(&shared.p);
}

int main(void)
{
	test_smooth_round_robin();
	test_backup_and_avoid();
	test_retry_rotation();
	test_fail_timeout();
	test_max_conn();
	test_leastconn();
	test_source();
	test_concurrent_limits();
	return unit_done("balance");
}
