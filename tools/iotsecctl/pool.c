/* iotsecctl pool plan: size a key pool without changing anything (SPEC 6). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "iotsecctl.h"
#include "keypool.h"

static void pool_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: iotsecctl pool plan --nodes N --probability P [--ring K] [--pool S] "
	    "[--json]\n"
	    "\n"
	    "Choose the largest key pool whose rings of K keys (default %d) give two devices at\n"
	    "least probability P of sharing a key, or evaluate pool S; report the exact\n"
	    "probability and that of the whole home's key graph being connected.\n",
	    KEYPOOL_RING_DEFAULT);
}

static int parse_uint(const char *s, unsigned long max, unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

int cmd_pool(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"nodes", required_argument, NULL, 'n'},
	    {"probability", required_argument, NULL, 'p'},
	    {"ring", required_argument, NULL, 'k'},
	    {"pool", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	unsigned nodes = 0, ring = 0, pool = 0;
	double target = 0;
	bool as_json = false;
	struct keypool_plan plan;
	char *end;
	int c;

	if (argc < 2 || strcmp(argv[1], "plan") != 0) {
		pool_usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
		return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	argc--, argv++;
	optind = 0; /* glibc: start a fresh scan */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 'n':
			bad = parse_uint(optarg, KEYPOOL_NODES_MAX, &nodes) < 0 || nodes == 0;
			break;
		case 'p':
			target = strtod(optarg, &end);
			bad = *end != '\0' || !(target > 0.0 && target <= 1.0);
			break;
		case 'k':
			bad = parse_uint(optarg, KEYPOOL_RING_MAX, &ring) < 0 || ring == 0;
			break;
		case 's':
			bad = parse_uint(optarg, KEYPOOL_POOL_MAX, &pool) < 0 || pool == 0;
			break;
		case 'j':
			as_json = true;
			break;
		case 'h':
			pool_usage(stdout);
			return 0;
		default:
			pool_usage(stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "iotsecctl pool plan: bad value '%s' for --%s\n", optarg,
				opts[c == 'n'	? 0
				     : c == 'p' ? 1
				     : c == 'k' ? 2
						: 3]
				    .name);
			return 2;
		}
	}
	if (nodes == 0 || target == 0.0 || optind != argc) {
		fprintf(stderr, "iotsecctl pool plan: --nodes and --probability are required\n");
		return 2;
	}
	if (keypool_plan(nodes, target, ring, pool, &plan) < 0) {
		fprintf(stderr,
			"iotsecctl pool plan: the pool must hold at least the ring (%u keys)\n",
			ring ? ring : KEYPOOL_RING_DEFAULT);
		return 2;
	}
	if (as_json) {
		json_t *o = json_pack("{s:i, s:i, s:i, s:f, s:f}", "nodes", (int)nodes, "ring",
				      (int)plan.ring, "pool", (int)plan.pool, "p_share",
				      plan.p_share, "p_connected", plan.p_connected);

		json_dumpf(o, stdout,
			   JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
		putchar('\n');
		json_decref(o);
		return 0;
	}
	printf("nodes        %u\n", nodes);
	printf("ring (k)     %u keys per device\n", plan.ring);
	printf("pool (P)     %u keys\n", plan.pool);
	printf("p_share      %.6f  two devices share at least one key%s\n", plan.p_share,
	       pool == 0 ? "" : (plan.p_share < target ? "  (below the target)" : ""));
	printf("p_connected  %.6f  every device can reach every other through shared keys\n",
	       plan.p_connected);
	return 0;
}
