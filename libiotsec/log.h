/* Logging for every iotsec program, and the error codes the library returns.
 *
 * Messages go to stderr, one line each. Under systemd (JOURNAL_STREAM set) each line carries a
 * "<N>" priority prefix the journal understands; on a terminal it carries the program name.
 * There is deliberately no function here that formats bytes as hex or base64: key material has
 * no way into a log line. */
#ifndef IOTSEC_LOG_H
#define IOTSEC_LOG_H

#include <stdarg.h>
#include <syslog.h>

/* Library failures are negative errno values; the ones errno has no word for live here, above
 * the errno range, so iotsec_strerror() can tell every rejection apart. */
enum iotsec_error {
	IOTSEC_E_BASE = 4096,
	IOTSEC_ENOTYETVALID,   /* certificate not yet valid */
	IOTSEC_EUNKNOWNCA,     /* certificate not issued by this home's CA */
	IOTSEC_ESELFSIGNED,    /* self-signed certificate that is not our CA */
	IOTSEC_EKEYMISMATCH,   /* private key does not match the certificate */
	IOTSEC_EROLE,	       /* certificate role not allowed for this use */
	IOTSEC_EHOME,	       /* certificate belongs to another home */
	IOTSEC_ECRL,	       /* CRL missing, expired or not signed by the CA */
	IOTSEC_ECERT,	       /* certificate unusable for another reason */
	IOTSEC_EBADSIG,	       /* signature does not verify */
	IOTSEC_ESTALE,	       /* timestamp outside the freshness window */
	IOTSEC_EREPLAY,	       /* nonce already seen */
	IOTSEC_EIDENTITY,      /* claimed sender differs from the certificate */
	IOTSEC_EUNKNOWNCERT,   /* fingerprint of a certificate we have not seen */
	IOTSEC_ETYPE,	       /* unknown message type */
	IOTSEC_ENOTFORUS,      /* unicast message addressed to another device */
	IOTSEC_ENOTBCAST,      /* a message that must be broadcast came to us alone */
	IOTSEC_EDELIVERY,      /* part of another delivery than the one under way */
	IOTSEC_EEPOCH,	       /* of another key pool epoch than the one that counts */
	IOTSEC_ENOTCONTROLLER, /* a controller's message from a device that is not the controller */
	IOTSEC_EUNASKED,       /* an answer nobody asked for, or asked for too often */
	IOTSEC_ESECRET,	       /* a secret file readable by group or others, or not ours */
	IOTSEC_E_END,
};

/* A description of a negative errno or iotsec_error code (the sign is ignored). */
const char *iotsec_strerror(int r);

/* ident names the program in terminal output; level is a syslog priority (LOG_INFO by default,
 * LOG_DEBUG with -v). */
void log_init(const char *ident, int level);
void log_set_level(int level);
int log_get_level(void);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The x variants print the message alone; the others append ": strerror(errno)". */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* For start-up failures and broken invariants only, never for what a peer sent. */
_Noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The core the others use; exposed for callers that pick the priority at run time. */
void log_vmsg(int prio, int errnum, const char *fmt, va_list ap);

#endif
