package token

import (
	"fmt"
	"testing"
	"time"
)

// A store read that began before a revocation was announced must not be
// cached, or it would undo the revocation for up to the TTL.
func TestSessionCacheDropsReadsOlderThanAForget(t *testing.T) {
	for name, forget := range map[string]func(c *sessionCache){
		"forgetUser":    func(c *sessionCache) { c.forgetUser("u1") },
		"forgetSession": func(c *sessionCache) { c.forgetSession("s1") },
		"forgetAll":     func(c *sessionCache) { c.forgetAll() },
		"revoke other":  func(c *sessionCache) { c.revoke("s2", "u2", t0) },
	} {
		c := newSessionCache(2 * time.Second)
		_, ok, gen := c.get(sessionKey("s1"), t0)
		if ok {
			t.Fatalf("%s: empty cache answered", name)
		}
		forget(c) // the revocation lands while the store is being read
		c.put(sessionKey("s1"), "u1", true, t0, gen)
		if _, ok, _ := c.get(sessionKey("s1"), t0); ok {
			t.Errorf("%s: an active answer read before the forget was cached", name)
		}
		// An inactive answer is safe to keep whatever happened meanwhile.
		c.put(sessionKey("s1"), "u1", false, t0, gen)
		if active, ok, _ := c.get(sessionKey("s1"), t0); !ok || active {
			t.Errorf("%s: inactive answer = %v, %v; want cached inactive", name, active, ok)
		}
	}
}

func TestSessionCacheExpiry(t *testing.T) {
	c := newSessionCache(2 * time.Second)
	_, _, gen := c.get(sessionKey("s1"), t0)
	c.put(sessionKey("s1"), "u1", true, t0, gen)
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{
		{t0, true},
		{t0.Add(1999 * time.Millisecond), true},
		{t0.Add(2 * time.Second), false},
		{t0.Add(-time.Second), false}, // the clock went back: trust nothing
	} {
		if _, ok, _ := c.get(sessionKey("s1"), tc.at); ok != tc.ok {
			t.Errorf("get at %v: cached %v, want %v", tc.at.Sub(t0), ok, tc.ok)
		}
	}
	c.revoke("s1", "u1", t0)
	if active, ok, _ := c.get(sessionKey("s1"), t0); !ok || active {
		t.Errorf("after revoke: %v, %v; want cached inactive", active, ok)
	}
}

func TestSessionCacheForgetUserKeepsOthers(t *testing.T) {
	c := newSessionCache(2 * time.Second)
	_, _, gen := c.get("", t0)
	c.put(sessionKey("a1"), "ua", true, t0, gen)
	c.put(sessionKey("a2"), "ua", true, t0, gen)
	c.put(botKey("ua"), "ua", true, t0, gen)
	c.put(sessionKey("b1"), "ub", true, t0, gen)
	c.forgetUser("ua")
	for key, want := range map[string]bool{sessionKey("a1"): false, sessionKey("a2"): false, botKey("ua"): false, sessionKey("b1"): true} {
		if _, ok, _ := c.get(key, t0); ok != want {
			t.Errorf("after forgetUser(ua), %s cached %v, want %v", key, ok, want)
		}
	}
}

func TestSessionCacheSweepsExpiredEntries(t *testing.T) {
	c := newSessionCache(2 * time.Second)
	_, _, gen := c.get("", t0)
	for i := range sweepFloor - 1 {
		c.put(sessionKey(fmt.Sprint(i)), "u", true, t0, gen)
	}
	later := t0.Add(3 * time.Second)
	c.put(sessionKey("new"), "u", true, later, gen)
	if n := len(c.entries); n != 1 {
		t.Errorf("after a sweep %d entries remain, want 1", n)
	}
}

func TestSessionCacheDisabled(t *testing.T) {
	c := newSessionCache(0)
	_, _, gen := c.get("", t0)
	c.put(sessionKey("s"), "u", true, t0, gen)
	if _, ok, _ := c.get(sessionKey("s"), t0); ok {
		t.Errorf("a cache with TTL 0 answered")
	}
}
