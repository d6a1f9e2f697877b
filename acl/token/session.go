package token

import (
	"sync"
	"sync/atomic"
	"time"

	"caseroom/acl"
)

// MaxSessionCacheTTL bounds how long a node trusts its cached answer to "is this
// session still active?". A revocation made on another node (or straight in the
// store) is seen here within this long; one made through this node's Auth, or
// announced to it with ForgetUser or ForgetSession, is seen at once.
const MaxSessionCacheTTL = 2 * time.Second

// FeedSessionCacheTTL is how long the answer is trusted while a revocation
// feed is live (Auth.FeedLive): then every revocation, wherever it was made, is
// announced at once, and the cache only saves store reads. The feed checks its
// own connection more often than this (acl/postgres listenCheck).
const FeedSessionCacheTTL = 30 * time.Second

// sweepFloor is the size below which the cache does not bother to sweep.
const sweepFloor = 4096

// A sessionCache remembers, per session (and per bot, whose tokens carry no
// session), whether the store said it was active, for at most ttl.
//
// A forget bumps gen; a store read that began before it (and so may have seen
// the state before the revocation) is then not cached, so that a revocation
// cannot be undone by a slow read finishing after it.
type sessionCache struct {
	ttl time.Duration // without a live feed

	live atomic.Bool // a revocation feed is live: trust answers for FeedSessionCacheTTL

	mu      sync.Mutex
	gen     uint64                // guarded by mu
	entries map[string]cacheEntry // guarded by mu
	sweepAt int                   // guarded by mu: sweep expired entries when len(entries) reaches it
}

type cacheEntry struct {
	user    acl.UserID
	active  bool
	checked time.Time // when the store said so (or when this node revoked it)
}

func newSessionCache(ttl time.Duration) *sessionCache {
	return &sessionCache{ttl: ttl, entries: make(map[string]cacheEntry), sweepAt: sweepFloor}
}

func sessionKey(sid string) string  { return "s:" + sid }
func botKey(user acl.UserID) string { return "u:" + string(user) }

// fresh reports whether e may still be trusted at now. A clock that went back
// makes every entry stale rather than long-lived.
func (c *sessionCache) fresh(e cacheEntry, now time.Time) bool {
	ttl := c.ttl
	if ttl > 0 && c.live.Load() {
		ttl = FeedSessionCacheTTL
	}
	return !now.Before(e.checked) && now.Sub(e.checked) < ttl
}

// feedLive records that a revocation feed started or stopped. Starting, it
// forgets every answer (revocations before it were not announced); stopping,
// answers older than ttl go stale at once.
func (c *sessionCache) feedLive(live bool) {
	if live {
		c.forgetAll()
	}
	c.live.Store(live)
}

// get returns the cached answer for key, whether there was a fresh one, and the
// generation to pass to put after reading the store.
func (c *sessionCache) get(key string, now time.Time) (active, ok bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, found := c.entries[key]
	if found && c.fresh(e, now) {
		return e.active, true, c.gen
	}
	return false, false, c.gen
}

// put caches the store's answer for key, read after a get that returned gen.
// It drops an active answer when something was forgotten meanwhile.
func (c *sessionCache) put(key string, user acl.UserID, active bool, now time.Time, gen uint64) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if active && gen != c.gen {
		return
	}
	c.putLocked(key, cacheEntry{user: user, active: active, checked: now}, now)
}

func (c *sessionCache) putLocked(key string, e cacheEntry, now time.Time) {
	c.entries[key] = e
	if len(c.entries) >= c.sweepAt {
		for k, old := range c.entries {
			if !c.fresh(old, now) {
				delete(c.entries, k)
			}
		}
		c.sweepAt = max(sweepFloor, 2*len(c.entries))
	}
}

// revoke records that this node revoked the session sid: it answers inactive at
// once, here, and the store answers so afterwards.
func (c *sessionCache) revoke(sid string, user acl.UserID, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.putLocked(sessionKey(sid), cacheEntry{user: user, active: false, checked: now}, now)
}

// forgetUser drops every entry of user, so that the next check of each of its
// sessions (or of the bot) reads the store.
func (c *sessionCache) forgetUser(user acl.UserID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.entries {
		if e.user == user {
			delete(c.entries, k)
		}
	}
}

// forgetSession drops the entry of session sid.
func (c *sessionCache) forgetSession(sid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.entries, sessionKey(sid))
}

// forgetAll drops every entry: a session was revoked whose id this node does
// not know (a reused refresh token names none), so every session is re-read.
func (c *sessionCache) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}
