package storetest

import (
	"errors"
	"fmt"
	"testing"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/chat"
)

// The tamper tests change a room's log in SQL, past the store, the way someone
// with access to the database could, and check that chat.VerifyRoom names the
// first entry that no longer verifies.

// tamperRoom makes room with ten entries, its room.create and nine posts, the
// fifth of which sets every hashed field, and checks that it verifies.
func tamperRoom(t *testing.T, s chat.Store, room chat.RoomID) []chat.Message {
	t.Helper()
	mustCreate(t, s, room, ref(alice, chat.Owner), ref(bob, ""), ref(carol, ""))
	for seq := 2; seq <= 10; seq++ {
		m := text(room, bob, fmt.Sprintf("entry %d", seq))
		if seq == 5 {
			m.Kind = "casework.transfer"
			m.ClientID = "client-5"
			m.ReplyTo = 3
			m.Mentions = []acl.UserID{bob, carol}
			m.Payload = []byte(`{"n": 1, "a": [1,2]}`)
			m.Target = 2
			m.OccurredAt = base
		}
		mustAppend(t, s, m, 0)
	}
	mustVerify(t, s, room)
	return mustAll(t, s, room)
}

// checkBroken checks that VerifyRoom finds room's chain broken first at want.
func checkBroken(t *testing.T, s chat.Store, room chat.RoomID, what string, want int64) {
	t.Helper()
	err := chat.VerifyRoom(t.Context(), s, room)
	ce, ok := errors.AsType[*audit.ChainError](err)
	if !ok {
		t.Errorf("VerifyRoom(%s) after %s = %v, want an *audit.ChainError at seq %d", room, what, err, want)
		return
	}
	if ce.Seq != want {
		t.Errorf("VerifyRoom(%s) after %s: broken at seq %d (%s), want seq %d", room, what, ce.Seq, ce.Reason, want)
	}
}

func tamperUpdateBody(t *testing.T, s chat.Store, exec Exec) {
	tamperRoom(t, s, "r1")
	exec(t, s, `UPDATE chat_messages SET body = 'nothing happened' WHERE room = $1 AND seq = 5`, "r1")
	checkBroken(t, s, "r1", "a changed body at 5", 5)
}

func tamperUpdateAnyHashedColumn(t *testing.T, s chat.Store, exec Exec) {
	for i, set := range []string{
		`kind = 'text'`,
		`sender = 'mallory'`,
		`sender_unit = '150100-court'`,
		`client_id = 'client-6'`,
		`client_id = NULL`,
		`reply_to = reply_to + 1`,
		`mentions = '["carol","bob"]'`,
		`mentions = '[]'`,
		`mentions = 'not a JSON array'`,
		`payload = NULL`,
		`payload = '{"n": 2, "a": [1,2]}'`,
		`payload = '{"a": [1,2], "n": 1}'`, // the same JSON value, other bytes
		`target = 0`,
		`occurred_at = occurred_at + 1`,
		`occurred_at = NULL`,
		`created_at = created_at - 1`,
		`prev = hash`,
		`hash = prev`,
	} {
		room := chat.RoomID(fmt.Sprintf("r%d", i))
		tamperRoom(t, s, room)
		exec(t, s, `UPDATE chat_messages SET `+set+` WHERE room = $1 AND seq = 5`, string(room))
		checkBroken(t, s, room, "SET "+set+" at 5", 5)
	}
}

func tamperDeleteEntry(t *testing.T, s chat.Store, exec Exec) {
	tamperRoom(t, s, "mid")
	exec(t, s, `DELETE FROM chat_messages WHERE room = $1 AND seq = 5`, "mid")
	checkBroken(t, s, "mid", "deleting entry 5", 5)

	tamperRoom(t, s, "first")
	exec(t, s, `DELETE FROM chat_messages WHERE room = $1 AND seq = 1`, "first")
	checkBroken(t, s, "first", "deleting entry 1", 1)

	// Renumbering what follows does not hide the gap: 6 now claims 4's hash.
	tamperRoom(t, s, "closed")
	exec(t, s, `DELETE FROM chat_messages WHERE room = $1 AND seq = 5`, "closed")
	exec(t, s, `UPDATE chat_messages SET seq = -seq WHERE room = $1 AND seq > 5`, "closed")
	exec(t, s, `UPDATE chat_messages SET seq = -seq - 1 WHERE room = $1 AND seq < 0`, "closed")
	checkBroken(t, s, "closed", "deleting entry 5 and renumbering the rest", 5)

	// Cutting entries off the end leaves a valid chain, but shorter than the
	// room's head says.
	tamperRoom(t, s, "tail")
	exec(t, s, `DELETE FROM chat_messages WHERE room = $1 AND seq >= 9`, "tail")
	checkBroken(t, s, "tail", "deleting entries 9 and 10", 9)
}

func tamperInsertForgedEntry(t *testing.T, s chat.Store, exec Exec) {
	// A forged entry 6 that is itself a perfect link after 5: the entries moved
	// up to make room still carry the seqs and predecessors they were hashed with.
	all := tamperRoom(t, s, "mid")
	forged := all[4] // entry 5
	forged.Seq, forged.ClientID, forged.Body = 6, "", "a forged order"
	forged.Prev = all[4].Hash
	forged.Hash = audit.Next(forged.Prev, forged.Canonical())
	exec(t, s, `UPDATE chat_messages SET seq = -seq WHERE room = $1 AND seq >= 6`, "mid")
	exec(t, s, `UPDATE chat_messages SET seq = 1 - seq WHERE room = $1 AND seq < 0`, "mid")
	exec(t, s, `INSERT INTO chat_messages (room, seq, kind, sender, sender_unit, client_id, reply_to,
		mentions, body, payload, target, occurred_at, created_at, prev, hash, edited, retracted, countable)
		SELECT room, 6, kind, sender, sender_unit, NULL, reply_to, mentions, $2, payload, target,
		occurred_at, created_at, $3, $4, edited, retracted, countable
		FROM chat_messages WHERE room = $1 AND seq = 5`, "mid", forged.Body, forged.Prev, forged.Hash)
	if got := mustMessage(t, s, "mid", 6); got.Body != forged.Body || len(mustAll(t, s, "mid")) != 11 {
		t.Fatalf("the forgery did not take: Message(mid, 6) = %q", got.Body)
	}
	checkBroken(t, s, "mid", "inserting a forged entry 6", 7)

	// A copy of an old entry appended at the end still names its old predecessor.
	tamperRoom(t, s, "end")
	exec(t, s, `INSERT INTO chat_messages (room, seq, kind, sender, sender_unit, client_id, reply_to,
		mentions, body, payload, target, occurred_at, created_at, prev, hash, edited, retracted, countable)
		SELECT room, 11, kind, sender, sender_unit, NULL, reply_to, mentions, body, payload, target,
		occurred_at, created_at, prev, hash, edited, retracted, countable
		FROM chat_messages WHERE room = $1 AND seq = 3`, "end")
	checkBroken(t, s, "end", "copying entry 3 to 11", 11)
}

func tamperReorderEntries(t *testing.T, s chat.Store, exec Exec) {
	swap := func(room chat.RoomID, a, b int) {
		exec(t, s, `UPDATE chat_messages SET seq = -1 WHERE room = $1 AND seq = $2`, string(room), a)
		exec(t, s, `UPDATE chat_messages SET seq = $2 WHERE room = $1 AND seq = $3`, string(room), a, b)
		exec(t, s, `UPDATE chat_messages SET seq = $2 WHERE room = $1 AND seq = -1`, string(room), b)
	}
	tamperRoom(t, s, "adjacent")
	swap("adjacent", 4, 5)
	checkBroken(t, s, "adjacent", "swapping entries 4 and 5", 4)

	tamperRoom(t, s, "apart")
	swap("apart", 3, 8)
	checkBroken(t, s, "apart", "swapping entries 3 and 8", 3)

	tamperRoom(t, s, "last")
	swap("last", 9, 10)
	checkBroken(t, s, "last", "swapping entries 9 and 10", 9)
}
