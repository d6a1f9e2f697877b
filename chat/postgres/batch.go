package postgres

import (
	"context"
	"fmt"
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
	lockHeads = `SELECT id, head_seq, head_hash, archived, last_at FROM chat_rooms
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
)

// batchTimeout bounds one batch's transaction: the leader's own request may
// be cancelled while it commits the others'.
const batchTimeout = 30 * time.Second

// commitBatch answers every pending of batch, in order: runs of entries
// without an effect in one transaction each, an entry with an effect alone.
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
		if j-i == 1 {
			s.commitOne(ctx, batch[i])
		} else {
			s.commitPlain(ctx, batch[i:j])
		}
		i = j
	}
}

func (s *Store) commitOne(ctx context.Context, p *chatsql.Pending) {
	p.Dup, p.Err = s.appendOne(ctx, p.M, p.IfHead, p.Want)
	if p.Err == nil && !p.Dup {
		p.Hook()
	}
}

// commitPlain stores entries without an effect in one transaction: it locks
// their rooms' heads, chains the new entries in Go and inserts them with one
// statement. The transaction takes two round trips to the database, each a
// pipeline of statements: BEGIN, the locks and the senders' roles; then the
// inserts, the new heads and COMMIT. If it fails, each entry is tried again
// alone, so that each gets its own answer.
//
// It does not look up the batch's client ids first: a client id repeats only
// when a client retries a post whose answer it lost, and then the insert
// breaks the unique index on client ids, the batch fails, and appendOne,
// which does look, answers each entry. The lookup cost a fifth of the
// database's time per batch; a retry costs its batch one transaction per entry.
func (s *Store) commitPlain(ctx context.Context, batch []*chatsql.Pending) {
	type head struct {
		seq      int64
		hash     []byte
		archived bool
		lastAt   int64
	}
	// Every slice is sized for the whole batch up front, and the entries stay
	// in one array: at ingest rates this function's own garbage was a sixth
	// of the server's allocations.
	n := len(batch)
	live := make([]*chatsql.Pending, 0, n)
	rooms := make([]string, 0, n)
	entries := make([]chat.Message, n)
	roleRooms, roleUsers := make([]string, 0, n), make([]string, 0, n)
	for k, p := range batch {
		e := &entries[k]
		*e = *p.M
		if err := chatsql.CheckEntry(e); err != nil {
			p.Err = fmt.Errorf("chat/postgres: append to %s: %w", p.M.Room, err)
			continue
		}
		live = append(live, p)
		rooms = append(rooms, string(e.Room))
		if p.Want != nil {
			roleRooms, roleUsers = append(roleRooms, string(e.Room)), append(roleUsers, string(e.Sender))
		}
	}
	if len(live) == 0 {
		return
	}
	slices.Sort(rooms)
	rooms = slices.Compact(rooms)

	fallback := func() {
		for _, p := range live {
			s.commitOne(ctx, p)
		}
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		fallback()
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
		for rows.Next() {
			var id string
			h := &head{}
			if err := rows.Scan(&id, &h.seq, &h.hash, &h.archived, &h.lastAt); err != nil {
				rows.Close()
				return err
			}
			heads[chat.RoomID(id)] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(roleRooms) > 0 {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			for rows.Next() {
				var room, user, role string
				if err := rows.Scan(&room, &user, &role); err != nil {
					rows.Close()
					return err
				}
				roles[[2]string{room, user}] = chat.RoomRole(role)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return br.Close()
	}()
	if err != nil {
		release()
		fallback()
		return
	}

	// Chain the new entries in order, as appendEntry would one by one.
	var (
		cRoom, cKind, cSender, cUnit = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		cMentions, cBody             = make([]string, 0, n), make([]string, 0, n)
		cClient                      = make([]*string, 0, n)
		cSeq, cReply                 = make([]int64, 0, n), make([]int64, 0, n)
		cTarget, cCreated            = make([]int64, 0, n), make([]int64, 0, n)
		cOccurred                    = make([]*int64, 0, n)
		occurred                     = make([]int64, n) // what cOccurred points to
		cPayload, cPrev, cHash       = make([][]byte, 0, n), make([][]byte, 0, n), make([][]byte, 0, n)
		cCountable                   = make([]bool, 0, n)
	)
	type answer struct {
		p  *chatsql.Pending
		e  *chat.Message // in entries
		of int           // > 0: a repeat within the batch of answers[of-1]
	}
	answers := make([]answer, 0, n)
	var alone []*chatsql.Pending           // refused entries with a client id
	batchCID := make(map[[3]string]int, n) // client id -> index into answers
	for k, p := range batch {
		if p.Err != nil {
			continue
		}
		e := &entries[k]
		key := [3]string{string(e.Room), string(e.Sender), e.ClientID}
		if e.ClientID != "" {
			if i, ok := batchCID[key]; ok {
				answers = append(answers, answer{p: p, of: i + 1})
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
			err = chatsql.CheckRole(p.Want, roles[[2]string{string(e.Room), string(e.Sender)}])
		}
		if err != nil && e.ClientID != "" {
			// Refused, unless it is the retry of a post stored earlier, which
			// is answered with that post whatever has happened since:
			// appendOne looks, after the batch.
			alone = append(alone, p)
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

		cRoom, cSeq, cKind = append(cRoom, string(e.Room)), append(cSeq, int64(e.Seq)), append(cKind, string(e.Kind))
		cSender, cUnit = append(cSender, string(e.Sender)), append(cUnit, string(e.SenderUnit))
		var cid *string
		if e.ClientID != "" {
			cid = &e.ClientID
		}
		cClient, cReply = append(cClient, cid), append(cReply, int64(e.ReplyTo))
		cMentions, cBody = append(cMentions, chatsql.EncodeMentions(e.Mentions)), append(cBody, e.Body)
		cPayload, cTarget = append(cPayload, nullBytes(e.Payload)), append(cTarget, int64(e.Target))
		var occ *int64
		if o := micros(e.OccurredAt); o.Valid {
			occurred[k] = o.Int64
			occ = &occurred[k]
		}
		cOccurred, cCreated = append(cOccurred, occ), append(cCreated, e.CreatedAt.UnixMicro())
		cPrev, cHash, cCountable = append(cPrev, nullBytes(e.Prev)), append(cHash, e.Hash), append(cCountable, e.Countable)
		if e.ClientID != "" {
			batchCID[key] = len(answers)
		}
		answers = append(answers, answer{p: p, e: e})
	}
	if len(cRoom) > 0 {
		// Round trip 2: insert, advance the heads, commit.
		nh := len(heads)
		hRoom, hSeq, hAt, hHash := make([]string, 0, nh), make([]int64, 0, nh), make([]int64, 0, nh), make([][]byte, 0, nh)
		for id, h := range heads {
			hRoom, hSeq, hHash, hAt = append(hRoom, string(id)), append(hSeq, h.seq), append(hHash, h.hash), append(hAt, h.lastAt)
		}
		second := &pgx.Batch{}
		second.Queue(insertEntries, cRoom, cSeq, cKind, cSender, cUnit, cClient, cReply, cMentions, cBody,
			cPayload, cTarget, cOccurred, cCreated, cPrev, cHash, cCountable)
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
			// COMMIT of a transaction that failed answers ROLLBACK, not an error.
			tag, err := br.Exec()
			if err == nil && tag.String() != "COMMIT" {
				err = fmt.Errorf("chat/postgres: batch commit answered %q", tag.String())
			}
			if err != nil {
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
			for _, p := range again {
				s.commitOne(ctx, p)
			}
			return
		}
	}
	for _, a := range answers {
		switch {
		case a.of > 0:
			*a.p.M, a.p.Dup = *answers[a.of-1].e, true
		default:
			*a.p.M = *a.e
			a.p.Hook()
		}
	}
	release() // its locks, before appendOne takes them again
	for _, p := range alone {
		s.commitOne(ctx, p)
	}
}
