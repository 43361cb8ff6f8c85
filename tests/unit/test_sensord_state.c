/* sensord.state (daemons/sensord/state.c): a round trip of everything it keeps, the seq reserve
 * that a crash never makes reuse, and the files it refuses (damaged, loose permissions). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "file.h"
#include "log.h"
#include "sensord.h"

struct ctx {
	char dir[PATH_MAX];
	char path[PATH_MAX + 32];
	struct lan_member member;
	struct sensord d;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_sensord_state.XXXXXX");
	if (mkdtemp(c->dir) == NULL)
		return -1;
	snprintf(c->path, sizeof(c->path), "%s/%s", c->dir, SENSORD_STATE_FILE);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	unlink(c->path);
	rmdir(c->dir);
	free(c);
	return 0;
}

/* A fresh daemon's view of the directory, as sensord_start() would have it. */
static void fresh(struct ctx *c, struct sensord *d)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "%s", c->dir);
	d->member = &c->member;
}

static void clear(struct sensord *d)
{
	stream_free(d->doctor);
	stream_free(d->group);
	d->doctor = d->group = NULL;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_first_start(void **state)
{
	struct ctx *c = *state;
	struct sensord d;

	fresh(c, &d);
	assert_int_equal(sensord_state_load(&d), 0);
	assert_int_equal(d.seq[SENSORD_GROUP], 1);
	assert_int_equal(d.seq[SENSORD_DOCTOR], 1);
	assert_null(d.doctor);
	assert_false(d.alarm.set);
	assert_int_equal(d.acked_seq, 0);
}

static void test_round_trip(void **state)
{
	struct ctx *c = *state;
	uint8_t root[CRYPTO_KEY_LEN], key[CRYPTO_KEY_LEN], prev[CRYPTO_KEY_LEN];
	uint8_t id[STREAM_ID_LEN];
	struct sensord d, e;
	struct stat st;

	fresh(c, &d);
	assert_int_equal(sensord_state_load(&d), 0);
	memset(root, 7, sizeof(root));
	assert_int_equal(stream_from_root(root, 5, &d.doctor), 0);
	assert_int_equal(stream_advance(d.doctor, 9), 0);
	memcpy(key, stream_key(d.doctor, false), sizeof(key));
	memcpy(prev, stream_key(d.doctor, true), sizeof(prev));
	memcpy(id, stream_get_id(d.doctor), sizeof(id));
	snprintf(d.doctor_name, sizeof(d.doctor_name), "drwho");
	d.doctor_e0 = 5;
	d.grant_issued = 1767225600123;
	d.alarm.set = true;
	d.alarm.seq = 42;
	d.alarm.value = 25.5;
	d.alarm.at = 1767225601000;
	memset(d.alarm.record, 0xab, 77);
	d.alarm.len = 77;
	d.acked_seq = 17;
	assert_int_not_equal(sensord_next_seq(&d, SENSORD_GROUP), 0);
	assert_int_equal(sensord_state_save(&d), 0);

	assert_int_equal(stat(c->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	fresh(c, &e);
	assert_int_equal(sensord_state_load(&e), 0);
	assert_non_null(e.doctor);
	assert_string_equal(e.doctor_name, "drwho");
	assert_int_equal(e.doctor_e0, 5);
	assert_int_equal(e.grant_issued, 1767225600123);
	assert_int_equal(stream_current(e.doctor), 9);
	assert_memory_equal(stream_get_id(e.doctor), id, sizeof(id));
	assert_memory_equal(stream_key(e.doctor, false), key, sizeof(key));
	assert_non_null(stream_key(e.doctor, true));
	assert_memory_equal(stream_key(e.doctor, true), prev, sizeof(prev));
	assert_true(e.alarm.set);
	assert_int_equal(e.alarm.seq, 42);
	assert_true(e.alarm.value == 25.5);
	assert_int_equal(e.alarm.at, 1767225601000);
	assert_int_equal(e.alarm.len, 77);
	assert_int_equal(e.alarm.record[76], 0xab);
	assert_false(e.alarm.delivered);
	assert_int_equal(e.alarm.mid, -1);
	assert_int_equal(e.acked_seq, 17);
	/* The same chain: the next epoch's key agrees. */
	assert_int_equal(stream_advance(d.doctor, 10), 0);
	assert_int_equal(stream_advance(e.doctor, 10), 0);
	assert_memory_equal(stream_key(d.doctor, false), stream_key(e.doctor, false),
			    CRYPTO_KEY_LEN);
	clear(&d);
	clear(&e);
}

/* Every seq handed out before a crash stays used: the next run starts past the reserve. */
static void test_seq_never_reused(void **state)
{
	struct ctx *c = *state;
	uint64_t highest[2] = {0, 0};

	for (int run = 0; run < 4; run++) {
		struct sensord d;
		int n = run == 2 ? SENSORD_SEQ_RESERVE + 10 : 3 + run; /* one run crosses a block */

		fresh(c, &d);
		assert_int_equal(sensord_state_load(&d), 0);
		for (int k = 0; k < 2; k++) {
			for (int i = 0; i < n; i++) {
				uint64_t s = sensord_next_seq(&d, (enum sensord_kind)k);

				assert_true(s > highest[k]);
				highest[k] = s;
			}
		}
		/* No save at exit: a crash. */
		clear(&d);
	}
}

/* A seq whose reserve cannot be saved is not handed out. */
static void test_seq_unsaved(void **state)
{
	struct ctx *c = *state;
	struct sensord d;

	fresh(c, &d);
	assert_int_equal(sensord_state_load(&d), 0);
	snprintf(d.dir, sizeof(d.dir), "/nonexistent/sensord/dir");
	assert_int_equal(sensord_next_seq(&d, SENSORD_GROUP), 0);
	assert_int_equal(sensord_next_seq(&d, SENSORD_DOCTOR), 0);
	snprintf(d.dir, sizeof(d.dir), "%s", c->dir);
	assert_int_equal(sensord_next_seq(&d, SENSORD_GROUP), 1);
}

static void test_loose_permissions(void **state)
{
	struct ctx *c = *state;
	struct sensord d;

	fresh(c, &d);
	assert_int_equal(sensord_state_load(&d), 0);
	assert_int_equal(sensord_state_save(&d), 0);
	assert_int_equal(chmod(c->path, 0644), 0);
	fresh(c, &d);
	assert_int_equal(sensord_state_load(&d), -IOTSEC_ESECRET);
	assert_int_equal(chmod(c->path, 0640), 0);
	assert_int_equal(sensord_state_load(&d), -IOTSEC_ESECRET);
	assert_int_equal(chmod(c->path, 0600), 0);
	assert_int_equal(sensord_state_load(&d), 0);
}

#define KEY_B64 "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="
#define ID_B64	"AAAAAAAAAAAAAAAAAAAAAA=="
#define ALARM_OK                                                                                   \
	"\"alarm\":{\"set\":false,\"seq\":0,\"value\":0.0,\"at\":0,\"record\":\"\",\"delivered\":" \
	"false}"
#define DOC(x) "{\"seq\":{\"group\":1,\"doctor\":1},\"doctor\":" x "," ALARM_OK ",\"acked\":0}"

static void test_damaged(void **state)
{
	static const char *const bad[] = {
	    "",
	    "not json",
	    "[]",
	    "{}",
	    "{\"seq\":{\"group\":1,\"doctor\":1},\"doctor\":null," ALARM_OK "}",
	    "{\"seq\":{\"group\":1,\"doctor\":1},\"doctor\":null," ALARM_OK ",\"acked\":0,\"x\":1}",
	    "{\"seq\":{\"group\":0,\"doctor\":1},\"doctor\":null," ALARM_OK ",\"acked\":0}",
	    "{\"seq\":{\"group\":-5,\"doctor\":1},\"doctor\":null," ALARM_OK ",\"acked\":0}",
	    "{\"seq\":{\"group\":\"1\",\"doctor\":1},\"doctor\":null," ALARM_OK ",\"acked\":0}",
	    "{\"seq\":{\"group\":1},\"doctor\":null," ALARM_OK ",\"acked\":0}",
	    "{\"seq\":{\"group\":1,\"doctor\":1},\"doctor\":null," ALARM_OK ",\"acked\":-1}",
	    "{\"seq\":{\"group\":1,\"group\":2,\"doctor\":1},\"doctor\":null," ALARM_OK
	    ",\"acked\":0}",
	    "{\"seq\":{\"group\":1,\"doctor\":1},\"doctor\":null,\"alarm\":{},\"acked\":0}",
	    "{\"seq\":{\"group\":1,\"doctor\":1},\"doctor\":null,\"alarm\":{\"set\":1,\"seq\":0,"
	    "\"value\":0,\"at\":0,\"record\":\"\",\"delivered\":false},\"acked\":0}",
	    "{\"seq\":{\"group\":1,\"doctor\":1},\"doctor\":null,\"alarm\":{\"set\":true,\"seq\":0,"
	    "\"value\":0,\"at\":0,\"record\":\"!!\",\"delivered\":false},\"acked\":0}",
	    DOC("{}"),
	    DOC("{\"name\":\"drwho\",\"stream\":\"" ID_B64
		"\",\"e0\":0,\"epoch\":1,\"key\":\"" KEY_B64 "\",\"prev\":null,\"issued\":0}"),
	    DOC("{\"name\":\"drwho\",\"stream\":\"AAAA\",\"e0\":1,\"epoch\":1,\"key\":\"" KEY_B64
		"\",\"prev\":null,\"issued\":0}"),
	    DOC("{\"name\":\"drwho\",\"stream\":\"" ID_B64
		"\",\"e0\":1,\"epoch\":1,\"key\":\"AAAA\","
		"\"prev\":null,\"issued\":0}"),
	    DOC("{\"name\":\"drwho\",\"stream\":\"" ID_B64
		"\",\"e0\":1,\"epoch\":1,\"key\":\"" KEY_B64 "\",\"prev\":\"AAAA\",\"issued\":0}"),
	    DOC("{\"name\":\"../x\",\"stream\":\"" ID_B64
		"\",\"e0\":1,\"epoch\":1,\"key\":\"" KEY_B64 "\",\"prev\":null,\"issued\":0}"),
	    DOC("{\"name\":\"drwho\",\"stream\":\"" ID_B64
		"\",\"e0\":1,\"epoch\":1,\"key\":\"" KEY_B64 "\",\"prev\":null,\"issued\":-1}"),
	    DOC("{\"name\":\"drwho\",\"stream\":\"" ID_B64
		"\",\"e0\":1,\"epoch\":1,\"key\":\"" KEY_B64 "\",\"prev\":null}"),
	    /* The doctor's certificate serial: hex, at most 40 digits, a string. */
	    DOC("{\"name\":\"drwho\",\"serial\":\"12G4\",\"stream\":\"" ID_B64
		"\",\"e0\":1,\"epoch\":1,\"key\":\"" KEY_B64 "\",\"prev\":null,\"issued\":0}"),
	    DOC("{\"name\":\"drwho\",\"serial\":\""
		"0123456789ABCDEF0123456789ABCDEF012345678"
		"\",\"stream\":\"" ID_B64 "\",\"e0\":1,\"epoch\":1,\"key\":\"" KEY_B64
		"\",\"prev\":null,\"issued\":0}"),
	    DOC("{\"name\":\"drwho\",\"serial\":12,\"stream\":\"" ID_B64
		"\",\"e0\":1,\"epoch\":1,\"key\":\"" KEY_B64 "\",\"prev\":null,\"issued\":0}"),
	};
	static const char *const good[] = {
	    "{\"seq\":{\"group\":1,\"doctor\":1},\"doctor\":null," ALARM_OK ",\"acked\":0}",
	    "{\"seq\":{\"group\":5001,\"doctor\":2001},\"doctor\":null," ALARM_OK ",\"acked\":9}",
	    DOC("{\"name\":\"drwho\",\"stream\":\"" ID_B64
		"\",\"e0\":1,\"epoch\":3,\"key\":\"" KEY_B64 "\",\"prev\":null,\"issued\":0}"),
	    DOC("{\"name\":\"drwho\",\"stream\":\"" ID_B64
		"\",\"e0\":1,\"epoch\":3,\"key\":\"" KEY_B64 "\",\"prev\":\"" KEY_B64
		"\",\"issued\":12}"),
	    DOC("{\"name\":\"drwho\",\"serial\":\""
		"0123456789ABCDEF0123456789abcdef01234567"
		"\",\"stream\":\"" ID_B64 "\",\"e0\":1,\"epoch\":1,\"key\":\"" KEY_B64
		"\",\"prev\":null,\"issued\":0}"),
	    DOC("{\"name\":\"drwho\",\"serial\":\"\",\"stream\":\"" ID_B64
		"\",\"e0\":1,\"epoch\":1,\"key\":\"" KEY_B64 "\",\"prev\":null,\"issued\":0}"),
	};
	struct ctx *c = *state;
	struct sensord d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(c->path, bad[i], 0600);
		fresh(c, &d);
		if (sensord_state_load(&d) != -EBADMSG)
			fail_msg("bad state %zu accepted: %s", i, bad[i]);
		clear(&d);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		write_file(c->path, good[i], 0600);
		fresh(c, &d);
		if (sensord_state_load(&d) != 0)
			fail_msg("good state %zu refused: %s", i, good[i]);
		clear(&d);
	}
	write_file(c->path, good[1], 0600);
	fresh(c, &d);
	assert_int_equal(sensord_state_load(&d), 0);
	assert_int_equal(d.seq[SENSORD_GROUP], 5001);
	assert_int_equal(d.seq[SENSORD_DOCTOR], 2001);
	assert_int_equal(d.acked_seq, 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_first_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_seq_never_reused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_seq_unsaved, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_loose_permissions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged, setup, teardown),
	};

	log_init("test_sensord_state", LOG_CRIT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
