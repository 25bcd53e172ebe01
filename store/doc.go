// Package store holds the persistent state of wsca: wallet units and the
// public parts and owners of their keys today, and later sessions, PIN attempt
// counters, nonces, serial numbers, status lists and evidence. It is the only
// package that speaks SQL.
//
// One type, [Store], works over database/sql on two backends chosen by the
// DSN given to [Open]:
//
//   - SQLite (modernc.org/sqlite, pure Go), the embedded default:
//     "sqlite:/var/lib/wsca/wsca.db", "file:/var/lib/wsca/wsca.db" or a bare
//     path ending in ".db". The database runs in WAL mode with a busy timeout,
//     so readers never block and writers queue on SQLite's single write lock;
//     every transaction begins IMMEDIATE, so it takes that lock up front and
//     cannot deadlock on a read-to-write upgrade. The process's transactions
//     take turns for it in the order they asked (SQLite's busy handler alone
//     serves whoever polls first, which can starve a writer past the busy
//     timeout under load).
//   - PostgreSQL (github.com/jackc/pgx/v5/stdlib) for several instances on one
//     database: "postgres://user:pass@host/db?sslmode=verify-full".
//
// The SQL the methods run is shared by both backends and kept plain (numbered
// $N parameters, no procedural code, no upserts peculiar to one engine), so
// that it can later run on CockroachDB or YugabyteDB too. Only DDL differs
// per backend, in the migration files.
//
// # Migrations
//
// The schema is a sequence of embedded files in migrations/, numbered from
// 0001 without gaps: NNNN_name.sql is shared by both backends, while
// NNNN_name.sqlite.sql and NNNN_name.postgres.sql are the two variants of a
// step whose DDL differs (BLOB against BYTEA, collations, STRICT tables).
// [Open] applies the missing steps in one transaction and records each in
// schema_migrations(version, applied_at). The transaction is serialised
// across processes (PostgreSQL: pg_advisory_xact_lock; SQLite: BEGIN
// IMMEDIATE), so instances started together migrate once. A database whose
// schema is newer than this binary is refused with [ErrSchemaTooNew] rather
// than used with a schema the code does not know.
//
// # Values
//
// The store never reads the clock: callers pass every time, and the store
// keeps it as BIGINT unix microseconds (portable, and ordered as numbers),
// returning UTC times truncated to the microsecond. Byte slices are copied in
// and out. Inputs are validated before any SQL runs and rejected with
// [ErrInvalid]; driver constraint violations are mapped to the sentinel
// errors, so callers test outcomes with errors.Is and never see driver codes.
// Errors never carry a DSN's password.
package store
