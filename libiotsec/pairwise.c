#include "pairwise.h"

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "log.h"

#define DERIVE_SALT	"iotsec pairwise v1"
#define DERIVE_SALT_LEN (sizeof(DERIVE_SALT) - 1)
#define SID_LEN		(2 * PAIRWISE_CHALLENGE_LEN)
/* sender || 0x00 || receiver || be32(epoch) || be64(seq) */
#define AAD_MAX	  (2 * CERT_NAME_MAX + 4 + PAIRWISE_SEQ_LEN)
#define LABEL_MAX (sizeof("iotsec confirm ") + 2 * CERT_NAME_MAX)

#define READING_SALT	 "iotsec pair reading v1"
#define READING_ID_LABEL "iotsec pair id v1"

struct pairwise_session {
	struct crypto_aead *send, *recv;
	uint8_t confirm_self[CRYPTO_KEY_LEN], confirm_peer[CRYPTO_KEY_LEN];
	/* AAD up to the epoch; seq is appended per message */
	uint8_t aad_send[AAD_MAX], aad_recv[AAD_MAX];
	size_t aad_len;
	uint64_t sent;	   /* last seq sealed; 0 before the first */
	uint64_t recv_max; /* highest seq opened; 0 before the first */
	uint64_t window;   /* bit i set: seq recv_max - i was opened */
};

static bool name_ok(const char *name)
{
	return name != NULL && name[0] != '\0' && strnlen(name, CERT_NAME_MAX) < CERT_NAME_MAX;
}

static bool names_ok(const char *a, const char *b)
{
	return name_ok(a) && name_ok(b) && strcmp(a, b) != 0;
}

int pairwise_derive(const uint8_t *keys, size_t n, uint32_t epoch, const char *name_a,
		    const char *name_b, uint8_t ret_key[CRYPTO_KEY_LEN])
{
	uint8_t salt[DERIVE_SALT_LEN + 4], info[2 * CERT_NAME_MAX], out[CRYPTO_KEY_LEN];
	const char *lo = name_a, *hi = name_b;
	uint32_t be = htobe32(epoch);
	size_t lolen, hilen;
	int r;

	if (n == 0 || n > PAIRWISE_KEYS_MAX || epoch == 0 || !names_ok(name_a, name_b))
		return -EINVAL;
	/* Sorting the names is what makes both ends agree. */
	if (strcmp(lo, hi) > 0)
		lo = name_b, hi = name_a;
	lolen = strlen(lo), hilen = strlen(hi);
	memcpy(salt, DERIVE_SALT, DERIVE_SALT_LEN);
	memcpy(salt + DERIVE_SALT_LEN, &be, 4);
	memcpy(info, lo, lolen);
	info[lolen] = 0;
	memcpy(info + lolen + 1, hi, hilen);
	r = crypto_hkdf_sha256(salt, sizeof(salt), keys, n * CRYPTO_KEY_LEN, info,
			       lolen + 1 + hilen, out, sizeof(out));
	if (r == 0)
		memcpy(ret_key, out, sizeof(out));
	crypto_wipe(out, sizeof(out));
	return r;
}

/* One direction's key: label from ">" to. */
static int derive_dir(const uint8_t key[CRYPTO_KEY_LEN], const uint8_t sid[SID_LEN],
		      const char *label, const char *from, const char *to,
		      uint8_t out[CRYPTO_KEY_LEN])
{
	char info[LABEL_MAX];
	int len = snprintf(info, sizeof(info), "%s%s>%s", label, from, to);

	if (len < 0 || (size_t)len >= sizeof(info))
		return -EINVAL;
	return crypto_hkdf_sha256(sid, SID_LEN, key, CRYPTO_KEY_LEN, info, (size_t)len, out,
				  CRYPTO_KEY_LEN);
}

static size_t aad_prefix(const char *from, const char *to, uint32_t epoch, uint8_t *out)
{
	size_t flen = strlen(from) + 1, tlen = strlen(to);
	uint32_t be = htobe32(epoch);

	memcpy(out, from, flen); /* with its NUL: the separator */
	memcpy(out + flen, to, tlen);
	memcpy(out + flen + tlen, &be, 4);
	return flen + tlen + 4;
}

int pairwise_session_new(const uint8_t key[CRYPTO_KEY_LEN], uint32_t epoch, const char *self,
			 const char *peer, const uint8_t self_challenge[PAIRWISE_CHALLENGE_LEN],
			 const uint8_t peer_challenge[PAIRWISE_CHALLENGE_LEN],
			 struct pairwise_session **ret)
{
	struct pairwise_session *s = NULL;
	uint8_t sid[SID_LEN], k_send[CRYPTO_KEY_LEN], k_recv[CRYPTO_KEY_LEN];
	bool self_first;
	int r = -EINVAL;

	if (epoch == 0 || !names_ok(self, peer))
		goto out;
	/* Both ends build the same sid without agreeing on who started. */
	self_first = strcmp(self, peer) < 0;
	memcpy(sid, self_first ? self_challenge : peer_challenge, PAIRWISE_CHALLENGE_LEN);
	memcpy(sid + PAIRWISE_CHALLENGE_LEN, self_first ? peer_challenge : self_challenge,
	       PAIRWISE_CHALLENGE_LEN);
	r = -ENOMEM;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto out;
	if ((r = derive_dir(key, sid, "iotsec send ", self, peer, k_send)) < 0 ||
	    (r = derive_dir(key, sid, "iotsec send ", peer, self, k_recv)) < 0 ||
	    (r = derive_dir(key, sid, "iotsec confirm ", self, peer, s->confirm_self)) < 0 ||
	    (r = derive_dir(key, sid, "iotsec confirm ", peer, self, s->confirm_peer)) < 0 ||
	    (r = crypto_aead_new(k_send, &s->send)) < 0 ||
	    (r = crypto_aead_new(k_recv, &s->recv)) < 0)
		goto out;
	s->aad_len = aad_prefix(self, peer, epoch, s->aad_send);
	aad_prefix(peer, self, epoch, s->aad_recv);
	*ret = s;
	s = NULL;
out:
	crypto_wipe(k_send, sizeof(k_send));
	crypto_wipe(k_recv, sizeof(k_recv));
	crypto_wipe(sid, sizeof(sid));
	pairwise_session_free(s);
	return r;
}

void pairwise_session_free(struct pairwise_session *s)
{
	if (s == NULL)
		return;
	crypto_aead_free(s->send);
	crypto_aead_free(s->recv);
	crypto_wipe(s, sizeof(*s));
	free(s);
}

/* The nonce and the full AAD of seq. */
static size_t per_message(const uint8_t *prefix, size_t len, uint64_t seq,
			  uint8_t nonce[CRYPTO_NONCE_LEN], uint8_t aad[AAD_MAX])
{
	uint64_t be = htobe64(seq);

	memset(nonce, 0, CRYPTO_NONCE_LEN - PAIRWISE_SEQ_LEN);
	memcpy(nonce + CRYPTO_NONCE_LEN - PAIRWISE_SEQ_LEN, &be, PAIRWISE_SEQ_LEN);
	memcpy(aad, prefix, len);
	memcpy(aad + len, &be, PAIRWISE_SEQ_LEN);
	return len + PAIRWISE_SEQ_LEN;
}

int pairwise_seal(struct pairwise_session *s, const void *pt, size_t ptlen, uint8_t *out)
{
	uint8_t nonce[CRYPTO_NONCE_LEN], aad[AAD_MAX];
	size_t aadlen;

	if (ptlen > PAIRWISE_PLAINTEXT_MAX)
		return -EMSGSIZE;
	if (s->sent == UINT64_MAX)
		return -EOVERFLOW;
	/* Taken before sealing: a failed seal never leaves its nonce for reuse. */
	s->sent++;
	aadlen = per_message(s->aad_send, s->aad_len, s->sent, nonce, aad);
	memcpy(out, aad + s->aad_len, PAIRWISE_SEQ_LEN);
	return crypto_aead_seal(s->send, nonce, aad, aadlen, pt, ptlen, out + PAIRWISE_SEQ_LEN);
}

static bool window_fresh(const struct pairwise_session *s, uint64_t seq)
{
	if (seq > s->recv_max)
		return true;
	if (s->recv_max - seq >= PAIRWISE_WINDOW)
		return false;
	return !(s->window & (UINT64_C(1) << (s->recv_max - seq)));
}

static void window_mark(struct pairwise_session *s, uint64_t seq)
{
	if (seq > s->recv_max) {
		uint64_t shift = seq - s->recv_max;

		s->window = shift >= PAIRWISE_WINDOW ? 0 : s->window << shift;
		s->window |= 1;
		s->recv_max = seq;
	} else {
		s->window |= UINT64_C(1) << (s->recv_max - seq);
	}
}

int pairwise_open(struct pairwise_session *s, const uint8_t *in, size_t inlen, uint8_t *out,
		  size_t *ret_len)
{
	uint8_t nonce[CRYPTO_NONCE_LEN], aad[AAD_MAX];
	uint64_t be, seq;
	size_t aadlen;
	int r;

	if (inlen < PAIRWISE_OVERHEAD)
		return -EBADMSG;
	if (inlen - PAIRWISE_OVERHEAD > PAIRWISE_PLAINTEXT_MAX)
		return -EMSGSIZE;
	memcpy(&be, in, PAIRWISE_SEQ_LEN);
	seq = be64toh(be);
	if (seq == 0)
		return -EBADMSG;
	if (!window_fresh(s, seq))
		return -IOTSEC_EREPLAY;
	aadlen = per_message(s->aad_recv, s->aad_len, seq, nonce, aad);
	if ((r = crypto_aead_open(s->recv, nonce, aad, aadlen, in + PAIRWISE_SEQ_LEN,
				  inlen - PAIRWISE_SEQ_LEN, out)) < 0)
		return r;
	window_mark(s, seq);
	*ret_len = inlen - PAIRWISE_OVERHEAD;
	return 0;
}

int pairwise_confirm(const struct pairwise_session *s,
		     const uint8_t challenge[PAIRWISE_CHALLENGE_LEN],
		     uint8_t ret_mac[PAIRWISE_MAC_LEN])
{
	return crypto_hmac_sha256(s->confirm_self, CRYPTO_KEY_LEN, challenge,
				  PAIRWISE_CHALLENGE_LEN, ret_mac);
}

int pairwise_check_confirm(const struct pairwise_session *s,
			   const uint8_t challenge[PAIRWISE_CHALLENGE_LEN],
			   const uint8_t mac[PAIRWISE_MAC_LEN])
{
	uint8_t want[PAIRWISE_MAC_LEN];
	int r;

	if ((r = crypto_hmac_sha256(s->confirm_peer, CRYPTO_KEY_LEN, challenge,
				    PAIRWISE_CHALLENGE_LEN, want)) < 0)
		return r;
	r = crypto_memcmp(want, mac, sizeof(want)) == 0 ? 0 : -EKEYREJECTED;
	crypto_wipe(want, sizeof(want));
	return r;
}

int pairwise_reading_key(const uint8_t key[CRYPTO_KEY_LEN], const char *sender,
			 const char *receiver, uint8_t ret_key[CRYPTO_KEY_LEN],
			 uint8_t ret_id[STREAM_ID_LEN])
{
	uint8_t buf[sizeof(READING_ID_LABEL) - 1 + 2 * CERT_NAME_MAX];
	uint8_t out[CRYPTO_KEY_LEN], mac[CRYPTO_SHA256_LEN];
	const size_t label = sizeof(READING_ID_LABEL) - 1;
	size_t slen, rlen;
	int r = -EINVAL;

	if (!names_ok(sender, receiver))
		goto out;
	slen = strlen(sender), rlen = strlen(receiver);
	/* info = sender || 0x00 || receiver, after the id's label in the same buffer */
	memcpy(buf, READING_ID_LABEL, label);
	memcpy(buf + label, sender, slen);
	buf[label + slen] = 0;
	memcpy(buf + label + slen + 1, receiver, rlen);
	if ((r = crypto_hkdf_sha256(READING_SALT, sizeof(READING_SALT) - 1, key, CRYPTO_KEY_LEN,
				    buf + label, slen + 1 + rlen, out, sizeof(out))) < 0 ||
	    (r = crypto_hmac_sha256(key, CRYPTO_KEY_LEN, buf, label + slen + 1 + rlen, mac)) < 0)
		goto out;
	memcpy(ret_key, out, CRYPTO_KEY_LEN);
	memcpy(ret_id, mac, STREAM_ID_LEN);
out:
	crypto_wipe(out, sizeof(out));
	crypto_wipe(mac, sizeof(mac));
	return r;
}
