package token

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"caseroom/acl"
)

// VerifyAccess checks an access token as of now — its signature and claims
// (Issuer.Verify) and that its session is still active (CheckSession) — and
// returns its subject. It is what Authenticate does after reading the header,
// for transports that receive the token otherwise (the WebSocket's first frame).
// Errors wrap acl.ErrTokenExpired or acl.ErrTokenInvalid, or are the store's.
func (a *Auth) VerifyAccess(ctx context.Context, token string) (acl.Subject, error) {
	s, err := a.issuer.Verify(token, a.now())
	if err != nil {
		return acl.Subject{}, err
	}
	if err := a.CheckSession(ctx, s); err != nil {
		return acl.Subject{}, err
	}
	return s, nil
}

// CheckSession answers nil while s's session is active, and an error wrapping
// acl.ErrTokenInvalid once it is revoked (logout, reuse of a refresh token, the
// user disabled or their password reset) or unknown. For a bot, whose tokens
// carry no session, it checks that the bot still exists and is enabled.
//
// The answer is cached for at most SessionCacheTTL (2s by default), or
// FeedSessionCacheTTL while a revocation feed is live (FeedLive): a revocation
// made through this Auth, or announced with ForgetUser or ForgetSession (as the
// feed does for every revocation), is seen at once; without a feed, one made
// on another node is seen here within SessionCacheTTL. Long-lived connections
// call it again from time to time.
func (a *Auth) CheckSession(ctx context.Context, s acl.Subject) error {
	now := a.now()
	key := sessionKey(s.Session)
	if s.Bot && s.Session == "" {
		key = botKey(s.User)
	}
	active, ok, gen := a.cache.get(key, now)
	if !ok {
		var err error
		if s.Bot && s.Session == "" {
			active, err = a.botActive(ctx, s.User)
		} else {
			active, err = a.store.SessionActive(ctx, s.Session)
		}
		if err != nil {
			return fmt.Errorf("token: check session: %w", err)
		}
		a.cache.put(key, s.User, active, now, gen)
	}
	if !active {
		if s.Bot && s.Session == "" {
			return fmt.Errorf("token: bot %s disabled: %w", s.User, acl.ErrTokenInvalid)
		}
		return fmt.Errorf("token: session revoked: %w", acl.ErrTokenInvalid)
	}
	return nil
}

func (a *Auth) botActive(ctx context.Context, id acl.UserID) (bool, error) {
	u, err := a.store.User(ctx, id)
	if errors.Is(err, acl.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return u.Bot && !u.Disabled, nil
}

// Authenticate returns the subject of r's "Authorization: Bearer <token>"
// header, checked by VerifyAccess. A request without a bearer token answers
// acl.ErrUnauthenticated; a bad, expired or revoked token the errors of
// VerifyAccess.
func (a *Auth) Authenticate(r *http.Request) (acl.Subject, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return acl.Subject{}, fmt.Errorf("token: no bearer token: %w", acl.ErrUnauthenticated)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return acl.Subject{}, fmt.Errorf("token: no bearer token: %w", acl.ErrUnauthenticated)
	}
	return a.VerifyAccess(r.Context(), tok)
}

// Middleware serves next only to authenticated requests, with the subject in
// the request context (acl.SubjectFrom). Any other request goes to onError with
// the error of Authenticate; a nil onError answers 401 with a
// "WWW-Authenticate: Bearer" challenge (RFC 6750), or 500 when the store failed.
// Routes open to anonymous callers (login, refresh) are mounted beside it.
func (a *Auth) Middleware(next http.Handler, onError func(w http.ResponseWriter, r *http.Request, err error)) http.Handler {
	if onError == nil {
		onError = writeAuthError
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := a.Authenticate(r)
		if err != nil {
			onError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(acl.WithSubject(r.Context(), s)))
	})
}

func writeAuthError(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case errors.Is(err, acl.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="caseroom"`)
	case errors.Is(err, acl.ErrTokenExpired):
		w.Header().Set("WWW-Authenticate", `Bearer realm="caseroom", error="invalid_token", error_description="the token has expired"`)
	case errors.Is(err, acl.ErrTokenInvalid):
		w.Header().Set("WWW-Authenticate", `Bearer realm="caseroom", error="invalid_token"`)
	default:
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}
