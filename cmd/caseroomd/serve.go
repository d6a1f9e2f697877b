package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"caseroom/acl"
	"caseroom/acl/audit"
	aclpg "caseroom/acl/postgres"
	aclsqlite "caseroom/acl/sqlite"
	"caseroom/acl/token"
	"caseroom/casework"
	"caseroom/casework/bots"
	"caseroom/chat"
	"caseroom/chat/chatsql"
	"caseroom/chat/membroker"
	"caseroom/chat/redisbroker"
	"caseroom/configs"
)

// app is one node: its stores, services and hub, built from a Config.
type app struct {
	cfg    Config
	log    *slog.Logger
	st     *stores
	data   fs.FS // configs: embedded, or CASEROOM_CONFIGS
	kinds  []acl.KindInfo
	domain *casework.Domain
	guard  *acl.Guard
	auth   *token.Auth
	dir    *acl.Directory
	broker chat.Broker
	redis  *redis.Client // nil on a single node
	chat   *chat.Service
	cases  *casework.Service
	// The deadline bot and the bot platform (casework/bots).
	registry  *chat.Registry
	scheduler *bots.Scheduler
	platform  *bots.Platform
	due       *bots.Due
	hub       *chat.Hub
	metrics   *metrics
	now       func() time.Time
}

// newApp opens the stores, migrates them, loads and validates the data files and
// builds every service. A bad data file stops the start naming file and field.
func newApp(ctx context.Context, cfg Config, log *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: log, now: time.Now, data: configs.FS, metrics: newMetrics()}
	if cfg.Configs != "" {
		a.data = os.DirFS(cfg.Configs)
	}
	var err error
	if a.kinds, err = acl.LoadUnitKinds(a.data, "unit-kinds.json"); err != nil {
		return nil, fmt.Errorf("configs: %w", err)
	}
	policy, err := acl.LoadPolicy(a.data, "policy.json", acl.KindIDs(a.kinds))
	if err != nil {
		return nil, fmt.Errorf("configs: %w", err)
	}
	regions, err := acl.LoadRegions(a.data, "regions.csv")
	if err != nil {
		return nil, fmt.Errorf("configs: %w", err)
	}
	// Procedures, clocks, the holiday calendar and evidence checklists.
	if a.domain, err = casework.Load(a.data, "."); err != nil {
		return nil, fmt.Errorf("configs: %w", err)
	}

	if a.st, err = openStores(ctx, cfg); err != nil {
		return nil, err
	}
	if err := a.st.migrate(ctx); err != nil {
		a.st.close()
		return nil, err
	}
	// The region tree ships as data; the directory keeps it so that the record
	// names regions even if a later file changes. Import it when it is new.
	if stored, err := a.st.acl.Regions(ctx); err != nil {
		a.st.close()
		return nil, err
	} else if len(stored) == 0 {
		rec := systemRecord("directory.import", "regions", fmt.Sprintf(`{"regions":%d}`, len(regions)), a.now())
		if err := a.st.acl.PutRegions(ctx, regions, rec); err != nil {
			a.st.close()
			return nil, err
		}
	}
	stored, err := a.st.acl.Regions(ctx)
	if err != nil {
		a.st.close()
		return nil, err
	}
	a.guard = acl.NewGuard(policy, acl.NewRegions(stored), a.st.acl, a.now)

	issuer, err := token.LoadIssuer(ctx, a.st.acl, token.IssuerConfig{TTL: cfg.AccessTTL})
	if err != nil {
		a.st.close()
		return nil, err
	}
	a.auth = token.NewAuth(a.st.acl, issuer, token.AuthConfig{
		AccessTTL: cfg.AccessTTL, RefreshTTL: cfg.RefreshTTL, MaxFailures: cfg.MaxFailures, LockFor: cfg.LockFor,
		PasswordParams: token.PasswordParams{Memory: cfg.Argon2Memory},
	}, a.now)

	if cfg.Redis == "" {
		a.broker = membroker.New(0)
	} else {
		opts, err := redis.ParseURL(cfg.Redis)
		if err != nil {
			a.st.close()
			return nil, fmt.Errorf("CASEROOM_REDIS: %w", err)
		}
		rc := redis.NewClient(opts)
		if err := rc.Ping(ctx).Err(); err != nil {
			a.st.close()
			return nil, fmt.Errorf("CASEROOM_REDIS: %w", err)
		}
		a.redis = rc
		a.broker = redisbroker.New(rc, "caseroom:", 0)
	}
	kinds := chat.NewRegistry()
	casework.RegisterKinds(kinds)
	bots.RegisterKinds(kinds)
	a.registry = kinds
	a.chat = chat.NewService(a.st.chat, a.broker, a.guard, a.st.acl, kinds, a.now, log.With("pkg", "chat"), chat.Options{
		MaxText: cfg.MaxText, MaxUpload: cfg.MaxUpload, PostRate: cfg.PostRate})
	a.hub = chat.NewHub(a.st.chat, a.broker, log.With("pkg", "hub"), chat.HubOptions{})
	a.registerMetrics()

	a.cases = casework.NewService(a.chat, a.st.chat, a.st.cases, a.guard, a.st.acl, a.domain.Procedures, stored, a.now,
		log.With("pkg", "casework"), casework.Options{Clocks: a.domain.Clocks, Calendar: a.domain.Calendar,
			Checklists: a.domain.Checklists, Audit: a.st.acl})
	if err := a.newBots(ctx, stored, log.With("pkg", "bots")); err != nil {
		a.close()
		return nil, err
	}

	a.dir = acl.NewDirectory(a.st.acl, a.guard, a.auth, a.kinds, a.now, log.With("pkg", "acl"))
	a.dir.GeneratePassword = func() (string, error) { return token.GeneratePassword(), nil }
	a.dir.OnUnitCreated = func(ctx context.Context, u acl.Unit) error {
		_, err := a.chat.EnsureUnitRoom(ctx, u, acl.ConsoleSubject())
		return err
	}
	a.dir.OnSessionsRevoked = func(u acl.UserID) {
		a.auth.ForgetUser(u)
		a.broker.Publish(context.Background(), chat.Event{Type: chat.EvRevoke, User: u})
	}
	return a, nil
}

func (a *app) close() {
	if a.redis != nil {
		a.redis.Close()
	}
	a.st.close()
}

// systemRecord is the audit record of something the server does by itself.
func systemRecord(action, target, detail string, at time.Time) audit.Record {
	return audit.Record{Stream: audit.StreamDirectory, At: at, Actor: "system", Action: action, Target: target, Outcome: "ok", Detail: detail}
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, file := commonFlags("serve", stderr)
	demo := fs.Bool("demo", false, "seed demo units and users (printing their passwords once) before serving")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*file, getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	if *demo {
		if err := seedDemo(ctx, a, stdout); err != nil {
			return err
		}
		// The seed made the root committee: build the deadline bot again, so
		// that it is a named user of that unit from this first start on.
		regions, err := a.st.acl.Regions(ctx)
		if err != nil {
			return err
		}
		if err := a.newBots(ctx, regions, a.log.With("pkg", "bots")); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("CASEROOM_ADDR: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	startPprof(ctx, getenv, log)
	hubDone := make(chan error, 1)
	go func() { hubDone <- a.hub.Run(ctx) }()
	a.background(ctx)
	// Revocations made anywhere — another node, the admin command, a refresh
	// token's reuse — end this node's sockets of the session or user and its
	// cached session answers: at once on PostgreSQL (its NOTIFY feed), within
	// a second on SQLite (a poll of the revocation log).
	feed := revocationFeed{auth: a.auth, hub: a.hub, log: a.log}
	if a.st.pool != nil {
		go aclpg.ListenRevocations(ctx, a.st.pool, feed, a.log.With("pkg", "acl"))
	} else if as, ok := a.st.acl.(*aclsqlite.Store); ok {
		go as.PollRevocations(ctx, feed, a.log.With("pkg", "acl"))
	}

	srv := &http.Server{
		Handler:           a.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("caseroomd serving", "addr", ln.Addr().String(), "database", a.st.kind, "version", version)
	fmt.Fprintf(stdout, "caseroomd listening on http://%s\n", ln.Addr())
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return err
	case err := <-hubDone:
		return fmt.Errorf("hub stopped: %w", err)
	case <-ctx.Done():
	}
	// Graceful shutdown: stop accepting, let requests finish within the grace
	// period; sockets are closed with "going away" and clients resume elsewhere.
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	sctx, scancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer scancel()
	err = srv.Shutdown(sctx)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		srv.Close()
	}
	return nil
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// A revocationFeed passes what the database says was revoked to the session
// cache and the hub, whose sockets of that session or user end (close code
// 4003).
type revocationFeed struct {
	auth *token.Auth
	hub  *chat.Hub
	log  *slog.Logger
}

func (f revocationFeed) ForgetSession(session string) {
	f.auth.ForgetSession(session)
	f.hub.Revoke("", session)
}

func (f revocationFeed) ForgetUser(user acl.UserID) {
	f.auth.ForgetUser(user)
	f.hub.Revoke(user, "")
}

// FeedLive passes the feed's state on; when it goes live (at the first LISTEN
// and after every reconnection) it also sweeps the hub: a revocation made
// while nothing listened was never told, so every open socket's session is
// read again from the store (the cache was just emptied) and the revoked
// ones end. A revocation made after the LISTEN arrives as a notification.
func (f revocationFeed) FeedLive(live bool) {
	f.auth.FeedLive(live)
	if live {
		go f.sweep(context.Background())
	}
}

// sweep ends the sockets whose session the store says is revoked. A session
// it could not read (the store failing) keeps its sockets, and is logged.
func (f revocationFeed) sweep(ctx context.Context) {
	unread := 0
	var lastErr error
	for _, s := range f.hub.Subjects() {
		err := f.auth.CheckSession(ctx, s)
		switch {
		case err == nil:
		case errors.Is(err, acl.ErrTokenInvalid) && s.Session != "":
			f.hub.Revoke("", s.Session)
		case errors.Is(err, acl.ErrTokenInvalid):
			f.hub.Revoke(s.User, "") // a bot's, which has no session
		default:
			unread, lastErr = unread+1, err
		}
	}
	if unread > 0 {
		f.log.Warn("revocation feed back: sessions of open sockets could not be read again; their sockets stay open",
			"sessions", unread, "err", lastErr)
	}
}

// registerMetrics adds the hub's and the store's figures to /metrics.
func (a *app) registerMetrics() {
	m, hub := a.metrics, a.hub
	m.gauge("caseroom_ws_sessions", "WebSocket sessions joined to the hub on this node.",
		func() float64 { return float64(hub.Stats().Sessions) })
	m.gauge("caseroom_ws_users", "Users with at least one WebSocket session on this node.",
		func() float64 { return float64(hub.Stats().Users) })
	m.gauge("caseroom_ws_rooms", "Rooms with at least one WebSocket session on this node.",
		func() float64 { return float64(hub.Stats().Rooms) })
	m.counter("caseroom_ws_slow_consumers_total", "Sessions ended because their send queue was full (close code 4008).",
		func() float64 { return float64(hub.Stats().SlowConsumers) })
	m.counter("caseroom_ws_revoked_total", "Sessions ended by a revocation (close code 4003).",
		func() float64 { return float64(hub.Stats().Revoked) })
	if cs, ok := a.st.chat.(interface{ CommitStats() chatsql.GroupStats }); ok {
		m.counter("caseroom_commit_batches_total", "Group commits of log entries (one transaction each, or one per entry after a failure).",
			func() float64 { return float64(cs.CommitStats().Batches) })
		m.counter("caseroom_commit_entries_total", "Appends the group commits held; divided by the batches, how much each commit is shared.",
			func() float64 { return float64(cs.CommitStats().Entries) })
		m.counter("caseroom_commit_seconds_total", "Time spent in group commits, database round trips and WAL flush included.",
			func() float64 { return cs.CommitStats().Committing.Seconds() })
		m.counter("caseroom_commit_known_batches_total", "Group commits made in one statement onto the rooms' heads as this node last committed them (PostgreSQL).",
			func() float64 { return float64(cs.CommitStats().Known) })
		m.counter("caseroom_commit_stale_heads_total", "Rooms of such commits whose head had moved by another path, committed again under their locks (PostgreSQL).",
			func() float64 { return float64(cs.CommitStats().Stale) })
	}
}
