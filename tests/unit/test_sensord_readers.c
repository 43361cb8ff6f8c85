/* sensord as a reader (daemons/sensord/readers.c): a group reading of another device is opened,
 * judged and kept, oldest first, for the readings verb; what is not the home's, not the sender's,
 * replayed, stale, tampered with or of an epoch too far ahead is refused and counted against
 * the device whose topic it came on. The clock is fake: epochs are the test's to choose. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "crypto.h"
#include "log.h"
#include "sensord.h"

#define START	 1767225600
#define INTERVAL 3600
/* The reader's epoch at the start of each case: after the clock's floor (the build time), which
 * the fake clock cannot go below. */
static uint32_t base_epoch;

struct ctx {
	struct iotsec_config cfg;
	struct lan_member member;
	struct sensord d;
	uint8_t root[CRYPTO_KEY_LEN];
	struct stream *sender; /* pi2's view of the same group stream */
	uint64_t seq;
};

/* Mid-epoch base_epoch. */
static int64_t mid_epoch(void)
{
	return START + (int64_t)(base_epoch - 1) * INTERVAL + INTERVAL / 2;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -1;
	base_epoch = (uint32_t)((clock_floor() - START) / INTERVAL + 10);
	clock_set_fake(mid_epoch());
	snprintf(c->member.self.name, sizeof(c->member.self.name), "pi1");
	snprintf(c->member.self.home, sizeof(c->member.self.home), "testhome");
	c->d.member = &c->member;
	c->d.cfg = &c->cfg;
	c->d.in_home = true;
	c->d.sched = (struct stream_schedule){.start = START, .interval = INTERVAL};
	memset(c->root, 9, sizeof(c->root));
	assert_int_equal(stream_from_root(c->root, 1, &c->d.group), 0);
	assert_int_equal(stream_from_root(c->root, 1, &c->sender), 0);
	sensord_advance(&c->d);
	assert_int_equal(stream_current(c->d.group), base_epoch);
	assert_int_equal(stream_advance(c->sender, base_epoch), 0);
	assert_int_equal(reading_guard_new(300 * 1000, &c->d.guard), 0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	stream_free(c->d.group);
	stream_free(c->sender);
	reading_guard_free(c->d.guard);
	clock_set_fake(-1);
	free(c);
	return 0;
}

/* A reading of device (the header's name) sealed with s at s's epoch, timed t_ms. */
static size_t seal(struct ctx *c, struct stream *s, const char *device, uint8_t kind, double value,
		   int64_t t_ms, uint8_t out[READING_MAX])
{
	struct reading_value v = {.sensor = "room", .value = value, .unit = "C"};
	struct reading_header h = {
	    .kind = kind, .epoch = stream_current(s), .seq = ++c->seq, .time_ms = t_ms};
	char pt[READING_PLAIN_MAX];
	size_t ptlen, len;

	snprintf(h.device, sizeof(h.device), "%s", device);
	assert_int_equal(reading_value_build(&v, pt, sizeof(pt), &ptlen), 0);
	assert_int_equal(reading_seal(s, &h, pt, ptlen, out, READING_MAX, &len), 0);
	return len;
}

static int64_t now_ms(void)
{
	return clock_now() * 1000;
}

static json_t *readings(struct ctx *c, size_t max)
{
	json_t *r = NULL;

	assert_int_equal(sensord_readings(&c->d, max, &r), 0);
	return json_object_get(r, "readings") ? r : NULL;
}

static void test_opened_and_kept(void **state)
{
	struct ctx *c = *state;
	uint8_t buf[READING_MAX];
	json_t *r, *a;
	size_t len;

	for (int i = 0; i < 3; i++) {
		len = seal(c, c->sender, "pi2", READING_GROUP, 20.5 + i, now_ms(), buf);
		sensord_on_group(&c->d, "pi2", buf, len);
	}
	assert_int_equal(c->d.opened, 3);
	assert_int_equal(c->d.refused.total, 0);
	r = readings(c, SENSORD_READINGS_MAX);
	a = json_object_get(r, "readings");
	assert_int_equal(json_array_size(a), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "device")),
			    "pi2");
	assert_true(json_number_value(json_object_get(json_array_get(a, 0), "value")) == 20.5);
	assert_true(json_number_value(json_object_get(json_array_get(a, 2), "value")) == 22.5);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 2), "epoch")),
			 base_epoch);
	json_decref(r);
	/* max: the newest ones. */
	r = readings(c, 1);
	a = json_object_get(r, "readings");
	assert_int_equal(json_array_size(a), 1);
	assert_true(json_number_value(json_object_get(json_array_get(a, 0), "value")) == 22.5);
	json_decref(r);
}

/* Past SENSORD_READINGS_MAX the oldest go; the order stays oldest first. */
static void test_ring(void **state)
{
	struct ctx *c = *state;
	uint8_t buf[READING_MAX];
	json_t *r, *a;
	size_t len;

	for (int i = 0; i < SENSORD_READINGS_MAX + 44; i++) {
		len = seal(c, c->sender, "pi2", READING_GROUP, i, now_ms(), buf);
		sensord_on_group(&c->d, "pi2", buf, len);
	}
	r = readings(c, SENSORD_READINGS_MAX);
	a = json_object_get(r, "readings");
	assert_int_equal(json_array_size(a), SENSORD_READINGS_MAX);
	for (size_t i = 0; i < SENSORD_READINGS_MAX; i++)
		assert_true(json_number_value(json_object_get(json_array_get(a, i), "value")) ==
			    (double)(i + 44));
	json_decref(r);
}

static void test_refused(void **state)
{
	struct ctx *c = *state;
	uint8_t buf[READING_MAX], again[READING_MAX], root2[CRYPTO_KEY_LEN];
	struct stream *other = NULL;
	size_t len, len2;

	/* Accepted once, then replayed. */
	len = seal(c, c->sender, "pi2", READING_GROUP, 1, now_ms(), buf);
	memcpy(again, buf, len);
	sensord_on_group(&c->d, "pi2", buf, len);
	assert_int_equal(c->d.opened, 1);
	sensord_on_group(&c->d, "pi2", again, len);
	/* Under pi3's topic, pi2's reading (the header names pi2). */
	len = seal(c, c->sender, "pi2", READING_GROUP, 2, now_ms(), buf);
	sensord_on_group(&c->d, "pi3", buf, len);
	/* Another stream: a key not of this home. */
	memset(root2, 4, sizeof(root2));
	assert_int_equal(stream_from_root(root2, 1, &other), 0);
	assert_int_equal(stream_advance(other, base_epoch), 0);
	len = seal(c, other, "pi2", READING_GROUP, 3, now_ms(), buf);
	sensord_on_group(&c->d, "pi2", buf, len);
	stream_free(other);
	/* Tampered with: the last byte of the tag. */
	len = seal(c, c->sender, "pi2", READING_GROUP, 4, now_ms(), buf);
	buf[len - 1] ^= 1;
	sensord_on_group(&c->d, "pi2", buf, len);
	/* Stale: ten minutes old, and ten minutes ahead. */
	len = seal(c, c->sender, "pi2", READING_GROUP, 5, now_ms() - 600000, buf);
	sensord_on_group(&c->d, "pi2", buf, len);
	len = seal(c, c->sender, "pi2", READING_GROUP, 6, now_ms() + 600000, buf);
	sensord_on_group(&c->d, "pi2", buf, len);
	/* A doctor reading on a group topic. */
	len = seal(c, c->sender, "pi2", READING_DOCTOR, 7, now_ms(), buf);
	sensord_on_group(&c->d, "pi2", buf, len);
	/* Not a reading; truncated. */
	sensord_on_group(&c->d, "pi2", "hello", 5);
	len2 = seal(c, c->sender, "pi2", READING_GROUP, 8, now_ms(), buf);
	sensord_on_group(&c->d, "pi2", buf, len2 - 20);

	assert_int_equal(c->d.opened, 1);
	assert_int_equal(c->d.refused.total, 9);
	assert_int_equal(refusals_of(&c->d.refused, "pi2"), 8);
	assert_int_equal(refusals_of(&c->d.refused, "pi3"), 1);

	/* Our own, back from the broker: neither opened nor refused. */
	len = seal(c, c->sender, "pi1", READING_GROUP, 9, now_ms(), buf);
	sensord_on_group(&c->d, "pi1", buf, len);
	assert_int_equal(c->d.opened, 1);
	assert_int_equal(c->d.refused.total, 9);
	/* A good one still goes through after all that. */
	len = seal(c, c->sender, "pi2", READING_GROUP, 10, now_ms(), buf);
	sensord_on_group(&c->d, "pi2", buf, len);
	assert_int_equal(c->d.opened, 2);
}

/* A reading of the next epoch moves the reader on when its clock is near that epoch; one two
 * epochs ahead, or the next while our clock is far from it, does not. */
static void test_next_epoch(void **state)
{
	struct ctx *c = *state;
	int64_t next_start = START + (int64_t)base_epoch * INTERVAL;
	uint8_t buf[READING_MAX];
	size_t len;

	assert_int_equal(stream_advance(c->sender, base_epoch + 1), 0);
	/* Our clock mid-epoch: far from the next. */
	len = seal(c, c->sender, "pi2", READING_GROUP, 1, now_ms(), buf);
	sensord_on_group(&c->d, "pi2", buf, len);
	assert_int_equal(c->d.opened, 0);
	assert_int_equal(stream_current(c->d.group), base_epoch);
	/* Two seconds before it: the sender's clock is a little ahead. */
	clock_set_fake(next_start - 2);
	len = seal(c, c->sender, "pi2", READING_GROUP, 2, now_ms(), buf);
	sensord_on_group(&c->d, "pi2", buf, len);
	assert_int_equal(c->d.opened, 1);
	assert_int_equal(stream_current(c->d.group), base_epoch + 1);
	/* Two epochs on: refused, the chain stays. */
	assert_int_equal(stream_advance(c->sender, base_epoch + 3), 0);
	len = seal(c, c->sender, "pi2", READING_GROUP, 3, now_ms(), buf);
	sensord_on_group(&c->d, "pi2", buf, len);
	assert_int_equal(c->d.opened, 1);
	assert_int_equal(stream_current(c->d.group), base_epoch + 1);
	assert_int_equal(c->d.refused.total, 2);
}

/* A new pool: readings still in flight under the one before, or under the one keyd has and we
 * are fetching, are nobody's fault; a stream of no pool of ours still is. */
static void test_pool_change(void **state)
{
	struct ctx *c = *state;
	uint8_t buf[READING_MAX], old[READING_MAX], root2[CRYPTO_KEY_LEN], root3[CRYPTO_KEY_LEN];
	struct stream *next = NULL, *next_sender = NULL, *stranger = NULL;
	size_t len, old_len;

	c->d.pool = c->d.keyd_pool = 1;
	old_len = seal(c, c->sender, "pi2", READING_GROUP, 1, now_ms(), old);
	memset(root2, 5, sizeof(root2));
	assert_int_equal(stream_from_root(root2, 1, &next), 0);
	assert_int_equal(stream_from_root(root2, 1, &next_sender), 0);
	assert_int_equal(stream_advance(next_sender, base_epoch), 0);
	c->d.keyd_pool = 2;
	sensord_set_group(&c->d, next, 2, 1);
	/* In flight under pool 1: ignored. */
	sensord_on_group(&c->d, "pi2", old, old_len);
	assert_int_equal(c->d.opened, 0);
	assert_int_equal(c->d.refused.total, 0);
	/* Pool 2's: opened. */
	len = seal(c, next_sender, "pi2", READING_GROUP, 2, now_ms(), buf);
	sensord_on_group(&c->d, "pi2", buf, len);
	assert_int_equal(c->d.opened, 1);
	/* A stream of no pool of ours, while we hold keyd's: refused. */
	memset(root3, 6, sizeof(root3));
	assert_int_equal(stream_from_root(root3, 1, &stranger), 0);
	assert_int_equal(stream_advance(stranger, base_epoch), 0);
	len = seal(c, stranger, "pi2", READING_GROUP, 3, now_ms(), buf);
	sensord_on_group(&c->d, "pi2", buf, len);
	assert_int_equal(c->d.refused.total, 1);
	/* keyd has pool 3 and we are still fetching its root: the sender may be ahead of us. */
	c->d.keyd_pool = 3;
	len = seal(c, stranger, "pi2", READING_GROUP, 4, now_ms(), buf);
	sensord_on_group(&c->d, "pi2", buf, len);
	assert_int_equal(c->d.refused.total, 1);
	assert_int_equal(c->d.opened, 1);
	stream_free(next_sender);
	stream_free(stranger);
}

/* Without the group key (no pool yet) or while resyncing: nothing is judged. */
static void test_not_ready(void **state)
{
	struct ctx *c = *state;
	uint8_t buf[READING_MAX];
	size_t len;

	len = seal(c, c->sender, "pi2", READING_GROUP, 1, now_ms(), buf);
	c->d.sync = SENSORD_RESYNCING;
	sensord_on_group(&c->d, "pi2", buf, len);
	c->d.sync = SENSORD_SYNCED;
	stream_free(c->d.group);
	c->d.group = NULL;
	sensord_on_group(&c->d, "pi2", buf, len);
	assert_int_equal(c->d.opened, 0);
	assert_int_equal(c->d.refused.total, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_opened_and_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ring, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_next_epoch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pool_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_ready, setup, teardown),
	};

	log_init("test_sensord_readers", LOG_CRIT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
