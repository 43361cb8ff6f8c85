/* spool: records come back in order with their bytes, acknowledgements in any order move the
 * head, a reopen finds what was waiting, a torn or corrupt tail is cut wherever it breaks, a full
 * spool drops its oldest and counts it for good, and compaction keeps the order. */
#include <errno.h>
#include <fcntl.h>
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
#include "spool.h"
#include "tmpdir.h"

#define HDR 16 /* the log's header */
#define REC 8  /* a record's length and check */

/* DIR/sensord/spool, where every test opens its spool. */
static char spool_dir[96];

static int setup(void **state)
{
	if (tmp_setup(state, "spool") < 0)
		return -1;
	snprintf(spool_dir, sizeof(spool_dir), "%s/sensord/spool", ((struct tmp *)*state)->dir);
	return 0;
}

static const char *at(struct tmp *t, const char *name)
{
	snprintf(t->path, sizeof(t->path), "%s/%s", spool_dir, name);
	return t->path;
}

/* Record n's bytes: its length varies with n, its content names it. */
static size_t payload(uint64_t n, uint8_t *out, size_t len)
{
	if (len == 0)
		len = 20 + (size_t)(n * 7 % 50);
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(n * 31 + i);
	return len;
}

static uint64_t append_n(struct spool *sp, uint64_t n, size_t len)
{
	uint8_t buf[SPOOL_RECORD_MAX];
	uint64_t id = 0;

	assert_int_equal(spool_append(sp, buf, payload(n, buf, len), 0, &id), 0);
	return id;
}

/* The records waiting, from the head, must be exactly ids[] with the payloads of content[]. */
static void expect_waiting(struct spool *sp, const uint64_t *ids, const uint64_t *content, size_t n,
			   size_t len)
{
	uint8_t want[SPOOL_RECORD_MAX];
	const uint8_t *data;
	uint64_t id, after = 0;
	size_t got_len;

	for (size_t i = 0; i < n; i++) {
		assert_int_equal(spool_next(sp, after, &id, &data, &got_len), 0);
		assert_int_equal(id, ids[i]);
		assert_int_equal(got_len, payload(content ? content[i] : ids[i], want, len));
		assert_memory_equal(data, want, got_len);
		after = id;
	}
	assert_int_equal(spool_next(sp, after, &id, &data, &got_len), -ENOENT);
	assert_int_equal(spool_pending(sp), n);
}

static off_t size_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void read_head(struct tmp *t, char *out, size_t cap)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(file_read(at(t, "head"), 64, &text, &len), 0);
	assert_true(len < cap);
	memcpy(out, text, len + 1);
	free(text);
}

static void write_file(const char *path, const void *data, size_t len)
{
	assert_int_equal(file_write_atomic(path, data, len, 0600), 0);
}

static void test_append_next_ack_any_order(void **state)
{
	struct tmp *t = *state;
	struct spool *sp = NULL;
	struct stat st;

	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	assert_int_equal(stat(spool_dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(at(t, "log"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	expect_waiting(sp, NULL, NULL, 0, 0);
	for (uint64_t i = 1; i <= 5; i++)
		assert_int_equal(append_n(sp, i, 0), i);
	expect_waiting(sp, (uint64_t[]){1, 2, 3, 4, 5}, NULL, 5, 0);

	/* QoS 1 PUBACKs in any order: the head waits for 1. */
	assert_int_equal(spool_ack(sp, 3), 0);
	assert_int_equal(spool_ack(sp, 5), 0);
	expect_waiting(sp, (uint64_t[]){1, 2, 4}, NULL, 3, 0);
	assert_int_equal(spool_ack(sp, 1), 0);
	assert_int_equal(spool_ack(sp, 2), 0);
	expect_waiting(sp, (uint64_t[]){4}, NULL, 1, 0);
	assert_int_equal(spool_ack(sp, 4), 0);
	expect_waiting(sp, NULL, NULL, 0, 0);
	assert_int_equal(append_n(sp, 6, 0), 6);
	assert_int_equal(spool_dropped(sp), 0);
	spool_close(sp);
}

/* Acknowledged records stay gone; the rest come back in order with their bytes, and ids go on. */
static void test_reopen_after_acks_keeps_order(void **state)
{
	struct tmp *t = *state;
	struct spool *sp = NULL;
	char head[64];

	assert_int_equal(spool_open(spool_dir, 100, 200, &sp), 0);
	for (uint64_t i = 1; i <= 8; i++)
		append_n(sp, i, 0);
	assert_int_equal(spool_ack(sp, 1), 0);
	assert_int_equal(spool_ack(sp, 2), 0);
	assert_int_equal(spool_ack(sp, 5), 0);
	spool_close(sp);
	read_head(t, head, sizeof(head));
	assert_string_equal(head, "3 0\n");

	assert_int_equal(spool_open(spool_dir, 100, 200, &sp), 0);
	/* 5 was acknowledged past the head: at least once means it is sent again. */
	expect_waiting(sp, (uint64_t[]){3, 4, 5, 6, 7, 8}, NULL, 6, 0);
	assert_int_equal(append_n(sp, 9, 0), 9);
	assert_int_equal(spool_ack(sp, 3), 0);
	spool_close(sp);

	assert_int_equal(spool_open(spool_dir, 100, 200, &sp), 0);
	expect_waiting(sp, (uint64_t[]){4, 5, 6, 7, 8, 9}, NULL, 6, 0);
	spool_close(sp);
}

/* Acknowledgements reach `head` at a sync point, not at every PUBACK. */
static void test_head_written_at_sync_points(void **state)
{
	struct tmp *t = *state;
	struct spool *sp = NULL;
	uint8_t buf[128];
	uint64_t id = 0;
	char head[64];

	assert_int_equal(spool_open(spool_dir, 100, 1000, &sp), 0);
	read_head(t, head, sizeof(head));
	assert_string_equal(head, "1 0\n");
	assert_int_equal(spool_append(sp, buf, payload(1, buf, 0), 5000, &id), 0);
	assert_int_equal(spool_append(sp, buf, payload(2, buf, 0), 5001, &id), 0);
	assert_int_equal(spool_ack(sp, 1), 0);
	assert_int_equal(spool_append(sp, buf, payload(3, buf, 0), 5500, &id), 0);
	read_head(t, head, sizeof(head));
	assert_string_equal(head, "1 0\n"); /* within sync_ms of the last sync */
	assert_int_equal(spool_append(sp, buf, payload(4, buf, 0), 6000, &id), 0);
	read_head(t, head, sizeof(head));
	assert_string_equal(head, "2 0\n");
	assert_int_equal(spool_ack(sp, 2), 0);
	assert_int_equal(spool_flush(sp), 0);
	read_head(t, head, sizeof(head));
	assert_string_equal(head, "3 0\n");
	/* A clock that went back does not hold the sync off. */
	assert_int_equal(spool_ack(sp, 3), 0);
	assert_int_equal(spool_append(sp, buf, payload(5, buf, 0), 10, &id), 0);
	read_head(t, head, sizeof(head));
	assert_string_equal(head, "4 0\n");
	spool_close(sp);
}

static void test_full_drops_oldest_counted_and_kept(void **state)
{
	struct tmp *t = *state;
	struct spool *sp = NULL;
	char head[64];

	assert_int_equal(spool_open(spool_dir, 10, 0, &sp), 0);
	for (uint64_t i = 1; i <= 15; i++)
		assert_int_equal(append_n(sp, i, 0), i);
	assert_int_equal(spool_dropped(sp), 5);
	expect_waiting(sp, (uint64_t[]){6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, NULL, 10, 0);
	/* A dropped record's late PUBACK is no error of ours to act on. */
	assert_int_equal(spool_ack(sp, 3), -ENOENT);
	/* The span counts: 6 stuck at the head is the oldest waiting, and it goes. */
	for (uint64_t i = 7; i <= 15; i++)
		assert_int_equal(spool_ack(sp, i), 0);
	assert_int_equal(append_n(sp, 16, 0), 16);
	assert_int_equal(spool_dropped(sp), 6);
	expect_waiting(sp, (uint64_t[]){16}, NULL, 1, 0);
	spool_close(sp);
	read_head(t, head, sizeof(head));
	assert_string_equal(head, "16 6\n");

	assert_int_equal(spool_open(spool_dir, 10, 0, &sp), 0);
	assert_int_equal(spool_dropped(sp), 6);
	for (uint64_t i = 17; i <= 20; i++)
		append_n(sp, i, 0);
	spool_close(sp);
	/* A smaller max at the next start drops the oldest at once, counted too. */
	assert_int_equal(spool_open(spool_dir, 2, 0, &sp), 0);
	assert_int_equal(spool_dropped(sp), 9);
	expect_waiting(sp, (uint64_t[]){19, 20}, NULL, 2, 0);
	spool_close(sp);
	read_head(t, head, sizeof(head));
	assert_string_equal(head, "19 9\n");
}

/* Records of 1000 bytes: acknowledging 70 of 100 makes the dead prefix most of the file. */
static void test_compaction_keeps_order(void **state)
{
	struct tmp *t = *state;
	struct spool *sp = NULL;
	uint64_t ids[40];
	off_t before, after;

	assert_int_equal(spool_open(spool_dir, 1000, 0, &sp), 0);
	for (uint64_t i = 1; i <= 100; i++)
		append_n(sp, i, 1000);
	before = size_of(at(t, "log"));
	assert_int_equal(before, HDR + 100 * (REC + 1000));
	for (uint64_t i = 1; i <= 70; i++)
		assert_int_equal(spool_ack(sp, i), 0);
	assert_int_equal(spool_ack(sp, 80), 0); /* past the head: kept, and still acknowledged */
	assert_int_equal(spool_flush(sp), 0);
	after = size_of(at(t, "log"));
	assert_int_equal(after, HDR + 30 * (REC + 1000));
	assert_int_equal(access(at(t, "log.new"), F_OK), -1);
	for (size_t i = 0; i < 29; i++)
		ids[i] = 71 + i + (71 + i >= 80);
	expect_waiting(sp, ids, NULL, 29, 1000);
	/* The offsets moved with the records: appends and reads go on in the new file. */
	assert_int_equal(append_n(sp, 101, 1000), 101);
	ids[29] = 101;
	expect_waiting(sp, ids, NULL, 30, 1000);
	spool_close(sp);

	assert_int_equal(spool_open(spool_dir, 1000, 0, &sp), 0);
	/* 80, acknowledged past the head, is sent again after a restart. */
	for (size_t i = 0; i < 30; i++)
		ids[i] = 71 + i;
	ids[30] = 101;
	expect_waiting(sp, ids, NULL, 31, 1000);
	assert_int_equal(append_n(sp, 102, 1000), 102);
	spool_close(sp);
}

/* A small log is not rewritten for a few bytes; nothing waiting after a big one leaves the
 * header alone. */
static void test_compaction_thresholds(void **state)
{
	struct tmp *t = *state;
	struct spool *sp = NULL;

	assert_int_equal(spool_open(spool_dir, 1000, 0, &sp), 0);
	for (uint64_t i = 1; i <= 10; i++)
		append_n(sp, i, 100);
	for (uint64_t i = 1; i <= 9; i++)
		assert_int_equal(spool_ack(sp, i), 0);
	assert_int_equal(spool_flush(sp), 0);
	assert_int_equal(size_of(at(t, "log")), HDR + 10 * (REC + 100));
	for (uint64_t i = 11; i <= 80; i++)
		append_n(sp, i, 1000);
	for (uint64_t i = 10; i <= 80; i++)
		assert_int_equal(spool_ack(sp, i), 0);
	assert_int_equal(spool_flush(sp), 0);
	assert_int_equal(size_of(at(t, "log")), HDR);
	assert_int_equal(append_n(sp, 81, 0), 81);
	spool_close(sp);
	assert_int_equal(spool_open(spool_dir, 1000, 0, &sp), 0);
	expect_waiting(sp, (uint64_t[]){81}, NULL, 1, 0);
	spool_close(sp);
}

/* `head` beyond the log (acknowledged appends lost with an unsynced tail): ids never repeat. */
static void test_head_beyond_log_never_reuses_ids(void **state)
{
	struct tmp *t = *state;
	struct spool *sp = NULL;
	char head[64];

	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	for (uint64_t i = 1; i <= 3; i++)
		append_n(sp, i, 0);
	spool_close(sp);
	write_file(at(t, "head"), "50 3\n", 5);
	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	expect_waiting(sp, NULL, NULL, 0, 0);
	assert_int_equal(spool_dropped(sp), 3);
	assert_int_equal(append_n(sp, 50, 0), 50);
	spool_close(sp);
	assert_int_equal(size_of(at(t, "log")), HDR + REC + payload(50, (uint8_t[128]){0}, 0));
	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	expect_waiting(sp, (uint64_t[]){50}, NULL, 1, 0);
	spool_close(sp);
	read_head(t, head, sizeof(head));
	assert_string_equal(head, "50 3\n");
}

/* A log made empty by hand (or a crash at its creation) starts afresh after `head`. */
static void test_empty_log_starts_at_head(void **state)
{
	struct tmp *t = *state;
	struct spool *sp = NULL;

	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	append_n(sp, 1, 0);
	assert_int_equal(spool_ack(sp, 1), 0);
	spool_close(sp);
	write_file(at(t, "log"), "", 0);
	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	expect_waiting(sp, NULL, NULL, 0, 0);
	assert_int_equal(append_n(sp, 2, 0), 2);
	spool_close(sp);
}

/* spool_next() skips what is acknowledged and starts after `after`, wherever that is. */
static void test_next_after(void **state)
{
	struct spool *sp = NULL;
	const uint8_t *data;
	uint64_t id;
	size_t len;

	(void)state;
	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	for (uint64_t i = 1; i <= 6; i++)
		append_n(sp, i, 0);
	assert_int_equal(spool_ack(sp, 1), 0);
	assert_int_equal(spool_ack(sp, 4), 0);
	assert_int_equal(spool_next(sp, 0, &id, &data, &len), 0);
	assert_int_equal(id, 2);
	assert_int_equal(spool_next(sp, 1, &id, &data, &len), 0);
	assert_int_equal(id, 2);
	assert_int_equal(spool_next(sp, 3, &id, &data, &len), 0);
	assert_int_equal(id, 5);
	assert_int_equal(spool_next(sp, 5, &id, &data, &len), 0);
	assert_int_equal(id, 6);
	/* A lent record can go straight back in. */
	assert_int_equal(spool_append(sp, data, len, 0, &id), 0);
	assert_int_equal(id, 7);
	assert_int_equal(spool_next(sp, 6, &id, &data, &len), 0);
	assert_int_equal(id, 7);
	expect_waiting(sp, (uint64_t[]){2, 3, 5, 6, 7}, (uint64_t[]){2, 3, 5, 6, 6}, 5, 0);
	spool_close(sp);
}

/* ---- bad input ---- */

/* Three records, the last of length L: cut the log at every byte inside the last record (its
 * header included). Two records come back whole, the log is cut back to them, and the next
 * append takes id 3. */
static void test_torn_tail_every_offset(void **state)
{
	struct tmp *t = *state;
	struct spool *sp = NULL;
	char *orig = NULL;
	size_t orig_len = 0, last;
	off_t good;

	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	for (uint64_t i = 1; i <= 3; i++)
		append_n(sp, i, 0);
	spool_close(sp);
	assert_int_equal(file_read(at(t, "log"), 1 << 20, &orig, &orig_len), 0);
	last = REC + payload(3, (uint8_t[128]){0}, 0);
	good = (off_t)(orig_len - last);
	for (size_t cut = orig_len - last; cut < orig_len; cut++) {
		write_file(at(t, "log"), orig, cut);
		assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
		assert_int_equal(size_of(at(t, "log")), good);
		expect_waiting(sp, (uint64_t[]){1, 2}, NULL, 2, 0);
		assert_int_equal(append_n(sp, 33, 0), 3);
		spool_close(sp);
		assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
		expect_waiting(sp, (uint64_t[]){1, 2, 3}, (uint64_t[]){1, 2, 33}, 3, 0);
		spool_close(sp);
	}
	free(orig);
}

/* One flipped byte in record 2's length, check or payload: records from 2 on are cut. */
static void test_corrupt_record_cuts_the_rest(void **state)
{
	struct tmp *t = *state;
	struct spool *sp = NULL;
	char *orig = NULL;
	size_t orig_len = 0, rec1 = REC + payload(1, (uint8_t[128]){0}, 0);
	size_t rec2 = REC + payload(2, (uint8_t[128]){0}, 0);

	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	for (uint64_t i = 1; i <= 3; i++)
		append_n(sp, i, 0);
	spool_close(sp);
	assert_int_equal(file_read(at(t, "log"), 1 << 20, &orig, &orig_len), 0);
	for (size_t off = HDR + rec1; off < HDR + rec1 + rec2; off++) {
		orig[off] ^= 0x40;
		write_file(at(t, "log"), orig, orig_len);
		orig[off] ^= 0x40;
		assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
		expect_waiting(sp, (uint64_t[]){1}, NULL, 1, 0);
		assert_int_equal(size_of(at(t, "log")), (off_t)(HDR + rec1));
		spool_close(sp);
	}
	free(orig);
}

/* Lengths no record has: zero, past SPOOL_RECORD_MAX, past the end of the file. */
static void test_bad_lengths_cut(void **state)
{
	static const uint32_t lens[] = {0, SPOOL_RECORD_MAX + 1, 0xffffffff, 100};
	struct tmp *t = *state;
	struct spool *sp = NULL;
	uint8_t rec[REC + 40] = {0};
	char *orig = NULL, *bad;
	size_t orig_len = 0;

	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	append_n(sp, 1, 0);
	spool_close(sp);
	assert_int_equal(file_read(at(t, "log"), 1 << 20, &orig, &orig_len), 0);
	assert_non_null(bad = malloc(orig_len + sizeof(rec)));
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t digest[CRYPTO_SHA256_LEN];

		rec[0] = (uint8_t)(lens[i] >> 24), rec[1] = (uint8_t)(lens[i] >> 16);
		rec[2] = (uint8_t)(lens[i] >> 8), rec[3] = (uint8_t)lens[i];
		/* A right check for the bytes there, so only the length is wrong. */
		assert_int_equal(crypto_sha256(rec + REC, 40, digest), 0);
		memcpy(rec + 4, digest, 4);
		memcpy(bad, orig, orig_len);
		memcpy(bad + orig_len, rec, sizeof(rec));
		write_file(at(t, "log"), bad, orig_len + sizeof(rec));
		assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
		expect_waiting(sp, (uint64_t[]){1}, NULL, 1, 0);
		assert_int_equal(size_of(at(t, "log")), (off_t)orig_len);
		spool_close(sp);
	}
	free(bad);
	free(orig);
}

/* Garbage after good records: cut, whatever it is. */
static void test_garbage_tail_cut(void **state)
{
	struct tmp *t = *state;
	struct spool *sp = NULL;
	char *orig = NULL, *bad;
	size_t orig_len = 0;

	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	append_n(sp, 1, 0);
	append_n(sp, 2, 0);
	spool_close(sp);
	assert_int_equal(file_read(at(t, "log"), 1 << 20, &orig, &orig_len), 0);
	assert_non_null(bad = malloc(orig_len + 500));
	for (int round = 0; round < 20; round++) {
		size_t extra = 1 + (size_t)round * 23;

		memcpy(bad, orig, orig_len);
		assert_int_equal(crypto_random(bad + orig_len, extra), 0);
		write_file(at(t, "log"), bad, orig_len + extra);
		assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
		expect_waiting(sp, (uint64_t[]){1, 2}, NULL, 2, 0);
		spool_close(sp);
	}
	free(bad);
	free(orig);
}

/* A log that is not ours is refused, not cut to nothing. */
static void test_bad_log_header_refused(void **state)
{
	static const struct {
		const char *data;
		size_t len;
	} bad[] = {
	    {"ISPOOL0", 7},
	    {"ISPOOL01\0\0\0\0\0\0\0", 15},
	    {"ISPOOL01\0\0\0\0\0\0\0\0", 16}, /* first id 0 */
	    {"XSPOOL01\0\0\0\0\0\0\0\1", 16},
	    {"ISPOOL02\0\0\0\0\0\0\0\1", 16},
	    {"some text the operator put here\n", 32},
	};
	struct tmp *t = *state;
	struct spool *sp = NULL;

	assert_int_equal(file_mkdirs(spool_dir, 0700), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(at(t, "log"), bad[i].data, bad[i].len);
		assert_int_equal(spool_open(spool_dir, 100, 0, &sp), -EBADMSG);
		assert_null(sp);
		assert_int_equal(size_of(at(t, "log")), (off_t)bad[i].len);
	}
	/* A good header alone is an empty spool starting at its id; a compaction's leftover
	 * temporary goes. */
	write_file(at(t, "log"), "ISPOOL01\0\0\0\0\0\0\0\x07", 16);
	write_file(at(t, "log.new"), "ISPOOL01\0\0\0\0\0\0\0\x09", 16);
	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	assert_int_equal(access(at(t, "log.new"), F_OK), -1);
	assert_int_equal(append_n(sp, 7, 0), 7);
	spool_close(sp);
}

/* A damaged `head` loses the place, never a record: everything in the log is sent again. */
static void test_bad_head_file_resends(void **state)
{
	static const char *const bad[] = {
	    "",	       "abc",
	    "3",       "3\n",
	    "3 \n",    " 3 0\n",
	    "3 0",     "3 0\n\n",
	    "3  0\n",  "0 0\n",
	    "-3 0\n",  "3 -1\n",
	    "3 0x1\n", "99999999999999999999 0\n",
	    "3 0\0\n", "3 000000000000000000000000000000000000000000000000000000000000000000000\n",
	};
	struct tmp *t = *state;
	struct spool *sp = NULL;
	char head[64];

	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	for (uint64_t i = 1; i <= 4; i++)
		append_n(sp, i, 0);
	spool_close(sp);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strlen(bad[i]) + (i == 14 ? 2 : 0);

		write_file(at(t, "head"), bad[i], len);
		assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
		expect_waiting(sp, (uint64_t[]){1, 2, 3, 4}, NULL, 4, 0);
		assert_int_equal(spool_dropped(sp), 0);
		spool_close(sp);
		read_head(t, head, sizeof(head));
		assert_string_equal(head, "1 0\n");
	}
	/* The good form of the same, for contrast. */
	write_file(at(t, "head"), "3 2\n", 4);
	assert_int_equal(spool_open(spool_dir, 100, 0, &sp), 0);
	expect_waiting(sp, (uint64_t[]){3, 4}, NULL, 2, 0);
	assert_int_equal(spool_dropped(sp), 2);
	spool_close(sp);
}

static void test_bad_calls(void **state)
{
	struct tmp *t = *state;
	struct spool *sp = (struct spool *)&sp, *orig = sp;
	uint8_t big[SPOOL_RECORD_MAX + 1] = {0};
	const uint8_t *data = big;
	uint64_t id = 77;
	size_t len = 5;

	assert_int_equal(spool_open(spool_dir, 0, 0, &sp), -EINVAL);
	assert_int_equal(spool_open("", 10, 0, &sp), -EINVAL);
	assert_int_equal(spool_open(NULL, 10, 0, &sp), -EINVAL);
	snprintf(t->path, sizeof(t->path), "%s/file", t->dir);
	write_file(t->path, "x", 1);
	assert_int_equal(spool_open(t->path, 10, 0, &sp), -ENOTDIR);
	assert_ptr_equal(sp, orig);

	assert_int_equal(spool_open(spool_dir, 10, 0, &sp), 0);
	assert_int_equal(spool_append(sp, big, 0, 0, &id), -EINVAL);
	assert_int_equal(spool_append(sp, big, sizeof(big), 0, &id), -EMSGSIZE);
	assert_int_equal(id, 77);
	assert_int_equal(spool_next(sp, 0, &id, &data, &len), -ENOENT);
	assert_int_equal(id, 77);
	assert_ptr_equal(data, big);
	assert_int_equal(len, 5);
	assert_int_equal(spool_append(sp, big, SPOOL_RECORD_MAX, 0, &id), 0);
	assert_int_equal(id, 1);
	assert_int_equal(spool_ack(sp, 0), -ENOENT);
	assert_int_equal(spool_ack(sp, 2), -ENOENT);
	assert_int_equal(spool_ack(sp, UINT64_MAX), -ENOENT);
	assert_int_equal(spool_next(sp, UINT64_MAX, &id, &data, &len), -ENOENT);
	assert_int_equal(spool_next(sp, 1, &id, &data, &len), -ENOENT);
	assert_int_equal(spool_ack(sp, 1), 0);
	assert_int_equal(spool_ack(sp, 1), -ENOENT);
	assert_int_equal(spool_pending(sp), 0);
	spool_close(sp);
	spool_close(NULL);

	/* `log` that is a directory */
	assert_int_equal(unlink(at(t, "log")), 0);
	assert_int_equal(unlink(at(t, "head")), 0);
	assert_int_equal(mkdir(at(t, "log"), 0700), 0);
	assert_true(spool_open(spool_dir, 10, 0, &sp) < 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, tmp_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_append_next_ack_any_order),
	    T(test_reopen_after_acks_keeps_order),
	    T(test_head_written_at_sync_points),
	    T(test_full_drops_oldest_counted_and_kept),
	    T(test_compaction_keeps_order),
	    T(test_compaction_thresholds),
	    T(test_head_beyond_log_never_reuses_ids),
	    T(test_empty_log_starts_at_head),
	    T(test_next_after),
	    T(test_torn_tail_every_offset),
	    T(test_corrupt_record_cuts_the_rest),
	    T(test_bad_lengths_cut),
	    T(test_garbage_tail_cut),
	    T(test_bad_log_header_refused),
	    T(test_bad_head_file_resends),
	    T(test_bad_calls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
