#!/bin/sh
# The application's own database beside Temporal's (the worker migrates it at start).
# Runs once, when the Postgres volume is first created; the password comes from
# VIM_DB_PASSWORD (.env), never from the repository.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v vim_password="$VIM_DB_PASSWORD" <<'SQL'
CREATE USER vim WITH PASSWORD :'vim_password';
CREATE DATABASE vim OWNER vim;
SQL
