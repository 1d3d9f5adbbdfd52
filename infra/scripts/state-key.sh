#!/bin/sh
# azd preprovision hook: make sure the environment has SPEMIGRATE_STATE_KEY,
# base64 of 32 random bytes, generated once and then kept. The Bicep writes
# it into Key Vault; the app reads it through a Key Vault reference. A new
# key would make every sealed SAS URL and key in the state tables
# unreadable, so an existing one is never replaced.
set -eu
if [ -n "$(azd env get-value SPEMIGRATE_STATE_KEY 2>/dev/null || true)" ]; then
  echo "state key: kept"
  exit 0
fi
key="$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
azd env set SPEMIGRATE_STATE_KEY "$key" >/dev/null
echo "state key: generated into the azd environment (.azure/<env>/.env); back it up"
