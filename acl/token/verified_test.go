package token

import (
	"errors"
	"testing"
	"time"

	"caseroom/acl"
)

// TestVerifiedTokensAnswerAsAFullCheck checks that remembering verified tokens
// changes no answer: a token verified once is still expired after its expiry,
// still refused before its issue time, and its subject is the caller's own.
func TestVerifiedTokensAnswerAsAFullCheck(t *testing.T) {
	iss := mustIssuer(t, nil)
	tok, exp, err := iss.Issue(testSubject, t0)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	for _, c := range []struct {
		at   time.Time
		want error
	}{
		{t0, nil},
		{t0.Add(time.Minute), nil}, // answered from memory
		{exp.Add(DefaultLeeway + time.Second), acl.ErrTokenExpired}, // past its expiry
		{t0.Add(time.Minute), nil},
		{t0.Add(-DefaultLeeway - time.Minute), acl.ErrTokenInvalid}, // the clock went back before iat
		{exp.Add(DefaultLeeway + time.Hour), acl.ErrTokenExpired},
	} {
		got, err := iss.Verify(tok, c.at)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("Verify(token, %v) = %v, want %v", c.at, err, c.want)
			continue
		}
		if err == nil {
			if got.User != testSubject.User || got.Session != testSubject.Session {
				t.Errorf("Verify(token, %v) = %+v, want %+v", c.at, got, testSubject)
			}
			got.Roles[0] = "changed by the caller"
		}
	}
	if s, err := iss.Verify(tok, t0); err != nil || s.Roles[0] != testSubject.Roles[0] {
		t.Errorf("Verify after a caller changed its copy = %v, %v; want roles %v", s.Roles, err, testSubject.Roles)
	}
	if _, err := iss.Verify(tok[:len(tok)-2]+"xx", t0); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("Verify(forged signature) = %v, want acl.ErrTokenInvalid", err)
	}
}
