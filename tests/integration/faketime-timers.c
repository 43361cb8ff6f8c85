/* Preloaded ahead of libfaketime for a daemon whose wall clock is faked (sensord-common.sh's
 * run_sensord_at): libfaketime's timerfd_settime() moves every absolute deadline by the faked
 * offset, CLOCK_MONOTONIC's too, even with FAKETIME_DONT_FAKE_MONOTONIC, so sd-event's timers
 * (all monotonic) would never fire. The deadlines go to the kernel as they are. */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

int timerfd_settime(int fd, int flags, const struct itimerspec *new_value,
		    struct itimerspec *old_value)
{
	return (int)syscall(SYS_timerfd_settime, fd, flags, new_value, old_value);
}
