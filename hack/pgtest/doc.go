// Package pgtest starts a real PostgreSQL for one test, as hack/brokertest starts Mosquitto:
// `initdb` into a temporary directory, then `postgres` on a random port of 127.0.0.1 with its
// socket in that directory — never the machine's own service on 5432.
//
// The programs come from the Debian package postgresql (/usr/lib/postgresql/<version>/bin,
// not on PATH); without it a test skips on a developer's machine and fails in CI
// (hack/testenv). initdb and postgres refuse to run as root: when the test runs as root, both
// run as the user "postgres" (which the Debian package creates) through the process
// credentials of exec.Cmd, in a directory that user owns.
//
// The server has one superuser, "obdgw", with a password: connections over TCP authenticate
// with SCRAM, so a test can check how a receiver passes its password. The database "obdgw"
// exists and is empty.
package pgtest
