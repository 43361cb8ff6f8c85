/* What the tests of the control socket and of its clients (ctl, ctl_client, ctl_peer,
 * certd_client, dictd_client) share: a scratch directory, bounded turns of an sd-event loop (lan
 * uses those too), and a peer played by the test itself over real Unix sockets, so that it can
 * send the bytes a real server never would. Every wait is bounded by WAIT_MS; every failure is a
 * cmocka assertion. */
#ifndef IOTSEC_TEST_CTL_PEER_H
#define IOTSEC_TEST_CTL_PEER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "ctl.h"

/* The longest any single step may take: 2 s, times TEST_TIME_SCALE (a whole number, 1 when
 * unset) for runs slow by design: under qemu-user the cross builds' RSA runs ten times slower. */
int wait_ms(void);
#define WAIT_MS wait_ms()

/* cmocka group set-up and tear-down: a fresh directory for the test's sockets; then kill the
 * peer children a failed test left, and remove the directory and what is in it. */
int scratch_setup(void **state);
int scratch_teardown(void **state);

/* DIR/name, in one of 4 rotating buffers. */
const char *in_dir(const char *name);
/* DIR itself (a run_dir for the clients of certd and dictd). */
const char *scratch_dir(void);
int64_t mono_ms(void);
void sleep_ms(int ms);

/* Turn e for ms milliseconds. */
void loop_for(sd_event *e, int ms);
/* Turn e until cond holds; the test fails if WAIT_MS pass first. */
#define loop_until(e, cond)                                                                        \
	do {                                                                                       \
		int64_t end_ = mono_ms() + WAIT_MS, now_;                                          \
		while (!(cond)) {                                                                  \
			now_ = mono_ms();                                                          \
			if (now_ >= end_)                                                          \
				fail_msg("%s: still false after %d ms", #cond, WAIT_MS);           \
			assert_true(sd_event_run((e), (uint64_t)(end_ - now_) * 1000) >= 0);       \
		}                                                                                  \
	} while (0)

/* A non-blocking listening socket at path, replacing whatever is there. */
int listen_at(const char *path, int backlog);
/* The next connection on lfd (non-blocking), accepted while e turns: the client connecting is
 * on the loop. */
int peer_accept(int lfd, sd_event *e);

/* A client and the peer's end of its connection (non-blocking). A Unix connect completes into
 * the backlog, so the blocking connect returns before the accept and no second thread is needed. */
struct ctl_client *pair(int *ret_peer);

void peer_send(int fd, const char *p, size_t len);

void peer_says(int fd, const char *s);

/* o (consumed) as one line. */
void peer_send_json(int fd, json_t *o);

/* Answer req as the server would: {"v":1,"ok":ok, ...fields (consumed, may be NULL)} with req's
 * "id" echoed if it had one. */
void peer_answer(int fd, const json_t *req, bool ok, json_t *fields);

/* One byte from the client: 1, 0 at end of stream, -1 on a reset. With e the loop is turned
 * while nothing has come, since the ctl_peer on it is the writer. */
int peer_byte(int fd, sd_event *e, char *ret);

/* The next line the client sent, as an object. */
json_t *peer_line(int fd, sd_event *e);

/* The client's next line is request number id for verb; returned for more checks. */
json_t *peer_request(int fd, const char *verb, json_int_t id);
/* The same, from a ctl_peer on e. */
json_t *peer_request_on(int fd, sd_event *e, const char *verb, json_int_t id);

void peer_heard(int fd, const char *verb, json_int_t id);

/* The client sent nothing (more), and is still there. */
void peer_heard_nothing(int fd);

/* The client hung up: after whatever it sent, the end of the stream (a reset counts). */
void peer_hung_up(int fd, sd_event *e);

/* A child that sends each piece gap_ms after the last, waits another gap, then shuts the peer's
 * sending side (shut) or just exits: what arrives while a call waits. It shares the peer's
 * socket, so once the parent has closed its fd the child's exit is the peer hanging up. */
pid_t peer_later(int fd, int gap_ms, const char *const *pieces, bool shut);

/* A child that sends len bytes of p whole, waiting while the socket is full: for lines longer
 * than a socket holds, which the other end reads only as they come. */
pid_t peer_send_later(int fd, const void *p, size_t len);

/* Reap a child of peer_later() or peer_send_later(), bounded; it must have sent everything. */
void peer_reap(pid_t pid);

#endif
