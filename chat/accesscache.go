package chat

import (
	"sync"

	"caseroom/acl"
)

// accessCache remembers, per room and member, the room and membership a post
// was decided on, so that a member's next post to the room needs no store
// read before its commit. It is only a hint: Post hands the role it decided
// on to the store (WithSenderRole), which checks it under the room's lock, so
// a membership changed meanwhile — on any node — refuses the post with
// ErrRoleChanged and Post decides again from the store. Only posts use it;
// reads always ask the store. Room fields an access decision depends on
// (kind, owner unit, region) never change; a stale head or archived flag is
// caught by Post (reply_to) or by the store (archived).
type accessCache struct {
	mu    sync.Mutex
	max   int
	items map[accessKey]accessEntry
}

type accessKey struct {
	room RoomID
	user acl.UserID
}

type accessEntry struct {
	room   Room
	member Membership
}

func newAccessCache(max int) *accessCache {
	return &accessCache{max: max, items: map[accessKey]accessEntry{}}
}

func (c *accessCache) get(room RoomID, user acl.UserID) (accessEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[accessKey{room, user}]
	return e, ok
}

func (c *accessCache) put(room RoomID, user acl.UserID, e accessEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items) >= c.max {
		// Full: let an eighth go, whichever the map yields first (Go's map
		// order is random), rather than keep a recency list per entry.
		n := c.max / 8
		for k := range c.items {
			if n--; n < 0 {
				break
			}
			delete(c.items, k)
		}
	}
	c.items[accessKey{room, user}] = e
}

func (c *accessCache) forget(room RoomID, user acl.UserID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.items, accessKey{room, user})
}
