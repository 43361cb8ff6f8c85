/* The doctor's tool's own pieces (tools/iotsec-doctor), without the relay: the envelopes it signs
 * (a RELAY_LOGIN, a grant, an acknowledgement) opened back by a recipient's real envelope_open();
 * the doctor's wrapped copy of a root, which opens with the doctor's key alone and strictly; the
 * seen set, which refuses a reading shown before, survives a restart through its file, and
 * refuses a file that is not one; opening readings with the kept roots; the relay's name. doc1
 * is the doctor, pi1 stands for the relay and the kit (fixture.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca.h"
#include "doctor.h"
#include "encoding.h"
#include "file.h"
#include "fixture.h"
#include "iotsec-doctor.h"
#include "log.h"
#include "receipt.h"

static struct fixture fx;
static struct doctor_dir doc;
static EVP_PKEY *pi1_key;
static char tmp[64];

static int setup(void **state)
{
	(void)state;
	if (fixture_home(&fx) < 0)
		return -1;
	doc.dir = fx.dir;
	doc.cert = fixture_cert(&fx, "doc1");
	doc.key = fixture_key(&fx, "doc1");
	pi1_key = fixture_key(&fx, "pi1");
	snprintf(tmp, sizeof(tmp), "/tmp/iotsec-test-doctor-tool-XXXXXX");
	if (mkdtemp(tmp) == NULL || cert_info_get(doc.cert, &doc.self) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	X509_free(doc.cert);
	EVP_PKEY_free(doc.key);
	EVP_PKEY_free(pi1_key);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	fixture_remove(&fx);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *at(const char *rel)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	return path;
}

/* A recipient named name (pi1 or pi2) opening what the doctor sealed, with rules like the
 * relay's and the kit's. */
static int open_as(const char *name, const struct envelope_rule *rules, const char *text,
		   size_t len, struct envelope_msg *m)
{
	struct cert_store *store = NULL;
	struct envelope_ctx *ctx = NULL;
	X509 *x = fixture_cert(&fx, name);
	EVP_PKEY *k = fixture_key(&fx, name);
	int r;

	assert_int_equal(cert_store_load(fx.ca_crt, fx.crl, &store), 0);
	assert_int_equal(envelope_ctx_new(store, x, k, rules, 60, &ctx), 0);
	r = envelope_open(ctx, text, len, m, NULL);
	envelope_ctx_free(ctx);
	cert_store_free(store);
	X509_free(x);
	EVP_PKEY_free(k);
	return r;
}

static const struct envelope_rule relay_rules[] = {
    {RELAY_MSG_LOGIN, CERT_ROLE_DOCTOR, true, false},
    {NULL, 0, false, false},
};
static const struct envelope_rule node_only[] = {
    {RELAY_MSG_LOGIN, CERT_ROLE_NODE, true, false},
    {NULL, 0, false, false},
};

static void test_login_envelope(void **state)
{
	const char *nonce = "0123456789abcdef0123456789abcdef";
	struct envelope_msg m = {0};
	char *text = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(doctor_seal(&doc, RELAY_MSG_LOGIN, "pi1", nonce, NULL, &text, &len), 0);
	assert_int_equal(open_as("pi1", relay_rules, text, len, &m), 0);
	assert_string_equal(m.type, RELAY_MSG_LOGIN);
	assert_string_equal(m.id, nonce);
	assert_string_equal(m.sender.name, "doc1");
	assert_int_equal(m.sender.role, CERT_ROLE_DOCTOR);
	assert_true(json_is_object(m.body) && json_object_size(m.body) == 0);
	envelope_msg_clear(&m);
	/* Not for another relay; not from a doctor where a node is wanted; not altered. */
	assert_int_equal(open_as("pi2", relay_rules, text, len, &m), -IOTSEC_ENOTFORUS);
	assert_int_equal(open_as("pi1", node_only, text, len, &m), -IOTSEC_EROLE);
	text[len / 2] = text[len / 2] == 'A' ? 'B' : 'A';
	assert_true(open_as("pi1", relay_rules, text, len, &m) < 0);
	assert_true(open_as("pi1", relay_rules, text, len - 10, &m) < 0);
	free(text);
	/* A login is unicast: it needs the relay's name and the nonce. */
	text = NULL;
	assert_int_equal(doctor_seal(&doc, RELAY_MSG_LOGIN, NULL, nonce, NULL, &text, &len),
			 -EINVAL);
	assert_null(text);
}

static void test_grant_ack_envelopes(void **state)
{
	static const struct envelope_rule kit_rules[] = {
	    {DOCTOR_MSG_GRANT, CERT_ROLE_DOCTOR, true, true},
	    {DOCTOR_MSG_ACK, CERT_ROLE_DOCTOR, true, true},
	    {NULL, 0, false, false},
	};
	struct doctor_grant g = {.kit = "pi1", .start = 5, .issued_ms = 1767225600000}, back;
	struct envelope_msg m = {0};
	char kit[CERT_NAME_MAX], *text = NULL;
	X509 *pi1;
	uint64_t seq;
	json_t *body = NULL;
	size_t len;

	(void)state;
	memset(g.root, 0x42, sizeof(g.root));
	pi1 = fixture_cert(&fx, "pi1");
	assert_int_equal(doctor_grant_build(&g, X509_get0_pubkey(pi1), &body), 0);
	X509_free(pi1);
	assert_int_equal(doctor_seal(&doc, DOCTOR_MSG_GRANT, "pi1", NULL, body, &text, &len), 0);
	json_decref(body);
	assert_int_equal(open_as("pi1", kit_rules, text, len, &m), 0);
	assert_string_equal(m.type, DOCTOR_MSG_GRANT);
	assert_true(strlen(m.id) > 0);
	assert_int_equal(doctor_grant_parse(m.body, pi1_key, &back), 0);
	assert_memory_equal(back.root, g.root, sizeof(g.root));
	envelope_msg_clear(&m);
	/* Signed once, taken any time (a retained grant), but by its kit only. */
	assert_int_equal(open_as("pi1", kit_rules, text, len, &m), 0);
	envelope_msg_clear(&m);
	assert_int_equal(open_as("pi2", kit_rules, text, len, &m), -IOTSEC_ENOTFORUS);
	free(text);

	assert_int_equal(doctor_ack_build("pi1", 42, &body), 0);
	assert_int_equal(doctor_seal(&doc, DOCTOR_MSG_ACK, "pi1", NULL, body, &text, &len), 0);
	json_decref(body);
	assert_int_equal(open_as("pi1", kit_rules, text, len, &m), 0);
	assert_int_equal(doctor_ack_parse(m.body, kit, &seq), 0);
	assert_string_equal(kit, "pi1");
	assert_int_equal(seq, 42);
	envelope_msg_clear(&m);
	/* A login is not a kit's message. */
	assert_int_equal(open_as("pi1", relay_rules, text, len, &m), -IOTSEC_ETYPE);
	free(text);
}

static void test_wrapped(void **state)
{
	struct doctor_root rt = {.kit = "kit-1", .start = 9}, back = {0};
	EVP_PKEY_CTX *wctx;
	uint8_t *blob;
	size_t blob_len;
	char *b64 = NULL, *bad;

	(void)state;
	memset(rt.root, 0x17, sizeof(rt.root));
	assert_int_equal(stream_id(rt.root, rt.id), 0);
	assert_int_equal(doctor_wrapped_build(X509_get0_pubkey(doc.cert), &rt, &b64), 0);
	assert_int_equal(doctor_wrapped_open(doc.key, b64, &back), 0);
	assert_string_equal(back.kit, "kit-1");
	assert_int_equal(back.start, 9);
	assert_memory_equal(back.root, rt.root, sizeof(rt.root));
	assert_memory_equal(back.id, rt.id, sizeof(rt.id));
	/* Another key, a damaged blob, not base64, nothing. */
	memset(&back, 0, sizeof(back));
	assert_int_equal(doctor_wrapped_open(pi1_key, b64, &back), -EBADMSG);
	bad = strdup(b64);
	bad[10] = bad[10] == 'A' ? 'B' : 'A';
	assert_int_equal(doctor_wrapped_open(doc.key, bad, &back), -EBADMSG);
	bad[strlen(bad) / 2] = '\0';
	assert_int_equal(doctor_wrapped_open(doc.key, bad, &back), -EBADMSG);
	free(bad);
	assert_int_equal(doctor_wrapped_open(doc.key, "not base64!", &back), -EBADMSG);
	assert_int_equal(doctor_wrapped_open(doc.key, "", &back), -EBADMSG);
	assert_int_equal(doctor_wrapped_open(doc.key, NULL, &back), -EBADMSG);
	free(b64);
	/* Decrypts, but is not exactly {"kit","start","root"}. */
	static const char *wrong[] = {
	    "{\"kit\":\"k\",\"start\":1}",
	    "{\"kit\":\"k\",\"start\":1,\"root\":\"" /* 31 bytes */
	    "FxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFw==\"}",
	    "{\"kit\":\"k\",\"start\":0,\"root\":\"FxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxc=\"}",
	    "{\"kit\":\"k\",\"start\":1.5,\"root\":\"FxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxc="
	    "\"}",
	    "{\"kit\":\"../"
	    "k\",\"start\":1,\"root\":\"FxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxc=\"}",
	    "{\"kit\":\"k\",\"start\":1,\"root\":\"FxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxc=\","
	    "\"x\":1}",
	    "{\"kit\":\"k\",\"kit\":\"k\",\"start\":1,\"root\":"
	    "\"FxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXF"
	    "xcXFxc=\"}",
	    "[\"k\",1]",
	    "{\"kit\":\"k\",\"start\":1,\"root\":\"FxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxc=\"} "
	    "x",
	};
	wctx = crypto_rsa_wrap_ctx(X509_get0_pubkey(doc.cert));
	assert_non_null(wctx);
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		assert_int_equal(
		    crypto_rsa_wrap(wctx, wrong[i], strlen(wrong[i]), &blob, &blob_len), 0);
		b64 = b64_encode(blob, blob_len);
		free(blob);
		print_message("%s\n", wrong[i]);
		assert_int_equal(doctor_wrapped_open(doc.key, b64, &back), -EBADMSG);
		free(b64);
	}
	/* The good form, wrapped by hand, opens: the cases above fail for their fault alone. */
	{
		const char *good = "{\"kit\":\"k\",\"start\":1,\"root\":"
				   "\"FxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxc=\"}";

		assert_int_equal(crypto_rsa_wrap(wctx, good, strlen(good), &blob, &blob_len), 0);
		b64 = b64_encode(blob, blob_len);
		free(blob);
		assert_int_equal(doctor_wrapped_open(doc.key, b64, &back), 0);
		assert_memory_equal(back.root, rt.root, sizeof(rt.root));
		free(b64);
	}
	EVP_PKEY_CTX_free(wctx);
}

static const uint8_t S1[STREAM_ID_LEN] = {1}, S2[STREAM_ID_LEN] = {2};

static void test_seen(void **state)
{
	struct doctor_seen *s = NULL, *back = NULL;
	const char *path = at("seen.json");
	char *text = NULL;
	size_t len;
	struct stat st;

	(void)state;
	/* No file yet: an empty set. */
	assert_int_equal(doctor_seen_load(path, &s), 0);
	assert_false(doctor_seen_has(s, S1, 1));
	for (uint64_t q = 1; q <= 100; q++)
		assert_int_equal(doctor_seen_add(s, S1, q), 0);
	assert_int_equal(doctor_seen_add(s, S1, 200), 0);
	assert_int_equal(doctor_seen_add(s, S1, 150), 0);
	assert_int_equal(doctor_seen_add(s, S2, 7), 0);
	/* Each seen once: again is a replay, in any stream, the same seq elsewhere is not. */
	assert_int_equal(doctor_seen_add(s, S1, 1), -IOTSEC_EREPLAY);
	assert_int_equal(doctor_seen_add(s, S1, 100), -IOTSEC_EREPLAY);
	assert_int_equal(doctor_seen_add(s, S1, 150), -IOTSEC_EREPLAY);
	assert_int_equal(doctor_seen_add(s, S2, 7), -IOTSEC_EREPLAY);
	assert_false(doctor_seen_has(s, S2, 1));
	assert_false(doctor_seen_has(s, S1, 101));
	assert_int_equal(doctor_seen_add(s, S1, 0), -EINVAL);
	assert_int_equal(doctor_seen_add(s, S1, (uint64_t)INT64_MAX + 1), -EINVAL);
	/* 149 and 151 join 150 to its neighbours' ranges as they come. */
	assert_int_equal(doctor_seen_add(s, S1, 149), 0);
	assert_int_equal(doctor_seen_add(s, S1, 151), 0);
	assert_int_equal(doctor_seen_save(s, path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(file_read(path, 4096, &text, &len), 0);
	assert_string_equal(text,
			    "{\"streams\":{\"01000000000000000000000000000000\":[[1,100],[149,"
			    "151],[200,200]],\"02000000000000000000000000000000\":[[7,7]]},"
			    "\"v\":1}");
	free(text);
	/* Across a restart: the same set. */
	assert_int_equal(doctor_seen_load(path, &back), 0);
	for (uint64_t q = 1; q <= 300; q++)
		assert_int_equal(doctor_seen_has(back, S1, q), doctor_seen_has(s, S1, q));
	assert_int_equal(doctor_seen_add(back, S1, 50), -IOTSEC_EREPLAY);
	assert_int_equal(doctor_seen_add(back, S2, 7), -IOTSEC_EREPLAY);
	assert_int_equal(doctor_seen_add(back, S2, 8), 0);
	doctor_seen_free(back);
	doctor_seen_free(s);
	/* Others may not read it (nor write it: they could erase what was seen). */
	chmod(path, 0644);
	assert_int_equal(doctor_seen_load(path, &s), -IOTSEC_ESECRET);
}

static void test_seen_bad_files(void **state)
{
	static const char *bad[] = {
	    "",
	    "not json",
	    "[]",
	    "{}",
	    "{\"v\":1}",
	    "{\"v\":2,\"streams\":{}}",
	    "{\"v\":\"1\",\"streams\":{}}",
	    "{\"v\":1,\"streams\":[]}",
	    "{\"v\":1,\"streams\":{},\"more\":1}",
	    "{\"v\":1,\"v\":1,\"streams\":{}}",
	    "{\"v\":1,\"streams\":{\"0100\":[[1,2]]}}",
	    "{\"v\":1,\"streams\":{\"0100000000000000000000000000000G\":[[1,2]]}}",
	    "{\"v\":1,\"streams\":{\"0A000000000000000000000000000000\":[[1,2]]}}",
	    "{\"v\":1,\"streams\":{\"01000000000000000000000000000000\":[]}}",
	    "{\"v\":1,\"streams\":{\"01000000000000000000000000000000\":[[0,2]]}}",
	    "{\"v\":1,\"streams\":{\"01000000000000000000000000000000\":[[3,2]]}}",
	    "{\"v\":1,\"streams\":{\"01000000000000000000000000000000\":[[-1,2]]}}",
	    "{\"v\":1,\"streams\":{\"01000000000000000000000000000000\":[[1,2.0]]}}",
	    "{\"v\":1,\"streams\":{\"01000000000000000000000000000000\":[[1,2,3]]}}",
	    "{\"v\":1,\"streams\":{\"01000000000000000000000000000000\":[[1]]}}",
	    "{\"v\":1,\"streams\":{\"01000000000000000000000000000000\":[[5,9],[1,2]]}}",
	    "{\"v\":1,\"streams\":{\"01000000000000000000000000000000\":[[1,5],[5,9]]}}",
	    "{\"v\":1,\"streams\":{\"01000000000000000000000000000000\":[[1,5],[6,9]]}}",
	    "{\"v\":1,\"streams\":{\"01000000000000000000000000000000\":[[1,2]],"
	    "\"01000000000000000000000000000000\":[[4,5]]}}",
	    "{\"v\":1,\"streams\":{\"01000000000000000000000000000000\":\"1-2\"}}",
	};
	const char *path = at("bad-seen.json");
	struct doctor_seen *s = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("%s\n", bad[i]);
		assert_int_equal(file_write_atomic(path, bad[i], strlen(bad[i]), 0600), 0);
		assert_int_equal(doctor_seen_load(path, &s), -EBADMSG);
		assert_null(s);
	}
	/* The one good form among them. */
	{
		const char *good =
		    "{\"v\":1,\"streams\":{\"01000000000000000000000000000000\":[[1,5],"
		    "[7,9]]}}";

		assert_int_equal(file_write_atomic(path, good, strlen(good), 0600), 0);
		assert_int_equal(doctor_seen_load(path, &s), 0);
		assert_true(doctor_seen_has(s, S1, 5) && !doctor_seen_has(s, S1, 6));
		doctor_seen_free(s);
	}
}

/* Past DOCTOR_SEEN_RANGES_MAX ranges the closest two merge: the gap between them is refused
 * from then on (a reading lost), never a replay accepted. */
static void test_seen_ranges_max(void **state)
{
	struct doctor_seen *s = NULL;

	(void)state;
	assert_int_equal(doctor_seen_load(at("none.json"), &s), 0);
	/* Two ranges 3 apart, then ranges 10 apart until one too many: the narrowest gap goes. */
	assert_int_equal(doctor_seen_add(s, S1, 1000000), 0);
	assert_int_equal(doctor_seen_add(s, S1, 1000003), 0);
	for (uint64_t i = 0; i < DOCTOR_SEEN_RANGES_MAX - 1; i++)
		assert_int_equal(doctor_seen_add(s, S1, 10 * i + 10), 0);
	assert_true(doctor_seen_has(s, S1, 1000001));
	assert_true(doctor_seen_has(s, S1, 1000002));
	assert_false(doctor_seen_has(s, S1, 15));
	assert_int_equal(doctor_seen_add(s, S1, 1000002), -IOTSEC_EREPLAY);
	assert_int_equal(doctor_seen_add(s, S1, 10), -IOTSEC_EREPLAY);
	assert_int_equal(doctor_seen_save(s, at("many.json")), 0);
	doctor_seen_free(s);
	s = NULL;
	assert_int_equal(doctor_seen_load(at("many.json"), &s), 0);
	assert_true(doctor_seen_has(s, S1, 1000002));
	doctor_seen_free(s);
}

/* Readings sealed as the kit seals them, opened with the roots kept. */
static void test_open(void **state)
{
	struct doctor_roots roots = {0};
	struct doctor_root rt = {.kit = "pi1", .start = 3, .issued_ms = 1};
	struct reading_header h = {.kind = READING_DOCTOR,
				   .device = "pi1",
				   .epoch = 5,
				   .seq = 9,
				   .time_ms = 1767225600000},
			      oh;
	struct reading_value v = {.sensor = "pulse", .value = 72, .unit = "/min"}, ov;
	struct root_slot *slot = NULL;
	struct stream *s = NULL;
	uint8_t key[CRYPTO_KEY_LEN], buf[READING_MAX];
	char pt[READING_PLAIN_MAX], dir[128];
	const char *why = NULL;
	size_t ptlen, len;

	(void)state;
	memset(rt.root, 0x33, sizeof(rt.root));
	assert_int_equal(stream_id(rt.root, rt.id), 0);
	snprintf(dir, sizeof(dir), "%s/doc", tmp);
	assert_int_equal(file_mkdirs(dir, 0700), 0);
	assert_int_equal(file_mkdirs(at("doc/roots"), 0700), 0);
	assert_int_equal(doctor_roots_load("test", dir, &roots), 0);
	assert_int_equal(roots.n, 0);
	assert_int_equal(doctor_roots_keep(&roots, dir, &rt), 0);
	assert_int_equal(access(at("doc/roots/pi1.json"), F_OK), 0);
	/* A second root of the same kit goes beside the first. */
	{
		struct doctor_root rt2 = rt;

		memset(rt2.root, 0x44, sizeof(rt2.root));
		assert_int_equal(stream_id(rt2.root, rt2.id), 0);
		assert_int_equal(doctor_roots_keep(&roots, dir, &rt2), 0);
		assert_int_equal(roots.n, 2);
	}
	doctor_roots_free(&roots);
	assert_int_equal(doctor_roots_load("test", dir, &roots), 0);
	assert_int_equal(roots.n, 2);

	assert_int_equal(stream_key_at(rt.root, rt.start, 5, key), 0);
	assert_int_equal(stream_from_key(rt.id, 5, key, NULL, &s), 0);
	assert_int_equal(reading_value_build(&v, pt, sizeof(pt), &ptlen), 0);
	assert_int_equal(reading_seal(s, &h, pt, ptlen, buf, sizeof(buf), &len), 0);
	assert_int_equal(doctor_open(&roots, buf, len, &slot, &oh, &ov, &why), 0);
	assert_string_equal(slot->rt.kit, "pi1");
	assert_int_equal(oh.seq, 9);
	assert_true(ov.value == 72);
	/* Damaged, truncated, in another device's name. */
	buf[len - 1] ^= 1;
	assert_int_equal(doctor_open(&roots, buf, len, &slot, &oh, &ov, &why), -EBADMSG);
	assert_non_null(why);
	assert_int_equal(doctor_open(&roots, buf, 20, &slot, &oh, &ov, &why), -EBADMSG);
	snprintf(h.device, sizeof(h.device), "pi2");
	assert_int_equal(reading_seal(s, &h, pt, ptlen, buf, sizeof(buf), &len), 0);
	assert_int_equal(doctor_open(&roots, buf, len, &slot, &oh, &ov, &why), -IOTSEC_EIDENTITY);
	stream_free(s);
	/* A stream no root here names. */
	memset(key, 0x55, sizeof(key));
	assert_int_equal(stream_from_key((const uint8_t *)"0123456789abcdef", 5, key, NULL, &s), 0);
	assert_int_equal(reading_seal(s, &h, pt, ptlen, buf, sizeof(buf), &len), 0);
	assert_int_equal(doctor_open(&roots, buf, len, &slot, &oh, &ov, &why), -ENOKEY);
	stream_free(s);
	doctor_roots_free(&roots);
}

/* A free TCP port on the loopback (the kernel's choice; another may take it before the server
 * does, which a test run would show plainly). */
static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* openssl s_server -WWW with name's certificate and key (from dir): a real TLS server that
 * answers GET /api/challenge from the file www/api/challenge. */
static pid_t server_start(const char *dir, const char *name, int *ret_port)
{
	char crt[256], key[256], accept[64], www[256];
	int port = free_port();
	pid_t pid;

	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(accept, sizeof(accept), "127.0.0.1:%d", port);
	snprintf(www, sizeof(www), "%s", at("www"));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null < 0 || chdir(www) < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
		    dup2(null, 2) < 0)
			_exit(127);
		execlp("openssl", "openssl", "s_server", "-accept", accept, "-cert", crt, "-key",
		       key, "-WWW", "-quiet", (char *)NULL);
		_exit(127);
	}
	/* Ready when it accepts. */
	for (int i = 0; i < 100; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons((uint16_t)port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			break;
		usleep(50 * 1000);
	}
	*ret_port = port;
	return pid;
}

static void server_stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* GET /api/challenge from a server showing shown's certificate (of dir), the doctor expecting
 * the relay named want: 0 and the answer, or the refusal. */
static int challenge(const char *dir, const char *shown, const char *want, json_t **ret)
{
	struct doctor_dir d = doc;
	struct relay *r = NULL;
	char url[64];
	int port, rc;
	pid_t pid = server_start(dir, shown, &port);

	d.dir = at("home"); /* its ca.crt: the home's CA */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", port);
	assert_int_equal(relay_open("test", &d, url, want, &r), 0);
	rc = relay_call(r, "GET", "/api/challenge", NULL, ret);
	relay_free(r);
	server_stop(pid);
	return rc;
}

static void enrol(const char *ca_dir, const char *out, const char *name, enum cert_role role)
{
	struct ca_enrol_req req = {.device = name,
				   .role = role,
				   .not_before = time(NULL) - 60,
				   .not_after = time(NULL) + 86400,
				   .out_dir = out};

	assert_int_equal(file_mkdirs(out, 0700), 0);
	assert_int_equal(ca_enrol(ca_dir, &req), 0);
}

/* The relay is pinned in the handshake: the home's CA, the name the doctor gave, the relay
 * role. Anything else is refused before a request leaves. */
static void test_relay_tls(void **state)
{
	const char *answer =
	    "{\"relay\":\"relay5\",\"nonce\":\"0123456789abcdef0123456789abcdef\"}";
	char home[256], other[256];
	struct doctor_dir d = doc;
	struct relay *r = NULL;
	json_t *o = NULL;

	(void)state;
	snprintf(home, sizeof(home), "%s", at("home"));
	snprintf(other, sizeof(other), "%s", at("other"));
	enrol(fx.ca_dir, home, "relay5", CERT_ROLE_RELAY);
	enrol(fx.ca_dir, home, "relay6", CERT_ROLE_RELAY);
	enrol(fx.ca_dir, home, "node7", CERT_ROLE_NODE);
	enrol(fx.other_ca_dir, other, "relay5", CERT_ROLE_RELAY);
	assert_int_equal(file_mkdirs(at("www/api"), 0755), 0);
	assert_int_equal(file_write_atomic(at("www/api/challenge"), answer, strlen(answer), 0644),
			 0);

	/* The relay named relay5, of the home: its answer comes. */
	assert_int_equal(challenge(home, "relay5", "relay5", &o), 0);
	assert_string_equal(json_string_value(json_object_get(o, "relay")), "relay5");
	json_decref(o);
	o = NULL;
	/* Another relay of the home than the one named; a node of the home; a relay5 of another
	 * home: the handshake fails, nothing comes. */
	assert_int_equal(challenge(home, "relay6", "relay5", &o), -EIO);
	assert_int_equal(challenge(home, "node7", "node7", &o), -EIO);
	assert_int_equal(challenge(other, "relay5", "relay5", &o), -EIO);
	assert_null(o);
	/* Nothing but https. */
	d.dir = home;
	assert_int_equal(relay_open("test", &d, "http://127.0.0.1:1/", "relay5", &r), -1);
	assert_int_equal(relay_open("test", &d, "https://", "relay5", &r), -1);
	assert_int_equal(relay_open("test", &d, "https://a b/", "relay5", &r), -1);
	assert_null(r);
}

static void test_relay_name(void **state)
{
	struct iotsec_config cfg = {0};
	char name[CERT_NAME_MAX] = "";

	(void)state;
	cfg.sensord.relay = "relay1 relay2";
	assert_int_equal(relay_name_of("test", NULL, &cfg, name), 0);
	assert_string_equal(name, "relay1");
	assert_int_equal(relay_name_of("test", "relay2", &cfg, name), 0);
	assert_string_equal(name, "relay2");
	assert_int_equal(relay_name_of("test", "../x", &cfg, name), -1);
	assert_int_equal(relay_name_of("test", "", &cfg, name), -1);
	cfg.sensord.relay = "  ";
	assert_int_equal(relay_name_of("test", NULL, &cfg, name), -1);
	cfg.sensord.relay = NULL;
	assert_int_equal(relay_name_of("test", NULL, &cfg, name), -1);
	cfg.sensord.relay = "-bad";
	assert_int_equal(relay_name_of("test", NULL, &cfg, name), -1);
	assert_string_equal(name, "relay2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_login_envelope), cmocka_unit_test(test_grant_ack_envelopes),
	    cmocka_unit_test(test_wrapped),	   cmocka_unit_test(test_seen),
	    cmocka_unit_test(test_seen_bad_files), cmocka_unit_test(test_seen_ranges_max),
	    cmocka_unit_test(test_open),	   cmocka_unit_test(test_relay_name),
	    cmocka_unit_test(test_relay_tls),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
