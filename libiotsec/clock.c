#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "file.h"

#ifndef IOTSEC_BUILD_TIME
#define IOTSEC_BUILD_TIME 0
#endif

static int64_t clock_floor_value = IOTSEC_BUILD_TIME;
static int64_t clock_fake = -1;

static int64_t clock_wall(void)
{
	return clock_fake >= 0 ? clock_fake : (int64_t)time(NULL);
}

int64_t clock_now(void)
{
	int64_t now = clock_wall();

	return now > clock_floor_value ? now : clock_floor_value;
}

uint64_t clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_now_us(void)
{
	struct timespec ts;
	int64_t us, floor_us = clock_floor_value * 1000000;

	if (clock_fake >= 0) {
		us = clock_fake * 1000000;
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	}
	return us > floor_us ? us : floor_us;
}

bool clock_unset(void)
{
	return clock_wall() < IOTSEC_BUILD_TIME;
}

int64_t clock_floor(void)
{
	return clock_floor_value;
}

void clock_raise_floor(int64_t t)
{
	if (t > clock_floor_value)
		clock_floor_value = t;
}

void clock_set_fake(int64_t t)
{
	clock_fake = t;
}

void clock_reset_floor(void)
{
	clock_floor_value = IOTSEC_BUILD_TIME;
}

int clock_load(const char *path)
{
	char *text = NULL, *end;
	size_t len;
	long long t;
	int r;

	r = file_read(path, 64, &text, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	errno = 0;
	t = strtoll(text, &end, 10);
	while (*end == '\n')
		end++;
	if (errno != 0 || end == text || *end != '\0' || t < 0) {
		r = -EBADMSG;
		goto out;
	}
	clock_raise_floor(t);
	r = 0;
out:
	free(text);
	return r;
}

int clock_save(const char *path)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%lld\n", (long long)clock_now());

	return file_write_atomic(path, buf, (size_t)n, 0644);
}
