package token

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"caseroom/acl"
)

// t0 is a real date: token times are compared with real clocks in production.
var t0 = time.Date(2025, 3, 14, 9, 30, 0, 0, time.FixedZone("CST", 8*3600))

var testSubject = acl.Subject{
	User:     "u-zhang",
	Name:     "张三",
	Unit:     "150102-procuratorate",
	UnitKind: "procuratorate",
	Region:   "150102",
	Roles:    []acl.Role{acl.Officer, acl.Leader},
	Session:  "sess-1",
}

func mustIssuer(t *testing.T, seed []byte) *Issuer {
	t.Helper()
	if seed == nil {
		seed = bytes.Repeat([]byte{7}, ed25519.SeedSize)
	}
	i, err := NewIssuer(seed, IssuerConfig{})
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	return i
}

// mapClaims are the claims Issue would write for testSubject at now; tests alter
// them to build tokens Issue never would.
func mapClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":       "caseroom",
		"aud":       []string{"caseroom"},
		"sub":       "u-zhang",
		"sid":       "sess-1",
		"unit":      "150102-procuratorate",
		"unit_kind": "procuratorate",
		"region":    "150102",
		"roles":     []string{"officer"},
		"name":      "张三",
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(10 * time.Minute).Unix(),
		"jti":       "jti-1",
	}
}

func mustSign(t *testing.T, m jwt.SigningMethod, c jwt.Claims, key any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// shortSig re-encodes the first 48 bytes of a signature, so that the token
// parses and only the signature check can refuse it.
func shortSig(sig string) string {
	b, _ := base64.RawURLEncoding.DecodeString(sig)
	return base64.RawURLEncoding.EncodeToString(b[:48])
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	iss := mustIssuer(t, nil)
	tok, exp, err := iss.Issue(testSubject, t0)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if want := t0.Add(DefaultAccessTTL); !exp.Equal(want) {
		t.Errorf("Issue expires %v, want %v", exp, want)
	}
	for _, at := range []time.Time{t0, t0.Add(-DefaultLeeway), t0.Add(DefaultAccessTTL - time.Second)} {
		got, err := iss.Verify(tok, at)
		if err != nil {
			t.Fatalf("Verify(token, %v): %v", at, err)
		}
		if got.User != testSubject.User || got.Name != testSubject.Name || got.Unit != testSubject.Unit ||
			got.UnitKind != testSubject.UnitKind || got.Region != testSubject.Region ||
			!slices.Equal(got.Roles, testSubject.Roles) || got.Bot || got.Session != testSubject.Session {
			t.Errorf("Verify(Issue(%+v)) = %+v", testSubject, got)
		}
	}
	// The claims are the ones documented, and the header names EdDSA.
	parts := strings.Split(tok, ".")
	var hdr, body map[string]any
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(h, &hdr) != nil || json.Unmarshal(p, &body) != nil {
		t.Fatalf("token parts do not decode: %q", tok)
	}
	if hdr["alg"] != "EdDSA" {
		t.Errorf("header alg = %v, want EdDSA", hdr["alg"])
	}
	for _, k := range []string{"iss", "aud", "sub", "sid", "unit", "unit_kind", "region", "roles", "name", "iat", "exp", "jti"} {
		if _, ok := body[k]; !ok {
			t.Errorf("claims %v lack %q", body, k)
		}
	}
	// Each token has its own id.
	tok2, _, _ := iss.Issue(testSubject, t0)
	var body2 map[string]any
	p2, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok2, ".")[1])
	json.Unmarshal(p2, &body2)
	if body["jti"] == body2["jti"] {
		t.Errorf("two tokens share jti %v", body["jti"])
	}
}

func TestIssueBotWithoutSession(t *testing.T) {
	iss := mustIssuer(t, nil)
	bot := acl.Subject{User: "bot-deadline", Unit: "150000-committee", UnitKind: acl.Committee, Region: "150000", Bot: true}
	tok, _, err := iss.Issue(bot, t0)
	if err != nil {
		t.Fatalf("Issue(bot): %v", err)
	}
	got, err := iss.Verify(tok, t0)
	if err != nil || !got.Bot || got.Session != "" || got.User != bot.User {
		t.Errorf("Verify(bot token) = %+v, %v", got, err)
	}
	if _, _, err := iss.Issue(acl.Subject{User: "u", Unit: "x"}, t0); err == nil {
		t.Errorf("Issue(user without session) succeeded, want an error")
	}
}

func TestNewIssuerRejectsBadSeed(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewIssuer(make([]byte, n), IssuerConfig{}); err == nil {
			t.Errorf("NewIssuer(%d-byte seed) succeeded, want an error", n)
		}
	}
}

func TestGenerateSigningKey(t *testing.T) {
	a, err := GenerateSigningKey()
	if err != nil || len(a) != ed25519.SeedSize {
		t.Fatalf("GenerateSigningKey() = %d bytes, %v; want 32, nil", len(a), err)
	}
	b, _ := GenerateSigningKey()
	if bytes.Equal(a, b) {
		t.Errorf("GenerateSigningKey returned the same seed twice")
	}
}

// TestVerifyRejects builds every kind of bad token and checks the sentinel each
// one answers.
func TestVerifyRejects(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	iss := mustIssuer(t, seed)
	key := ed25519.NewKeyFromSeed(seed)
	otherKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize))
	good, _, _ := iss.Issue(testSubject, t0)
	parts := strings.Split(good, ".")

	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := mapClaims(t0)
		edit(c)
		return c
	}
	for _, tc := range []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"expired", good, t0.Add(DefaultAccessTTL + DefaultLeeway + time.Second), acl.ErrTokenExpired},
		{"expired exactly at exp plus leeway", good, t0.Add(DefaultAccessTTL + DefaultLeeway), acl.ErrTokenExpired},
		{"expired and wrong issuer", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) { c["iss"] = "evil" }), key),
			t0.Add(time.Hour), acl.ErrTokenInvalid},
		{"expired and signed by another key", mustSign(t, jwt.SigningMethodEdDSA, mapClaims(t0), otherKey),
			t0.Add(time.Hour), acl.ErrTokenInvalid},
		{"used before issued", good, t0.Add(-DefaultLeeway - time.Second), acl.ErrTokenInvalid},
		{"not before in the future", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) {
			c["nbf"] = t0.Add(time.Minute).Unix()
		}), key), t0, acl.ErrTokenInvalid},
		{"iat in the future", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) {
			c["iat"] = t0.Add(time.Minute).Unix()
			delete(c, "nbf")
		}), key), t0, acl.ErrTokenInvalid},
		{"signed with another Ed25519 key", mustSign(t, jwt.SigningMethodEdDSA, mapClaims(t0), otherKey), t0, acl.ErrTokenInvalid},
		{"alg none", b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(mapClaims(t0)) + ".", t0, acl.ErrTokenInvalid},
		{"alg none with the real signature", b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "." + parts[2], t0, acl.ErrTokenInvalid},
		{"HS256 keyed with the Ed25519 public key", mustSign(t, jwt.SigningMethodHS256, mapClaims(t0), []byte(key.Public().(ed25519.PublicKey))), t0, acl.ErrTokenInvalid},
		{"HS256 keyed with the Ed25519 seed", mustSign(t, jwt.SigningMethodHS256, mapClaims(t0), seed), t0, acl.ErrTokenInvalid},
		{"HS256 with some secret", mustSign(t, jwt.SigningMethodHS256, mapClaims(t0), []byte("secret")), t0, acl.ErrTokenInvalid},
		{"wrong issuer", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) { c["iss"] = "someone-else" }), key), t0, acl.ErrTokenInvalid},
		{"no issuer", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) { delete(c, "iss") }), key), t0, acl.ErrTokenInvalid},
		{"wrong audience", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) { c["aud"] = []string{"other-app"} }), key), t0, acl.ErrTokenInvalid},
		{"no audience", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) { delete(c, "aud") }), key), t0, acl.ErrTokenInvalid},
		{"missing exp", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) { delete(c, "exp") }), key), t0, acl.ErrTokenInvalid},
		{"exp not a number", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }), key), t0, acl.ErrTokenInvalid},
		{"missing iat", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) { delete(c, "iat") }), key), t0, acl.ErrTokenInvalid},
		{"missing sub", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) { delete(c, "sub") }), key), t0, acl.ErrTokenInvalid},
		{"missing sid for a user", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) { delete(c, "sid") }), key), t0, acl.ErrTokenInvalid},
		{"missing jti", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) { delete(c, "jti") }), key), t0, acl.ErrTokenInvalid},
		{"roles not a list", mustSign(t, jwt.SigningMethodEdDSA, with(func(c jwt.MapClaims) { c["roles"] = "sysadmin" }), key), t0, acl.ErrTokenInvalid},
		{"truncated signature", good[:len(good)-4], t0, acl.ErrTokenInvalid},
		{"signature cut to 48 bytes", parts[0] + "." + parts[1] + "." + shortSig(parts[2]), t0, acl.ErrTokenInvalid},
		{"no signature", parts[0] + "." + parts[1] + ".", t0, acl.ErrTokenInvalid},
		{"signature of another token", parts[0] + "." + b64(with(func(c jwt.MapClaims) { c["roles"] = []string{"sysadmin"} })) + "." + parts[2], t0, acl.ErrTokenInvalid},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], t0, acl.ErrTokenInvalid},
		{"empty", "", t0, acl.ErrTokenInvalid},
		{"garbage", "garbage", t0, acl.ErrTokenInvalid},
		{"two dots", "a.b.c", t0, acl.ErrTokenInvalid},
		{"four parts", good + ".x", t0, acl.ErrTokenInvalid},
		{"bearer prefix left on", "Bearer " + good, t0, acl.ErrTokenInvalid},
		{"oversized", good + strings.Repeat("A", maxTokenLen), t0, acl.ErrTokenInvalid},
		{"binary", "\x00\xff.\x01.\x02", t0, acl.ErrTokenInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := iss.Verify(tc.token, tc.at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify(%.60q…, %v) = %+v, %v; want %v", tc.token, tc.at, s, err, tc.want)
			}
			other := acl.ErrTokenExpired
			if tc.want == acl.ErrTokenExpired {
				other = acl.ErrTokenInvalid
			}
			if errors.Is(err, other) {
				t.Errorf("Verify error %v is both %v and %v", err, tc.want, other)
			}
			if s.User != "" {
				t.Errorf("Verify returned subject %+v with its error", s)
			}
		})
	}
}

// The signing key comes from the store: the first node to start generates and
// keeps it, later ones (sharing the database) get the same one, so their tokens
// verify across; another database has another key.
func TestLoadIssuerSharesTheStoredKey(t *testing.T) {
	ctx := context.Background()
	e := mustEnv(t) // has loaded the issuer once already
	b, err := LoadIssuer(ctx, e.store, IssuerConfig{})
	if err != nil {
		t.Fatalf("LoadIssuer (second node): %v", err)
	}
	if !e.issuer.PublicKey().Equal(b.PublicKey()) {
		t.Errorf("two nodes on one store have different keys")
	}
	seed, err := e.store.SigningKey(ctx, SigningKeyName, func() ([]byte, error) {
		t.Errorf("SigningKey generated a new key though one is stored")
		return GenerateSigningKey()
	})
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("stored key %q: %d bytes, %v; want %d", SigningKeyName, len(seed), err, ed25519.SeedSize)
	}
	tok, _, _ := e.issuer.Issue(testSubject, t0)
	if _, err := b.Verify(tok, t0); err != nil {
		t.Errorf("node b rejects node a's token: %v", err)
	}
	other := mustEnv(t)
	if _, err := other.issuer.Verify(tok, t0); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("another deployment accepts the token: %v", err)
	}
}
