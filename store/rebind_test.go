package store

import "testing"

func TestRebindDollar(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`WHERE a = ? AND b = ?`, `WHERE a = $1 AND b = $2`},
		{`VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, `VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`},
		{`WHERE s = 'what?' AND x = ?`, `WHERE s = 'what?' AND x = $1`},
		{`WHERE s = 'it''s?' AND x = ?`, `WHERE s = 'it''s?' AND x = $1`},
	} {
		if got := rebindDollar(c.in); got != c.want {
			t.Errorf("rebindDollar(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
