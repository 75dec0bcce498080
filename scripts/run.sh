#!/usr/bin/env bash
# make run: serve on SQLite at ./data/consentd.db; on first start create an account and
# print its API key (shown once: it is stored only as a hash).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/consentd
export CONSENTD_DB="${CONSENTD_DB:-sqlite:./data/consentd.db}"
listen="${CONSENTD_LISTEN:-127.0.0.1:8080}"
mkdir -p data
if [ "$($bin account list | tr -d '[:space:]')" = "[]" ]; then
    echo "First start: creating the account 'default'. Keep this API key; it is not shown again:"
    $bin account create default --login admin@example.com
    echo
    echo "Try:  curl -s http://$listen/api/v1/contacts -H \"Authorization: Bearer <api_key above>\""
    echo
fi
exec $bin serve --listen "$listen"
