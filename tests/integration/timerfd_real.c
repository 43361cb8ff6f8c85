/* Preloaded before libfaketime by the sensord tests (sensord-common.sh, run_sensord_at): the
 * real timerfd_settime() and timerfd_gettime(). libfaketime (0.9.10) moves every absolute
 * timerfd time by its offset, CLOCK_MONOTONIC ones too even with FAKETIME_DONT_FAKE_MONOTONIC=1,
 * so sd-event's timers (absolute, monotonic) would fire decades late: a daemon whose wall clock
 * says 1970 would wait for its timers until some input woke it. Only the wall clock is faked. */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

int timerfd_settime(int fd, int flags, const struct itimerspec *value, struct itimerspec *old)
{
	return (int)syscall(SYS_timerfd_settime, fd, flags, value, old);
}

int timerfd_gettime(int fd, struct itimerspec *value)
{
	return (int)syscall(SYS_timerfd_gettime, fd, value);
}
