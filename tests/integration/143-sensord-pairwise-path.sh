#!/bin/sh
# 142 with rings so small that pi2 and pi3 share no ring index: the readings for pi3 alone are
# sealed under a key drawn from the path key the controller gave the two.
PAIR_PATH=1
. "$(dirname "$0")/142-sensord-pairwise.sh"
