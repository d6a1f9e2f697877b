package sqlite

import (
	"context"
	"log/slog"
	"time"

	"caseroom/acl"
)

// pollEvery is how often PollRevocations looks; revocationKeep how long a
// row of acl_revocations is kept before the poller deletes it.
var (
	pollEvery      = time.Second
	revocationKeep = 24 * time.Hour
	pollStarted    = func() {} // a test's hook: the poller knows where the log stands
)

// PollRevocations tells feed of every revocation written to acl_revocations
// (migration 002's triggers) after it starts, about once a second, until ctx
// ends. It finds those of other processes too — the admin command disabling
// a user writes to the same file — which is what it is for: the server's own
// revocations end their sockets at once through the hub. It also deletes the
// rows older than a day.
func (s *Store) PollRevocations(ctx context.Context, feed acl.Revocations, log *slog.Logger) {
	var last int64
	if err := s.db.Read.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM acl_revocations`).Scan(&last); err != nil {
		if ctx.Err() == nil {
			log.Error("acl/sqlite: revocation poller could not start", "err", err)
		}
		return
	}
	pollStarted()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	pruned := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.pollRevocations(ctx, &last, feed)
		if err != nil && ctx.Err() == nil {
			log.Warn("acl/sqlite: reading revocations", "err", err)
		}
		if n == 0 && time.Since(pruned) > time.Hour {
			pruned = time.Now()
			cutoff := time.Now().Add(-revocationKeep).Unix()
			if _, err := s.db.Write.ExecContext(ctx, `DELETE FROM acl_revocations WHERE at < ?`, cutoff); err != nil && ctx.Err() == nil {
				log.Warn("acl/sqlite: pruning revocations", "err", err)
			}
		}
	}
}

// pollRevocations tells feed of the revocations after *last and moves *last.
func (s *Store) pollRevocations(ctx context.Context, last *int64, feed acl.Revocations) (int, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT seq, kind, id FROM acl_revocations WHERE seq > ? ORDER BY seq`, *last)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var seq int64
		var kind, id string
		if err := rows.Scan(&seq, &kind, &id); err != nil {
			return n, err
		}
		switch kind {
		case "s":
			feed.ForgetSession(id)
		case "u":
			feed.ForgetUser(acl.UserID(id))
		}
		*last = seq
		n++
	}
	return n, rows.Err()
}
