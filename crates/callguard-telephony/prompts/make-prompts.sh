#!/bin/bash
# Regenerates the built-in prompts: raw A-law, 8 kHz, mono, committed beside this script and
# embedded in the binary (src/media/prompts.rs). Byte-reproducible: espeak-ng is deterministic
# and sox runs with -D (no dither). Needs espeak-ng and sox. Run: ./make-prompts.sh
set -euo pipefail
cd "$(dirname "$0")"
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
VOICE=(-v en-us -s 165 -p 45)

# say NAME TEXT : speech, leading/trailing silence trimmed, 150 ms of silence after, -3 dB
say() {
  espeak-ng "${VOICE[@]}" -w "$t/$1.wav" "$2"
  sox -D "$t/$1.wav" -r 8000 -c 1 -e a-law -t raw "$1.al" \
      silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse gain -n -3 pad 0 0.15
}

say recording-notice "This call is recorded for quality and security."
say ivr-menu "Welcome. For billing, press 1. For technical support, press 2."
say enter-customer-id "Please enter your customer number or national I D, then press hash."
say enter-portal-code "Please enter the code from your portal, then press hash."
say verified "Thank you, you are verified."
say no-match "That did not match."
say please-hold "Please hold, an agent will be with you shortly."
say caller-number "You are caller number"
say goodbye "We are sorry, no agent is free to take your call. Please call again later. Goodbye."
say card-number "Please enter your card number, then press hash."
say card-expiry "Please enter the expiry date, two digits for the month and two for the year, then press hash."
say card-code "Please enter the security code from the back of your card, then press hash."
say card-postal-code "Please enter the digits of your postal code, then press hash."
say card-retry "That was not accepted. Please enter it again."
say card-done "Thank you. Your payment has been sent. You are back with your agent."
say card-cancelled "The card payment was cancelled. You are back with your agent."
n=(zero one two three four five six seven eight nine)
for i in "${!n[@]}"; do say "digit-$i" "${n[$i]}"; done

# Comfort tone while waiting: two soft 425 Hz beeps (200 ms) and 3 s of quiet, a single
# frequency, so no DTMF detector can take it for a key.
sox -D -n -r 8000 -c 1 -e a-law -t raw comfort-tone.al \
    synth 0.2 sine 425 vol 0.15 pad 0 0.2 repeat 1 pad 0 3

ls -l ./*.al | awk '{ s += $5 } END { print s " bytes in " NR " prompts" }'
