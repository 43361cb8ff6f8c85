#!/bin/sh
# make bench: each hot path beside this machine's ceiling, measured in the same run, as a ratio.
# Benchmarks never fail on speed; only a broken benchmark fails.
set -eu
: "${BENCH_DIR:?run through 'make bench'}"

echo "== ceilings: openssl speed (same machine, same run)"
speed_rsa=$(openssl speed -seconds 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6, $7}')
rsa_sign=${speed_rsa% *}
rsa_verify=${speed_rsa#* }
gcm=$(openssl speed -seconds 2 -bytes 64 -evp aes-256-gcm 2>/dev/null |
	awk '/^AES-256-GCM/ {v=$2; sub(/k$/, "", v); print v * 1000 / 64}')
echo "rsa2048 sign: $rsa_sign/s  verify: $rsa_verify/s"
echo "aes-256-gcm 64B (encrypt only): $gcm blocks/s"

echo "== AES-256-GCM, 64-byte reading; RSA-OAEP key wrap"
crypto_out=$("$BENCH_DIR/bench_crypto")
echo "$crypto_out"
# At 64 bytes openssl speed is no tight ceiling (seal+open through EVP can beat its encrypt-only
# rate): the bare EVP loop above is the ceiling; this line is for reference.
echo "$crypto_out" | awk -v c="$gcm" '/^aead seal\+open 64B:/ && c > 0 {
	printf "aead seal+open 64B vs openssl speed (seal+open = 2 blocks): %.0f pairs/s of %.0f: %.0f%%\n", $4, c / 2, 100 * $4 / (c / 2) }'

echo "== sealed readings: seal, open+guard, stream key advances"
# Each beside a bare EVP loop doing the same seal or open in the same binary; the advance line
# is its own ratio (an hour of advances at interval 1 s over an hour of sealing).
"$BENCH_DIR/bench_reading"

echo "== envelope sign+verify"
env_out=$("$BENCH_DIR/bench_envelope")
echo "$env_out"
# with-cert: the sender's certificate in the message (first contact, broadcasts), so its chain
# and the CRL are checked too; fp-only: just its fingerprint, as peers that know each other send.
echo "$env_out" | awk -v s="$rsa_sign" -v v="$rsa_verify" '
	/^envelope sign\+verify / {
		c = 1 / (1 / s + 1 / v)
		printf "envelope sign+verify %s %.0f msgs/s  ceiling (one rsa2048 sign + verify): %.0f/s  ratio %.0f%%\n",
			$3, $4, c, 100 * $4 / c
	}
	# What a flood costs: refusing a forged message that carries a real certificate, or a
	# forged certificate never seen, beside the one RSA verify neither refusal can do without.
	/^envelope refusal / {
		printf "envelope refusal %s %.0f msgs/s  ceiling (one rsa2048 verify): %.0f/s  ratio %.0f%%\n",
			$3, $4, v, 100 * $4 / v
	}'

echo "== rings: the controller gives every device its ring; a device takes one in"
rings_out=$("$BENCH_DIR/bench_rings")
echo "$rings_out"
# The ceiling is the same RSA operations at openssl speed's rates: public (wrap, verify) at its
# verify rate, private (sign, unwrap) at its sign rate.
echo "$rings_out" | awk -v s="$rsa_sign" -v v="$rsa_verify" '
	/^rings / {
		for (i = 1; i <= NF; i++) {
			if ($i == "rsa_public") pub = $(i + 1)
			if ($i == "rsa_private") priv = $(i + 1)
			if ($i == "s") t = $(i - 1)
		}
		c = pub / v + priv / s
		what = $2 == "device" ? "one device takes its ring" : sprintf("controller, %s devices", $3)
		printf "%s: %.3f s  ceiling (openssl speed rsa2048, same operations): %.3f s  ratio %.0f%%\n",
			what, t, c, 100 * c / t
	}'

echo "== the key dictionary: a ring's save"
dict_out=$(BENCH_TMP=/tmp "$BENCH_DIR/bench_keydict")
echo "$dict_out" | grep -v '^fsynced write:'
fsync_ms=$(echo "$dict_out" | awk '/^fsynced write:/ {print $3}')

echo "== the kit's spool: a reading appended, acknowledged 100 later, synced every 200 ms"
BENCH_TMP=/tmp "$BENCH_DIR/bench_spool"

echo "== the MQTT glue: QoS 1 readings through mosquitto, beside mosquitto_pub and mosquitto_sub"
"$(dirname "$0")/mqtt.sh"

echo "== ring intake end to end (controller -> device -> dictd, fsynced, confirmed)"
intake_out=$("$(dirname "$0")/intake.sh")
echo "$intake_out"
# The ceiling: the ring's RSA-OAEP unwraps at the bare rate measured above, and one fsynced
# write of the dictionary, both in this run.
unwrap=$(echo "$crypto_out" | awk '/^rsa-oaep unwrap/ {print $(NF - 3)}')
echo "$intake_out" | awk -v u="$unwrap" -v f="$fsync_ms" '
	/^ring intake / && u > 0 {
		c = $3 * 1000 / u + f
		printf "ring intake %d keys: %.1f ms  ceiling (%d RSA-OAEP unwraps + one fsynced write): %.1f ms  ratio %.0f%%\n",
			$3, $6, $3, c, 100 * c / $6
	}'

echo "== election convergence"
"$(dirname "$0")/election.sh"

# pingd: detection time beside its bound; declaration to completed rekey beside the RSA floor
# (the rates and the ring costs measured above, in this run).
RSA_SIGN=$rsa_sign RSA_VERIFY=$rsa_verify RINGS_OUT=$rings_out "$(dirname "$0")/pingd.sh"

echo "== sensord: a full spool drained through the home broker, beside mosquitto_pub"
# Its ceiling is measured inside: mosquitto_pub through the same broker, in the same run.
"$(dirname "$0")/sensord.sh"

echo "== the relay's store: inserts and a doctor's catch-up, beside bare SQLite"
relay_store_out=$(BENCH_TMP=/tmp "$BENCH_DIR/bench_relay_store")
echo "$relay_store_out"

echo "== the relay's PostgreSQL store: inserts and a doctor's catch-up, beside bare libpq"
relay_pg_out=$("$BENCH_DIR/bench_relay_pg")
echo "$relay_pg_out"

echo "== the relay end to end: MQTT ingest beside the broker alone, a doctor's catch-up over HTTPS"
# Its ceilings are measured inside (the broker alone, a bare scan); the raw SQLite and
# PostgreSQL figures are the store benches' just above.
RELAY_STORE_OUT=$relay_store_out RELAY_PG_OUT=$relay_pg_out "$(dirname "$0")/relay.sh"

echo "== trust: malicious devices detected, beside the published figures"
# The simulator prints its own table (the published figures in it); it fails only if broken.
"$BENCH_DIR/bench_trust_sim"

echo "== footprint: each daemon's memory (native, arm64 under qemu-user) beside mosquitto's"
"$(dirname "$0")/footprint.sh"
