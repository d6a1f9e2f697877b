// Package postgres is the bots.Store on PostgreSQL: the deadline bot's schedule
// cursors and lease, bot tokens, webhooks and their delivery queue, in tables
// prefixed bots_.
//
// Many nodes share it. The lease and the cursors are single-statement upserts
// whose conditions PostgreSQL re-checks on the newest row version, so two nodes
// racing cannot both take a lease or move a cursor back; deliveries are claimed
// with FOR UPDATE SKIP LOCKED. Times are stored as Unix microseconds.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"caseroom/acl"
	"caseroom/acl/pgdb"
	"caseroom/casework/bots"
	"caseroom/chat"
)

const (
	selectCursors = `SELECT clock_key, room, point, point_at, due, seq, updated_at FROM bots_schedule WHERE clock_key = ANY($1)`
	upsertCursor  = `INSERT INTO bots_schedule (clock_key, room, point, point_at, due, seq, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (clock_key) DO UPDATE SET room = excluded.room, point = excluded.point, point_at = excluded.point_at,
			due = excluded.due, seq = excluded.seq, updated_at = excluded.updated_at
		WHERE excluded.point_at > bots_schedule.point_at`
	pruneCursors = `DELETE FROM bots_schedule WHERE due < $1`
	takeLease    = `INSERT INTO bots_leases (name, holder, until_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_at = excluded.until_at
		WHERE bots_leases.until_at <= $4 OR bots_leases.holder = excluded.holder`
	releaseLease = `DELETE FROM bots_leases WHERE name = $1 AND holder = $2`

	tokenColumns = `id, bot, name, hash, scope, created_by, created_at, expires_at, revoked_at`
	insertToken  = `INSERT INTO bots_tokens (` + tokenColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	selectToken  = `SELECT ` + tokenColumns + ` FROM bots_tokens WHERE id = $1`
	selectTokens = `SELECT ` + tokenColumns + ` FROM bots_tokens WHERE bot = $1 ORDER BY created_at, id`
	revokeToken  = `UPDATE bots_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`
	dropHooksOf  = `UPDATE bots_webhooks SET deleted_at = COALESCE(deleted_at, $1) WHERE token = $2`

	hookColumns    = `id, bot, token, url, secret, kinds, rooms, created_by, created_at, deleted_at`
	insertHook     = `INSERT INTO bots_webhooks (` + hookColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	selectHook     = `SELECT ` + hookColumns + ` FROM bots_webhooks WHERE id = $1`
	selectHooks    = `SELECT ` + hookColumns + ` FROM bots_webhooks WHERE deleted_at IS NULL AND ($1 = '' OR bot = $1) ORDER BY created_at, id`
	deleteHook     = `UPDATE bots_webhooks SET deleted_at = COALESCE(deleted_at, $1) WHERE id = $2`
	dropDeliveries = `UPDATE bots_deliveries SET state = 'failed', last_error = 'webhook deleted'
		WHERE state = 'pending' AND hook IN (SELECT id FROM bots_webhooks WHERE deleted_at IS NOT NULL)`

	selectFeed   = `SELECT seq FROM bots_feeds WHERE hook = $1 AND room = $2`
	firstFeed    = `INSERT INTO bots_feeds (hook, room, seq) VALUES ($1, $2, $3) ON CONFLICT (hook, room) DO UPDATE SET seq = excluded.seq WHERE bots_feeds.seq = 0`
	moveFeed     = `UPDATE bots_feeds SET seq = $1 WHERE hook = $2 AND room = $3 AND seq = $4`
	insertQueued = `INSERT INTO bots_deliveries (id, hook, room, seq, kind, state, attempts, next_at, created_at)
		VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7) ON CONFLICT (hook, room, seq) DO NOTHING`

	deliveryColumns = `id, hook, room, seq, kind, state, attempts, next_at, last_status, last_error, created_at, delivered_at`
	claimDeliveries = `UPDATE bots_deliveries SET locked_until = $1
		WHERE id IN (SELECT d.id FROM bots_deliveries d JOIN bots_webhooks w ON w.id = d.hook
			WHERE d.state = 'pending' AND d.next_at <= $2 AND d.locked_until <= $2 AND w.deleted_at IS NULL
			ORDER BY d.next_at, d.id LIMIT $3 FOR UPDATE OF d SKIP LOCKED)
		RETURNING ` + deliveryColumns
	finishAttempt = `UPDATE bots_deliveries SET state = $1, attempts = $2, next_at = $3, last_status = $4, last_error = $5,
		delivered_at = $6, locked_until = 0 WHERE id = $7`
	selectDeliveries = `SELECT ` + deliveryColumns + ` FROM bots_deliveries WHERE hook = $1 ORDER BY created_at, seq`
)

// Store is the bots.Store on PostgreSQL. Its methods are safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

var _ bots.Store = (*Store)(nil)

// New returns a store on pool; call Migrate before first use.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations holds the store's numbered SQL files at its root.
var Migrations = mustSub(migrationFiles, "migrations")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // dir is a constant: this cannot fail at run time
	}
	return sub
}

// Migrate applies the migrations of domain "bots" that are not applied yet.
func (s *Store) Migrate(ctx context.Context) error {
	return pgdb.Migrate(ctx, s.pool, "bots", Migrations)
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func nullMicros(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	us := t.UnixMicro()
	return &us
}

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func fromNull(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return fromMicros(*n)
}

func dbError(err error) error {
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return bots.ErrNotFound
	case errors.As(err, &pe) && pe.Code == "23505":
		return fmt.Errorf("%w: %v", bots.ErrExists, err)
	}
	return err
}

func oneRow(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return bots.ErrNotFound
	}
	return nil
}

// Cursors returns the stored cursors of keys.
func (s *Store) Cursors(ctx context.Context, keys []string) (map[string]bots.Cursor, error) {
	out := map[string]bots.Cursor{}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, selectCursors, keys)
	if err != nil {
		return nil, fmt.Errorf("bots/postgres: cursors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c bots.Cursor
		var at, due, upd, seq int64
		var room string
		if err := rows.Scan(&c.Key, &room, &c.Point, &at, &due, &seq, &upd); err != nil {
			return nil, fmt.Errorf("bots/postgres: cursors: %w", err)
		}
		c.Room, c.At, c.Due, c.Seq, c.UpdatedAt = chat.RoomID(room), fromMicros(at), fromMicros(due), chat.Seq(seq), fromMicros(upd)
		out[c.Key] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("bots/postgres: cursors: %w", err)
	}
	return out, nil
}

// Advance stores c unless its key's cursor is at c.At or later.
func (s *Store) Advance(ctx context.Context, c bots.Cursor) (bool, error) {
	err := oneRow(s.pool.Exec(ctx, upsertCursor, c.Key, string(c.Room), c.Point, micros(c.At), micros(c.Due), int64(c.Seq), micros(c.UpdatedAt)))
	if errors.Is(err, bots.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bots/postgres: advance %s: %w", c.Key, err)
	}
	return true, nil
}

// PruneCursors deletes the cursors of clocks due before before.
func (s *Store) PruneCursors(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, pruneCursors, micros(before))
	if err != nil {
		return 0, fmt.Errorf("bots/postgres: prune cursors: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Lease gives name to holder until until if it is free at now or holder's.
func (s *Store) Lease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	err := oneRow(s.pool.Exec(ctx, takeLease, name, holder, micros(until), micros(now)))
	if errors.Is(err, bots.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bots/postgres: lease %s: %w", name, err)
	}
	return true, nil
}

// ReleaseLease frees name if holder has it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.pool.Exec(ctx, releaseLease, name, holder); err != nil {
		return fmt.Errorf("bots/postgres: release lease %s: %w", name, err)
	}
	return nil
}

// CreateToken stores a new token.
func (s *Store) CreateToken(ctx context.Context, t bots.Token) error {
	scope, err := json.Marshal(t.Scope)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, insertToken, t.ID, string(t.Bot), t.Name, t.Hash, string(scope), string(t.CreatedBy),
		micros(t.CreatedAt), nullMicros(t.ExpiresAt), nullMicros(t.RevokedAt))
	if err != nil {
		return fmt.Errorf("bots/postgres: create token: %w", dbError(err))
	}
	return nil
}

func scanToken(row pgx.Row) (bots.Token, error) {
	var t bots.Token
	var bot, by, scope string
	var created int64
	var expires, revoked *int64
	if err := row.Scan(&t.ID, &bot, &t.Name, &t.Hash, &scope, &by, &created, &expires, &revoked); err != nil {
		return t, err
	}
	if err := json.Unmarshal([]byte(scope), &t.Scope); err != nil {
		return t, fmt.Errorf("token %s: scope: %w", t.ID, err)
	}
	t.Bot, t.CreatedBy, t.CreatedAt, t.ExpiresAt, t.RevokedAt = acl.UserID(bot), acl.UserID(by), fromMicros(created), fromNull(expires), fromNull(revoked)
	return t, nil
}

// Token returns the token with id.
func (s *Store) Token(ctx context.Context, id string) (bots.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, selectToken, id))
	if err != nil {
		return bots.Token{}, fmt.Errorf("bots/postgres: token %s: %w", id, dbError(err))
	}
	return t, nil
}

// Tokens returns the tokens of bot, oldest first.
func (s *Store) Tokens(ctx context.Context, bot acl.UserID) ([]bots.Token, error) {
	rows, err := s.pool.Query(ctx, selectTokens, string(bot))
	if err != nil {
		return nil, fmt.Errorf("bots/postgres: tokens of %s: %w", bot, err)
	}
	defer rows.Close()
	var out []bots.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("bots/postgres: tokens of %s: %w", bot, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *Store) tx(ctx context.Context, f func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, f)
}

// RevokeToken revokes token id and deletes the webhooks that read with it.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := oneRow(tx.Exec(ctx, revokeToken, micros(at), id)); err != nil {
			return fmt.Errorf("bots/postgres: revoke token %s: %w", id, err)
		}
		if _, err := tx.Exec(ctx, dropHooksOf, micros(at), id); err != nil {
			return fmt.Errorf("bots/postgres: revoke token %s: webhooks: %w", id, err)
		}
		if _, err := tx.Exec(ctx, dropDeliveries); err != nil {
			return fmt.Errorf("bots/postgres: revoke token %s: deliveries: %w", id, err)
		}
		return nil
	})
}

// CreateWebhook stores a new webhook.
func (s *Store) CreateWebhook(ctx context.Context, w bots.Webhook) error {
	kinds, _ := json.Marshal(nonNil(w.Kinds))
	rooms, _ := json.Marshal(nonNil(w.Rooms))
	_, err := s.pool.Exec(ctx, insertHook, w.ID, string(w.Bot), w.Token, w.URL, w.Secret, string(kinds), string(rooms),
		string(w.CreatedBy), micros(w.CreatedAt), nullMicros(w.DeletedAt))
	if err != nil {
		return fmt.Errorf("bots/postgres: create webhook: %w", dbError(err))
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func scanHook(row pgx.Row) (bots.Webhook, error) {
	var w bots.Webhook
	var bot, by, kinds, rooms string
	var created int64
	var deleted *int64
	if err := row.Scan(&w.ID, &bot, &w.Token, &w.URL, &w.Secret, &kinds, &rooms, &by, &created, &deleted); err != nil {
		return w, err
	}
	if err := json.Unmarshal([]byte(kinds), &w.Kinds); err != nil {
		return w, fmt.Errorf("webhook %s: kinds: %w", w.ID, err)
	}
	if err := json.Unmarshal([]byte(rooms), &w.Rooms); err != nil {
		return w, fmt.Errorf("webhook %s: rooms: %w", w.ID, err)
	}
	w.Bot, w.CreatedBy, w.CreatedAt, w.DeletedAt = acl.UserID(bot), acl.UserID(by), fromMicros(created), fromNull(deleted)
	return w, nil
}

// Webhook returns the webhook with id.
func (s *Store) Webhook(ctx context.Context, id string) (bots.Webhook, error) {
	w, err := scanHook(s.pool.QueryRow(ctx, selectHook, id))
	if err != nil {
		return bots.Webhook{}, fmt.Errorf("bots/postgres: webhook %s: %w", id, dbError(err))
	}
	return w, nil
}

// Webhooks returns the active webhooks of bot, or of all bots.
func (s *Store) Webhooks(ctx context.Context, bot acl.UserID) ([]bots.Webhook, error) {
	rows, err := s.pool.Query(ctx, selectHooks, string(bot))
	if err != nil {
		return nil, fmt.Errorf("bots/postgres: webhooks: %w", err)
	}
	defer rows.Close()
	var out []bots.Webhook
	for rows.Next() {
		w, err := scanHook(rows)
		if err != nil {
			return nil, fmt.Errorf("bots/postgres: webhooks: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// DeleteWebhook deletes webhook id and drops its pending deliveries.
func (s *Store) DeleteWebhook(ctx context.Context, id string, at time.Time) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := oneRow(tx.Exec(ctx, deleteHook, micros(at), id)); err != nil {
			return fmt.Errorf("bots/postgres: delete webhook %s: %w", id, err)
		}
		if _, err := tx.Exec(ctx, dropDeliveries); err != nil {
			return fmt.Errorf("bots/postgres: delete webhook %s: deliveries: %w", id, err)
		}
		return nil
	})
}

// FeedCursor returns how far hook has queued room.
func (s *Store) FeedCursor(ctx context.Context, hook string, room chat.RoomID) (chat.Seq, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, selectFeed, hook, string(room)).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("bots/postgres: feed %s/%s: %w", hook, room, err)
	}
	return chat.Seq(seq), nil
}

// Enqueue queues ds and moves the feed of (hook, room) from from to to, if it
// is still at from.
func (s *Store) Enqueue(ctx context.Context, hook string, room chat.RoomID, from, to chat.Seq, ds []bots.Delivery) (bool, error) {
	moved := false
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var tag pgconn.CommandTag
		var err error
		if from == 0 {
			tag, err = tx.Exec(ctx, firstFeed, hook, string(room), int64(to))
		} else {
			tag, err = tx.Exec(ctx, moveFeed, int64(to), hook, string(room), int64(from))
		}
		if err := oneRow(tag, err); errors.Is(err, bots.ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("bots/postgres: feed %s/%s: %w", hook, room, err)
		}
		for _, d := range ds {
			if _, err := tx.Exec(ctx, insertQueued, d.ID, hook, string(room), int64(d.Seq), string(d.Kind),
				micros(d.NextAt), micros(d.CreatedAt)); err != nil {
				return fmt.Errorf("bots/postgres: queue %s/%s/%d: %w", hook, room, d.Seq, err)
			}
		}
		moved = true
		return nil
	})
	return moved, err
}

func scanDelivery(row pgx.Row) (bots.Delivery, error) {
	var d bots.Delivery
	var room, kind string
	var seq, next, created int64
	var delivered *int64
	if err := row.Scan(&d.ID, &d.Hook, &room, &seq, &kind, &d.State, &d.Attempts, &next, &d.LastStatus, &d.LastError, &created, &delivered); err != nil {
		return d, err
	}
	d.Room, d.Seq, d.Kind = chat.RoomID(room), chat.Seq(seq), chat.Kind(kind)
	d.NextAt, d.CreatedAt, d.DeliveredAt = fromMicros(next), fromMicros(created), fromNull(delivered)
	return d, nil
}

// ClaimDeliveries claims up to limit pending deliveries due at now.
func (s *Store) ClaimDeliveries(ctx context.Context, now, lockUntil time.Time, limit int) ([]bots.Delivery, error) {
	rows, err := s.pool.Query(ctx, claimDeliveries, micros(lockUntil), micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("bots/postgres: claim deliveries: %w", err)
	}
	defer rows.Close()
	var out []bots.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("bots/postgres: claim deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("bots/postgres: claim deliveries: %w", err)
	}
	sortDeliveries(out)
	return out, nil
}

func sortDeliveries(ds []bots.Delivery) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && (ds[j].NextAt.Before(ds[j-1].NextAt) || (ds[j].NextAt.Equal(ds[j-1].NextAt) && ds[j].ID < ds[j-1].ID)); j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

// FinishAttempt stores the outcome of an attempt and releases the claim.
func (s *Store) FinishAttempt(ctx context.Context, d bots.Delivery) error {
	err := oneRow(s.pool.Exec(ctx, finishAttempt, d.State, d.Attempts, micros(d.NextAt), d.LastStatus, d.LastError,
		nullMicros(d.DeliveredAt), d.ID))
	if err != nil {
		return fmt.Errorf("bots/postgres: finish delivery %s: %w", d.ID, err)
	}
	return nil
}

// Deliveries returns the deliveries of hook, oldest first.
func (s *Store) Deliveries(ctx context.Context, hook string) ([]bots.Delivery, error) {
	rows, err := s.pool.Query(ctx, selectDeliveries, hook)
	if err != nil {
		return nil, fmt.Errorf("bots/postgres: deliveries of %s: %w", hook, err)
	}
	defer rows.Close()
	var out []bots.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("bots/postgres: deliveries of %s: %w", hook, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
