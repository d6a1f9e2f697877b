package postgres

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"caseroom/acl"
)

// RevocationChannel is where the database announces revocations (migration
// 002): "s:<session>" when a session is revoked, "u:<user>" when a user is
// disabled.
const RevocationChannel = "caseroom_revoked"

// ListenerName is the listener connection's application_name.
const ListenerName = "caseroom revocation feed"

// listenCheck is how often an idle listener makes sure its connection is
// still there; a listener that cannot tell is not trusted.
var listenCheck = 10 * time.Second

// A RevocationFeed is what ListenRevocations tells: each revocation, and
// whether it is listening (caseroomd's feed, over token.Auth, implements it).
type RevocationFeed interface {
	acl.Revocations
	// FeedLive says the feed started (true: every revocation from now on will
	// be told) or stopped (false: some may be missed).
	FeedLive(live bool)
}

// ListenRevocations listens on RevocationChannel, on a connection of its own
// (not one of pool's), until ctx ends, telling feed of every revocation. When
// the connection fails it tells feed it stopped and connects again, with
// backoff.
func ListenRevocations(ctx context.Context, pool *pgxpool.Pool, feed RevocationFeed, log *slog.Logger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := listenOnce(ctx, pool, feed)
		feed.FeedLive(false)
		if ctx.Err() != nil {
			return
		}
		log.Warn("acl/postgres: revocation feed lost; sessions are read again every 2 s until it is back", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func listenOnce(ctx context.Context, pool *pgxpool.Pool, feed RevocationFeed) error {
	cfg := pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = ListenerName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+RevocationChannel); err != nil {
		return err
	}
	// Listening from here on: what was revoked before is what the store says.
	feed.FeedLive(true)
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			kind, id, _ := strings.Cut(n.Payload, ":")
			switch kind {
			case "s":
				feed.ForgetSession(id)
			case "u":
				feed.ForgetUser(acl.UserID(id))
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// Quiet for a while: is the connection still there?
			pctx, cancel := context.WithTimeout(ctx, listenCheck)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}
