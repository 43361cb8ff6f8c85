/* The one source of "now" for every validity and freshness decision.
 *
 * A Pi has no real-time clock and may boot in 1970. clock_now() therefore never returns less
 * than a floor: the newest of the build time, certificate start times the caller reports
 * (clock_raise_floor()) and the last time saved on disk (clock_load()). Tests replace the wall
 * clock with clock_set_fake(). */
#ifndef IOTSEC_CLOCK_H
#define IOTSEC_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* Seconds since the epoch: max(wall clock or fake time, floor). */
int64_t clock_now(void);
int64_t clock_floor(void);
/* The same in microseconds (a fake time has whole seconds). */
int64_t clock_now_us(void);
/* CLOCK_MONOTONIC in ms, for timeouts; CLOCK_REALTIME in unix ms as it reads (no floor, no
 * fake time), for what is stamped with the time a thing happened here. */
uint64_t clock_mono_ms(void);
int64_t clock_wall_ms(void);
/* The wall clock (or fake time) reads earlier than the build time: a Pi that booted without a
 * real-time clock and has no network time yet. Only then may a certificate's start, vouched for
 * by the home CA, raise the floor; a running clock is trusted to say "not yet valid". */
bool clock_unset(void);
/* Raise the floor to t if t is newer; it never goes down. */
void clock_raise_floor(int64_t t);
/* Replace the wall clock (t >= 0), or restore it (t < 0). For tests. */
void clock_set_fake(int64_t t);
/* Forget every raised floor, back to the build time. For tests. */
void clock_reset_floor(void);
/* Raise the floor from a file holding a decimal time; a missing file is not an error, an
 * unreadable or malformed one is (-EBADMSG). */
int clock_load(const char *path);
/* Save clock_now() to path atomically so the next boot starts from it. */
int clock_save(const char *path);

#endif
