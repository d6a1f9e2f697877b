package postgres

import (
	"sync"

	"caseroom/chat"
	"caseroom/chat/chatsql"
)

// headCache remembers, per room, the head of its log as this node last
// committed it (a batch, an entry alone, the room's creation), so that the
// next batch can chain its entries onto it without first locking and reading
// it (commitKnown). It is only a hint: commitKnown advances a room only from
// the head it chained onto, and a room whose head has moved meanwhile (by
// another node, or by a commit whose answer was lost) is forgotten and its
// entries committed by commitLocked.
type headCache struct {
	mu sync.Mutex
	m  map[chat.RoomID]head // guarded by mu
}

// headCacheSize bounds the rooms remembered: about 150 bytes each.
const headCacheSize = 1 << 16

// lookup returns copies of the heads of every room of ps, or nil unless all
// are remembered.
func (c *headCache) lookup(ps []*chatsql.Pending) map[chat.RoomID]*head {
	c.mu.Lock()
	defer c.mu.Unlock()
	heads := make(map[chat.RoomID]*head, len(ps))
	for _, p := range ps {
		id := p.M.Room
		if heads[id] != nil {
			continue
		}
		h, ok := c.m[id]
		if !ok {
			return nil
		}
		heads[id] = &h
	}
	return heads
}

// remember keeps h as room's head; an archived room's is forgotten, since no
// plain entry can follow it.
func (c *headCache) remember(room chat.RoomID, h *head) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.archived {
		delete(c.m, room)
		return
	}
	if c.m == nil {
		c.m = make(map[chat.RoomID]head)
	}
	if len(c.m) >= headCacheSize {
		// Full: let an eighth go, whichever the map yields first.
		n := headCacheSize / 8
		for k := range c.m {
			if n--; n < 0 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[room] = head{seq: h.seq, hash: h.hash, lastAt: h.lastAt, membersAt: h.membersAt}
}

// forget drops the rooms of heads.
func (c *headCache) forget(heads map[chat.RoomID]*head) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range heads {
		delete(c.m, id)
	}
}
