/* The configuration file every iotsec program reads (libconfig syntax), driven by a table.
 *
 * Each setting is a row: dotted name, type, range, default and where the value goes. The loader
 * refuses unknown keys, wrong types and out-of-range values with file, line and setting name,
 * and fills every setting the file leaves out with its default. */
#ifndef IOTSEC_CONFIG_H
#define IOTSEC_CONFIG_H

#include <stddef.h>

#define CONFIG_DEFAULT_PATH "/etc/iotsec/iotsec.conf"
#define CONFIG_ERR_MAX	    512

enum config_type {
	CONFIG_INT,    /* int; min..max */
	CONFIG_BOOL,   /* int 0/1 */
	CONFIG_STRING, /* char *, malloc'd; length min..max */
};

struct config_def {
	const char *name; /* "group.setting" */
	enum config_type type;
	long long min, max;
	long long def_int;
	const char *def_str;
	size_t offset; /* into the destination struct */
	const char *help;
	/* Strings only, may be NULL: NULL when the value is acceptable, else what is wrong. */
	const char *(*check)(const char *value);
};

/* Load text (name is used in messages) into dst according to table[0..n). On failure returns
 * -EINVAL, writes "FILE:LINE: setting 'x.y': problem" to err and leaves dst untouched. */
int config_parse(const char *text, const char *name, const struct config_def *table, size_t n,
		 void *dst, char *err, size_t errlen);
/* Free the strings config_parse allocated in dst. */
void config_release(const struct config_def *table, size_t n, void *dst);

/* The settings of iotsec itself: one file for every daemon. */
struct iotsec_config {
	struct {
		char *name;	  /* this device; empty: take it from the certificate */
		char *cert, *key; /* this device's certificate and private key */
		char *ca, *crl;	  /* the home CA certificate and its revocation list */
		char *state_dir;  /* persistent state (saved clock, dictionary) */
		char *run_dir;	  /* control sockets */
	} device;
	struct {
		char *readers; /* users and @groups who may read the daemons' status */
	} control;
	struct {
		int interval; /* seconds between certificate checks */
	} certd;
	struct {
		int port;	 /* UDP broadcasts and TCP exchanges between devices */
		int delta_t;	 /* freshness window of signed messages, seconds */
		char *broadcast; /* IPv4 broadcast address of the home network */
	} net;
	struct {
		int tries;	  /* IS_THERE_CONTROLLER queries before declaring */
		int try_ms;	  /* between queries */
		int heartbeat_ms; /* between the controller's announcements */
		int timeout_ms;	  /* silence after which nodes elect again */
		int hold_ms;	  /* least time between two changes of controller */
	} electd;
	struct {
		int ring_size;	     /* keys in each device's ring (k) */
		int pool_size;	     /* keys in the pool (P); 0: the largest meeting target */
		int target_permille; /* wanted probability that two rings share a key, x 1000 */
		int collect_ms;	     /* how long the controller waits for contributed keys */
		int announce_ms;     /* between I_AM_ON_THE_NETWORK broadcasts */
		char *clients;	     /* users and @groups who may call rekey and quarantine */
	} keyd;
	struct {
		int interval_ms;   /* between two rounds of probes (controller) */
		int retry_ms;	   /* before probing a device that failed again */
		int tries;	   /* failed probes before asking other devices */
		int timeout_ms;	   /* for an answer to a probe */
		int helpers;	   /* devices asked to probe a suspect (indirect probes) */
		int confirmations; /* signed confirmations an eviction needs */
		int hello_ms;	   /* between PINGD_HELLO broadcasts */
		int auth_failures; /* authentication failures that label a device malicious */
		int trust_weight_permille; /* a in T = (1 - a) h + a R, x 1000 */
		int report_window_ms;	   /* window of the ballot-stuffing count */
		int ban_ms;		   /* how long a flagged reporter is not heard */
	} pingd;
	struct {
		int start;	/* unix seconds: epoch 1 of every stream key begins then */
		int interval_s; /* seconds of one epoch */
	} stream;
	struct {
		char *broker;	      /* the home broker's host */
		int broker_port;      /* its TLS port */
		char *broker_name;    /* the name its certificate must carry */
		char *sensors;	      /* [NAME=]DRIVER:ARG, ... (sensor.h) */
		char *sysfs;	      /* root of the sysfs drivers */
		int interval_ms;      /* between two readings of each sensor */
		char *doctor_sensors; /* sensors whose readings go to the doctor stream */
		char *pairwise;	      /* SENSOR>DEVICE: sealed for that device alone */
		int alarm_below;      /* pulse per minute that raises an emergency */
		char *alarm_output;   /* GPIO value file (or a plain file) set to 1 on alarm */
		int replay_loop;      /* the replay driver starts again at its end */
		int spool_max;	      /* readings the spool holds */
		int spool_sync_ms;    /* longest an appended reading waits for fdatasync */
		int fresh_s;	      /* readers refuse readings older or newer than this */
		int resync_ms;	      /* wait for neighbours' answers */
		int resync_tries;     /* requests before keeping our own clock */
		int max_inflight;     /* QoS 1 readings awaiting the broker's PUBACK */
		char *relay;	      /* relays whose receipts take doctor readings off the spool */
		int receipt_s;	      /* a doctor reading without a receipt is sent again after */
	} sensord;
	struct {
		char *broker;	   /* the home broker's host */
		int broker_port;   /* its TLS port */
		char *broker_name; /* the name its certificate must carry */
		char *share;	   /* shared subscription group ("": none) */
		char *store;	   /* "sqlite" or "postgresql" */
		char *database;	   /* the SQLite file */
		char *pg;	   /* libpq connection string */
		int commit_ms;	   /* group commit: the longest a reading waits for its commit */
		int batch_max;	   /* readings in one commit at most */
		int retention_s;   /* readings older than this expire */
		int cap;	   /* readings kept per patient (stream) at most */
		int http_port;	   /* the doctors' HTTPS port; 0: none */
		char *http_address; /* IPv4 or IPv6 address to listen on; "": every address */
		char *web_dir;	   /* the doctor's page (static files) */
		int session_s;	   /* a doctor's login lasts */
	} relay;
	struct {
		char *path;	/* the dictionary file (only dictd touches it) */
		char *key_file; /* the dictionary key, 32 random bytes, root-only (0600) */
		char *clients;	/* users and @groups who may store and look up keys */
	} dictd;
};

extern const struct config_def iotsec_config_table[];
extern const size_t iotsec_config_table_len;

/* Read path into cfg; on failure err explains (see config_parse). */
int config_load(const char *path, struct iotsec_config *cfg, char *err, size_t errlen);
int config_load_string(const char *text, const char *name, struct iotsec_config *cfg, char *err,
		       size_t errlen);
void config_free(struct iotsec_config *cfg);

#endif
