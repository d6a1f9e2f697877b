package chat

import (
	"context"
	"fmt"

	"caseroom/acl/audit"
)

// VerifyRoom reads room's whole log from s and checks its hash chain: seqs from 1
// without gaps, each entry's Prev equal to the hash before it, each Hash
// recomputed from the entry's content, and the log ending exactly at the room's
// head (so entries cut from the end, or appended past it, are noticed too). It
// returns an *audit.ChainError naming the first bad seq, or nil when the log is
// intact.
func VerifyRoom(ctx context.Context, s Store, room RoomID) error {
	r, err := s.Room(ctx, room)
	if err != nil {
		return fmt.Errorf("chat: verify %s: %w", room, err)
	}
	var (
		after Seq
		prev  []byte
	)
	for {
		links, err := s.Chain(ctx, room, after, MaxPage)
		if err != nil {
			return fmt.Errorf("chat: read chain of %s: %w", room, err)
		}
		if len(links) == 0 {
			if after != r.Head {
				return &audit.ChainError{Seq: int64(min(after, r.Head) + 1),
					Reason: fmt.Sprintf("the log ends at seq %d but the room's head is %d", after, r.Head)}
			}
			return nil
		}
		al := make([]audit.Link, len(links))
		for i, l := range links {
			al[i] = audit.Link{Seq: int64(l.Seq), Prev: l.Prev, Hash: l.Hash, Canonical: l.Canonical}
		}
		if err := audit.VerifyLinks(int64(after)+1, prev, al); err != nil {
			return err
		}
		last := links[len(links)-1]
		after, prev = last.Seq, last.Hash
	}
}
