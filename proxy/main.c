#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "admin.h"
#include "bigip.h"
#include "budget.h"
#include "certdiag.h"
#include "config.h"
#include "health.h"
#include "log.h"
#include "loop.h"
#include "privs.h"
#include "reload.h"
#include "runtime.h"
#include "snat.h"
#include "worker.h"

static const char usage[] =
    "usage: snatproxy -c FILE [-t] [-v]\n"
    "       snatproxy -C CERT [-k KEY] [-a CA]\n"
    "       snatproxy --import-bigip FILE > snatproxy.ini\n"
    "       snatproxy --keys | -V | -h\n"
    "\n"
    "A user-space SNAT load balancer for TCP on io_uring.\n"
    "\n"
    "  -c, --config FILE  configuration file (INI; see docs/configuration.md)\n"
    "  -t, --test         check the configuration as the start does (user, access_log,\n"
    "                     SNAT addresses...) but bind no socket; print every error as\n"
    "                     FILE:LINE: message, and exit 0 (valid) or 1\n"
    "  -v, --verbose      log debugging details (every failed health check among them)\n"
    "  -C, --cert CERT    examine a PEM certificate: can it serve as a TLS server and as a\n"
    "                     TLS client (mutual TLS needs both), is it valid, does KEY\n"
    "                     match it, does its chain verify against CA (default:\n"
    "                     the system's store); exit 0 when it can serve both ways\n"
    "  -k, --key KEY      with -C: its private key (default: looked for in CERT)\n"
    "  -a, --ca CA        with -C: PEM CA certificates to verify its chain against\n"
    "      --keys         print the reference of every configuration key (markdown)\n"
    "      --import-bigip FILE\n"
    "                     convert a BIG-IP LTM configuration (bigip.conf or tmsh list ltm)\n"
    "                     into a snatproxy configuration on stdout; one line on stderr per\n"
    "                     object skipped or converted in part (docs/bigip.md); exit 0 when\n"
    "                     FILE parsed, 1 with FILE:LINE: message when it did not\n"
    "  -V, --version      print the version\n"
    "  -h, --help         print this help\n"
    "\n"
    "Runs in the foreground and logs to stderr. SIGTERM or SIGINT: with the admin\n"
    "endpoint on, GET /ready answers 503 for `drain_delay` while connections are still\n"
    "taken (so keepalived or a BGP daemon moves the VIP first); then stop accepting, let\n"
    "open connections finish for up to `grace`, then close them and exit 0; a second\n"
    "signal closes them at once. SIGHUP: reload the configuration (an invalid one is\n"
    "logged and changes nothing). SIGUSR1: reopen the access_log file (rotation).\n";

#ifdef __SANITIZE_THREAD__
/* make SAN=thread: the first data race ends the process with status 66, so
 * the test that stops the proxy sees it fail; TSAN_OPTIONS still overrides. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "halt_on_error=1:exitcode=66:second_deadlock_stack=1";
}
#endif

struct options {
	const char *config, *cert, *key, *ca, *bigip;
	bool test, keys, verbose;
};

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
						 {"test", no_argument, NULL, 't'},
						 {"verbose", no_argument, NULL, 'v'},
						 {"keys", no_argument, NULL, 'K'},
						 {"version", no_argument, NULL, 'V'},
						 {"help", no_argument, NULL, 'h'},
						 {"cert", required_argument, NULL, 'C'},
						 {"key", required_argument, NULL, 'k'},
						 {"ca", required_argument, NULL, 'a'},
						 {"import-bigip", required_argument, NULL, 'B'},
						 {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "c:tvVhC:k:a:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 't':
			o->test = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'K':
			o->keys = true;
			break;
		case 'C':
			o->cert = optarg;
			break;
		case 'k':
			o->key = optarg;
			break;
		case 'a':
			o->ca = optarg;
			break;
		case 'B':
			o->bigip = optarg;
			break;
		case 'V':
			printf("snatproxy %s\n", SNATPROXY_VERSION);
			exit(0);
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "snatproxy: unexpected argument '%s'\n%s", argv[optind], usage);
		return -EINVAL;
	}
	if ((o->key || o->ca) && !o->cert) {
		fprintf(stderr, "snatproxy: -k and -a go with -C CERT\n%s", usage);
		return -EINVAL;
	}
	if (!o->config && !o->keys && !o->cert && !o->bigip) {
		fprintf(stderr, "snatproxy: no configuration file: use -c FILE\n%s", usage);
		return -EINVAL;
	}
	return 0;
}

/* Each connection holds two descriptors: take all the hard limit allows,
 * before max_connections = auto is derived from it (runtime_init). */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void reopen_access_log(const struct config *cfg)
{
	int ret = log_access_reopen();

	if (ret < 0)
		log_err("SIGUSR1: cannot reopen access_log %s: %s; still writing to the old file",
			cfg->access_log, strerror(-ret));
	else if (cfg->access_log[0])
		log_info("SIGUSR1: access_log %s reopened", cfg->access_log);
}

static bool workers_exited(struct worker *w, int n)
{
	for (int i = 0; i < n; i++)
		if (!atomic_load(&w[i].exited))
			return false;
	return true;
}

/* While the workers drain, a second SIGINT or SIGTERM closes everything now.
 * `cfg` is the current generation's, as the main thread knows it: a worker's
 * own w->rt is its to change (a late reload switch) until it has exited. */
static void wait_workers(struct worker *w, int n, const sigset_t *set, const struct config *cfg)
{
	const struct timespec poll = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
	bool now = false;

	while (!workers_exited(w, n)) {
		int sig = sigtimedwait(set, NULL, &poll);
		if (sig == SIGUSR1)
			reopen_access_log(cfg);
		if (sig == SIGINT || sig == SIGTERM) {
			if (!now)
				log_info("%s: closing open connections now", strsignal(sig));
			now = true;
			for (int i = 0; i < n; i++)
				worker_signal(&w[i], WORKER_STOP_NOW);
		}
	}
}

/* The first stop signal with the admin endpoint on: for drain_delay, GET
 * /ready answers 503 while connections are still taken, so keepalived or the
 * BGP daemon moves the VIP away before the listeners close. Without the
 * endpoint nobody could see it, so there is no delay. Returns whether to go
 * on to the graceful stop (false: a second signal came; close now). */
static bool drain_before_stop(struct reload *rl, const sigset_t *set, int sig)
{
	const struct config *cfg = reload_current(rl)->cfg;
	struct runtime *root = reload_current(rl)->root;
	uint64_t end = balance_now_ms() + cfg->drain_delay_ms;

	if (!cfg->admin.ss_family || cfg->drain_delay_ms == 0)
		return true;
	atomic_store(&root->state, RUNTIME_STOP_DRAIN);
	log_info("%s: GET /ready answers 503 for drain_delay %llu ms, still taking connections; "
		 "then no new ones",
		 strsignal(sig), (unsigned long long)cfg->drain_delay_ms);
	for (uint64_t now; (now = balance_now_ms()) < end;) {
		uint64_t ms = end - now < 100 ? end - now : 100;
		const struct timespec wait = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
		int s = sigtimedwait(set, NULL, &wait);
		if (s == SIGUSR1)
			reopen_access_log(reload_current(rl)->cfg);
		else if (s == SIGINT || s == SIGTERM)
			return false;
		reload_collect(rl);
	}
	return true;
}

/* Until SIGINT or SIGTERM: SIGHUP reloads, SIGUSR1 reopens the access log,
 * and once a second retired generations are freed and the SNAT port
 * budgets sampled (budget.c). Then drain_delay, if any. Returns whether open
 * connections get their grace (false: close now). */
static bool serve_signals(struct reload *rl, const sigset_t *set)
{
	const struct timespec second = {.tv_sec = 1, .tv_nsec = 0};
	int sig;

	for (;;) {
		sig = sigtimedwait(set, NULL, &second);
		if (sig == SIGHUP)
			reload_run(rl);
		else if (sig == SIGUSR1)
			reopen_access_log(reload_current(rl)->cfg);
		else if (sig == SIGINT || sig == SIGTERM)
			break;
		reload_collect(rl);
		budget_tick(reload_current(rl));
	}
	bool grace = drain_before_stop(rl, set, sig);
	atomic_store(&reload_current(rl)->root->state, RUNTIME_STOPPING);
	if (grace)
		log_info("%s: no new connections; draining open ones for up to %llu ms",
			 strsignal(sig), (unsigned long long)reload_current(rl)->cfg->grace_ms);
	else
		log_info("%s again during drain_delay: closing open connections now",
			 strsignal(sig));
	return grace;
}

/* Runs the workers until a stop signal, then drains them. Closes `admin`. */
static int serve(struct runtime *rt, struct worker *w, struct admin *admin)
{
	pthread_barrier_t ready;
	sigset_t set;
	int n = rt->nworkers, started = 0, status = 0;
	bool grace = true;
	struct reload *rl = reload_new(rt, w, admin);

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_barrier_init(&ready, NULL, (unsigned)n + 1);
	for (; rl && started < n; started++)
		if (worker_start(&w[started], &ready) < 0)
			break;
	if (started < n) {
		log_err("cannot start worker threads");
		exit(1);
	}
	pthread_barrier_wait(&ready);
	for (int i = 0; i < n; i++)
		if (w[i].status < 0)
			status = 1;
	if (status == 0 && admin && admin_start(admin) < 0)
		log_err("cannot start the admin thread: the admin endpoint is off");
	if (status == 0) {
		log_info("snatproxy %s: %d worker(s), %d vip(s), %d pool(s) from %s",
			 SNATPROXY_VERSION, n, rt->cfg->nvips, rt->cfg->npools, rt->cfg->path);
		grace = serve_signals(rl, &set);
	}
	for (int i = 0; i < n; i++)
		worker_signal(&w[i], status || !grace ? WORKER_STOP_NOW : WORKER_DRAIN);
	wait_workers(w, n, &set, reload_current(rl)->cfg);
	for (int i = 0; i < n; i++)
		worker_join(&w[i]);
	pthread_barrier_destroy(&ready);
	for (int i = 0; i < n; i++)
		if (w[i].status < 0)
			status = 1;
	admin_close(admin);
	reload_free(rl);
	return status;
}

/* snatproxy -C: the certificate report; 0 when it can serve both ways. */
static int examine_cert(const struct options *o)
{
	struct certdiag d;
	char why[600];

	if (certdiag_examine(o->cert, o->key, o->ca, &d, why, sizeof(why)) < 0) {
		fprintf(stderr, "snatproxy: %s\n", why);
		return 1;
	}
	return certdiag_print(&d, o->cert, o->key, o->ca, stdout);
}

/* The pools' health checks, their certificates examined. -t runs this too,
 * so that a key that does not match is found before the proxy starts. */
static int start_health(struct runtime *rt)
{
	int ret = health_init(rt, stderr);
	if (ret == -ENOMEM)
		fprintf(stderr, "%s: out of memory\n", rt->cfg->path);
	return ret;
}

static int open_admin(const struct config *cfg, struct runtime *rt, struct admin **admin)
{
	char why[256];
	int ret;

	if (!cfg->admin.ss_family)
		return 0;
	ret = admin_open(admin, rt, (const struct sockaddr *)&cfg->admin, why, sizeof(why));
	if (ret < 0)
		log_err("%s: %s", cfg->path, why);
	return ret;
}

static int open_access_log(const struct config *cfg)
{
	int ret = log_access_open(cfg->access_log, cfg->log_format == CONFIG_LOG_JSON);

	if (ret < 0)
		log_err("%s: access_log %s: %s", cfg->path, cfg->access_log, strerror(-ret));
	return ret;
}

/* After every socket and file is open: the listeners may need root for
 * ports below 1024, and nothing later does. */
static int drop_privileges(const struct config *cfg)
{
	bool transparent = false;
	char why[256];

	if (!cfg->user[0])
		return 0;
	for (int i = 0; i < cfg->nvips; i++)
		transparent |= cfg->vips[i].snat == CONFIG_SNAT_OFF;
	int ret = privs_drop(cfg->user, transparent, why, sizeof(why));
	if (ret < 0)
		log_err("%s: %s", cfg->path, why);
	else
		log_info("running as user %s%s", cfg->user,
			 transparent ? " with CAP_NET_ADMIN (transparent VIPs)" : "");
	return ret;
}

/* -t: everything the start checks but binding the sockets (config_load_host
 * has checked the user, the access log and the SNAT addresses already). */
static int test_config(struct config *cfg)
{
	struct runtime rt;
	char why[256];
	int ret = loop_probe(why, sizeof(why));

	if (ret < 0)
		fprintf(stderr, "snatproxy: %s\n", why);
	if (ret == 0)
		ret = runtime_init(&rt, cfg);
	if (ret == 0) {
		ret = start_health(&rt);
		health_free(&rt);
		runtime_free(&rt);
	}
	if (ret == 0)
		printf("%s: configuration is valid\n", cfg->path);
	return ret;
}

/* The proxy itself: everything it set up is released on the one way out,
 * whichever step failed. Returns 0, or non-zero when it did not start or
 * did not stop cleanly. */
static int run(const struct options *o)
{
	struct config cfg = {0};
	struct runtime rt;
	struct admin *admin = NULL;
	struct worker *w = NULL;
	bool rt_up = false, served = false;
	char why[256];
	int ret;

	raise_nofile();
	ret = config_load_host(o->config, &cfg, stderr, CONFIG_HOST_ALL);
	if (ret < 0) {
		if (ret != -EINVAL)
			fprintf(stderr, "%s: %s\n", o->config, strerror(-ret));
		goto out;
	}
	if (o->test) {
		ret = test_config(&cfg);
		goto out;
	}
	log_set_level(o->verbose ? LOG_DEBUG : LOG_INFO);
	ret = loop_probe(why, sizeof(why));
	if (ret < 0) {
		log_err("%s", why);
		goto out;
	}
	ret = runtime_init(&rt, &cfg);
	if (ret < 0) { /* runtime_init has said what else went wrong */
		if (ret == -ENOMEM)
			log_err("out of memory");
		goto out;
	}
	rt_up = true;
	ret = start_health(&rt);
	if (ret < 0)
		goto out;
	snat_check_routes(&rt);
	w = calloc((size_t)rt.nworkers, sizeof(*w));
	ret = w ? 0 : -ENOMEM;
	for (int i = 0; ret == 0 && i < rt.nworkers; i++)
		ret = worker_prepare(&w[i], &rt, i);
	if (ret == 0)
		ret = open_admin(&cfg, &rt, &admin);
	if (ret == 0)
		ret = open_access_log(&cfg);
	if (ret == 0)
		ret = drop_privileges(&cfg);
	if (ret == 0) {
		ret = serve(&rt, w, admin) ? -EIO : 0;
		admin = NULL; /* serve closed it */
		served = true;
	}
out:
	admin_close(admin);
	for (int i = 0; w && i < rt.nworkers; i++)
		worker_free(&w[i]);
	free(w);
	if (rt_up) {
		health_free(&rt);
		runtime_free(&rt);
	}
	config_free(&cfg);
	if (served && ret == 0)
		log_info("stopped");
	return ret;
}

int main(int argc, char **argv)
{
	struct options o = {0};

	/* A shell starts background commands with SIGINT ignored; the proxy
	 * wants it, through sigwait in the main thread. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (parse_args(argc, argv, &o) < 0)
		return 1;
	if (o.keys) {
		config_print_keys(stdout);
		return 0;
	}
	if (o.cert)
		return examine_cert(&o);
	if (o.bigip)
		return bigip_import(o.bigip, stdout, stderr) == 0 ? 0 : 1;
	return run(&o) == 0 ? 0 : 1;
}
