package testenv

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresDSNEnv names the variable holding an administrative PostgreSQL URL
// (one allowed to CREATE DATABASE), for example
// postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable.
const PostgresDSNEnv = "WSCA_TEST_POSTGRES_DSN"

// Postgres returns the URL of a new, empty PostgreSQL database that is
// dropped when the test ends, so tests in parallel processes never share
// state. Without [PostgresDSNEnv] the component "postgres" is
// [Unavailable].
func Postgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresDSNEnv)
	if admin == "" {
		Unavailable(t, "postgres", PostgresDSNEnv+" not set")
	}
	// The URL may hold a password: never print it.
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatal(PostgresDSNEnv + " is not a postgres:// URL")
	}

	name := "wsca_test_" + strings.ToLower(rand.Text())
	ident := pgx.Identifier{name}.Sanitize()

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testenv: connect to postgres: %v", err)
	}
	defer conn.Close(ctx)
	// template0 accepts no connections, so concurrent CREATE DATABASE calls
	// never find their template in use. A linguistic collation, as
	// production databases often have, makes a test fail where ORDER BY
	// relies on bytewise order; servers without ICU get their default.
	create := "CREATE DATABASE " + ident + " TEMPLATE template0 ENCODING 'UTF8'"
	if _, err := conn.Exec(ctx, create+" LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"); err != nil {
		if _, err := conn.Exec(ctx, create); err != nil {
			t.Fatalf("testenv: create database %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		// FORCE ends connections a test left open.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	return u.String()
}
