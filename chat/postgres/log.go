package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/chat"
	"caseroom/chat/chatsql"
)

// messageColumns are a chat_messages row as scanMessage reads it.
const messageColumns = `room, seq, kind, sender, sender_unit, client_id, reply_to, mentions, body,
	payload, target, occurred_at, created_at, prev, hash, edited, retracted, countable`

const (
	// Posts to one room queue on its row; FOR NO KEY UPDATE, since the key never
	// changes, leaves the row free for the foreign-key checks of read markers,
	// members and blobs, which take FOR KEY SHARE.
	// With the head, the sender's role ($2), for chatsql.CheckRole.
	lockHead = `SELECT head_seq, head_hash, archived, last_at, members_at,
	(SELECT role FROM chat_members WHERE room = $1 AND user_id = $2)
	FROM chat_rooms WHERE id = $1 FOR NO KEY UPDATE`

	selectByClientID = `SELECT ` + messageColumns + ` FROM chat_messages
	WHERE room = $1 AND sender = $2 AND client_id = $3`

	// The entry and the room's new head in one round trip. A repeated client id
	// inserts nothing and so updates nothing: Append then reads the first entry.
	// The room is matched by $1, not by ins.room: the log's room column is in
	// the C collation (migration 002), and comparing chat_rooms.id with it would
	// keep the planner off chat_rooms' key and scan the table.
	insertAndAdvance = `WITH ins AS (
		INSERT INTO chat_messages (room, seq, kind, sender, sender_unit, client_id,
		reply_to, mentions, body, payload, target, occurred_at, created_at, prev, hash, countable)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		ON CONFLICT (room, sender, client_id) WHERE client_id IS NOT NULL DO NOTHING
		RETURNING room, seq, hash, created_at
	)
	UPDATE chat_rooms r SET head_seq = ins.seq, head_hash = ins.hash, last_at = ins.created_at
	FROM ins WHERE r.id = $1`

	// A member added again keeps their since, and their role unless one is given ($6).
	upsertMember = `INSERT INTO chat_members (room, user_id, unit, role, since) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (room, user_id) DO UPDATE SET role = excluded.role WHERE $6::boolean`
	deleteMember = `DELETE FROM chat_members WHERE room = $1 AND user_id = $2`
	updateRole   = `UPDATE chat_members SET role = $1 WHERE room = $2 AND user_id = $3`
	insertUnit   = `INSERT INTO chat_room_units (room, unit) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	renameRoom   = `UPDATE chat_rooms SET name = $1 WHERE id = $2`
	archiveRoom  = `UPDATE chat_rooms SET archived = $1 WHERE id = $2`
	setMembersAt = `UPDATE chat_rooms SET members_at = $1 WHERE id = $2`

	// RULE: only a text message that is still shown can be edited, and only a
	// text or file message can be retracted, once; acts are corrected by new acts.
	markEdited = `UPDATE chat_messages SET edited = $1
	WHERE room = $2 AND seq = $3 AND kind = 'text' AND retracted = 0`
	markRetracted = `UPDATE chat_messages SET retracted = $1
	WHERE room = $2 AND seq = $3 AND kind IN ('text', 'file') AND retracted = 0`

	selectMessage = `SELECT ` + messageColumns + ` FROM chat_messages WHERE room = $1 AND seq = $2`
	selectFirst   = `SELECT ` + messageColumns + ` FROM chat_messages
	WHERE room = $1 AND seq > $2 AND seq < $3 AND created_at >= $4 AND created_at < $5
	ORDER BY seq LIMIT $6`
	selectLast = `SELECT ` + messageColumns + ` FROM chat_messages
	WHERE room = $1 AND seq > $2 AND seq < $3 AND created_at >= $4 AND created_at < $5
	ORDER BY seq DESC LIMIT $6`
	selectVersions = `SELECT ` + messageColumns + ` FROM chat_messages
	WHERE room = $1 AND target = $2 AND kind = 'edit' ORDER BY seq`
	selectEntryExists = `SELECT 1 FROM chat_messages WHERE room = $1 AND seq = $2`
	selectChain       = `SELECT ` + messageColumns + ` FROM chat_messages
	WHERE room = $1 AND seq > $2 ORDER BY seq LIMIT $3`
)

// Append stores m as the next entry of its room with its effect, in a
// transaction that holds the room's row lock, and calls the commit hook of ctx
// (chat.WithCommitHook) after the commit. Concurrent appends are committed
// together (group.go): the entries without an effect of one batch in one
// transaction, an entry with an effect in one of its own, in the order they
// came. See chat.Store.
func (s *Store) Append(ctx context.Context, m *chat.Message, ifHead chat.Seq) (dup bool, err error) {
	p := &chatsql.Pending{Ctx: ctx, M: m, IfHead: ifHead, Want: chatsql.WantRole(ctx)}
	s.laneOf(m.Room).Do(p, s.commitBatch)
	return p.Dup, p.Err
}

// appendOne stores m alone, in its own transaction: the path of an entry with
// an effect, and of each entry of a batch that failed as a whole.
func (s *Store) appendOne(ctx context.Context, m *chat.Message, ifHead chat.Seq, want *chat.SenderDecision) (dup bool, err error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return false, fmt.Errorf("chat/postgres: append to %s: %w", m.Room, err)
	}
	defer tx.Rollback(ctx)
	var after head
	e, dup, err := appendEntry(ctx, tx, m, ifHead, want, &after)
	if err != nil {
		return false, fmt.Errorf("chat/postgres: append to %s: %w", m.Room, err)
	}
	if !dup {
		if err := tx.Commit(ctx); err != nil {
			return false, fmt.Errorf("chat/postgres: append to %s: commit: %w", m.Room, err)
		}
		s.heads.remember(e.Room, &after)
	}
	*m = e
	return dup, nil
}

// appendEntry appends a copy of m to its room in tx and applies its effect. It
// returns the entry as stored, or the entry stored earlier under m's client id
// and dup; then it has written nothing. When it stores the entry it sets
// *after to the room's new head.
func appendEntry(ctx context.Context, tx pgx.Tx, m *chat.Message, ifHead chat.Seq, want *chat.SenderDecision, after *head) (chat.Message, bool, error) {
	e := *m
	if err := chatsql.CheckEntry(&e); err != nil {
		return e, false, err // not even worth a look for an earlier post
	}
	ef, invalidErr := chatsql.DecodeEffect(&e)
	var (
		head      int64
		headHash  []byte
		archived  bool
		lastAt    int64
		membersAt int64
	)
	var role *string
	if err := tx.QueryRow(ctx, lockHead, string(e.Room), string(e.Sender)).Scan(&head, &headHash, &archived, &lastAt, &membersAt, &role); err != nil {
		return e, false, dbError(err)
	}
	refused := invalidErr
	if refused == nil {
		refused = chatsql.Admit(&e, ef, chat.Seq(head), archived, ifHead)
	}
	if refused == nil {
		var got chat.RoomRole
		if role != nil {
			got = chat.RoomRole(*role)
		}
		refused = chatsql.CheckRole(want, got)
	}
	if refused != nil {
		// A retry of a post that was stored is answered with it, whatever
		// has happened in the room since.
		if e.ClientID != "" {
			prior, err := byClientID(ctx, tx, &e)
			if err == nil {
				return prior, true, nil
			}
			if !errors.Is(err, chat.ErrNotFound) {
				return e, false, err
			}
		}
		return e, false, refused
	}

	e.Seq = chat.Seq(head + 1)
	e.Prev = headHash
	e.CreatedAt = chatsql.Stamp(e.CreatedAt, time.UnixMicro(lastAt))
	e.OccurredAt = e.OccurredAt.Truncate(time.Microsecond)
	e.Hash = audit.Next(e.Prev, e.Canonical())
	e.Edited, e.Retracted = 0, 0

	inserted, err := insertEntry(ctx, tx, &e)
	if err != nil {
		return e, false, err
	}
	if !inserted {
		prior, err := byClientID(ctx, tx, &e)
		return prior, err == nil, err
	}
	if err := applyEffect(ctx, tx, &e, ef); err != nil {
		return e, false, err
	}
	*after = headAfter(&e, ef, archived, membersAt)
	return e, false, nil
}

// changesMembers reports whether entries of kind change a room's members.
func changesMembers(kind chat.Kind) bool {
	switch kind {
	case chat.RoomCreate, chat.MemberAdd, chat.MemberRemove, chat.MemberRole:
		return true
	}
	return false
}

// headAfter is a room's head once e, with effect ef, is appended to its log,
// whose head was archived and whose members last changed at membersAt.
func headAfter(e *chat.Message, ef chatsql.Effect, archived bool, membersAt int64) head {
	h := head{seq: int64(e.Seq), hash: e.Hash, lastAt: e.CreatedAt.UnixMicro(), archived: archived, membersAt: membersAt}
	if changesMembers(e.Kind) {
		h.membersAt = int64(e.Seq)
	}
	if e.Kind == chat.RoomArchive {
		h.archived = ef.Archived
	}
	return h
}

// insertEntry inserts e and makes it its room's head. It reports false, having
// written nothing, when e's sender already used e's client id in the room.
func insertEntry(ctx context.Context, tx pgx.Tx, e *chat.Message) (bool, error) {
	tag, err := tx.Exec(ctx, insertAndAdvance, string(e.Room), int64(e.Seq), string(e.Kind),
		string(e.Sender), string(e.SenderUnit), nullString(e.ClientID), int64(e.ReplyTo),
		chatsql.EncodeMentions(e.Mentions), e.Body, nullBytes(e.Payload), int64(e.Target),
		micros(e.OccurredAt), e.CreatedAt.UnixMicro(), nullBytes(e.Prev), e.Hash, e.Countable)
	if err != nil {
		return false, fmt.Errorf("insert entry %d: %w", e.Seq, err) // never a duplicate seq: the head is ours
	}
	return tag.RowsAffected() == 1, nil
}

// applyEffect makes the change e records: members, units, the room's name or
// state, or the derived fields of the entry an edit or retraction is about.
func applyEffect(ctx context.Context, tx pgx.Tx, e *chat.Message, ef chatsql.Effect) error {
	room := string(e.Room)
	if changesMembers(e.Kind) {
		// Decisions made before this entry have their sender's role read again (commitKnown).
		if _, err := tx.Exec(ctx, setMembersAt, int64(e.Seq), room); err != nil {
			return fmt.Errorf("members changed: %w", err)
		}
	}
	switch e.Kind {
	case chat.RoomCreate, chat.MemberAdd:
		for _, r := range ef.Members {
			_, err := tx.Exec(ctx, upsertMember, room, string(r.User), string(r.Unit),
				string(chatsql.RoleOrMember(r.Role)), int64(e.Seq), r.Role != "")
			if err != nil {
				return fmt.Errorf("add member %s: %w", r.User, err)
			}
		}
	case chat.MemberRemove:
		for _, r := range ef.Members {
			n, err := affected(tx.Exec(ctx, deleteMember, room, string(r.User)))
			if err != nil {
				return fmt.Errorf("remove member %s: %w", r.User, err)
			}
			if n == 0 {
				return chatsql.Invalid("payload", fmt.Sprintf("user %s is not a member", r.User))
			}
		}
	case chat.MemberRole:
		for _, r := range ef.Members {
			n, err := affected(tx.Exec(ctx, updateRole, string(r.Role), room, string(r.User)))
			if err != nil {
				return fmt.Errorf("change role of %s: %w", r.User, err)
			}
			if n == 0 {
				return chatsql.Invalid("payload", fmt.Sprintf("user %s is not a member", r.User))
			}
		}
	case chat.UnitAdd:
		for _, u := range ef.Units {
			if _, err := tx.Exec(ctx, insertUnit, room, string(u)); err != nil {
				return fmt.Errorf("add unit %s: %w", u, err)
			}
		}
	case chat.RoomRename:
		if _, err := tx.Exec(ctx, renameRoom, ef.Name, room); err != nil {
			return fmt.Errorf("rename: %w", err)
		}
	case chat.RoomArchive:
		if _, err := tx.Exec(ctx, archiveRoom, ef.Archived, room); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
	case chat.Edit:
		n, err := affected(tx.Exec(ctx, markEdited, int64(e.Seq), room, int64(e.Target)))
		if err != nil {
			return fmt.Errorf("mark %d edited: %w", e.Target, err)
		}
		if n == 0 {
			return chatsql.Invalid("target", fmt.Sprintf("entry %d is not a text message that can be edited", e.Target))
		}
	case chat.Retract:
		n, err := affected(tx.Exec(ctx, markRetracted, int64(e.Seq), room, int64(e.Target)))
		if err != nil {
			return fmt.Errorf("mark %d retracted: %w", e.Target, err)
		}
		if n == 0 {
			return chatsql.Invalid("target", fmt.Sprintf("entry %d is not a message that can be retracted", e.Target))
		}
	}
	return nil
}

// byClientID returns the entry e's sender stored under e's client id in e's
// room, or chat.ErrNotFound.
func byClientID(ctx context.Context, tx pgx.Tx, e *chat.Message) (chat.Message, error) {
	m, err := scanMessage(tx.QueryRow(ctx, selectByClientID, string(e.Room), string(e.Sender), e.ClientID))
	if err != nil {
		return chat.Message{}, fmt.Errorf("read entry of client id %q: %w", e.ClientID, dbError(err))
	}
	return m, nil
}

// Message returns one entry, or chat.ErrNotFound.
func (s *Store) Message(ctx context.Context, room chat.RoomID, seq chat.Seq) (chat.Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, selectMessage, string(room), int64(seq)))
	if err != nil {
		return chat.Message{}, fmt.Errorf("chat/postgres: message %s/%d: %w", room, seq, dbError(err))
	}
	return m, nil
}

// History returns a page of room's log in ascending seq order; see pageOf for
// which page. An unknown room is chat.ErrNotFound.
func (s *Store) History(ctx context.Context, room chat.RoomID, q chat.HistoryQuery) ([]chat.Message, error) {
	p := chatsql.PageOf(q)
	if p.TimeBounded() {
		var floor, ceil int64
		err := s.pool.QueryRow(ctx, chatsql.SelectTimeBounds, string(room), p.Since, p.Until).Scan(&floor, &ceil)
		switch {
		case err == nil:
			p.Narrow(floor, ceil)
		case !errors.Is(err, pgx.ErrNoRows): // no such room: the query below finds nothing
			return nil, fmt.Errorf("chat/postgres: history of %s: %w", room, dbError(err))
		}
	}
	query := selectFirst
	if p.Last {
		query = selectLast
	}
	ms, err := scanMessages(s.pool.Query(ctx, query, string(room), p.After, p.Before, p.Since, p.Until, p.Limit))
	if err == nil && len(ms) == 0 {
		err = roomExists(ctx, s.pool, room)
	}
	if err != nil {
		return nil, fmt.Errorf("chat/postgres: history of %s: %w", room, err)
	}
	if p.Last {
		slices.Reverse(ms)
	}
	return ms, nil
}

// Versions returns the edits of entry seq in order, or chat.ErrNotFound when
// there is no such entry.
func (s *Store) Versions(ctx context.Context, room chat.RoomID, seq chat.Seq) ([]chat.Message, error) {
	ms, err := scanMessages(s.pool.Query(ctx, selectVersions, string(room), int64(seq)))
	if err == nil && len(ms) == 0 {
		var one int
		err = dbError(s.pool.QueryRow(ctx, selectEntryExists, string(room), int64(seq)).Scan(&one))
	}
	if err != nil {
		return nil, fmt.Errorf("chat/postgres: versions of %s/%d: %w", room, seq, err)
	}
	return ms, nil
}

// Chain returns up to limit (at most chat.MaxPage) links after seq, each with
// the canonical bytes of the entry as it is stored now, so that a change to any
// hashed column fails verification.
func (s *Store) Chain(ctx context.Context, room chat.RoomID, after chat.Seq, limit int) ([]chat.Link, error) {
	links, err := scanLinks(s.pool.Query(ctx, selectChain, string(room), int64(after), chatsql.ChainLimit(limit)))
	if err == nil && len(links) == 0 {
		err = roomExists(ctx, s.pool, room)
	}
	if err != nil {
		return nil, fmt.Errorf("chat/postgres: chain of %s: %w", room, err)
	}
	return links, nil
}

// scanMessage reads a row of messageColumns. Mentions that are not a JSON
// array, which only a change past the store can make, are an error.
func scanMessage(sc scanner) (chat.Message, error) {
	m, mentions, err := scanEntry(sc)
	if err != nil {
		return chat.Message{}, err
	}
	if m.Mentions, err = chatsql.DecodeMentions(mentions); err != nil {
		return chat.Message{}, err
	}
	return m, nil
}

// scanEntry reads a row of messageColumns but leaves its mentions undecoded:
// it returns them as stored.
func scanEntry(sc scanner) (chat.Message, string, error) {
	var (
		m                                       chat.Message
		room, kind, sender, senderUnit          string
		clientID                                sql.NullString
		seq, replyTo, target, edited, retracted int64
		mentions                                string
		occurred                                sql.NullInt64
		created                                 int64
		payload                                 []byte
	)
	err := sc.Scan(&room, &seq, &kind, &sender, &senderUnit, &clientID, &replyTo, &mentions, &m.Body,
		&payload, &target, &occurred, &created, &m.Prev, &m.Hash, &edited, &retracted, &m.Countable)
	if err != nil {
		return chat.Message{}, "", err
	}
	m.Room, m.Seq, m.Kind = chat.RoomID(room), chat.Seq(seq), chat.Kind(kind)
	m.Sender, m.SenderUnit, m.ClientID = acl.UserID(sender), acl.UnitID(senderUnit), clientID.String
	m.ReplyTo, m.Target, m.Edited, m.Retracted = chat.Seq(replyTo), chat.Seq(target), chat.Seq(edited), chat.Seq(retracted)
	m.Payload = payload // NULL is nil
	m.OccurredAt, m.CreatedAt = fromMicros(occurred), time.UnixMicro(created).UTC()
	return m, mentions, nil
}

// scanMessages reads every row of rows, as QueryContext returned them.
func scanMessages(rows pgx.Rows, err error) ([]chat.Message, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ms []chat.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

// scanLinks reads every row of rows as the link Chain returns. A link whose
// mentions do not decode gets canonical bytes that cannot match its hash.
func scanLinks(rows pgx.Rows, err error) ([]chat.Link, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var links []chat.Link
	for rows.Next() {
		m, mentions, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		l := chat.Link{Seq: m.Seq, Prev: m.Prev, Hash: m.Hash}
		if m.Mentions, err = chatsql.DecodeMentions(mentions); err != nil {
			l.Canonical = []byte("undecodable mentions " + mentions)
		} else {
			l.Canonical = m.Canonical()
		}
		links = append(links, l)
	}
	return links, rows.Err()
}
