package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/chat"
	"caseroom/chat/chatsql"
)

// messageColumns are a chat_messages row as scanMessage reads it.
const messageColumns = `room, seq, kind, sender, sender_unit, client_id, reply_to, mentions, body,
	payload, target, occurred_at, created_at, prev, hash, edited, retracted, countable`

const (
	// With the head, the sender's role (?2), for chatsql.CheckRole.
	selectHead = `SELECT head_seq, head_hash, archived, last_at,
	(SELECT role FROM chat_members WHERE room = ?1 AND user_id = ?2)
	FROM chat_rooms WHERE id = ?1`

	selectByClientID = `SELECT ` + messageColumns + ` FROM chat_messages
	WHERE room = ? AND sender = ? AND client_id = ?`

	// A repeated client id inserts nothing: Append then reads the first entry.
	insertMessage = `INSERT INTO chat_messages (room, seq, kind, sender, sender_unit, client_id,
	reply_to, mentions, body, payload, target, occurred_at, created_at, prev, hash, countable)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (room, sender, client_id) WHERE client_id IS NOT NULL DO NOTHING`

	advanceHead = `UPDATE chat_rooms SET head_seq = ?, head_hash = ?, last_at = ? WHERE id = ?`

	// Each entry of a batch in a savepoint of its own.
	savepointEntry = `SAVEPOINT entry`
	releaseEntry   = `RELEASE entry`
	rollbackEntry  = `ROLLBACK TO entry`

	// A member added again keeps their since, and their role unless one is given (?6).
	upsertMember = `INSERT INTO chat_members (room, user_id, unit, role, since) VALUES (?1, ?2, ?3, ?4, ?5)
	ON CONFLICT (room, user_id) DO UPDATE SET role = excluded.role WHERE ?6`
	deleteMember = `DELETE FROM chat_members WHERE room = ? AND user_id = ?`
	updateRole   = `UPDATE chat_members SET role = ? WHERE room = ? AND user_id = ?`
	insertUnit   = `INSERT INTO chat_room_units (room, unit) VALUES (?, ?) ON CONFLICT DO NOTHING`
	renameRoom   = `UPDATE chat_rooms SET name = ? WHERE id = ?`
	archiveRoom  = `UPDATE chat_rooms SET archived = ? WHERE id = ?`

	// RULE: only a text message that is still shown can be edited, and only a
	// text or file message can be retracted, once; acts are corrected by new acts.
	markEdited = `UPDATE chat_messages SET edited = ?
	WHERE room = ? AND seq = ? AND kind = 'text' AND retracted = 0`
	markRetracted = `UPDATE chat_messages SET retracted = ?
	WHERE room = ? AND seq = ? AND kind IN ('text', 'file') AND retracted = 0`

	selectMessage = `SELECT ` + messageColumns + ` FROM chat_messages WHERE room = ? AND seq = ?`
	selectFirst   = `SELECT ` + messageColumns + ` FROM chat_messages
	WHERE room = ? AND seq > ? AND seq < ? AND created_at >= ? AND created_at < ?
	ORDER BY seq LIMIT ?`
	selectLast = `SELECT ` + messageColumns + ` FROM chat_messages
	WHERE room = ? AND seq > ? AND seq < ? AND created_at >= ? AND created_at < ?
	ORDER BY seq DESC LIMIT ?`
	selectVersions = `SELECT ` + messageColumns + ` FROM chat_messages
	WHERE room = ? AND target = ? AND kind = 'edit' ORDER BY seq`
	selectEntryExists = `SELECT 1 FROM chat_messages WHERE room = ? AND seq = ?`
	selectChain       = `SELECT ` + messageColumns + ` FROM chat_messages
	WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?`
)

// Append stores m as the next entry of its room with its effect, in a
// transaction on the writer connection, and calls the commit hook of ctx
// (chat.WithCommitHook) after the commit. Concurrent appends are committed
// together (group.go): one transaction per batch, each entry in a savepoint
// of its own, so that one refused entry leaves the others of its batch
// stored. See chat.Store.
func (s *Store) Append(ctx context.Context, m *chat.Message, ifHead chat.Seq) (dup bool, err error) {
	p := &chatsql.Pending{Ctx: ctx, M: m, IfHead: ifHead, Want: chatsql.WantRole(ctx)}
	s.group.Do(p, s.commitBatch)
	return p.Dup, p.Err
}

// commitBatch answers every pending of batch: one transaction on the writer
// connection, a savepoint per entry. If the transaction cannot begin or
// commit, each entry is tried again alone, so that each gets its own answer.
func (s *Store) commitBatch(batch []*chatsql.Pending) {
	// Not cancelled with the leader's request, which may end while it commits
	// the others'; busy_timeout bounds the waits. A context without Done also
	// spares the driver a goroutine per statement.
	ctx := context.WithoutCancel(batch[0].Ctx)
	if len(batch) == 1 {
		s.commitOne(ctx, batch[0])
		return
	}
	tx, err := s.begin(ctx)
	if err != nil {
		for _, p := range batch {
			s.commitOne(ctx, p)
		}
		return
	}
	defer tx.Rollback()
	stored := make([]chat.Message, len(batch))
	err = nil
	for i, p := range batch {
		// An entry without an effect writes twice (the entry, then its room's
		// head) and is refused, if at all, before the first write; so it
		// needs no savepoint. If one of its writes fails, the batch fails as
		// a whole and each entry is tried again alone.
		sp := chatsql.HasEffect(p.M.Kind)
		if sp {
			if _, err = tx.ExecContext(ctx, savepointEntry); err != nil {
				break
			}
		}
		stored[i], p.Dup, p.Err = appendEntry(ctx, tx, p.M, p.IfHead, p.Want)
		if p.Err != nil {
			if !sp && errors.As(p.Err, new(writeError)) {
				err = p.Err
				break
			}
			p.Err = fmt.Errorf("chat/sqlite: append to %s: %w", p.M.Room, p.Err)
			if sp {
				if _, err = tx.ExecContext(ctx, rollbackEntry); err != nil {
					break
				}
			}
		}
		if sp {
			if _, err = tx.ExecContext(ctx, releaseEntry); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil { // the transaction failed as a whole: nothing of it is stored
		tx.Rollback()
		for _, p := range batch {
			p.Dup, p.Err = false, nil
			s.commitOne(ctx, p)
		}
		return
	}
	for i, p := range batch {
		if p.Err == nil {
			*p.M = stored[i]
			if !p.Dup {
				p.Hook()
			}
		}
	}
}

func (s *Store) commitOne(ctx context.Context, p *chatsql.Pending) {
	p.Dup, p.Err = s.appendOne(ctx, p.M, p.IfHead, p.Want)
	if p.Err == nil && !p.Dup {
		p.Hook()
	}
}

// appendOne stores m alone, in its own transaction.
func (s *Store) appendOne(ctx context.Context, m *chat.Message, ifHead chat.Seq, want *chat.SenderDecision) (dup bool, err error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return false, fmt.Errorf("chat/sqlite: append to %s: %w", m.Room, err)
	}
	defer tx.Rollback()
	e, dup, err := appendEntry(ctx, tx, m, ifHead, want)
	if err != nil {
		return false, fmt.Errorf("chat/sqlite: append to %s: %w", m.Room, err)
	}
	if !dup {
		if err := tx.Commit(); err != nil {
			return false, fmt.Errorf("chat/sqlite: append to %s: commit: %w", m.Room, err)
		}
	}
	*m = e
	return dup, nil
}

// appendEntry appends a copy of m to its room in tx and applies its effect. It
// returns the entry as stored, or the entry stored earlier under m's client id
// and dup; then it has written nothing.
func appendEntry(ctx context.Context, tx *writeTx, m *chat.Message, ifHead chat.Seq, want *chat.SenderDecision) (chat.Message, bool, error) {
	e := *m
	if err := chatsql.CheckEntry(&e); err != nil {
		return e, false, err // not even worth a look for an earlier post
	}
	ef, invalidErr := chatsql.DecodeEffect(&e)
	var (
		head     int64
		headHash []byte
		archived bool
		lastAt   int64
	)
	var role sql.NullString
	if err := tx.QueryRowContext(ctx, selectHead, string(e.Room), string(e.Sender)).Scan(&head, &headHash, &archived, &lastAt, &role); err != nil {
		return e, false, dbError(err)
	}
	refused := invalidErr
	if refused == nil {
		refused = chatsql.Admit(&e, ef, chat.Seq(head), archived, ifHead)
	}
	if refused == nil {
		refused = chatsql.CheckRole(want, chat.RoomRole(role.String))
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
	return e, false, nil
}

// insertEntry inserts e and makes it its room's head. It reports false, having
// written nothing, when e's sender already used e's client id in the room.
func insertEntry(ctx context.Context, tx *writeTx, e *chat.Message) (bool, error) {
	res, err := tx.ExecContext(ctx, insertMessage, string(e.Room), int64(e.Seq), string(e.Kind),
		string(e.Sender), string(e.SenderUnit), nullString(e.ClientID), int64(e.ReplyTo),
		chatsql.EncodeMentions(e.Mentions), e.Body, nullText(e.Payload), int64(e.Target),
		micros(e.OccurredAt), e.CreatedAt.UnixMicro(), nullBytes(e.Prev), e.Hash, e.Countable)
	n, err := affected(res, err)
	if err != nil {
		return false, writeError{fmt.Errorf("insert entry %d: %w", e.Seq, err)} // never a duplicate seq: the head is ours
	}
	if n == 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, advanceHead, int64(e.Seq), e.Hash, e.CreatedAt.UnixMicro(), string(e.Room)); err != nil {
		return false, writeError{fmt.Errorf("advance head to %d: %w", e.Seq, err)}
	}
	return true, nil
}

// A writeError is a write of an entry that failed: unlike a refusal, it may
// leave part of the entry written.
type writeError struct{ error }

func (e writeError) Unwrap() error { return e.error }

// applyEffect makes the change e records: members, units, the room's name or
// state, or the derived fields of the entry an edit or retraction is about.
func applyEffect(ctx context.Context, tx *writeTx, e *chat.Message, ef chatsql.Effect) error {
	room := string(e.Room)
	switch e.Kind {
	case chat.RoomCreate, chat.MemberAdd:
		for _, r := range ef.Members {
			_, err := tx.ExecContext(ctx, upsertMember, room, string(r.User), string(r.Unit),
				string(chatsql.RoleOrMember(r.Role)), int64(e.Seq), r.Role != "")
			if err != nil {
				return fmt.Errorf("add member %s: %w", r.User, err)
			}
		}
	case chat.MemberRemove:
		for _, r := range ef.Members {
			n, err := affected(tx.ExecContext(ctx, deleteMember, room, string(r.User)))
			if err != nil {
				return fmt.Errorf("remove member %s: %w", r.User, err)
			}
			if n == 0 {
				return chatsql.Invalid("payload", fmt.Sprintf("user %s is not a member", r.User))
			}
		}
	case chat.MemberRole:
		for _, r := range ef.Members {
			n, err := affected(tx.ExecContext(ctx, updateRole, string(r.Role), room, string(r.User)))
			if err != nil {
				return fmt.Errorf("change role of %s: %w", r.User, err)
			}
			if n == 0 {
				return chatsql.Invalid("payload", fmt.Sprintf("user %s is not a member", r.User))
			}
		}
	case chat.UnitAdd:
		for _, u := range ef.Units {
			if _, err := tx.ExecContext(ctx, insertUnit, room, string(u)); err != nil {
				return fmt.Errorf("add unit %s: %w", u, err)
			}
		}
	case chat.RoomRename:
		if _, err := tx.ExecContext(ctx, renameRoom, ef.Name, room); err != nil {
			return fmt.Errorf("rename: %w", err)
		}
	case chat.RoomArchive:
		if _, err := tx.ExecContext(ctx, archiveRoom, ef.Archived, room); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
	case chat.Edit:
		n, err := affected(tx.ExecContext(ctx, markEdited, int64(e.Seq), room, int64(e.Target)))
		if err != nil {
			return fmt.Errorf("mark %d edited: %w", e.Target, err)
		}
		if n == 0 {
			return chatsql.Invalid("target", fmt.Sprintf("entry %d is not a text message that can be edited", e.Target))
		}
	case chat.Retract:
		n, err := affected(tx.ExecContext(ctx, markRetracted, int64(e.Seq), room, int64(e.Target)))
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
func byClientID(ctx context.Context, tx *writeTx, e *chat.Message) (chat.Message, error) {
	m, err := scanMessage(tx.QueryRowContext(ctx, selectByClientID, string(e.Room), string(e.Sender), e.ClientID))
	if err != nil {
		return chat.Message{}, fmt.Errorf("read entry of client id %q: %w", e.ClientID, dbError(err))
	}
	return m, nil
}

// Message returns one entry, or chat.ErrNotFound.
func (s *Store) Message(ctx context.Context, room chat.RoomID, seq chat.Seq) (chat.Message, error) {
	m, err := scanMessage(s.db.Read.QueryRowContext(ctx, selectMessage, string(room), int64(seq)))
	if err != nil {
		return chat.Message{}, fmt.Errorf("chat/sqlite: message %s/%d: %w", room, seq, dbError(err))
	}
	return m, nil
}

// History returns a page of room's log in ascending seq order; see pageOf for
// which page. An unknown room is chat.ErrNotFound.
func (s *Store) History(ctx context.Context, room chat.RoomID, q chat.HistoryQuery) ([]chat.Message, error) {
	p := chatsql.PageOf(q)
	if p.TimeBounded() {
		var floor, ceil int64
		err := s.db.Read.QueryRowContext(ctx, chatsql.SelectTimeBounds, string(room), p.Since, p.Until).Scan(&floor, &ceil)
		switch {
		case err == nil:
			p.Narrow(floor, ceil)
		case !errors.Is(err, sql.ErrNoRows): // no such room: the query below finds nothing
			return nil, fmt.Errorf("chat/sqlite: history of %s: %w", room, dbError(err))
		}
	}
	query := selectFirst
	if p.Last {
		query = selectLast
	}
	ms, err := scanMessages(s.db.Read.QueryContext(ctx, query, string(room), p.After, p.Before, p.Since, p.Until, p.Limit))
	if err == nil && len(ms) == 0 {
		err = roomExists(ctx, s.db.Read, room)
	}
	if err != nil {
		return nil, fmt.Errorf("chat/sqlite: history of %s: %w", room, err)
	}
	if p.Last {
		slices.Reverse(ms)
	}
	return ms, nil
}

// Versions returns the edits of entry seq in order, or chat.ErrNotFound when
// there is no such entry.
func (s *Store) Versions(ctx context.Context, room chat.RoomID, seq chat.Seq) ([]chat.Message, error) {
	ms, err := scanMessages(s.db.Read.QueryContext(ctx, selectVersions, string(room), int64(seq)))
	if err == nil && len(ms) == 0 {
		var one int
		err = dbError(s.db.Read.QueryRowContext(ctx, selectEntryExists, string(room), int64(seq)).Scan(&one))
	}
	if err != nil {
		return nil, fmt.Errorf("chat/sqlite: versions of %s/%d: %w", room, seq, err)
	}
	return ms, nil
}

// Chain returns up to limit (at most chat.MaxPage) links after seq, each with
// the canonical bytes of the entry as it is stored now, so that a change to any
// hashed column fails verification.
func (s *Store) Chain(ctx context.Context, room chat.RoomID, after chat.Seq, limit int) ([]chat.Link, error) {
	links, err := scanLinks(s.db.Read.QueryContext(ctx, selectChain, string(room), int64(after), chatsql.ChainLimit(limit)))
	if err == nil && len(links) == 0 {
		err = roomExists(ctx, s.db.Read, room)
	}
	if err != nil {
		return nil, fmt.Errorf("chat/sqlite: chain of %s: %w", room, err)
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
func scanMessages(rows *sql.Rows, err error) ([]chat.Message, error) {
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
func scanLinks(rows *sql.Rows, err error) ([]chat.Link, error) {
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
