#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *log_ident = "iotsec";
static int log_level = LOG_INFO;
static int log_journal = -1; /* -1: not yet known */

static const char *const iotsec_errors[IOTSEC_E_END - IOTSEC_E_BASE] = {
    [IOTSEC_ENOTYETVALID - IOTSEC_E_BASE] = "certificate not yet valid",
    [IOTSEC_EUNKNOWNCA - IOTSEC_E_BASE] = "certificate not issued by this home's CA",
    [IOTSEC_ESELFSIGNED - IOTSEC_E_BASE] = "self-signed certificate",
    [IOTSEC_EKEYMISMATCH - IOTSEC_E_BASE] = "private key does not match the certificate",
    [IOTSEC_EROLE - IOTSEC_E_BASE] = "certificate role not allowed",
    [IOTSEC_EHOME - IOTSEC_E_BASE] = "certificate belongs to another home",
    [IOTSEC_ECRL - IOTSEC_E_BASE] = "revocation list unusable",
    [IOTSEC_ECERT - IOTSEC_E_BASE] = "certificate unusable",
    [IOTSEC_EBADSIG - IOTSEC_E_BASE] = "bad signature",
    [IOTSEC_ESTALE - IOTSEC_E_BASE] = "timestamp outside the freshness window",
    [IOTSEC_EREPLAY - IOTSEC_E_BASE] = "replayed message",
    [IOTSEC_EIDENTITY - IOTSEC_E_BASE] = "sender does not match its certificate",
    [IOTSEC_EUNKNOWNCERT - IOTSEC_E_BASE] = "unknown certificate fingerprint",
    [IOTSEC_ETYPE - IOTSEC_E_BASE] = "unknown message type",
    [IOTSEC_ENOTFORUS - IOTSEC_E_BASE] = "addressed to another device",
    [IOTSEC_ENOTBCAST - IOTSEC_E_BASE] = "sent to this device alone, not broadcast",
    [IOTSEC_EDELIVERY - IOTSEC_E_BASE] = "part of another delivery",
    [IOTSEC_EEPOCH - IOTSEC_E_BASE] = "of another key pool epoch",
    [IOTSEC_ENOTCONTROLLER - IOTSEC_E_BASE] = "not from the elected controller",
    [IOTSEC_EUNASKED - IOTSEC_E_BASE] = "not asked for, or asked too often",
    [IOTSEC_ESECRET - IOTSEC_E_BASE] =
	"a secret readable by group or others, or not owned by us or root (chmod 600 it)",
};

const char *iotsec_strerror(int r)
{
	if (r < 0)
		r = -r;
	if (r > IOTSEC_E_BASE && r < IOTSEC_E_END)
		return iotsec_errors[r - IOTSEC_E_BASE];
	/* The codes errno has that we use with a specific meaning read better in our words. */
	switch (r) {
	case EKEYEXPIRED:
		return "certificate expired";
	case EKEYREVOKED:
		return "certificate revoked";
	case EBADMSG:
		return "malformed message";
	case EMSGSIZE:
		return "message too large";
	case EALREADY:
		return "not newer than the one in force";
	default:
		return strerror(r);
	}
}

void log_init(const char *ident, int level)
{
	log_ident = ident;
	log_level = level;
	log_journal = -1;
}

void log_set_level(int level)
{
	log_level = level;
}

int log_get_level(void)
{
	return log_level;
}

void log_vmsg(int prio, int errnum, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	if (prio > log_level)
		return;
	if (log_journal < 0)
		log_journal = getenv("JOURNAL_STREAM") != NULL;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	if (errnum != 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - n, ": %s", strerror(errnum));
	/* One write per line so concurrent daemons sharing a terminal do not interleave. */
	if (log_journal)
		fprintf(stderr, "<%d>%s\n", prio, line);
	else
		fprintf(stderr, "%s: %s\n", log_ident, line);
}

#define LOG_FN(name, prio, with_errno)                                                             \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		int saved = errno;                                                                 \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vmsg(prio, with_errno ? saved : 0, fmt, ap);                                   \
		va_end(ap);                                                                        \
		errno = saved;                                                                     \
	}

LOG_FN(log_debug, LOG_DEBUG, false)
LOG_FN(log_info, LOG_INFO, false)
LOG_FN(log_notice, LOG_NOTICE, false)
LOG_FN(log_warnx, LOG_WARNING, false)
LOG_FN(log_warn, LOG_WARNING, true)
LOG_FN(log_errx, LOG_ERR, false)
LOG_FN(log_err, LOG_ERR, true)

_Noreturn void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

_Noreturn void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, saved, fmt, ap);
	va_end(ap);
	exit(1);
}
