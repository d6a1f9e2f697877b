package token

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"
	"unsafe"

	"caseroom/acl"
)

// maxVerified bounds the tokens an Issuer remembers as verified; when full it
// forgets the expired ones, and all of them if none has expired.
const maxVerified = 1 << 16

// A verifiedCache remembers access tokens whose signature and claims checked
// out, with their subject, from when they were checked until they expire.
// Within that window a full check gives the same answer (a later time cannot
// make an issue or not-before time invalid); a clock that went back makes the
// entry useless rather than wrong. Revocation is not the Issuer's business:
// Auth.CheckSession asks about the session on every request. Tokens are
// remembered by their SHA-256, not their text: a token is some 400 bytes, and
// every open socket's is remembered.
type verifiedCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]verifiedToken // guarded by mu
}

type verifiedToken struct {
	s     acl.Subject
	from  time.Time // when it was verified
	until time.Time // exp + leeway: from then on it is expired
}

func (c *verifiedCache) get(token string, now time.Time) (acl.Subject, bool) {
	c.mu.Lock()
	v, ok := c.m[tokenKey(token)]
	c.mu.Unlock()
	if !ok || now.Before(v.from) || !now.Before(v.until) {
		return acl.Subject{}, false
	}
	s := v.s
	s.Roles = slices.Clone(s.Roles) // the caller's to keep
	return s, true
}

func (c *verifiedCache) put(token string, s acl.Subject, now, until time.Time) {
	s.Roles = slices.Clone(s.Roles)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[sha256.Size]byte]verifiedToken{}
	}
	if len(c.m) >= maxVerified {
		for k, v := range c.m {
			if !now.Before(v.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxVerified {
			clear(c.m)
		}
	}
	c.m[tokenKey(token)] = verifiedToken{s: s, from: now, until: until}
}

// tokenKey is the SHA-256 of token, read in place: every request looks its
// token up, and copying its 400 bytes to hash them cost an allocation of
// about 600 bytes per request. Sum256 neither keeps nor changes what it reads.
func tokenKey(token string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}
