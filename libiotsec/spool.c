/* The kit's spool (spool.h): an append-only log of sealed readings and the id of the first one
 * not yet delivered.
 *
 * The log starts with a 16-byte header, "ISPOOL01" and the id of its first record (u64
 * big-endian): a compacted log no longer starts at record 1, and the header travels with the
 * records it numbers, so the log and `head` can never disagree about which record is which (the
 * rename that installs a compacted log is one step; a head written in the same step could not
 * be). Records follow: u32 length | u32 check | payload, big-endian.
 *
 * In memory: one entry (offset, length, delivered) per record from the head to the last one, at
 * most max of them; payloads stay on disk. Acknowledgements only touch memory. Disk work happens
 * at a sync point (an append when sync_ms have passed since the last one, spool_flush(),
 * spool_close()): fdatasync of the log, the compaction when due, and `head` when it moved. A
 * crash can thus lose the last sync_ms of appends and acknowledgements: lost appends are
 * readings never published, lost acknowledgements are readings published twice, which the
 * readers' replay windows drop. */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "file.h"
#include "log.h"

#define SPOOL_MAGIC    "ISPOOL01"
#define SPOOL_HDR      16 /* magic, first id */
#define SPOOL_REC_HDR  8  /* length, check */
#define SPOOL_HEAD_MAX 64 /* "HEAD DROPPED\n" */
/* Rewriting a small log to save a few bytes costs more fsyncs than it saves. */
#define SPOOL_COMPACT_MIN (64 * 1024)
#define SPOOL_COPY_BUF	  (16 * 1024)

struct spool_rec {
	uint64_t off;
	uint32_t len;
	bool acked;
};

struct spool {
	int fd;
	char *log_path, *tmp_path, *head_path;
	size_t max;
	unsigned sync_ms;
	uint64_t base;	  /* id of the log's first record */
	uint64_t head;	  /* first record not delivered; == next when none waits */
	uint64_t next;	  /* id the next append gets */
	uint64_t dropped; /* ever, persisted in `head` */
	uint64_t size;	  /* end of the last good record */
	/* Entries for ids head .. next-1 are recs[r0 .. r0+n-1]. */
	struct spool_rec *recs;
	size_t cap, r0, n;
	size_t pending;
	bool unsynced, head_dirty, synced_once;
	uint64_t synced_at;
	uint8_t buf[SPOOL_REC_HDR + SPOOL_RECORD_MAX];
};

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static int check_of(const void *data, size_t len, uint8_t out[4])
{
	uint8_t digest[CRYPTO_SHA256_LEN];
	int r = crypto_sha256(data, len, digest);

	if (r == 0)
		memcpy(out, digest, 4);
	return r;
}

static struct spool_rec *rec_at(struct spool *sp, uint64_t id)
{
	return &sp->recs[sp->r0 + (size_t)(id - sp->head)];
}

static uint64_t dead_bytes(const struct spool *sp)
{
	return (sp->n > 0 ? sp->recs[sp->r0].off : sp->size) - SPOOL_HDR;
}

/* Room for one more entry; the array never holds more than max + 1. */
static int recs_reserve(struct spool *sp)
{
	struct spool_rec *p;
	size_t cap;

	if (sp->r0 + sp->n < sp->cap)
		return 0;
	if (sp->r0 > 0) {
		memmove(sp->recs, sp->recs + sp->r0, sp->n * sizeof(*sp->recs));
		sp->r0 = 0;
		return 0;
	}
	cap = sp->cap < 64 ? 64 : sp->cap * 2;
	if (cap > sp->max + 1)
		cap = sp->max + 1;
	if ((p = realloc(sp->recs, cap * sizeof(*p))) == NULL)
		return -ENOMEM;
	sp->recs = p;
	sp->cap = cap;
	return 0;
}

/* The head moves past every delivered record at the front. */
static void head_advance(struct spool *sp)
{
	while (sp->n > 0 && sp->recs[sp->r0].acked) {
		sp->r0++;
		sp->n--;
		sp->head++;
		sp->head_dirty = true;
	}
	if (sp->n == 0)
		sp->r0 = 0;
}

/* Full: the oldest record still waiting (the head, by the invariant) makes room. */
static void drop_oldest(struct spool *sp)
{
	sp->recs[sp->r0].acked = true;
	sp->pending--;
	sp->dropped++;
	sp->head_dirty = true;
	head_advance(sp);
}

static int push(struct spool *sp, uint64_t off, uint32_t len)
{
	int r;

	if (sp->n >= sp->max)
		drop_oldest(sp);
	if ((r = recs_reserve(sp)) < 0)
		return r;
	sp->recs[sp->r0 + sp->n++] = (struct spool_rec){.off = off, .len = len};
	sp->pending++;
	return 0;
}

static int write_all(int fd, const void *data, size_t len, uint64_t off)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		p += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int read_all(int fd, void *data, size_t len, uint64_t off)
{
	uint8_t *p = data;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* shorter than our index: someone cut the log */
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd, r = 0;

	if (slash == NULL || (size_t)(slash - path) >= sizeof(dir))
		return -EINVAL;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if ((fd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Install a new log that starts at the head: its header, then the records from the head on,
 * copied from the old log (none when there is no old log). Written beside it, made durable and
 * renamed over it, so a crash leaves the old log or the new one. */
static int compact(struct spool *sp)
{
	uint8_t hdr[SPOOL_HDR], *copy = NULL;
	uint64_t from = sp->n > 0 ? sp->recs[sp->r0].off : sp->size, delta, pos;
	int fd = -1, r;

	if ((fd = open(sp->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		r = -errno;
		goto out;
	}
	memcpy(hdr, SPOOL_MAGIC, 8);
	put_be64(hdr + 8, sp->head);
	if ((r = write_all(fd, hdr, sizeof(hdr), 0)) < 0)
		goto out;
	if (sp->fd >= 0 && from < sp->size) {
		if ((copy = malloc(SPOOL_COPY_BUF)) == NULL) {
			r = -ENOMEM;
			goto out;
		}
		for (pos = from; pos < sp->size;) {
			size_t len = sp->size - pos < SPOOL_COPY_BUF ? (size_t)(sp->size - pos)
								     : SPOOL_COPY_BUF;

			if ((r = read_all(sp->fd, copy, len, pos)) < 0 ||
			    (r = write_all(fd, copy, len, SPOOL_HDR + (pos - from))) < 0)
				goto out;
			pos += len;
		}
	}
	if (fchmod(fd, 0600) < 0 || fsync(fd) < 0 || rename(sp->tmp_path, sp->log_path) < 0) {
		r = -errno;
		goto out;
	}
	/* The new log is in place: from here on it is the spool even if the directory sync fails.
	 */
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = fd;
	fd = -1;
	delta = from - SPOOL_HDR;
	for (size_t i = 0; i < sp->n; i++)
		sp->recs[sp->r0 + i].off -= delta;
	log_debug("spool: compacted %s: %" PRIu64 " bytes of delivered records gone", sp->log_path,
		  delta);
	sp->size -= delta;
	sp->base = sp->head;
	sp->unsynced = false;
	r = fsync_dir_of(sp->log_path);
out:
	if (fd >= 0) {
		close(fd);
		unlink(sp->tmp_path);
	}
	free(copy);
	return r;
}

static int head_write(struct spool *sp)
{
	char text[SPOOL_HEAD_MAX];
	int len = snprintf(text, sizeof(text), "%" PRIu64 " %" PRIu64 "\n", sp->head, sp->dropped);
	int r = file_write_atomic(sp->head_path, text, (size_t)len, 0600);

	if (r == 0)
		sp->head_dirty = false;
	return r;
}

/* "HEAD DROPPED\n", both decimal; -EBADMSG otherwise. */
static int head_parse(const char *text, size_t len, uint64_t *ret_head, uint64_t *ret_dropped)
{
	uint64_t v[2] = {0, 0};
	size_t i = 0;

	for (int f = 0; f < 2; f++) {
		size_t start = i;

		for (; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
			if (v[f] > (UINT64_MAX - 9) / 10)
				return -EBADMSG;
			v[f] = v[f] * 10 + (uint64_t)(text[i] - '0');
		}
		if (i == start || i == len || text[i] != (f == 0 ? ' ' : '\n'))
			return -EBADMSG;
		i++;
	}
	if (i != len || v[0] == 0)
		return -EBADMSG;
	*ret_head = v[0];
	*ret_dropped = v[1];
	return 0;
}

/* Make what was appended and acknowledged durable: compaction when due (it writes the whole
 * log anew, synced) or fdatasync, then `head` when it moved. */
static int sync_point(struct spool *sp)
{
	uint64_t dead = dead_bytes(sp);
	int r = 0;

	if (sp->base != sp->head && dead > (sp->size - SPOOL_HDR) / 2 &&
	    dead >= SPOOL_COMPACT_MIN) {
		if ((r = compact(sp)) < 0)
			return r;
	} else if (sp->unsynced) {
		if (fdatasync(sp->fd) < 0)
			return -errno;
		sp->unsynced = false;
	}
	if (sp->head_dirty)
		r = head_write(sp);
	return r;
}

/* Walk the log's records (mapped), index those from the head on, and cut the log after the
 * last good one. */
static int scan(struct spool *sp, uint64_t file_size)
{
	uint8_t *map = NULL, check[4];
	uint64_t off = SPOOL_HDR, id;
	int r = 0;

	if (file_size > SIZE_MAX / 2)
		return -EFBIG;
	map = mmap(NULL, (size_t)file_size, PROT_READ, MAP_PRIVATE, sp->fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	if (memcmp(map, SPOOL_MAGIC, 8) != 0 || (sp->base = get_be64(map + 8)) == 0) {
		r = -EBADMSG;
		goto out;
	}
	if (sp->head < sp->base) /* `head` older than a compaction */
		sp->head = sp->base;
	for (id = sp->base; file_size - off >= SPOOL_REC_HDR; id++) {
		uint32_t len = get_be32(map + off);

		if (len == 0 || len > SPOOL_RECORD_MAX || len > file_size - off - SPOOL_REC_HDR)
			break;
		if ((r = check_of(map + off + SPOOL_REC_HDR, len, check)) < 0)
			goto out;
		if (memcmp(check, map + off + 4, 4) != 0)
			break;
		if (id >= sp->head && (r = push(sp, off, len)) < 0)
			goto out;
		off += SPOOL_REC_HDR + len;
	}
	sp->size = off;
	sp->next = id;
	if (off < file_size) {
		log_debug("spool: %s: cut a torn or corrupt tail of %" PRIu64
			  " bytes after record %" PRIu64,
			  sp->log_path, file_size - off, id - 1);
		if (ftruncate(sp->fd, (off_t)off) < 0 || fdatasync(sp->fd) < 0) {
			r = -errno;
			goto out;
		}
	}
out:
	munmap(map, (size_t)file_size);
	return r;
}

static char *path_join(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

int spool_open(const char *dir, size_t max, unsigned sync_ms, struct spool **ret)
{
	struct spool *sp = NULL;
	char *text = NULL;
	size_t len;
	uint64_t saved_head = 0;
	struct stat st;
	int r = -EINVAL;

	if (dir == NULL || dir[0] == '\0' || max == 0 || max > SIZE_MAX / 2)
		goto out;
	if ((sp = calloc(1, sizeof(*sp))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	sp->fd = -1;
	sp->max = max;
	sp->sync_ms = sync_ms;
	if ((sp->log_path = path_join(dir, "log")) == NULL ||
	    (sp->tmp_path = path_join(dir, "log.new")) == NULL ||
	    (sp->head_path = path_join(dir, "head")) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = file_mkdirs(dir, 0700)) < 0)
		goto out;
	/* A compaction a crash interrupted: the log it was to replace is still whole. */
	if (unlink(sp->tmp_path) < 0 && errno != ENOENT) {
		r = -errno;
		goto out;
	}

	r = file_read(sp->head_path, SPOOL_HEAD_MAX, &text, &len);
	if (r == 0)
		r = head_parse(text, len, &sp->head, &sp->dropped);
	if (r == -EBADMSG || r == -EFBIG)
		/* Written atomically, so only damage gets here: deliver everything again. */
		log_debug("spool: %s is malformed: starting from the log's first record",
			  sp->head_path);
	else if (r < 0 && r != -ENOENT)
		goto out;
	saved_head = sp->head;

	sp->fd = open(sp->log_path, O_RDWR | O_CLOEXEC);
	if (sp->fd < 0 && errno != ENOENT) {
		r = -errno;
		goto out;
	}
	if (sp->fd >= 0 && fstat(sp->fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (sp->fd >= 0 && st.st_size > 0) {
		if (!S_ISREG(st.st_mode) || st.st_size < SPOOL_HDR) {
			r = -EBADMSG;
			goto out;
		}
		if ((r = scan(sp, (uint64_t)st.st_size)) < 0)
			goto out;
	} else {
		/* New, or created by hand: begin where `head` says, never reusing an id. */
		sp->head = sp->next = sp->base = sp->head > 0 ? sp->head : 1;
		sp->size = SPOOL_HDR;
		if (sp->fd >= 0)
			close(sp->fd);
		sp->fd = -1;
		if ((r = compact(sp)) < 0)
			goto out;
	}
	/* Acknowledged records lost with an unsynced tail: ids go on after the head, and the log
	 * must say so. */
	if (sp->next < sp->head) {
		sp->next = sp->head;
		if ((r = compact(sp)) < 0)
			goto out;
	}
	if (sp->head != saved_head)
		sp->head_dirty = true;
	if ((r = sync_point(sp)) < 0)
		goto out;
	*ret = sp;
	sp = NULL;
	r = 0;
out:
	if (r < 0)
		log_debug("spool: opening %s failed: %s", dir ? dir : "(null)", iotsec_strerror(r));
	free(text);
	if (sp != NULL) {
		if (sp->fd >= 0)
			close(sp->fd);
		free(sp->recs);
		free(sp->log_path);
		free(sp->tmp_path);
		free(sp->head_path);
		free(sp);
	}
	return r;
}

void spool_close(struct spool *sp)
{
	int r;

	if (sp == NULL)
		return;
	if ((r = sync_point(sp)) < 0)
		log_debug("spool: closing %s: %s", sp->log_path, iotsec_strerror(r));
	close(sp->fd);
	free(sp->recs);
	free(sp->log_path);
	free(sp->tmp_path);
	free(sp->head_path);
	free(sp);
}

/* The record is in the log (and the page cache) once written; a failed sync returns its error
 * without the id, and the record still waits in order for spool_next(). */
int spool_append(struct spool *sp, const void *data, size_t len, uint64_t now_ms, uint64_t *ret_id)
{
	uint64_t id, off;
	int r;

	if (len == 0 || data == NULL)
		return -EINVAL;
	if (len > SPOOL_RECORD_MAX)
		return -EMSGSIZE;
	/* data may be what spool_next() lent, in sp->buf itself: moved before the header lands. */
	memmove(sp->buf + SPOOL_REC_HDR, data, len);
	put_be32(sp->buf, (uint32_t)len);
	if ((r = check_of(sp->buf + SPOOL_REC_HDR, len, sp->buf + 4)) < 0)
		return r;
	off = sp->size;
	/* Room in the index first: a failure after the write would leave a record we do not know.
	 */
	if (sp->n < sp->max && (r = recs_reserve(sp)) < 0)
		return r;
	if ((r = write_all(sp->fd, sp->buf, SPOOL_REC_HDR + len, off)) < 0) {
		/* A partial record mid-log would cut every later one at the next open. */
		if (ftruncate(sp->fd, (off_t)off) < 0)
			log_debug("spool: %s: cannot cut a failed append: %s", sp->log_path,
				  strerror(errno));
		return r;
	}
	if ((r = push(sp, off, (uint32_t)len)) < 0)
		return r;
	sp->size = off + SPOOL_REC_HDR + len;
	id = sp->next++;
	sp->unsynced = true;
	if (sp->sync_ms == 0 || !sp->synced_once || now_ms < sp->synced_at ||
	    now_ms - sp->synced_at >= sp->sync_ms) {
		sp->synced_at = now_ms;
		sp->synced_once = true;
		if ((r = sync_point(sp)) < 0)
			return r;
	}
	*ret_id = id;
	return 0;
}

int spool_flush(struct spool *sp)
{
	return sync_point(sp);
}

/* The payload is read into sp->buf: valid until the next spool call. */
int spool_next(struct spool *sp, uint64_t after, uint64_t *ret_id, const uint8_t **ret_data,
	       size_t *ret_len)
{
	uint64_t id = after < sp->head ? sp->head : after + 1;
	struct spool_rec *rec;
	int r;

	for (; id < sp->next && id > after; id++) {
		rec = rec_at(sp, id);
		if (rec->acked)
			continue;
		if ((r = read_all(sp->fd, sp->buf, rec->len, rec->off + SPOOL_REC_HDR)) < 0)
			return r;
		*ret_id = id;
		*ret_data = sp->buf;
		*ret_len = rec->len;
		return 0;
	}
	return -ENOENT;
}

int spool_ack(struct spool *sp, uint64_t id)
{
	struct spool_rec *rec;

	if (id < sp->head || id >= sp->next)
		return -ENOENT;
	rec = rec_at(sp, id);
	if (rec->acked)
		return -ENOENT;
	rec->acked = true;
	sp->pending--;
	head_advance(sp);
	return 0;
}

size_t spool_pending(const struct spool *sp)
{
	return sp->pending;
}

uint64_t spool_dropped(const struct spool *sp)
{
	return sp->dropped;
}
