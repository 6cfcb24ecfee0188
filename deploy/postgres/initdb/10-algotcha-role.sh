#!/bin/sh
# Runs once, when the PostgreSQL data volume is first initialised (/docker-entrypoint-initdb.d).
# Creates the application role `algotcha`: not a superuser, cannot create databases or roles, and
# owns only its own database (where `algotcha migrate` creates the tables). The superuser
# (postgres, password from the postgres_superuser_password secret) is for the operator alone.
# The role's password comes from ALGOTCHA_DB_PASSWORD (= POSTGRES_PASSWORD in deploy/.env) and is
# read by psql's \getenv, so it never appears on a command line.
if [ -z "${ALGOTCHA_DB_PASSWORD:-}" ]; then
    echo "10-algotcha-role.sh: ALGOTCHA_DB_PASSWORD is empty; set POSTGRES_PASSWORD in deploy/.env" >&2
    exit 1
fi
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\getenv app_password ALGOTCHA_DB_PASSWORD
CREATE ROLE algotcha LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    PASSWORD :'app_password';
CREATE DATABASE algotcha OWNER algotcha;
REVOKE ALL ON DATABASE algotcha FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE algotcha TO algotcha;
SQL
