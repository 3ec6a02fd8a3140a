package store

import "database/sql"

// RawDB exposes a store's connection pool to the external tests, which
// check what is actually written to the columns.
func RawDB(s Store) *sql.DB { return s.(*sqlStore).db }

// Rebind rebinds '?' placeholders for the store's dialect.
func Rebind(s Store, query string) string { return s.(*sqlStore).q(query) }
