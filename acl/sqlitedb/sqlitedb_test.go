package sqlitedb

import (
	"context"
	"path/filepath"
	"testing"
)

// A statement is prepared once per pool and query, keeps working after the
// schema changes under it, and is closed with the DB.
func TestPreparedIsKept(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.Exec(`CREATE TABLE t (a INTEGER)`); err != nil {
		t.Fatal(err)
	}
	const q = `SELECT count(*) FROM t`
	if db.Cached(db.Read, q) != nil {
		t.Fatal("Cached has a statement nobody prepared")
	}
	r1, err := db.Prepared(ctx, db.Read, q)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := db.Prepared(ctx, db.Read, q)
	w1, _ := db.Prepared(ctx, db.Write, q)
	if r1 != r2 || db.Cached(db.Read, q) != r1 {
		t.Fatal("the same query on the same pool was prepared twice")
	}
	if w1 == r1 || db.Cached(db.Write, q) != w1 {
		t.Fatal("the writer and the readers share a statement")
	}
	if _, err := db.Prepared(ctx, db.Read, `SELECT * FROM nowhere`); err == nil {
		t.Fatal("a statement on a missing table was prepared")
	}
	if _, err := db.Write.Exec(`ALTER TABLE t ADD COLUMN b TEXT; INSERT INTO t (a) VALUES (1), (2)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := r1.QueryRowContext(ctx).Scan(&n); err != nil || n != 2 {
		t.Fatalf("after a schema change the kept statement counted %d, %v; want 2", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r1.QueryRowContext(ctx).Scan(&n); err == nil {
		t.Fatal("a kept statement still runs after Close")
	}
}
