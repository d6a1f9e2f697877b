package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"caseroom/acl/aclhttp"
	"caseroom/acl/httpjson"
	"caseroom/casework/bots"
	"caseroom/casework/casehttp"
	"caseroom/chat/chathttp"
	"caseroom/chat/chatws"
	"caseroom/docs"
	"caseroom/webclient"
)

// routes is every URL the server answers, in one place.
//
//	/healthz, /readyz, /metrics      operations
//	/api/v1/openapi.json             the API description
//	/api/v1/auth/…                   login, refresh, logout (no token needed)
//	/api/v1/ws                       the WebSocket (the token comes in its first frame)
//	/api/v1/…                        everything else, behind the access-token middleware
//	/                                the web client (webclient.Handler); other /api/ paths answer JSON 404
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Respond(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.ready)
	mux.Handle("GET /metrics", a.metrics)
	mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(docs.OpenAPI)
	})

	acls := aclhttp.NewHandler(a.dir, a.auth, a.log.With("pkg", "aclhttp"))
	for _, r := range aclhttp.PublicRoutes() {
		mux.Handle(r.Method+" "+r.Pattern, acls)
	}
	mux.Handle("GET /api/v1/ws", chatws.NewHandler(a.hub, a.chat, a.auth.VerifyAccess,
		chatws.Options{OriginPatterns: a.cfg.Origins}, a.log.With("pkg", "chatws")))

	// Everything else under /api/v1 needs a valid access token.
	private := http.NewServeMux()
	private.Handle("/api/v1/rooms", chathttp.NewHandler(a.chat, a.log.With("pkg", "chathttp")))
	private.Handle("/api/v1/rooms/", chathttp.NewHandler(a.chat, a.log.With("pkg", "chathttp")))
	cases := casehttp.NewHandler(a.cases, a.log.With("pkg", "casehttp"))
	for _, r := range casehttp.Routes() {
		private.Handle(r.Method+" "+r.Pattern, cases)
	}
	botAdmin := bots.NewHandler(a.platform, a.due, a.now, a.log.With("pkg", "bots"))
	for _, r := range bots.Routes() {
		private.Handle(r.Method+" "+r.Pattern, botAdmin)
	}
	// Bots authenticate with their own tokens, so their gateway sits beside the
	// access-token middleware.
	gateway := bots.NewBotHandler(a.platform, a.now, a.log.With("pkg", "botgw"))
	for _, r := range bots.BotRoutes() {
		mux.Handle(r.Method+" "+r.Pattern, gateway)
	}
	private.Handle("/api/v1/", acls)
	mux.Handle("/api/v1/", a.auth.Middleware(private, aclhttp.AuthError(a.log)))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.WriteError(w, http.StatusNotFound, httpjson.ErrorInfo{Code: "not_found", Message: "no such endpoint"})
	})
	mux.Handle("/", webclient.Handler())
	return a.observe(securityHeaders(mux))
}

// ready answers 200 when the database answers and every migration is applied.
func (a *app) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.st.ping(ctx); err != nil {
		httpjson.WriteError(w, http.StatusServiceUnavailable, httpjson.ErrorInfo{Code: "store_unreachable", Message: "the database does not answer"})
		return
	}
	if n, err := a.st.pending(ctx); err != nil || n > 0 {
		httpjson.WriteError(w, http.StatusServiceUnavailable, httpjson.ErrorInfo{Code: "migrations_pending", Message: "database migrations are not applied"})
		return
	}
	httpjson.Respond(w, http.StatusOK, map[string]string{"status": "ready"})
}

// securityHeaders sets the headers every response carries. The web client's
// handler adds its Content-Security-Policy.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

type ctxKey int

const requestIDKey ctxKey = iota

// observe gives each request an id (X-Request-Id, echoed), logs it when done and
// counts it in the metrics.
func (a *app) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			b := make([]byte, 8)
			rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rec, r.WithContext(ctx))
		d := time.Since(start)
		a.metrics.request(r.Method, rec.status, d)
		level := slog.LevelDebug
		if rec.status >= 500 {
			level = slog.LevelWarn
		}
		if a.log.Enabled(ctx, level) { // spares building the record's values for a level not logged
			a.log.Log(ctx, level, "http request", "request_id", id, "method", r.Method, "path", r.URL.Path,
				"status", rec.status, "duration_ms", d.Milliseconds())
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController and websocket.Accept reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
