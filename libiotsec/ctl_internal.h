/* What ctl.c (the server), ctl_client.c (the blocking client) and ctl_peer.c share: line
 * buffers, line encoding and socket addresses. Not part of the library's interface. */
#ifndef IOTSEC_CTL_INTERNAL_H
#define IOTSEC_CTL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <jansson.h>

#define CTL_QUEUE_SOFT	   (64 * 1024) /* unsent bytes before we stop reading requests */
#define CTL_EVENTS_MAX	   32	       /* names in one subscription */
#define CTL_EVENT_NAME_MAX 64
#define CTL_TIMER_ACCURACY 1000 /* usec; sd-event's default of 250 ms is too coarse */

/* Received bytes: buf[start..len) are unconsumed, and buf[start..scan) hold no newline (so a
 * peer that trickles a long line byte by byte costs linear time, not quadratic). */
struct ctl_in {
	char *buf; /* CTL_LINE_MAX bytes: the longest line is CTL_LINE_MAX - 1 plus '\n' */
	size_t start, scan, len;
	size_t high; /* the most of buf ever written: what there is to wipe */
};

/* Bytes waiting to be sent: buf[start..len). */
struct ctl_out {
	char *buf;
	size_t start, len, cap;
};

int ctl_in_init(struct ctl_in *in);
/* Wipe what was ever read into the buffer, and free it. */
void ctl_in_free(struct ctl_in *in);
/* Read what fits: > 0 bytes, 0 at end of stream, or a negative errno (-EAGAIN included). */
int ctl_in_read(struct ctl_in *in, int fd);
/* The next complete line, without its newline; valid until the next ctl_in_read(). */
bool ctl_in_line(struct ctl_in *in, const char **ret, size_t *ret_len);
/* After ctl_in_line() said no: the buffer is full of a line that has no end. */
bool ctl_in_overflow(const struct ctl_in *in);

size_t ctl_out_pending(const struct ctl_out *o);
int ctl_out_add(struct ctl_out *o, const char *p, size_t n);
/* Send without blocking: 0 when all went or the socket is full, else a negative errno. */
int ctl_out_flush(struct ctl_out *o, int fd);

/* Wipe then free: the lines through the control socket carry dictd's keys. p may be NULL. */
void ctl_wipe_free(void *p, size_t len);
/* o as one compact line ending in '\n'; -EMSGSIZE when the peer could not take it whole. */
int ctl_line_dump(const json_t *o, char **ret, size_t *ret_len);
/* {"events":[...]} from a NULL-terminated list, checked as the server will check it: -EINVAL
 * for an empty or over-long list or a bad name. */
int ctl_events_args(const char *const *events, json_t **ret);
/* A line the server pushed on its own: {"event":...} without "ok". */
bool ctl_is_event(const json_t *o);
int ctl_sockaddr_make(const char *path, struct sockaddr_un *sa, socklen_t *ret_len);

#endif
