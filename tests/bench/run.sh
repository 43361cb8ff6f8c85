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

echo "== AES-256-GCM, 64-byte reading"
"$BENCH_DIR/bench_crypto"
ours=$("$BENCH_DIR/bench_crypto" | awk '/^aead seal\+open 64B:/ {print $4; exit}')
awk -v o="$ours" -v c="$gcm" 'BEGIN {
	if (c > 0) printf "aead seal+open 64B vs openssl speed (seal+open = 2 blocks): %.0f pairs/s of %.0f: %.0f%%\n", o, c / 2, 100 * o / (c / 2) }'

echo "== envelope sign+verify"
env_out=$("$BENCH_DIR/bench_envelope")
echo "$env_out"
ours=$(echo "$env_out" | awk '/^envelope sign\+verify:/ {print $3}')
awk -v o="$ours" -v s="$rsa_sign" -v v="$rsa_verify" 'BEGIN {
	c = 1 / (1 / s + 1 / v)
	printf "envelope sign+verify: %.0f msgs/s  ceiling (one rsa2048 sign + verify): %.0f/s  ratio %.0f%%\n", o, c, 100 * o / c }'
