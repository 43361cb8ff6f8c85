/* pairwise: both ends derive one key, each direction has its own, and nothing forged, reflected,
 * replayed or truncated opens. The known answers were computed apart from this code (Python's
 * hmac and cryptography's AESGCM) from the formulas in pairwise.h. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "pairwise.h"

static uint8_t ring[2 * CRYPTO_KEY_LEN]; /* two shared keys: bytes 0..63 */
static uint8_t ca[PAIRWISE_CHALLENGE_LEN], cb[PAIRWISE_CHALLENGE_LEN];

static const uint8_t kat_key[CRYPTO_KEY_LEN] = {
    0x17, 0x08, 0xa0, 0xf4, 0x06, 0xcf, 0x70, 0x7e, 0x0e, 0x4c, 0x32, 0xb7, 0xaf, 0xdb, 0x7c, 0x8a,
    0xa3, 0x3b, 0xe8, 0x5e, 0x99, 0xb9, 0x1d, 0xcd, 0xbe, 0x85, 0xe5, 0x0c, 0x28, 0xca, 0xe2, 0x44,
};
/* "hello", seq 1, pi1 -> pi2, epoch 7, challenges a0.. and b0.. */
static const uint8_t kat_wire[] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xf8, 0xab, 0xb2, 0xb3, 0xf9, 0x27, 0x9a,
    0x0f, 0x90, 0x81, 0x83, 0xf8, 0xe5, 0xd7, 0x07, 0x9c, 0x8c, 0x69, 0x76, 0x0c, 0xc0,
};
/* pi1's answer to pi2's challenge */
static const uint8_t kat_mac[PAIRWISE_MAC_LEN] = {
    0x05, 0x65, 0xa3, 0x0e, 0x77, 0x6a, 0x4f, 0x67, 0xa3, 0x5b, 0x7c, 0x7d, 0xd6, 0xf0, 0xb9, 0x25,
    0x5d, 0x7d, 0xbd, 0xa9, 0xa9, 0xe8, 0xa3, 0x2c, 0xc4, 0xc0, 0x3c, 0x46, 0xc0, 0xae, 0x89, 0x1c,
};

/* pairwise_reading_key(kat_key, "pi1", "pi2") */
static const uint8_t kat_reading_key[CRYPTO_KEY_LEN] = {
    0xce, 0x6f, 0xd5, 0xd0, 0x94, 0x13, 0x67, 0x64, 0xa1, 0x37, 0xba, 0x59, 0xa0, 0x8b, 0xc5, 0xc0,
    0x87, 0xfb, 0x11, 0xd3, 0x8f, 0x8c, 0x96, 0xf5, 0xbe, 0x52, 0x1c, 0x47, 0xc9, 0x53, 0xd0, 0x9d,
};
static const uint8_t kat_reading_id[STREAM_ID_LEN] = {
    0x86, 0xe2, 0x2f, 0x0b, 0x48, 0xd6, 0xb0, 0x67, 0xc3, 0xe4, 0x66, 0xb0, 0x34, 0xad, 0xdf, 0x58,
};

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ring); i++)
		ring[i] = (uint8_t)i;
	for (size_t i = 0; i < PAIRWISE_CHALLENGE_LEN; i++)
		ca[i] = (uint8_t)(0xa0 + i), cb[i] = (uint8_t)(0xb0 + i);
	return 0;
}

/* pi1 and pi2 on one pairwise key, epoch 7. */
static void pair(const uint8_t key[CRYPTO_KEY_LEN], struct pairwise_session **a,
		 struct pairwise_session **b)
{
	assert_int_equal(pairwise_session_new(key, 7, "pi1", "pi2", ca, cb, a), 0);
	assert_int_equal(pairwise_session_new(key, 7, "pi2", "pi1", cb, ca, b), 0);
}

static void test_derive_known_answer_either_order(void **state)
{
	uint8_t k1[CRYPTO_KEY_LEN], k2[CRYPTO_KEY_LEN];

	(void)state;
	assert_int_equal(pairwise_derive(ring, 2, 7, "pi1", "pi2", k1), 0);
	assert_int_equal(pairwise_derive(ring, 2, 7, "pi2", "pi1", k2), 0);
	assert_memory_equal(k1, kat_key, sizeof(k1));
	assert_memory_equal(k2, kat_key, sizeof(k2));
}

static void test_derive_differs(void **state)
{
	uint8_t k[CRYPTO_KEY_LEN], other[sizeof(ring)];

	(void)state;
	assert_int_equal(pairwise_derive(ring, 2, 8, "pi1", "pi2", k), 0);
	assert_memory_not_equal(k, kat_key, sizeof(k));
	assert_int_equal(pairwise_derive(ring, 2, 7, "pi1", "pi3", k), 0);
	assert_memory_not_equal(k, kat_key, sizeof(k));
	/* "pi1" || 0 || "pi2" must not equal "pi1\0p" || "i2": names are not just concatenated */
	assert_int_equal(pairwise_derive(ring, 2, 7, "pi", "1pi2", k), 0);
	assert_memory_not_equal(k, kat_key, sizeof(k));
	assert_int_equal(pairwise_derive(ring, 1, 7, "pi1", "pi2", k), 0); /* fewer shared keys */
	assert_memory_not_equal(k, kat_key, sizeof(k));
	memcpy(other, ring + CRYPTO_KEY_LEN, CRYPTO_KEY_LEN); /* the same keys, swapped */
	memcpy(other + CRYPTO_KEY_LEN, ring, CRYPTO_KEY_LEN);
	assert_int_equal(pairwise_derive(other, 2, 7, "pi1", "pi2", k), 0);
	assert_memory_not_equal(k, kat_key, sizeof(k));
	memcpy(other, ring, sizeof(ring));
	other[40] ^= 1;
	assert_int_equal(pairwise_derive(other, 2, 7, "pi1", "pi2", k), 0);
	assert_memory_not_equal(k, kat_key, sizeof(k));
}

static void test_derive_refuses(void **state)
{
	static uint8_t many[(PAIRWISE_KEYS_MAX + 1) * CRYPTO_KEY_LEN];
	char longname[CERT_NAME_MAX + 1];
	uint8_t k[CRYPTO_KEY_LEN], untouched[CRYPTO_KEY_LEN];

	(void)state;
	memset(longname, 'x', CERT_NAME_MAX);
	longname[CERT_NAME_MAX] = 0;
	memset(k, 0x55, sizeof(k));
	memcpy(untouched, k, sizeof(k));
	assert_int_equal(pairwise_derive(ring, 0, 7, "pi1", "pi2", k), -EINVAL);
	assert_int_equal(pairwise_derive(many, PAIRWISE_KEYS_MAX + 1, 7, "pi1", "pi2", k), -EINVAL);
	assert_int_equal(pairwise_derive(ring, 2, 0, "pi1", "pi2", k), -EINVAL);
	assert_int_equal(pairwise_derive(ring, 2, 7, "pi1", "pi1", k), -EINVAL);
	assert_int_equal(pairwise_derive(ring, 2, 7, "", "pi2", k), -EINVAL);
	assert_int_equal(pairwise_derive(ring, 2, 7, "pi1", NULL, k), -EINVAL);
	assert_int_equal(pairwise_derive(ring, 2, 7, longname, "pi2", k), -EINVAL);
	longname[CERT_NAME_MAX - 1] = 0; /* 63 bytes: the longest name */
	assert_int_equal(pairwise_derive(many, PAIRWISE_KEYS_MAX, 7, longname, "pi2", k), 0);
	assert_memory_not_equal(k, untouched, sizeof(k));
}

static void test_known_answer_seal_and_confirm(void **state)
{
	struct pairwise_session *a = NULL, *b = NULL;
	uint8_t wire[5 + PAIRWISE_OVERHEAD], plain[sizeof(wire)], mac[PAIRWISE_MAC_LEN];
	size_t len = 0;

	(void)state;
	pair(kat_key, &a, &b);
	assert_int_equal(pairwise_seal(a, "hello", 5, wire), 0);
	assert_memory_equal(wire, kat_wire, sizeof(kat_wire));
	assert_int_equal(pairwise_open(b, wire, sizeof(wire), plain, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(plain, "hello", 5);
	assert_int_equal(pairwise_confirm(a, cb, mac), 0);
	assert_memory_equal(mac, kat_mac, sizeof(mac));
	pairwise_session_free(a);
	pairwise_session_free(b);
}

static void test_both_directions_and_reflection(void **state)
{
	struct pairwise_session *a = NULL, *b = NULL;
	uint8_t wire[64 + PAIRWISE_OVERHEAD], plain[sizeof(wire)], msg[64];
	size_t len = 0;

	(void)state;
	memset(msg, 'm', sizeof(msg));
	pair(kat_key, &a, &b);
	/* Sent back to its sender, it is refused: each direction has its own key (and A has
	 * opened nothing yet, so this is not the replay window speaking). */
	assert_int_equal(pairwise_seal(a, msg, sizeof(msg), wire), 0);
	assert_int_equal(pairwise_open(a, wire, sizeof(wire), plain, &len), -EBADMSG);
	assert_int_equal(pairwise_open(b, wire, sizeof(wire), plain, &len), 0);
	/* B's seq 2 is past what B has accepted from A, so only the key can refuse it. */
	assert_int_equal(pairwise_seal(b, msg, sizeof(msg), wire), 0);
	assert_int_equal(pairwise_seal(b, msg, sizeof(msg), wire), 0);
	assert_int_equal(pairwise_open(b, wire, sizeof(wire), plain, &len), -EBADMSG);
	assert_int_equal(pairwise_open(a, wire, sizeof(wire), plain, &len), 0);
	assert_int_equal(len, sizeof(msg));
	assert_memory_equal(plain, msg, sizeof(msg));
	/* An empty message still carries its seq and tag. */
	assert_int_equal(pairwise_seal(a, "", 0, wire), 0);
	assert_int_equal(pairwise_open(b, wire, PAIRWISE_OVERHEAD, plain, &len), 0);
	assert_int_equal(len, 0);
	pairwise_session_free(a);
	pairwise_session_free(b);
}

static void test_flipped_or_truncated_refused(void **state)
{
	struct pairwise_session *a = NULL, *b = NULL;
	uint8_t wire[20 + PAIRWISE_OVERHEAD + 1], plain[sizeof(wire)];
	size_t n = sizeof(wire) - 1, len = 0;

	(void)state;
	pair(kat_key, &a, &b);
	assert_int_equal(pairwise_seal(a, "twenty bytes of text", 20, wire), 0);
	for (size_t i = 0; i < n; i++)
		for (int bit = 0; bit < 8; bit++) {
			wire[i] ^= (uint8_t)(1 << bit);
			assert_int_equal(pairwise_open(b, wire, n, plain, &len), -EBADMSG);
			wire[i] ^= (uint8_t)(1 << bit);
		}
	for (size_t cut = 0; cut < n; cut++)
		assert_int_equal(pairwise_open(b, wire, cut, plain, &len), -EBADMSG);
	wire[n] = 0;
	assert_int_equal(pairwise_open(b, wire, n + 1, plain, &len), -EBADMSG);
	/* None of the refusals moved the window. */
	assert_int_equal(pairwise_open(b, wire, n, plain, &len), 0);
	assert_memory_equal(plain, "twenty bytes of text", 20);
	pairwise_session_free(a);
	pairwise_session_free(b);
}

static void test_replay_and_window(void **state)
{
	enum { N = 140 };
	struct pairwise_session *a = NULL, *b = NULL;
	uint8_t wire[N + 1][1 + PAIRWISE_OVERHEAD], plain[sizeof(wire[0])];
	size_t len = 0, n = sizeof(wire[0]);

	(void)state;
	pair(kat_key, &a, &b);
	for (int i = 1; i <= N; i++)
		assert_int_equal(pairwise_seal(a, &(uint8_t){(uint8_t)i}, 1, wire[i]), 0);
	assert_int_equal(pairwise_open(b, wire[1], n, plain, &len), 0);
	assert_int_equal(pairwise_open(b, wire[1], n, plain, &len), -IOTSEC_EREPLAY);
	assert_int_equal(pairwise_open(b, wire[70], n, plain, &len), 0);
	assert_int_equal(plain[0], 70);
	/* 70 - 7 = 63 is the oldest the window still covers; 70 - 6 is past it. */
	assert_int_equal(pairwise_open(b, wire[7], n, plain, &len), 0);
	assert_int_equal(pairwise_open(b, wire[6], n, plain, &len), -IOTSEC_EREPLAY);
	assert_int_equal(pairwise_open(b, wire[69], n, plain, &len), 0);
	assert_int_equal(pairwise_open(b, wire[68], n, plain, &len), 0);
	assert_int_equal(pairwise_open(b, wire[69], n, plain, &len), -IOTSEC_EREPLAY);
	assert_int_equal(pairwise_open(b, wire[7], n, plain, &len), -IOTSEC_EREPLAY);
	assert_int_equal(pairwise_open(b, wire[70], n, plain, &len), -IOTSEC_EREPLAY);
	/* A jump past the whole window forgets every bit but its own. */
	assert_int_equal(pairwise_open(b, wire[N], n, plain, &len), 0);
	assert_int_equal(pairwise_open(b, wire[N - 63], n, plain, &len), 0);
	assert_int_equal(pairwise_open(b, wire[N - 64], n, plain, &len), -IOTSEC_EREPLAY);
	assert_int_equal(pairwise_open(b, wire[71], n, plain, &len), -IOTSEC_EREPLAY);
	pairwise_session_free(b);
	/* A jump of exactly the window's width. */
	assert_int_equal(pairwise_session_new(kat_key, 7, "pi2", "pi1", cb, ca, &b), 0);
	assert_int_equal(pairwise_open(b, wire[1], n, plain, &len), 0);
	assert_int_equal(pairwise_open(b, wire[1 + PAIRWISE_WINDOW], n, plain, &len), 0);
	assert_int_equal(pairwise_open(b, wire[1], n, plain, &len), -IOTSEC_EREPLAY);
	assert_int_equal(pairwise_open(b, wire[2], n, plain, &len), 0);
	assert_int_equal(pairwise_open(b, wire[2], n, plain, &len), -IOTSEC_EREPLAY);
	/* seq 0 is never sent. */
	memset(wire[0], 0, n);
	assert_int_equal(pairwise_open(b, wire[0], n, plain, &len), -EBADMSG);
	pairwise_session_free(a);
	pairwise_session_free(b);
}

static void test_other_sessions_cannot_open(void **state)
{
	struct pairwise_session *a = NULL, *b = NULL, *x = NULL;
	uint8_t wire[4 + PAIRWISE_OVERHEAD], plain[sizeof(wire)], k[CRYPTO_KEY_LEN];
	uint8_t cz[PAIRWISE_CHALLENGE_LEN] = {0};
	size_t len = 0;

	(void)state;
	pair(kat_key, &a, &b);
	assert_int_equal(pairwise_seal(a, "data", 4, wire), 0);
	memcpy(k, kat_key, sizeof(k));
	k[0] ^= 1;
	assert_int_equal(pairwise_session_new(k, 7, "pi2", "pi1", cb, ca, &x), 0);
	assert_int_equal(pairwise_open(x, wire, sizeof(wire), plain, &len), -EBADMSG);
	pairwise_session_free(x);
	assert_int_equal(pairwise_session_new(kat_key, 8, "pi2", "pi1", cb, ca, &x), 0);
	assert_int_equal(pairwise_open(x, wire, sizeof(wire), plain, &len), -EBADMSG);
	pairwise_session_free(x);
	assert_int_equal(pairwise_session_new(kat_key, 7, "pi3", "pi1", cb, ca, &x), 0);
	assert_int_equal(pairwise_open(x, wire, sizeof(wire), plain, &len), -EBADMSG);
	pairwise_session_free(x);
	/* A new session (a restart) on the same key: other challenges, other keys. */
	assert_int_equal(pairwise_session_new(kat_key, 7, "pi2", "pi1", cz, ca, &x), 0);
	assert_int_equal(pairwise_open(x, wire, sizeof(wire), plain, &len), -EBADMSG);
	pairwise_session_free(x);
	/* Swapped challenges are another session too. */
	assert_int_equal(pairwise_session_new(kat_key, 7, "pi2", "pi1", ca, cb, &x), 0);
	assert_int_equal(pairwise_open(x, wire, sizeof(wire), plain, &len), -EBADMSG);
	pairwise_session_free(x);
	assert_int_equal(pairwise_open(b, wire, sizeof(wire), plain, &len), 0);
	pairwise_session_free(a);
	pairwise_session_free(b);
}

static void test_confirm(void **state)
{
	struct pairwise_session *a = NULL, *b = NULL, *x = NULL;
	uint8_t mac_a[PAIRWISE_MAC_LEN], mac_b[PAIRWISE_MAC_LEN], k[CRYPTO_KEY_LEN];

	(void)state;
	pair(kat_key, &a, &b);
	/* Each answers the other's challenge; each checks the answer to its own. */
	assert_int_equal(pairwise_confirm(a, cb, mac_a), 0);
	assert_int_equal(pairwise_confirm(b, ca, mac_b), 0);
	assert_int_equal(pairwise_check_confirm(b, cb, mac_a), 0);
	assert_int_equal(pairwise_check_confirm(a, ca, mac_b), 0);
	/* Wrong challenge, a reflected answer, a flipped byte. */
	assert_int_equal(pairwise_check_confirm(b, ca, mac_a), -EKEYREJECTED);
	assert_int_equal(pairwise_check_confirm(a, cb, mac_a), -EKEYREJECTED);
	mac_b[31] ^= 0x80;
	assert_int_equal(pairwise_check_confirm(a, ca, mac_b), -EKEYREJECTED);
	/* A node without the pairwise key cannot answer. */
	memcpy(k, kat_key, sizeof(k));
	k[31] ^= 1;
	assert_int_equal(pairwise_session_new(k, 7, "pi2", "pi1", cb, ca, &x), 0);
	assert_int_equal(pairwise_confirm(x, ca, mac_b), 0);
	assert_int_equal(pairwise_check_confirm(a, ca, mac_b), -EKEYREJECTED);
	assert_int_equal(pairwise_check_confirm(x, cb, mac_a), -EKEYREJECTED);
	pairwise_session_free(x);
	pairwise_session_free(a);
	pairwise_session_free(b);
}

static void test_session_refuses(void **state)
{
	static uint8_t big[PAIRWISE_PLAINTEXT_MAX + 1 + PAIRWISE_OVERHEAD], out[sizeof(big)];
	struct pairwise_session *s = (struct pairwise_session *)&s;
	uint8_t plain[8];
	size_t len = 5;

	(void)state;
	assert_int_equal(pairwise_session_new(kat_key, 0, "pi1", "pi2", ca, cb, &s), -EINVAL);
	assert_int_equal(pairwise_session_new(kat_key, 7, "pi1", "pi1", ca, cb, &s), -EINVAL);
	assert_int_equal(pairwise_session_new(kat_key, 7, "", "pi1", ca, cb, &s), -EINVAL);
	assert_int_equal(pairwise_session_new(kat_key, 7, "pi1", NULL, ca, cb, &s), -EINVAL);
	assert_ptr_equal(s, (struct pairwise_session *)&s);
	assert_int_equal(pairwise_session_new(kat_key, 7, "pi1", "pi2", ca, cb, &s), 0);
	assert_int_equal(pairwise_seal(s, big, PAIRWISE_PLAINTEXT_MAX + 1, out), -EMSGSIZE);
	assert_int_equal(pairwise_open(s, big, sizeof(big), out, &len), -EMSGSIZE);
	assert_int_equal(pairwise_open(s, plain, 0, plain, &len), -EBADMSG);
	assert_int_equal(len, 5);
	assert_int_equal(pairwise_seal(s, big, PAIRWISE_PLAINTEXT_MAX, out), 0);
	pairwise_session_free(s);
	pairwise_session_free(NULL);
}

/* Both ends, each from its own derivation of K, get the same key for one direction; the other
 * direction, another epoch's K or another name gives another key and id. */
static void test_reading_key(void **state)
{
	uint8_t ka[CRYPTO_KEY_LEN], kb[CRYPTO_KEY_LEN], k[CRYPTO_KEY_LEN], k8[CRYPTO_KEY_LEN];
	uint8_t ia[STREAM_ID_LEN], ib[STREAM_ID_LEN], i[STREAM_ID_LEN];

	(void)state;
	assert_int_equal(pairwise_derive(ring, 2, 7, "pi1", "pi2", ka), 0);
	assert_int_equal(pairwise_derive(ring, 2, 7, "pi2", "pi1", kb), 0);
	assert_int_equal(pairwise_reading_key(ka, "pi1", "pi2", k, i), 0);
	assert_memory_equal(k, kat_reading_key, sizeof(k));
	assert_memory_equal(i, kat_reading_id, sizeof(i));
	/* the receiver's side of the same direction */
	assert_int_equal(pairwise_reading_key(kb, "pi1", "pi2", ka, ia), 0);
	assert_memory_equal(ka, kat_reading_key, sizeof(ka));
	assert_memory_equal(ia, kat_reading_id, sizeof(ia));
	/* the other direction */
	assert_int_equal(pairwise_reading_key(kb, "pi2", "pi1", k, ib), 0);
	assert_memory_not_equal(k, kat_reading_key, sizeof(k));
	assert_memory_not_equal(ib, kat_reading_id, sizeof(ib));
	/* another epoch's pairwise key */
	assert_int_equal(pairwise_derive(ring, 2, 8, "pi1", "pi2", k8), 0);
	assert_int_equal(pairwise_reading_key(k8, "pi1", "pi2", k, ib), 0);
	assert_memory_not_equal(k, kat_reading_key, sizeof(k));
	assert_memory_not_equal(ib, kat_reading_id, sizeof(ib));
	/* another receiver, or names that only run together the same way */
	assert_int_equal(pairwise_reading_key(kb, "pi1", "pi3", k, ib), 0);
	assert_memory_not_equal(k, kat_reading_key, sizeof(k));
	assert_int_equal(pairwise_reading_key(kb, "pi1p", "i2", k, ib), 0);
	assert_memory_not_equal(k, kat_reading_key, sizeof(k));
	assert_memory_not_equal(ib, kat_reading_id, sizeof(ib));
}

static void test_reading_key_refuses(void **state)
{
	char longname[CERT_NAME_MAX + 1];
	uint8_t k[CRYPTO_KEY_LEN], i[STREAM_ID_LEN];

	(void)state;
	memset(longname, 'a', CERT_NAME_MAX);
	longname[CERT_NAME_MAX] = '\0';
	memset(k, 0x55, sizeof(k));
	memset(i, 0x55, sizeof(i));
	assert_int_equal(pairwise_reading_key(kat_key, "pi1", "pi1", k, i), -EINVAL);
	assert_int_equal(pairwise_reading_key(kat_key, "", "pi2", k, i), -EINVAL);
	assert_int_equal(pairwise_reading_key(kat_key, "pi1", "", k, i), -EINVAL);
	assert_int_equal(pairwise_reading_key(kat_key, NULL, "pi2", k, i), -EINVAL);
	assert_int_equal(pairwise_reading_key(kat_key, "pi1", NULL, k, i), -EINVAL);
	assert_int_equal(pairwise_reading_key(kat_key, longname, "pi2", k, i), -EINVAL);
	assert_int_equal(pairwise_reading_key(kat_key, "pi1", longname, k, i), -EINVAL);
	/* outputs untouched on failure */
	for (size_t j = 0; j < sizeof(k); j++)
		assert_int_equal(k[j], 0x55);
	for (size_t j = 0; j < sizeof(i); j++)
		assert_int_equal(i[j], 0x55);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_derive_known_answer_either_order),
	    cmocka_unit_test(test_reading_key),
	    cmocka_unit_test(test_reading_key_refuses),
	    cmocka_unit_test(test_derive_differs),
	    cmocka_unit_test(test_derive_refuses),
	    cmocka_unit_test(test_known_answer_seal_and_confirm),
	    cmocka_unit_test(test_both_directions_and_reflection),
	    cmocka_unit_test(test_flipped_or_truncated_refused),
	    cmocka_unit_test(test_replay_and_window),
	    cmocka_unit_test(test_other_sessions_cannot_open),
	    cmocka_unit_test(test_confirm),
	    cmocka_unit_test(test_session_refuses),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
