/* reading: the sealed reading's bytes, its plaintext, and what a reader accepts. The layout is
 * checked against the table in reading.h byte by byte, and the ciphertext opened with OpenSSL
 * directly, with the whole header as the AAD, so the format cannot drift unnoticed. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "log.h"
#include "reading.h"

#define E0     3
#define EPOCH  7
#define NOW_MS 1767225600000LL
#define FRESH  300000 /* sensord.fresh_s = 300 */
#define PT     "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"/min\"}"

static uint8_t root[CRYPTO_KEY_LEN], other_root[CRYPTO_KEY_LEN];

/* README's test vector, sealed by Python's cryptography (AESGCM) apart from this code: root
 * 00 01 .. 1f, e0 5, epoch 7, "pi1", seq 1, time 1767225600000, nonce a0 a1 .. ab, PT. */
static const uint8_t vector[] = {
    0x01, 0x01, 0x00, 0x03, 0x70, 0x69, 0x31, 0x24, 0xc3, 0xa5, 0xe2, 0x6d, 0x36, 0xc3, 0xcd,
    0x29, 0x6a, 0xb4, 0x33, 0x57, 0x36, 0x12, 0x17, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x9b, 0x76, 0xda, 0xa8, 0x00, 0xa0, 0xa1,
    0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xb1, 0x17, 0xfb, 0x91, 0xde,
    0x27, 0x69, 0xe3, 0x80, 0xde, 0x08, 0x80, 0xf1, 0x92, 0xe0, 0x45, 0x3d, 0x2c, 0x46, 0x11,
    0xd6, 0x40, 0x61, 0x21, 0xd0, 0xba, 0x82, 0x34, 0xfa, 0x3f, 0xd3, 0x82, 0xc3, 0xde, 0x13,
    0x6e, 0xb1, 0xdb, 0xbc, 0x1e, 0x63, 0x22, 0x5e, 0xf5, 0x0e, 0x85, 0x09, 0xec, 0x9b, 0xcc,
    0xda, 0xaf, 0xe0, 0xfa, 0x15, 0x92, 0xf6, 0x0e, 0x8d,
};

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(root); i++)
		root[i] = (uint8_t)(0x40 + i), other_root[i] = (uint8_t)(0x80 + i);
	return 0;
}

static struct stream *stream_at(const uint8_t *r, uint32_t e)
{
	struct stream *s = NULL;

	assert_int_equal(stream_from_root(r, E0, &s), 0);
	assert_int_equal(stream_advance(s, e), 0);
	return s;
}

static struct reading_header header(const char *device, uint32_t epoch, uint64_t seq)
{
	struct reading_header h = {
	    .kind = READING_GROUP, .epoch = epoch, .seq = seq, .time_ms = NOW_MS};

	snprintf(h.device, sizeof(h.device), "%s", device);
	return h;
}

/* A reading of PT by "pi1", sealed at epoch e of the stream. */
static size_t seal(struct stream *s, uint32_t e, uint64_t seq, uint8_t *out)
{
	struct reading_header h = header("pi1", e, seq);
	size_t len = 0;

	assert_int_equal(reading_seal(s, &h, PT, strlen(PT), out, READING_MAX, &len), 0);
	return len;
}

static void test_vector_opens(void **state)
{
	uint8_t r[CRYPTO_KEY_LEN], pt[READING_PLAIN_MAX];
	struct stream *s = NULL;
	struct reading_header h;
	size_t len = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(r); i++)
		r[i] = (uint8_t)i;
	assert_int_equal(stream_from_root(r, 5, &s), 0);
	assert_int_equal(stream_advance(s, 7), 0);
	assert_int_equal(reading_open(s, vector, sizeof(vector), &h, pt, &len), 0);
	assert_int_equal(len, strlen(PT));
	assert_memory_equal(pt, PT, len);
	assert_string_equal(h.device, "pi1");
	assert_int_equal(h.kind, READING_GROUP);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.epoch, 7);
	assert_int_equal(h.seq, 1);
	assert_int_equal(h.time_ms, 1767225600000LL);
	assert_int_equal(h.nonce[0], 0xa0);
	assert_int_equal(h.nonce[11], 0xab);
	/* Its previous epoch's reader too; two epochs on, no longer. */
	assert_int_equal(stream_advance(s, 8), 0);
	assert_int_equal(reading_open(s, vector, sizeof(vector), &h, pt, &len), 0);
	assert_int_equal(stream_advance(s, 9), 0);
	assert_int_equal(reading_open(s, vector, sizeof(vector), &h, pt, &len), -IOTSEC_ESTALE);
	stream_free(s);
}

static void test_layout_known(void **state)
{
	struct stream *s = stream_at(root, EPOCH);
	struct reading_header h = header("kitchen-pi", EPOCH, 0x0102030405060708ULL);
	uint8_t out[READING_MAX], key[CRYPTO_KEY_LEN], pt[sizeof(PT)], id[STREAM_ID_LEN];
	const size_t n = 10, hlen = 52 + n;
	size_t len = 0;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl = 0, fin = 0;

	(void)state;
	h.kind = READING_DOCTOR;
	h.flags = READING_F_EMERGENCY;
	h.time_ms = 0x1122334455667788LL;
	assert_int_equal(reading_seal(s, &h, PT, strlen(PT), out, sizeof(out), &len), 0);
	assert_int_equal(len, hlen + strlen(PT) + 16);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 2);
	assert_int_equal(out[2], 1);
	assert_int_equal(out[3], n);
	assert_memory_equal(out + 4, "kitchen-pi", n);
	assert_int_equal(stream_id(root, id), 0);
	assert_memory_equal(out + 4 + n, id, 16);
	assert_memory_equal(h.stream, id, 16); /* filled in by the seal */
	assert_memory_equal(out + 20 + n, "\x00\x00\x00\x07", 4);
	assert_memory_equal(out + 24 + n, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	assert_memory_equal(out + 32 + n, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	assert_memory_equal(out + 40 + n, h.nonce, 12);
	/* AES-256-GCM under K_7, the header (nonce included) as AAD, the tag last. */
	assert_int_equal(stream_key_at(root, E0, EPOCH, key), 0);
	assert_int_equal(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, out + 40 + n), 1);
	assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &outl, out, (int)hlen), 1);
	assert_int_equal(EVP_DecryptUpdate(ctx, pt, &outl, out + hlen, (int)strlen(PT)), 1);
	assert_int_equal(
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, out + hlen + strlen(PT)), 1);
	assert_int_equal(EVP_DecryptFinal_ex(ctx, pt + outl, &fin), 1);
	assert_memory_equal(pt, PT, strlen(PT));
	EVP_CIPHER_CTX_free(ctx);
	stream_free(s);
}

static void test_seal_open(void **state)
{
	struct stream *w = stream_at(root, EPOCH), *r = NULL;
	uint8_t out[READING_MAX], pt[READING_PLAIN_MAX], nonce[CRYPTO_NONCE_LEN];
	struct reading_header h, parsed;
	size_t len = 0, ptlen = 0, hlen = 0;

	(void)state;
	assert_int_equal(stream_from_key(stream_get_id(w), EPOCH, stream_key(w, false), NULL, &r),
			 0);
	len = seal(w, EPOCH, 9, out);
	assert_int_equal(reading_header_parse(out, len, &parsed, &hlen), 0);
	assert_int_equal(hlen, 52 + 3);
	assert_string_equal(parsed.device, "pi1");
	assert_int_equal(parsed.kind, READING_GROUP);
	assert_int_equal(parsed.seq, 9);
	assert_int_equal(reading_open(r, out, len, &h, pt, &ptlen), 0);
	assert_int_equal(ptlen, strlen(PT));
	assert_memory_equal(pt, PT, ptlen);
	assert_memory_equal(&h, &parsed, sizeof(h));
	assert_int_equal(h.epoch, EPOCH);
	assert_int_equal(h.time_ms, NOW_MS);
	memcpy(nonce, h.nonce, sizeof(nonce));
	/* A new nonce for every reading, even of the same seq. */
	len = seal(w, EPOCH, 9, out);
	assert_int_equal(reading_header_parse(out, len, &parsed, &hlen), 0);
	assert_memory_not_equal(parsed.nonce, nonce, sizeof(nonce));
	stream_free(w);
	stream_free(r);
}

/* Nonces are drawn ahead; a forked child must not hand out the ones its parent will. */
static void test_fork_nonces(void **state)
{
	struct stream *s = stream_at(root, EPOCH);
	uint8_t out[READING_MAX], child[CRYPTO_NONCE_LEN];
	struct reading_header h;
	size_t len, hlen;
	int fds[2], status = 0;
	pid_t pid;

	(void)state;
	len = seal(s, EPOCH, 1, out); /* the pool is full now */
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		len = seal(s, EPOCH, 2, out);
		_exit(reading_header_parse(out, len, &h, &hlen) == 0 &&
			      write(fds[1], h.nonce, CRYPTO_NONCE_LEN) == CRYPTO_NONCE_LEN
			  ? 0
			  : 1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], child, sizeof(child)), sizeof(child));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	len = seal(s, EPOCH, 2, out);
	assert_int_equal(reading_header_parse(out, len, &h, &hlen), 0);
	assert_memory_not_equal(h.nonce, child, CRYPTO_NONCE_LEN);
	stream_free(s);
}

/* The largest reading: a 63-byte name and READING_PLAIN_MAX bytes. */
static void test_largest(void **state)
{
	struct stream *s = stream_at(root, EPOCH);
	struct reading_header h = header("", EPOCH, 1), got;
	uint8_t big[READING_PLAIN_MAX], out[READING_MAX], back[READING_PLAIN_MAX];
	size_t len = 0, ptlen = 0;

	(void)state;
	memset(h.device, 'd', READING_NAME_MAX);
	h.device[READING_NAME_MAX] = '\0';
	memset(big, 'x', sizeof(big));
	assert_int_equal(reading_seal(s, &h, big, sizeof(big), out, sizeof(out), &len), 0);
	assert_int_equal(len, READING_MAX);
	assert_int_equal(reading_open(s, out, len, &got, back, &ptlen), 0);
	assert_int_equal(ptlen, sizeof(big));
	assert_memory_equal(back, big, sizeof(big));
	/* One byte of room less: refused, not cut. */
	assert_int_equal(reading_seal(s, &h, big, sizeof(big), out, READING_MAX - 1, &len),
			 -EMSGSIZE);
	stream_free(s);
}

/* A reader holds the current and the previous epoch; a writer may seal under either. */
static void test_current_and_previous(void **state)
{
	struct stream *w = stream_at(root, EPOCH), *r = stream_at(root, EPOCH);
	uint8_t a[READING_MAX], b[READING_MAX], pt[READING_PLAIN_MAX];
	struct reading_header h;
	size_t alen = seal(w, EPOCH, 1, a), blen, ptlen;

	(void)state;
	assert_int_equal(stream_advance(w, EPOCH + 1), 0);
	blen = seal(w, EPOCH, 2, b); /* the previous epoch's key still seals */
	assert_int_equal(reading_open(r, b, blen, &h, pt, &ptlen), 0);
	assert_int_equal(stream_advance(r, EPOCH + 1), 0);
	assert_int_equal(reading_open(r, a, alen, &h, pt, &ptlen), 0);
	blen = seal(w, EPOCH + 1, 3, b);
	assert_int_equal(reading_open(r, b, blen, &h, pt, &ptlen), 0);
	assert_int_equal(h.epoch, EPOCH + 1);
	stream_free(w);
	stream_free(r);
}

/* Advancing wipes: two epochs on, neither the reader nor a captured copy of its keys opens a
 * reading of epoch e. */
static void test_advance_forgets(void **state)
{
	struct stream *w = stream_at(root, EPOCH), *r = stream_at(root, EPOCH), *cap = NULL;
	uint8_t a[READING_MAX], pt[READING_PLAIN_MAX];
	struct reading_header h;
	size_t alen = seal(w, EPOCH, 1, a), ptlen;

	(void)state;
	assert_int_equal(stream_advance(r, EPOCH + 2), 0);
	assert_int_equal(reading_open(r, a, alen, &h, pt, &ptlen), -IOTSEC_ESTALE);
	assert_int_equal(stream_from_key(stream_get_id(r), EPOCH + 2, stream_key(r, false),
					 stream_key(r, true), &cap),
			 0);
	assert_int_equal(reading_open(cap, a, alen, &h, pt, &ptlen), -IOTSEC_ESTALE);
	stream_free(cap);
	cap = NULL;
	/* Even told that its current key is of epoch e, K_{e+2} does not open it. */
	assert_int_equal(stream_from_key(stream_get_id(r), EPOCH, stream_key(r, false), NULL, &cap),
			 0);
	assert_int_equal(reading_open(cap, a, alen, &h, pt, &ptlen), -EBADMSG);
	/* A writer that moved on cannot seal under the old epoch either. */
	assert_int_equal(stream_advance(w, EPOCH + 2), 0);
	h = header("pi1", EPOCH, 5);
	assert_int_equal(reading_seal(w, &h, PT, strlen(PT), a, sizeof(a), &alen), -ENOKEY);
	stream_free(cap);
	stream_free(w);
	stream_free(r);
}

static void test_newer_and_other_stream(void **state)
{
	struct stream *w = stream_at(root, EPOCH + 2), *r = stream_at(root, EPOCH),
		      *o = stream_at(other_root, EPOCH);
	uint8_t a[READING_MAX], pt[READING_PLAIN_MAX];
	struct reading_header h;
	size_t alen = seal(w, EPOCH + 2, 1, a), ptlen;

	(void)state;
	assert_int_equal(reading_open(r, a, alen, &h, pt, &ptlen), -ENOKEY);
	assert_int_equal(reading_open(o, a, alen, &h, pt, &ptlen), -IOTSEC_ETYPE);
	alen = seal(o, EPOCH, 1, a);
	assert_int_equal(reading_open(r, a, alen, &h, pt, &ptlen), -IOTSEC_ETYPE);
	/* The other stream's id on a reading under our key: the id is authenticated. */
	memcpy(a + 4 + 3, stream_get_id(r), STREAM_ID_LEN);
	assert_int_equal(reading_open(r, a, alen, &h, pt, &ptlen), -EBADMSG);
	stream_free(w);
	stream_free(r);
	stream_free(o);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static void test_truncated_every_offset(void **state)
{
	struct stream *s = stream_at(root, EPOCH);
	uint8_t a[READING_MAX], pt[READING_PLAIN_MAX];
	struct reading_header h, untouched;
	size_t alen = seal(s, EPOCH, 1, a), ptlen = 77, hlen = 77;

	(void)state;
	memset(&untouched, 0xa5, sizeof(untouched));
	for (size_t len = 0; len < alen; len++) {
		h = untouched;
		memset(pt, 0xa5, sizeof(pt));
		/* Cut in the ciphertext, only the tag can tell. */
		if (len < 55 + 1 + CRYPTO_TAG_LEN)
			assert_int_equal(reading_header_parse(a, len, &h, &hlen), -EBADMSG);
		assert_int_equal(reading_open(s, a, len, &h, pt, &ptlen), -EBADMSG);
		assert_memory_equal(&h, &untouched, sizeof(h));
		assert_true(all_zero(pt, sizeof(pt))); /* wiped */
		assert_int_equal(ptlen, 77);
		if (len < 55 + 1 + CRYPTO_TAG_LEN)
			assert_int_equal(hlen, 77);
	}
	stream_free(s);
}

static void test_oversized(void **state)
{
	struct stream *s = stream_at(root, EPOCH);
	uint8_t a[READING_MAX + 64], pt[READING_PLAIN_MAX];
	struct reading_header h;
	size_t alen = seal(s, EPOCH, 1, a), ptlen, hlen;

	(void)state;
	memset(a + alen, 0, sizeof(a) - alen);
	/* A byte more after the tag: the tag is no longer where it was. */
	assert_int_equal(reading_open(s, a, alen + 1, &h, pt, &ptlen), -EBADMSG);
	/* More than READING_PLAIN_MAX of ciphertext behind a short header. */
	assert_int_equal(reading_header_parse(a, 55 + READING_PLAIN_MAX + 17, &h, &hlen), -EBADMSG);
	assert_int_equal(reading_header_parse(a, 55 + READING_PLAIN_MAX + 16, &h, &hlen), 0);
	assert_int_equal(reading_header_parse(a, READING_MAX + 1, &h, &hlen), -EMSGSIZE);
	assert_int_equal(reading_open(s, a, READING_MAX + 1, &h, pt, &ptlen), -EMSGSIZE);
	assert_int_equal(reading_header_parse(a, SIZE_MAX, &h, &hlen), -EMSGSIZE);
	stream_free(s);
}

static void test_every_flipped_byte(void **state)
{
	struct stream *s = stream_at(root, EPOCH);
	uint8_t a[READING_MAX], pt[READING_PLAIN_MAX];
	struct reading_header h;
	size_t alen = seal(s, EPOCH, 1, a), ptlen;

	(void)state;
	for (size_t i = 0; i < alen; i++)
		for (unsigned bit = 0; bit < 8; bit++) {
			a[i] ^= (uint8_t)(1u << bit);
			memset(pt, 0xa5, sizeof(pt));
			assert_true(reading_open(s, a, alen, &h, pt, &ptlen) < 0);
			assert_true(all_zero(pt, sizeof(pt)));
			a[i] ^= (uint8_t)(1u << bit);
		}
	assert_int_equal(reading_open(s, a, alen, &h, pt, &ptlen), 0);
	stream_free(s);
}

/* Header fields out of range, each refused by the parse (before any key is used). */
static void test_bad_fields(void **state)
{
	static const struct {
		size_t off;
		uint8_t value;
	} bad[] = {
	    {0, 0},    {0, 2},	  {0, 0xff},				  /* version */
	    {1, 0},    {1, 4},	  {1, 0xff},				  /* kind */
	    {2, 0x02}, {2, 0x80}, {2, 0xff},				  /* flags */
	    {3, 0},    {3, 64},	  {3, 0xff},				  /* n */
	    {4, '-'},  {4, '.'},  {5, '/'},  {5, 0}, {6, ' '}, {6, 0x80}, /* device */
	};
	struct stream *s = stream_at(root, EPOCH);
	uint8_t a[READING_MAX], pt[READING_PLAIN_MAX];
	struct reading_header h;
	size_t alen = seal(s, EPOCH, 1, a), ptlen, hlen;
	const size_t p = 4 + 3; /* after "pi1" */

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t was = a[bad[i].off];

		a[bad[i].off] = bad[i].value;
		assert_int_equal(reading_header_parse(a, alen, &h, &hlen), -EBADMSG);
		assert_int_equal(reading_open(s, a, alen, &h, pt, &ptlen), -EBADMSG);
		a[bad[i].off] = was;
	}
	/* epoch 0, seq 0, a negative time */
	memset(a + p + 16, 0, 4);
	assert_int_equal(reading_header_parse(a, alen, &h, &hlen), -EBADMSG);
	alen = seal(s, EPOCH, 1, a);
	memset(a + p + 20, 0, 8);
	assert_int_equal(reading_header_parse(a, alen, &h, &hlen), -EBADMSG);
	alen = seal(s, EPOCH, 1, a);
	a[p + 28] |= 0x80;
	assert_int_equal(reading_header_parse(a, alen, &h, &hlen), -EBADMSG);
	/* flags 0 and 1 both parse; kind 3 (reserved) parses */
	alen = seal(s, EPOCH, 1, a);
	a[2] = 1;
	assert_int_equal(reading_header_parse(a, alen, &h, &hlen), 0);
	a[1] = 3;
	assert_int_equal(reading_header_parse(a, alen, &h, &hlen), 0);
	assert_int_equal(h.kind, READING_PAIR);
	assert_int_equal(h.flags, READING_F_EMERGENCY);
	stream_free(s);
}

static void test_seal_refused(void **state)
{
	struct stream *s = stream_at(root, EPOCH), *fresh = NULL;
	uint8_t out[READING_MAX], big[READING_PLAIN_MAX + 1] = {0};
	struct reading_header h = header("pi1", EPOCH, 1), keep;
	size_t len = 99;

	(void)state;
#define REFUSED(field, val, err)                                                                   \
	do {                                                                                       \
		h = header("pi1", EPOCH, 1);                                                       \
		h.field = val;                                                                     \
		keep = h;                                                                          \
		assert_int_equal(reading_seal(s, &h, PT, strlen(PT), out, sizeof(out), &len),      \
				 err);                                                             \
		assert_memory_equal(&h, &keep, sizeof(h));                                         \
		assert_int_equal(len, 99);                                                         \
	} while (0)
	REFUSED(kind, 0, -EINVAL);
	REFUSED(kind, 4, -EINVAL);
	REFUSED(flags, 2, -EINVAL);
	REFUSED(epoch, 0, -EINVAL);
	REFUSED(seq, 0, -EINVAL);
	REFUSED(time_ms, -1, -EINVAL);
	REFUSED(device[0], '\0', -EINVAL);
	REFUSED(device[1], '/', -EINVAL);
	REFUSED(epoch, EPOCH - 2, -ENOKEY);
	REFUSED(epoch, EPOCH + 1, -ENOKEY);
#undef REFUSED
	h = header("pi1", EPOCH, 1);
	memset(h.device, 'a', sizeof(h.device)); /* no NUL within 64 bytes */
	assert_int_equal(reading_seal(s, &h, PT, strlen(PT), out, sizeof(out), &len), -EINVAL);
	h = header("pi1", EPOCH, 1);
	assert_int_equal(reading_seal(s, &h, PT, 0, out, sizeof(out), &len), -EINVAL);
	assert_int_equal(reading_seal(s, &h, big, sizeof(big), out, sizeof(out), &len), -EINVAL);
	assert_int_equal(reading_seal(s, &h, PT, strlen(PT), out, 55 + strlen(PT) + 15, &len),
			 -EMSGSIZE);
	assert_int_equal(len, 99);
	/* A stream straight from its root holds no reading key yet. */
	assert_int_equal(stream_from_root(root, E0, &fresh), 0);
	h = header("pi1", E0 - 1, 1);
	assert_int_equal(reading_seal(fresh, &h, PT, strlen(PT), out, sizeof(out), &len), -ENOKEY);
	stream_free(fresh);
	stream_free(s);
}

static void test_value_round_trip(void **state)
{
	static const struct {
		struct reading_value v;
		const char *json;
	} good[] = {
	    {{"pulse", 72, "/min", false, 0}, PT},
	    {{"body_temp", 36.6, "C", false, 0},
	     "{\"sensor\":\"body_temp\",\"value\":36.6,\"unit\":\"C\"}"},
	    {{"x-1", -0.5, "", false, 0}, "{\"sensor\":\"x-1\",\"value\":-0.5,\"unit\":\"\"}"},
	    {{"pulse", 20, "/min", true, 30},
	     "{\"sensor\":\"pulse\",\"value\":20,\"unit\":\"/min\",\"emergency\":true,"
	     "\"threshold\":30}"},
	    {{"q", 1e300, "a\"b\\c", false, 0},
	     "{\"sensor\":\"q\",\"value\":1e+300,\"unit\":\"a\\\"b\\\\c\"}"},
	    {{"q", 0.1, " ~", false, 0}, "{\"sensor\":\"q\",\"value\":0.1,\"unit\":\" ~\"}"},
	};
	char out[READING_PLAIN_MAX];
	struct reading_value back;
	size_t len = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(reading_value_build(&good[i].v, out, sizeof(out), &len), 0);
		assert_int_equal(len, strlen(good[i].json));
		assert_memory_equal(out, good[i].json, len);
		assert_int_equal(reading_value_parse(out, len, &back), 0);
		assert_string_equal(back.sensor, good[i].v.sensor);
		assert_string_equal(back.unit, good[i].v.unit);
		assert_true(back.value == good[i].v.value);
		assert_int_equal(back.emergency, good[i].v.emergency);
		if (back.emergency)
			assert_true(back.threshold == good[i].v.threshold);
	}
	/* Integers and reals both read as numbers; whitespace inside the object is JSON. */
	{
		const char *o = "{ \"value\" : 7.0,\"unit\":\"C\",\"sensor\":\"t\"}";

		assert_int_equal(reading_value_parse(o, strlen(o), &back), 0);
	}
	assert_true(back.value == 7);
}

static void test_value_build_refused(void **state)
{
	const struct reading_value bad[] = {
	    {"", 1, "", false, 0},
	    {"Pulse", 1, "", false, 0},
	    {"pu lse", 1, "", false, 0},
	    {"pulse.x", 1, "", false, 0},
	    {"pulse", NAN, "", false, 0},
	    {"pulse", INFINITY, "", false, 0},
	    {"pulse", -INFINITY, "", false, 0},
	    {"pulse", 1, "\x7f", false, 0},
	    {"pulse", 1, "\x1f", false, 0},
	    {"pulse", 1, "\xc2\xb0", false, 0},
	    {"pulse", 1, "", true, NAN},
	};
	struct reading_value v = {.value = 1};
	char out[READING_PLAIN_MAX];
	size_t len = 99;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(reading_value_build(&bad[i], out, sizeof(out), &len), -EINVAL);
	memset(v.sensor, 'a', READING_SENSOR_MAX + 1); /* no NUL: 32 and more */
	assert_int_equal(reading_value_build(&v, out, sizeof(out), &len), -EINVAL);
	memset(v.sensor, 0, sizeof(v.sensor));
	v.sensor[0] = 'a';
	memset(v.unit, 'u', sizeof(v.unit)); /* no NUL */
	assert_int_equal(reading_value_build(&v, out, sizeof(out), &len), -EINVAL);
	memset(v.unit, 0, sizeof(v.unit));
	assert_int_equal(reading_value_build(&v, out, 10, &len), -EMSGSIZE);
	assert_int_equal(len, 99);
}

static void test_value_parse_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "{}",
	    "[]",
	    "null",
	    "{\"sensor\":\"pulse\",\"value\":72}",
	    "{\"sensor\":\"pulse\",\"unit\":\"/min\"}",
	    "{\"value\":72,\"unit\":\"/min\"}",
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"/min\",\"x\":1}",
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"/min\",\"sensor\":\"spo2\"}",
	    "{\"sensor\":\"pulse\",\"value\":\"72\",\"unit\":\"/min\"}",
	    "{\"sensor\":\"pulse\",\"value\":true,\"unit\":\"/min\"}",
	    "{\"sensor\":\"pulse\",\"value\":null,\"unit\":\"/min\"}",
	    "{\"sensor\":7,\"value\":72,\"unit\":\"/min\"}",
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":0}",
	    "{\"sensor\":\"Pulse\",\"value\":72,\"unit\":\"/min\"}",
	    "{\"sensor\":\"\",\"value\":72,\"unit\":\"/min\"}",
	    "{\"sensor\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"value\":72,\"unit\":\"\"}",
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"0123456789abcdef\"}",
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"\\u00b0C\"}",
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"\\u0001\"}",
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"\\u0000\"}",
	    "{\"sensor\":\"pulse\",\"value\":1e400,\"unit\":\"/min\"}",
	    "{\"sensor\":\"pulse\",\"value\":NaN,\"unit\":\"/min\"}",
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"/min\",\"emergency\":true}",
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"/min\",\"threshold\":30}",
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"/min\",\"emergency\":false,"
	    "\"threshold\":30}",
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"/"
	    "min\",\"emergency\":1,\"threshold\":30}",
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"/min\",\"emergency\":true,"
	    "\"threshold\":\"30\"}",
	    " " PT,
	    PT " ",
	    PT "\n",
	    PT "x",
	    PT PT,
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"/min\"",
	    "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"/min\",}",
	    "{\"sensor\":\"pulse\",\"value\":[72],\"unit\":\"/min\"}",
	};
	struct reading_value v, keep;
	char withnul[sizeof(PT) + 1];

	(void)state;
	memset(&v, 0xa5, sizeof(v));
	keep = v;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(reading_value_parse(bad[i], strlen(bad[i]), &v), -EBADMSG);
		assert_memory_equal(&v, &keep, sizeof(v));
	}
	/* A NUL inside, after the object, and a length beyond READING_PLAIN_MAX. */
	memcpy(withnul, PT, sizeof(PT));
	withnul[5] = '\0';
	assert_int_equal(reading_value_parse(withnul, strlen(PT), &v), -EBADMSG);
	memcpy(withnul, PT, sizeof(PT));
	withnul[sizeof(PT)] = '}';
	assert_int_equal(reading_value_parse(withnul, sizeof(PT) + 1, &v), -EBADMSG);
	{
		char big[READING_PLAIN_MAX + 2];

		memset(big, ' ', sizeof(big));
		memcpy(big, PT, strlen(PT) - 1);
		big[sizeof(big) - 1] = '}';
		assert_int_equal(reading_value_parse(big, sizeof(big), &v), -EBADMSG);
	}
	assert_memory_equal(&v, &keep, sizeof(v));
}

static struct reading_header guard_header(const char *device, uint64_t seq, int64_t time_ms)
{
	struct reading_header h = header(device, EPOCH, seq);

	h.time_ms = time_ms;
	memset(h.stream, 0x11, sizeof(h.stream));
	return h;
}

static void test_guard_fresh_and_replay(void **state)
{
	struct reading_guard *g = NULL;
	struct reading_header h;

	(void)state;
	assert_int_equal(reading_guard_new(0, &g), -EINVAL);
	assert_int_equal(reading_guard_new(-1, &g), -EINVAL);
	assert_int_equal(reading_guard_new(FRESH, &g), 0);
	h = guard_header("pi1", 1, NOW_MS);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_EREPLAY);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS + 1000), -IOTSEC_EREPLAY);
	h.seq = 0;
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_EREPLAY);
	/* Freshness: exactly fresh_ms either way passes, one more does not. */
	h = guard_header("pi1", 2, NOW_MS - FRESH);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	h = guard_header("pi1", 3, NOW_MS + FRESH);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	h = guard_header("pi1", 4, NOW_MS - FRESH - 1);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_ESTALE);
	h = guard_header("pi1", 4, NOW_MS + FRESH + 1);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_ESTALE);
	h = guard_header("pi1", 4, 0);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_ESTALE);
	h = guard_header("pi1", 4, INT64_MIN);
	assert_int_equal(reading_guard_check(g, &h, INT64_MAX), -IOTSEC_ESTALE);
	h = guard_header("pi1", 4, INT64_MAX);
	assert_int_equal(reading_guard_check(g, &h, INT64_MIN), -IOTSEC_ESTALE);
	/* A refused stale reading left seq 4 free. */
	h = guard_header("pi1", 4, NOW_MS);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	/* The same seq from another device, or on another stream of the same device: new. */
	h = guard_header("pi2", 4, NOW_MS);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	h = guard_header("pi1", 4, NOW_MS);
	h.stream[15] ^= 1;
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_EREPLAY);
	h = guard_header("-bad", 5, NOW_MS);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -EINVAL);
	reading_guard_free(g);
	reading_guard_free(NULL);
}

static void test_guard_window(void **state)
{
	struct reading_guard *g = NULL;
	struct reading_header h = guard_header("pi1", 2000, NOW_MS);

	(void)state;
	assert_int_equal(reading_guard_new(FRESH, &g), 0);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	/* Out of order within the window: each once. */
	for (uint64_t seq = 2000 - READING_WINDOW + 1; seq < 2000; seq += 97) {
		h.seq = seq;
		assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
		assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_EREPLAY);
	}
	h.seq = 2000 - READING_WINDOW + 1; /* the window's lowest, already taken above */
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_EREPLAY);
	h.seq = 2000 - READING_WINDOW + 2;
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	h.seq = 2000 - READING_WINDOW; /* below the window: can no longer be told from a replay */
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_EREPLAY);
	h.seq = 1;
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_EREPLAY);
	/* The window slides: seqs it passes over become free slots, not replays. */
	h.seq = 2000 + 10;
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	for (uint64_t seq = 2001; seq < 2010; seq++) {
		h.seq = seq;
		assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	}
	h.seq = 2000;
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_EREPLAY);
	/* Every slot of the window taken... */
	for (uint64_t seq = 2010 - READING_WINDOW + 1; seq <= 2010; seq++) {
		int r;

		h.seq = seq;
		r = reading_guard_check(g, &h, NOW_MS);
		assert_true(r == 0 || r == -IOTSEC_EREPLAY);
		assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_EREPLAY);
	}
	/* ...then a jump past the whole window: only the new top is known, every seq of the new
	 * window below it is free, and older ones are refused. */
	h.seq = 1000000;
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	for (uint64_t seq = 1000000 - READING_WINDOW + 1; seq < 1000000; seq++) {
		h.seq = seq;
		assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	}
	h.seq = 2010;
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_EREPLAY);
	h.seq = 1000000;
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_EREPLAY);
	h.seq = UINT64_MAX;
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_EREPLAY);
	reading_guard_free(g);
}

static void test_guard_capacity(void **state)
{
	struct reading_guard *g = NULL;
	struct reading_header h;
	char name[32];

	(void)state;
	assert_int_equal(reading_guard_new(FRESH, &g), 0);
	for (int i = 0; i < READING_SENDERS_MAX; i++) {
		snprintf(name, sizeof(name), "pi%d", i);
		h = guard_header(name, 1, NOW_MS);
		assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	}
	/* Full of senders all still fresh: fail closed. */
	h = guard_header("late", 1, NOW_MS);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS + FRESH), -ENOBUFS);
	h = guard_header("pi7", 1, NOW_MS); /* a known sender's state is still there */
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), -IOTSEC_EREPLAY);
	h = guard_header("pi7", 2, NOW_MS);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS), 0);
	/* Once every reading they sent is stale, they make room; their replays are stale. */
	h = guard_header("late", 1, NOW_MS + FRESH + 1);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS + FRESH + 1), 0);
	h = guard_header("pi8", 1, NOW_MS);
	assert_int_equal(reading_guard_check(g, &h, NOW_MS + FRESH + 1), -IOTSEC_ESTALE);
	reading_guard_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vector_opens),
	    cmocka_unit_test(test_layout_known),
	    cmocka_unit_test(test_seal_open),
	    cmocka_unit_test(test_largest),
	    cmocka_unit_test(test_fork_nonces),
	    cmocka_unit_test(test_current_and_previous),
	    cmocka_unit_test(test_advance_forgets),
	    cmocka_unit_test(test_newer_and_other_stream),
	    cmocka_unit_test(test_truncated_every_offset),
	    cmocka_unit_test(test_oversized),
	    cmocka_unit_test(test_every_flipped_byte),
	    cmocka_unit_test(test_bad_fields),
	    cmocka_unit_test(test_seal_refused),
	    cmocka_unit_test(test_value_round_trip),
	    cmocka_unit_test(test_value_build_refused),
	    cmocka_unit_test(test_value_parse_refused),
	    cmocka_unit_test(test_guard_fresh_and_replay),
	    cmocka_unit_test(test_guard_window),
	    cmocka_unit_test(test_guard_capacity),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
