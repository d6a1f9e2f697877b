package postgres

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"caseroom/acl/audit"
	"caseroom/chat"
	"caseroom/chat/chatsql"
)

const (
	// The rooms of a batch, locked in id order so that two batches (on two
	// nodes) never wait for each other in a cycle.
	lockHeads = `SELECT id, head_seq, head_hash, archived, last_at, members_at FROM chat_rooms
	WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE`

	// The roles of the batch's senders whose callers named one (chatsql.CheckRole).
	selectRoles = `SELECT room, user_id, role FROM chat_members
	WHERE (room, user_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`

	insertEntries = `INSERT INTO chat_messages (room, seq, kind, sender, sender_unit, client_id,
	reply_to, mentions, body, payload, target, occurred_at, created_at, prev, hash, countable)
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
	$7::bigint[], $8::text[], $9::text[], $10::bytea[], $11::bigint[], $12::bigint[], $13::bigint[],
	$14::bytea[], $15::bytea[], $16::boolean[])`

	advanceHeads = `UPDATE chat_rooms r SET head_seq = v.seq, head_hash = v.hash, last_at = v.at
	FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[]) AS v(id, seq, hash, at)
	WHERE r.id = v.id`

	// commitKnown's one statement: each room's head advances only if it is
	// still the one the batch chained onto (its time too, which the entries'
	// stamps follow) and the room is not archived; the entries of the rooms
	// that advanced are inserted, and their ids answered. A head that has not
	// moved also means the room's members have not changed since it was
	// remembered (a change is an entry), which commitKnown checks against the
	// entries' access decisions before it sends the batch. The UPDATE takes
	// the rooms' row locks as lockHeads would, in id order (the arrays are
	// sorted) as far as the join keeps it: batches of one node never share a
	// room (laneOf), and in a deadlock with another node's batch PostgreSQL
	// aborts one of the two, which falls back to committing entry by entry.
	advanceAndInsert = `WITH up AS (
	UPDATE chat_rooms r SET head_seq = v.seq, head_hash = v.hash, last_at = v.at
	FROM unnest($17::text[], $18::bigint[], $19::bytea[], $20::bigint[], $21::bigint[], $22::bytea[], $23::bigint[])
		AS v(id, seq, hash, at, was_seq, was_hash, was_at)
	WHERE r.id = v.id AND r.head_seq = v.was_seq AND r.head_hash = v.was_hash AND r.last_at = v.was_at
		AND NOT r.archived
	RETURNING r.id
), ins AS (
	INSERT INTO chat_messages (room, seq, kind, sender, sender_unit, client_id,
	reply_to, mentions, body, payload, target, occurred_at, created_at, prev, hash, countable)
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
	$7::bigint[], $8::text[], $9::text[], $10::bytea[], $11::bigint[], $12::bigint[], $13::bigint[],
	$14::bytea[], $15::bytea[], $16::boolean[]) AS u(room, seq, kind, sender, sender_unit, client_id,
	reply_to, mentions, body, payload, target, occurred_at, created_at, prev, hash, countable)
	WHERE u.room IN (SELECT id FROM up)
)
SELECT id FROM up`
)

// batchTimeout bounds one batch's transaction: the leader's own request may
// be cancelled while it commits the others'.
const batchTimeout = 30 * time.Second

// commitBatch answers every pending of batch, in order: runs of entries
// without an effect in one transaction each (a run of one too: commitPlain
// takes one or two round trips where appendOne takes four), an entry with an
// effect alone.
func (s *Store) commitBatch(batch []*chatsql.Pending) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].Ctx), batchTimeout)
	defer cancel()
	for i := 0; i < len(batch); {
		if chatsql.HasEffect(batch[i].M.Kind) {
			s.commitOne(ctx, batch[i])
			i++
			continue
		}
		j := i + 1
		for j < len(batch) && !chatsql.HasEffect(batch[j].M.Kind) {
			j++
		}
		s.commitPlain(ctx, batch[i:j])
		i = j
	}
}

func (s *Store) commitOne(ctx context.Context, p *chatsql.Pending) {
	p.Dup, p.Err = s.appendOne(ctx, p.M, p.IfHead, p.Want)
	if p.Err == nil && !p.Dup {
		p.Hook()
	}
}

// A head is a room's log head as a batch chains its entries onto it.
type head struct {
	seq       int64
	hash      []byte
	archived  bool
	lastAt    int64
	membersAt int64 // seq of the last entry that changed the room's members

	// For commitKnown: the head as the batch found it, and the oldest access
	// decision (chat.SenderDecision.AsOf) among the batch's entries to it.
	wasSeq  int64
	wasHash []byte
	wasAt   int64
	asOf    int64
}

// commitPlain stores entries without an effect, several rooms' in one
// transaction, and answers each. When this node committed the last entry of
// every room of the batch, it knows their heads (s.heads) and commitKnown
// stores the batch in one statement; the entries of any room whose head
// turned out to have moved, and every batch with a room not known, go to
// commitLocked, which reads and locks the heads first.
func (s *Store) commitPlain(ctx context.Context, batch []*chatsql.Pending) {
	live := make([]*chatsql.Pending, 0, len(batch))
	for _, p := range batch {
		if err := chatsql.CheckEntry(p.M); err != nil {
			p.Err = fmt.Errorf("chat/postgres: append to %s: %w", p.M.Room, err)
			continue
		}
		live = append(live, p)
	}
	if heads := s.heads.lookup(live); heads != nil {
		live = s.commitKnown(ctx, live, heads)
	}
	if len(live) > 0 {
		s.commitLocked(ctx, live)
	}
}

// commitKnown stores live, whose rooms' heads were remembered (heads), in one
// round trip: BEGIN, advanceAndInsert, COMMIT. It needs neither the heads'
// row locks first nor the senders' roles: it sends a batch only if no entry
// has changed a room's members since the oldest access decision among the
// room's entries (the remembered members_at against chat.SenderDecision.AsOf),
// and the statement advances a room only from the head the entries were
// chained onto, which is the head the members were remembered with; so each
// decision holds as if the role had been read under the lock. It returns the
// entries of the rooms that did not advance, for commitLocked; they were not
// stored.
func (s *Store) commitKnown(ctx context.Context, live []*chatsql.Pending, heads map[chat.RoomID]*head) []*chatsql.Pending {
	for _, p := range live {
		if p.IfHead != 0 {
			return live // answered against the head as locked, never a remembered one
		}
	}
	for _, h := range heads {
		h.wasSeq, h.wasHash, h.wasAt, h.asOf = h.seq, h.hash, h.lastAt, math.MaxInt64
	}
	for _, p := range live {
		if p.Want != nil {
			h := heads[p.M.Room]
			h.asOf = min(h.asOf, int64(p.Want.AsOf))
		}
	}
	for _, h := range heads {
		if h.asOf < h.membersAt {
			// A decision older than the last change of members: the role
			// must be read. Every entry takes the locked path.
			return live
		}
	}
	b := chainEntries(live, heads, func(*chatsql.Pending, *chat.Message) error { return nil })
	if len(b.answers) == 0 {
		return b.alone
	}
	nh := len(heads)
	hRoom, hSeq, hAt, hHash := make([]string, 0, nh), make([]int64, 0, nh), make([]int64, 0, nh), make([][]byte, 0, nh)
	wSeq, wHash, wAt := make([]int64, 0, nh), make([][]byte, 0, nh), make([]int64, 0, nh)
	for _, id := range slices.Sorted(maps.Keys(heads)) {
		h := heads[id]
		hRoom, hSeq, hHash, hAt = append(hRoom, string(id)), append(hSeq, h.seq), append(hHash, h.hash), append(hAt, h.lastAt)
		wSeq, wHash, wAt = append(wSeq, h.wasSeq), append(wHash, h.wasHash), append(wAt, h.wasAt)
	}
	one := &pgx.Batch{}
	one.Queue("BEGIN")
	one.Queue(advanceAndInsert, append(b.rows.args(), hRoom, hSeq, hHash, hAt, wSeq, wHash, wAt)...)
	one.Queue("COMMIT")
	advanced := make(map[chat.RoomID]bool, nh)
	err := s.roundTrip(ctx, one, func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		var id string
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
			advanced[chat.RoomID(id)] = true
			return nil
		})
		if err != nil {
			return err
		}
		return commitAnswer(br)
	})
	if err != nil {
		// Nothing of the batch is known to be stored: each entry is tried
		// again alone, as after a failed locked batch.
		s.heads.forget(heads)
		s.alone(ctx, live)
		return nil
	}
	var rest []*chatsql.Pending
	stale := map[chat.RoomID]*head{}
	for id, h := range heads {
		if advanced[id] {
			s.heads.remember(id, h)
		} else {
			stale[id] = h
		}
	}
	if len(advanced) > 0 {
		s.known.Add(1)
	}
	s.heads.forget(stale)
	s.stale.Add(uint64(len(stale)))
	if len(stale) > 0 {
		// The entries of the stale rooms go back unstored; a repeat within the
		// batch is in its first's room, so both go or both stay, and the
		// repeats that stay point to their first's new place.
		kept := make([]answer, 0, len(b.answers))
		moved := make([]int, len(b.answers)) // old index -> new index + 1
		for i, a := range b.answers {
			if stale[a.p.M.Room] != nil {
				rest = append(rest, a.p)
				continue
			}
			if a.of > 0 {
				a.of = moved[a.of-1]
			}
			moved[i] = len(kept) + 1
			kept = append(kept, a)
		}
		b.answers = kept
	}
	b.answer()
	return append(rest, b.alone...)
}

// commitLocked stores live in one transaction of two round trips, each a
// pipeline of statements: BEGIN, the locks on the rooms' heads and the
// senders' roles; then the inserts, the new heads and COMMIT. If it fails,
// each entry is tried again alone, so that each gets its own answer.
//
// It does not look up the batch's client ids first: a client id repeats only
// when a client retries a post whose answer it lost, and then the insert
// breaks the unique index on client ids, the batch fails, and appendOne,
// which does look, answers each entry. The lookup cost a fifth of the
// database's time per batch; a retry costs its batch one transaction per entry.
func (s *Store) commitLocked(ctx context.Context, live []*chatsql.Pending) {
	n := len(live)
	rooms := make([]string, 0, n)
	roleRooms, roleUsers := make([]string, 0, n), make([]string, 0, n)
	for _, p := range live {
		rooms = append(rooms, string(p.M.Room))
		if p.Want != nil {
			roleRooms, roleUsers = append(roleRooms, string(p.M.Room)), append(roleUsers, string(p.M.Sender))
		}
	}
	slices.Sort(rooms)
	rooms = slices.Compact(rooms)

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		s.alone(ctx, live)
		return
	}
	// release gives the connection back with no transaction open, so that its
	// row locks are gone before any entry is tried again alone.
	release := func() {
		if conn != nil && conn.Conn().PgConn().TxStatus() != 'I' {
			conn.Exec(ctx, "ROLLBACK")
		}
		if conn != nil {
			conn.Release()
			conn = nil
		}
	}
	defer release()

	// Round trip 1: begin, lock the heads, read the senders' roles (under the
	// locks: a membership changes only by an entry, which takes them).
	heads := make(map[chat.RoomID]*head, len(rooms))
	roles := map[[2]string]chat.RoomRole{}
	first := &pgx.Batch{}
	first.Queue("BEGIN")
	first.Queue(lockHeads, rooms)
	if len(roleRooms) > 0 {
		first.Queue(selectRoles, roleRooms, roleUsers)
	}
	err = func() error {
		br := conn.SendBatch(ctx, first)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		var id string
		var h head
		_, err = pgx.ForEachRow(rows, []any{&id, &h.seq, &h.hash, &h.archived, &h.lastAt, &h.membersAt}, func() error {
			found := h // a copy: h is scanned into again for the next row
			heads[chat.RoomID(id)] = &found
			return nil
		})
		if err != nil {
			return err
		}
		if len(roleRooms) > 0 {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			var room, user, role string
			_, err = pgx.ForEachRow(rows, []any{&room, &user, &role}, func() error {
				roles[[2]string{room, user}] = chat.RoomRole(role)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return br.Close()
	}()
	if err != nil {
		release()
		s.alone(ctx, live)
		return
	}

	b := chainEntries(live, heads, func(p *chatsql.Pending, e *chat.Message) error {
		return chatsql.CheckRole(p.Want, roles[[2]string{string(e.Room), string(e.Sender)}])
	})
	if len(b.answers) > 0 {
		// Round trip 2: insert, advance the heads, commit.
		nh := len(heads)
		hRoom, hSeq, hAt, hHash := make([]string, 0, nh), make([]int64, 0, nh), make([]int64, 0, nh), make([][]byte, 0, nh)
		for id, h := range heads {
			hRoom, hSeq, hHash, hAt = append(hRoom, string(id)), append(hSeq, h.seq), append(hHash, h.hash), append(hAt, h.lastAt)
		}
		second := &pgx.Batch{}
		second.Queue(insertEntries, b.rows.args()...)
		second.Queue(advanceHeads, hRoom, hSeq, hHash, hAt)
		second.Queue("COMMIT")
		err = func() error {
			br := conn.SendBatch(ctx, second)
			defer br.Close()
			for range 2 {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
			if err := commitAnswer(br); err != nil {
				return err
			}
			return br.Close()
		}()
		if err != nil {
			release()
			var again []*chatsql.Pending
			for _, p := range live {
				if p.Err == nil {
					again = append(again, p)
				}
			}
			s.alone(ctx, again)
			return
		}
		for id, h := range heads {
			s.heads.remember(id, h)
		}
	}
	b.answer()
	release() // its locks, before appendOne takes them again
	s.alone(ctx, b.alone)
}

// alone commits each of ps in a transaction of its own (appendOne).
func (s *Store) alone(ctx context.Context, ps []*chatsql.Pending) {
	for _, p := range ps {
		s.commitOne(ctx, p)
	}
}

// roundTrip sends b on a connection of the pool and reads its results with
// read, then gives the connection back with no transaction open.
func (s *Store) roundTrip(ctx context.Context, b *pgx.Batch, read func(pgx.BatchResults) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	br := conn.SendBatch(ctx, b)
	err = read(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if conn.Conn().PgConn().TxStatus() != 'I' {
		conn.Exec(ctx, "ROLLBACK")
	}
	return err
}

// commitAnswer reads the answer to a batch's COMMIT: that of a transaction
// that failed is ROLLBACK, not an error.
func commitAnswer(br pgx.BatchResults) error {
	tag, err := br.Exec()
	if err == nil && tag.String() != "COMMIT" {
		err = fmt.Errorf("chat/postgres: batch commit answered %q", tag.String())
	}
	return err
}

// chained is a batch's entries chained onto their rooms' heads: the columns
// of insertEntries, the answer of each entry chained, and the entries refused
// that have a client id, for appendOne to answer (a retry of a post stored
// earlier is answered with that post, whatever has happened since).
type chained struct {
	rows    *entryRows
	answers []answer
	alone   []*chatsql.Pending
}

type answer struct {
	p  *chatsql.Pending
	e  *chat.Message // in the batch's entries
	of int           // > 0: a repeat within the batch of answers[of-1]
}

// chainEntries chains live's entries in order onto heads, advancing them, as
// appendEntry would one by one; check is the sender check of each entry. An
// entry refused without a client id gets its error in its pending.
func chainEntries(live []*chatsql.Pending, heads map[chat.RoomID]*head, check func(*chatsql.Pending, *chat.Message) error) chained {
	// Every slice is sized for the whole batch up front, and the entries stay
	// in one array: at ingest rates this function's own garbage was a sixth
	// of the server's allocations.
	n := len(live)
	entries := make([]chat.Message, n)
	b := chained{rows: newEntryRows(n), answers: make([]answer, 0, n)}
	batchCID := make(map[[3]string]int, n) // client id -> index into answers
	for k, p := range live {
		e := &entries[k]
		*e = *p.M
		key := [3]string{string(e.Room), string(e.Sender), e.ClientID}
		if e.ClientID != "" {
			if i, ok := batchCID[key]; ok {
				b.answers = append(b.answers, answer{p: p, of: i + 1})
				continue
			}
		}
		h := heads[e.Room]
		if h == nil {
			p.Err = fmt.Errorf("chat/postgres: append to %s: %w", e.Room, chat.ErrNotFound)
			continue
		}
		err := chatsql.Admit(e, chatsql.Effect{}, chat.Seq(h.seq), h.archived, p.IfHead)
		if err == nil {
			err = check(p, e)
		}
		if err != nil && e.ClientID != "" {
			b.alone = append(b.alone, p)
			continue
		}
		if err != nil {
			p.Err = fmt.Errorf("chat/postgres: append to %s: %w", e.Room, err)
			continue
		}
		e.Seq = chat.Seq(h.seq + 1)
		e.Prev = h.hash
		e.CreatedAt = chatsql.Stamp(e.CreatedAt, time.UnixMicro(h.lastAt))
		e.OccurredAt = e.OccurredAt.Truncate(time.Microsecond)
		e.Hash = audit.Next(e.Prev, e.Canonical())
		e.Edited, e.Retracted = 0, 0
		h.seq, h.hash, h.lastAt = int64(e.Seq), e.Hash, e.CreatedAt.UnixMicro()
		b.rows.add(e)
		if e.ClientID != "" {
			batchCID[key] = len(b.answers)
		}
		b.answers = append(b.answers, answer{p: p, e: e})
	}
	return b
}

// answer gives each chained entry's caller its entry as stored (or, for a
// repeat within the batch, the first's) and calls its commit hook.
func (b chained) answer() {
	for _, a := range b.answers {
		switch {
		case a.of > 0:
			*a.p.M, a.p.Dup = *b.answers[a.of-1].e, true
		default:
			*a.p.M = *a.e
			a.p.Hook()
		}
	}
}

// entryRows are the columns of insertEntries.
type entryRows struct {
	room, kind, sender, unit, mentions, body []string
	client                                   []*string
	seq, reply, target, created              []int64
	occurred                                 []*int64
	payload, prev, hash                      [][]byte
	countable                                []bool
}

func newEntryRows(n int) *entryRows {
	return &entryRows{
		room: make([]string, 0, n), kind: make([]string, 0, n), sender: make([]string, 0, n), unit: make([]string, 0, n),
		mentions: make([]string, 0, n), body: make([]string, 0, n), client: make([]*string, 0, n),
		seq: make([]int64, 0, n), reply: make([]int64, 0, n), target: make([]int64, 0, n), created: make([]int64, 0, n),
		occurred: make([]*int64, 0, n), payload: make([][]byte, 0, n), prev: make([][]byte, 0, n), hash: make([][]byte, 0, n),
		countable: make([]bool, 0, n),
	}
}

// add appends e, which must stay where it is until the rows are sent (client
// id and occurred_at point into it).
func (r *entryRows) add(e *chat.Message) {
	r.room, r.seq, r.kind = append(r.room, string(e.Room)), append(r.seq, int64(e.Seq)), append(r.kind, string(e.Kind))
	r.sender, r.unit = append(r.sender, string(e.Sender)), append(r.unit, string(e.SenderUnit))
	var cid *string
	if e.ClientID != "" {
		cid = &e.ClientID
	}
	var occ *int64
	if !e.OccurredAt.IsZero() {
		occ = new(e.OccurredAt.UnixMicro())
	}
	r.client, r.reply = append(r.client, cid), append(r.reply, int64(e.ReplyTo))
	r.mentions, r.body = append(r.mentions, chatsql.EncodeMentions(e.Mentions)), append(r.body, e.Body)
	r.payload, r.target = append(r.payload, nullBytes(e.Payload)), append(r.target, int64(e.Target))
	r.occurred, r.created = append(r.occurred, occ), append(r.created, e.CreatedAt.UnixMicro())
	r.prev, r.hash, r.countable = append(r.prev, nullBytes(e.Prev)), append(r.hash, e.Hash), append(r.countable, e.Countable)
}

// args are the rows as insertEntries' parameters $1–$16.
func (r *entryRows) args() []any {
	return []any{r.room, r.seq, r.kind, r.sender, r.unit, r.client, r.reply, r.mentions, r.body,
		r.payload, r.target, r.occurred, r.created, r.prev, r.hash, r.countable}
}
