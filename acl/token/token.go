// Package token turns credentials into a verified acl.Subject: argon2id password
// hashes, short-lived EdDSA-signed JWT access tokens, rotating refresh tokens with
// reuse detection, login lockout, and the HTTP middleware that puts the subject of
// a request into its context.
//
// An access token is a JWT signed with Ed25519 ("EdDSA", the only algorithm
// accepted) whose claims carry the subject, so that checking one costs no storage
// read; what the token cannot know — that its session was revoked since — Auth
// checks through a cache that forgets within two seconds (see Auth.VerifyAccess).
package token

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"caseroom/acl"
)

// SigningKeyName is the name under which the Ed25519 seed of access tokens is
// kept in acl.Store.SigningKey, shared by every node.
const SigningKeyName = "jwt-ed25519"

// Defaults of IssuerConfig.
const (
	DefaultIssuer    = "caseroom"
	DefaultAudience  = "caseroom"
	DefaultAccessTTL = 10 * time.Minute
	DefaultLeeway    = 5 * time.Second
)

// maxTokenLen bounds what Verify will parse; tokens it issues are far shorter.
const maxTokenLen = 8 << 10

// GenerateSigningKey returns a new random 32-byte Ed25519 seed. It is the
// generate function for acl.Store.SigningKey.
func GenerateSigningKey() ([]byte, error) {
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed) // never fails (crypto/rand since Go 1.24)
	return seed, nil
}

// A KeyStore keeps named signing keys; acl.Store is one.
type KeyStore interface {
	SigningKey(ctx context.Context, name string, generate func() ([]byte, error)) ([]byte, error)
}

// LoadIssuer returns an Issuer whose key is the seed stored under SigningKeyName,
// which the first node to start generates and keeps, so that every node signs and
// verifies with the same key.
func LoadIssuer(ctx context.Context, keys KeyStore, cfg IssuerConfig) (*Issuer, error) {
	seed, err := keys.SigningKey(ctx, SigningKeyName, GenerateSigningKey)
	if err != nil {
		return nil, fmt.Errorf("token: load signing key: %w", err)
	}
	return NewIssuer(seed, cfg)
}

// IssuerConfig sets the fixed claims and times of access tokens. Zero fields take
// their defaults.
type IssuerConfig struct {
	Issuer   string        // the "iss" claim written and required; default "caseroom"
	Audience string        // the "aud" claim written and required; default "caseroom"
	TTL      time.Duration // lifetime of tokens made by Issue; default 10m
	Leeway   time.Duration // clock skew forgiven on exp, nbf and iat; default 5s
}

// An Issuer signs and verifies access tokens with one Ed25519 key. It is safe for
// concurrent use.
type Issuer struct {
	key ed25519.PrivateKey
	pub ed25519.PublicKey
	cfg IssuerConfig

	verified verifiedCache // tokens already verified, so each costs one signature check
}

// NewIssuer returns an Issuer for the 32-byte Ed25519 seed. A seed of another
// length is an error.
func NewIssuer(seed []byte, cfg IssuerConfig) (*Issuer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("token: signing key is %d bytes, want an Ed25519 seed of %d", len(seed), ed25519.SeedSize)
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultAccessTTL
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = DefaultLeeway
	}
	key := ed25519.NewKeyFromSeed(seed)
	return &Issuer{key: key, pub: key.Public().(ed25519.PublicKey), cfg: cfg}, nil
}

// PublicKey returns the key that verifies the Issuer's tokens.
func (i *Issuer) PublicKey() ed25519.PublicKey { return i.pub }

// claims are the JWT claims of an access token.
type claims struct {
	jwt.RegisteredClaims          // iss, sub, aud, exp, nbf, iat, jti
	Session              string   `json:"sid,omitempty"`
	Unit                 string   `json:"unit"`
	UnitKind             string   `json:"unit_kind"`
	Region               string   `json:"region"`
	Roles                []string `json:"roles"`
	Name                 string   `json:"name"`
	Bot                  bool     `json:"bot,omitempty"`
}

// errClaims marks a token whose signature and times are fine but whose own
// claims are not what Issue writes.
var errClaims = errors.New("claims incomplete")

// Validate is called by the jwt parser after the registered claims checks.
func (c *claims) Validate() error {
	switch {
	case c.Subject == "":
		return fmt.Errorf("%w: no sub", errClaims)
	case c.ID == "":
		return fmt.Errorf("%w: no jti", errClaims)
	case c.IssuedAt == nil:
		return fmt.Errorf("%w: no iat", errClaims)
	case c.Session == "" && !c.Bot:
		return fmt.Errorf("%w: no sid", errClaims)
	case c.Unit == "":
		return fmt.Errorf("%w: no unit", errClaims)
	}
	return nil
}

// Issue returns a signed access token for s, valid from now for the configured
// TTL, and its expiry (whole seconds, as the token states it). s must name a user
// and, unless it is a bot, a session.
func (i *Issuer) Issue(s acl.Subject, now time.Time) (token string, expires time.Time, err error) {
	return i.issue(s, now, i.cfg.TTL)
}

func (i *Issuer) issue(s acl.Subject, now time.Time, ttl time.Duration) (string, time.Time, error) {
	if s.User == "" || s.Unit == "" || (s.Session == "" && !s.Bot) {
		return "", time.Time{}, errors.New("token: subject needs a user, a unit and, unless a bot, a session")
	}
	roles := make([]string, len(s.Roles))
	for k, r := range s.Roles {
		roles[k] = string(r)
	}
	iat := jwt.NewNumericDate(now)
	exp := jwt.NewNumericDate(now.Add(ttl))
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.cfg.Issuer,
			Subject:   string(s.User),
			Audience:  jwt.ClaimStrings{i.cfg.Audience},
			ExpiresAt: exp,
			NotBefore: iat,
			IssuedAt:  iat,
			ID:        rand.Text(),
		},
		Session:  s.Session,
		Unit:     string(s.Unit),
		UnitKind: string(s.UnitKind),
		Region:   string(s.Region),
		Roles:    roles,
		Name:     s.Name,
		Bot:      s.Bot,
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &c).SignedString(i.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: sign: %w", err)
	}
	return signed, exp.Time, nil
}

// Verify checks token as of now and returns the subject it carries. It accepts
// only EdDSA signatures by this Issuer's key, with the configured issuer and
// audience, an expiry, an issue time not after now and, when present, a
// not-before time not after now (each within the leeway). A token that is sound
// but past its expiry answers an error wrapping acl.ErrTokenExpired; every other
// failure wraps acl.ErrTokenInvalid. Verify does not know about revoked sessions:
// Auth.VerifyAccess does.
//
// A token verified once is remembered (verified.go) until its expiry, so that
// a client sending it with every request costs one signature check, not one
// per request; the answer is the same as a full check's.
func (i *Issuer) Verify(token string, now time.Time) (acl.Subject, error) {
	if s, ok := i.verified.get(token, now); ok {
		return s, nil
	}
	s, until, err := i.verify(token, now)
	if err == nil {
		i.verified.put(token, s, now, until)
	}
	return s, err
}

// verify checks token in full and returns its subject and the time from which
// it is expired (its exp plus the leeway).
func (i *Issuer) verify(token string, now time.Time) (acl.Subject, time.Time, error) {
	if token == "" || len(token) > maxTokenLen {
		return acl.Subject{}, time.Time{}, fmt.Errorf("token: empty or oversized: %w", acl.ErrTokenInvalid)
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(i.cfg.Issuer),
		jwt.WithAudience(i.cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(i.cfg.Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithStrictDecoding(),
	)
	var c claims
	_, err := p.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return i.pub, nil })
	if err != nil {
		if onlyExpired(err) {
			return acl.Subject{}, time.Time{}, fmt.Errorf("token: %v: %w", err, acl.ErrTokenExpired)
		}
		return acl.Subject{}, time.Time{}, fmt.Errorf("token: %v: %w", err, acl.ErrTokenInvalid)
	}
	roles := make([]acl.Role, len(c.Roles))
	for k, r := range c.Roles {
		roles[k] = acl.Role(r)
	}
	return acl.Subject{
		User:     acl.UserID(c.Subject),
		Name:     c.Name,
		Unit:     acl.UnitID(c.Unit),
		UnitKind: acl.UnitKind(c.UnitKind),
		Region:   acl.RegionCode(c.Region),
		Roles:    roles,
		Bot:      c.Bot,
		Session:  c.Session,
	}, c.ExpiresAt.Time.Add(i.cfg.Leeway), nil
}

// onlyExpired reports whether err says the token was verified and its one fault
// is its expiry. The signature is checked before the claims, so an expired
// token here is one this Issuer signed.
func onlyExpired(err error) bool {
	if !errors.Is(err, jwt.ErrTokenExpired) {
		return false
	}
	for _, other := range []error{
		jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable, jwt.ErrTokenSignatureInvalid,
		jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenInvalidAudience, jwt.ErrTokenInvalidIssuer,
		jwt.ErrTokenUsedBeforeIssued, jwt.ErrTokenNotValidYet, jwt.ErrTokenInvalidSubject,
		jwt.ErrTokenInvalidId, jwt.ErrInvalidType, errClaims,
	} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}
