/* The devices keyd has heard announce themselves. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keyd.h"
#include "log.h"

struct keyd_peer *keyd_peer_find(struct keyd *k, const char *name)
{
	for (size_t i = 0; i < k->n_peers; i++)
		if (strcmp(k->peers[i]->name, name) == 0)
			return k->peers[i];
	return NULL;
}

struct keyd_peer *keyd_peer_update(struct keyd *k, const struct envelope_msg *m,
				   const struct sockaddr_in *from, int *ret_err)
{
	struct keyd_peer *p = keyd_peer_find(k, m->sender.name);
	struct ring_indices *x = NULL;

	/* An announcement with a ring says its epoch and indices; an empty one says "no ring
	 * yet". */
	if (json_object_size(m->body) != 0) {
		if ((x = malloc(sizeof(*x))) == NULL ||
		    ring_start_parse(m->body, RING_POOL_MAX, RING_SIZE_MAX, x) < 0) {
			*ret_err = x ? -EBADMSG : -ENOMEM;
			free(x);
			return NULL;
		}
	}
	if (p == NULL) {
		if (k->n_peers == KEYD_PEERS_MAX || (p = calloc(1, sizeof(*p))) == NULL) {
			*ret_err = -ENOBUFS;
			free(x);
			return NULL;
		}
		memcpy(p->name, m->sender.name, sizeof(p->name));
		k->peers[k->n_peers++] = p;
	}
	p->addr = *from;
	X509_up_ref(m->cert);
	X509_free(p->cert);
	p->cert = m->cert;
	p->role = m->sender.role;
	p->epoch = x ? x->epoch : 0;
	p->n_index = x ? x->n : 0;
	if (x)
		memcpy(p->index, x->index, x->n * sizeof(x->index[0]));
	free(x);
	return p;
}

void keyd_peers_prune(struct keyd *k)
{
	size_t kept = 0;

	/* A CRL that cannot be read keeps the last good one: pruning goes on with it. */
	lan_member_refresh(k->member);
	for (size_t i = 0; i < k->n_peers; i++) {
		struct keyd_peer *p = k->peers[i];
		int r = cert_verify(k->member->store, p->cert, CERT_ROLES_ANY, NULL);

		if (r == 0) {
			k->peers[kept++] = p;
			continue;
		}
		log_warnx("forgot %s: %s", p->name, iotsec_strerror(r));
		X509_free(p->cert);
		free(p);
	}
	k->n_peers = kept;
}

void keyd_peers_free(struct keyd *k)
{
	for (size_t i = 0; i < k->n_peers; i++) {
		X509_free(k->peers[i]->cert);
		free(k->peers[i]);
	}
	k->n_peers = 0;
}
