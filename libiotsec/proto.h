/* Every verb and event of the control sockets, with its fields: what iotsecctl asks and what the
 * daemons on one Pi say to each other (SPEC 5). ctl.h has the framing (one JSON object a line,
 * "v", "id", "ok", "error"); this file is the contract above it, as chrony's candm.h is for
 * chronyc. A daemon's socket is RUN_DIR/<daemon>.sock.
 *
 * Verbs marked (privileged) change state or hand out keys: the server refuses them unless the
 * caller is root or the daemon's own user. Replies list their fields after "->". */
#ifndef IOTSEC_PROTO_H
#define IOTSEC_PROTO_H

/* ---- every daemon ---- */

/* -> {"daemon":"certd"|"dictd"|"electd"|"keyd", ...the daemon's own fields below} */
#define PROTO_STATUS "status"
/* {"events":["name",...] or ["*"]} -> {}; then the events come as {"event":name, ...fields}. */
#define PROTO_SUBSCRIBE "subscribe"

/* ---- iotsec-certd: is this device a member of the home? ---- */

/* status: {"certificate":"unknown"|"valid"|"invalid", "reason" (when invalid),
 *          "device", "home", "role", "serial", "not_before", "not_after" (once a certificate
 *          parsed), "checked_at", "interval"}
 * "unknown" means certd has not checked yet: like "invalid", it keeps the device out. */
#define PROTO_CERTD_CHECK     "check" /* (privileged) check now -> the status fields */
#define PROTO_CERT_VALID      "valid"
#define PROTO_CERT_INVALID    "invalid"
#define PROTO_EV_CERT_VALID   "certificate-valid"   /* the status fields */
#define PROTO_EV_CERT_INVALID "certificate-invalid" /* the status fields */

/* ---- iotsec-dictd: the key dictionary ---- */

/* status: {"records", "usable", "locked", "lock_reason" (when locked), "lookups", "refused"} */
/* (privileged) {"records":[{"name", "index", "epoch", "key":base64 32 bytes, "expires"?},...],
 *  "cancel_others":true?} -> {"stored":n, "cancelled":m}: 1..PROTO_DICT_BATCH_MAX records, all
 * or none, written with one save. With cancel_others, the records are all of one epoch, and
 * every record of another epoch is cancelled in the same save (a new pool cancels every other
 * one, SPEC 5.3). */
#define PROTO_DICT_STORE "store"
/* A whole ring of KEYPOOL_RING_MAX keys and the group root beside it (keyd.h). */
#define PROTO_DICT_BATCH_MAX 1025
/* (privileged) {"name", "indices":[...]} -> {"keys":[{"index","key"},...]}: the usable keys
 * among those asked, in the order asked; refused while locked. */
#define PROTO_DICT_LOOKUP "lookup"
/* (privileged) {"name", "indices":[...]} -> {"present":[index,...]}: which usable keys exist,
 * without them; refused while locked. */
#define PROTO_DICT_HAS	     "has"
#define PROTO_DICT_INDEX_MAX 1024 /* indices in one lookup or has */
/* (privileged) {"name":N} cancels every record of N -> {"cancelled":n} */
#define PROTO_DICT_CANCEL "cancel"
/* (privileged) -> {}: a lock of the caller's own, apart from the one that follows certd;
 * "unlock" lifts only this one. */
#define PROTO_DICT_LOCK	  "lock"
#define PROTO_DICT_UNLOCK "unlock"

/* ---- iotsec-electd: who is the controller ---- */

/* status: {"device", "role", "state":"out"|"discovering"|"node"|"controller",
 *          "controller" ("" when none), "changes", "sent", "received", "refused"} */
#define PROTO_EV_CONTROLLER "controller-changed" /* the status fields */

/* ---- iotsec-keyd: key pool, rings and pairwise keys ---- */

/* status: {"device", "role":"node"|"controller", "controller", "epoch", "ring_size", "pool",
 *          "group_start" (the stream epoch e0 of the pool's group root, which dictd holds as
 *          "-group" at index e0; 0 before a ring), "peers", "sent", "received", "refused"} */
/* -> {"epoch" (our pool epoch), "peers":[{"name", "role", "epoch", "shared",
 *      "pairwise":"ring"|"path"|"none", "indices":[...], "path":bool},...]}
 * indices: the ring indices the peer shares with us, ascending (not secret: every device
 * announces its own), empty unless the peer is on our epoch; the pairwise key is derived from
 * dictd's "-ring" keys at these indices. path: no index is shared and dictd holds a path key
 * under the peer's name at index 0 (keyd.h KEYD_PATH_INDEX). */
#define PROTO_KEYD_PEERS "peers"
/* (privileged) {"peer", "text"} -> {}: sealed under the pairwise key (MESSAGE_ENC_DATA). */
#define PROTO_KEYD_SEND "send"
/* (privileged) -> {"messages":[{"from", "text", "at"},...]}: the last ones received. */
#define PROTO_KEYD_INBOX "inbox"
/* (privileged; also keyd.clients) {"exclude":["name",...]?} -> {"epoch":E}: the controller
 * starts a new pool now, giving no ring to the devices named nor to the quarantined ones;
 * refused on a node. */
#define PROTO_KEYD_REKEY "rekey"
/* (privileged; also keyd.clients, that is pingd) {"names":["name",...]} -> {}: the quarantine,
 * replacing the one before: no pool of ours gives these devices a ring, a pool under way stops
 * giving them anything, and a device left out of a later list is given its ring again. Kept
 * across restarts (keyd.state); at most PROTO_QUARANTINE_MAX names. status shows it as
 * "quarantine":[...]. */
#define PROTO_KEYD_QUARANTINE "quarantine"
#define PROTO_QUARANTINE_MAX  64
#define PROTO_EV_EPOCH	      "epoch-changed" /* the status fields */

/* ---- iotsec-pingd: missing, revoked and malicious devices (SPEC 5.5, 7) ---- */

/* status: {"device", "role":"node"|"controller", "controller", "peers", "crl_number",
 *          "quarantine_version", "quarantined", "probes", "missing", "sent", "received",
 *          "refused", "refused_by"} */
/* -> {"peers":[{"name", "address", "state":"alive"|"suspect"|"missing"|"quarantined"|"unknown",
 *      "last_seen" (unix seconds, 0: never), "direct" (h), "reputation" (R), "trust" (T),
 *      "flags":["bad-mouthing"|"good-mouthing"|"ballot-stuffing"|"malicious",...],
 *      "banned_until" (unix seconds, 0: not banned), "auth_failures"},...]} */
#define PROTO_PINGD_PEERS "peers"
/* -> {"version", "quarantine":[{"name", "reason":"missing"|"malicious", "at"},...]} */
#define PROTO_PINGD_QUARANTINE "quarantine"
/* (privileged) {"name"} -> {"version"}: take name off the quarantine; on the controller only
 * (elsewhere the error names the controller). The home gives it a ring again. */
#define PROTO_PINGD_RELEASE "release"
/* {"name", "reason":"missing"|"malicious"|"revoked", "at"}: the controller put name out of the
 * home (quarantine or CRL) and asked keyd for a pool without it. */
#define PROTO_EV_MISSING "device-missing"

/* ---- iotsec-sensord: sensor readings over MQTT (SPEC 5.6, 8) ---- */

/* status: {"device", "broker":"connected"|"connecting", "broker_error" (why the last attempt
 *          failed, "" when connected or none has), "broker_name", "sync":"synced"|
 *          "resyncing"|"own-clock", "epoch" (stream epoch), "pool", "group_start",
 *          "doctor" ("" when none granted), "published", "spooled", "spool_dropped",
 *          "readings_opened", "refused", "refused_by",
 *          "alarm":{"set":bool, "seq", "value", "at"},
 *          "sensors":[{"name", "driver", "stream":"group"|"doctor"|"waiting"|"pair", "last",
 *                      "unit", "at", "error" ("" when none)},...]} */
/* {"max":n?} -> {"readings":[{"device", "sensor", "value", "unit", "time" (unix ms), "seq",
 *  "epoch", "emergency", "to"},...]}: the last SENSORD_READINGS_MAX readings this device
 *  opened, oldest first: the group's ("to":"") and those sealed for it alone (sensord.pairwise;
 *  "to": its own name, "epoch": keyd's pool epoch). */
#define PROTO_SENSORD_READINGS "readings"
#define PROTO_EV_READING       "reading" /* one reading, the fields above */

#endif
