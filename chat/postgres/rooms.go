package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"caseroom/acl"
	"caseroom/chat"
	"caseroom/chat/chatsql"
)

// roomColumns are a chat_rooms row as scanRoom reads it.
const roomColumns = `id, kind, name, owner_unit, region, archived, created_by, created_at, head_seq, last_at`

const (
	insertRoom = `INSERT INTO chat_rooms (id, kind, name, owner_unit, region, archived, created_by,
	created_at, head_seq, head_hash, last_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, NULL, $9)`
	selectRoom     = `SELECT ` + roomColumns + ` FROM chat_rooms WHERE id = $1`
	selectUnitRoom = `SELECT ` + roomColumns + ` FROM chat_rooms WHERE kind = 'unit' AND owner_unit = $1`

	selectRoomAccess = `SELECT r.id, r.kind, r.name, r.owner_unit, r.region, r.archived, r.created_by, r.created_at,
	r.head_seq, r.last_at, m.unit, m.role, m.since FROM chat_rooms r
	LEFT JOIN chat_members m ON m.room = r.id AND m.user_id = $2 WHERE r.id = $1`
	selectMembership  = `SELECT room, user_id, unit, role, since FROM chat_members WHERE room = $1 AND user_id = $2`
	selectMembers     = `SELECT room, user_id, unit, role, since FROM chat_members WHERE room = $1 ORDER BY user_id`
	selectMemberHeads = `SELECT m.room, r.head_seq FROM chat_members m JOIN chat_rooms r ON r.id = m.room
	WHERE m.user_id = $1 ORDER BY m.room`
	selectMemberships = `SELECT room, user_id, unit, role, since FROM chat_members WHERE user_id = $1 ORDER BY room`
	selectUnits       = `SELECT unit FROM chat_room_units WHERE room = $1 ORDER BY unit`

	// Unread counts what others posted after both the user's marker and the
	// entry that made them a member: a newcomer does not inherit a backlog.
	selectRoomsOf = `SELECT r.id, r.kind, r.name, r.owner_unit, r.region, r.archived, r.created_by,
	r.created_at, r.head_seq, r.last_at, m.role, coalesce(k.seq, 0),
	(SELECT count(*) FROM chat_messages x
		WHERE x.room = m.room AND x.seq > greatest(coalesce(k.seq, 0), m.since)
		AND x.countable AND x.sender <> m.user_id),
	coalesce((SELECT y.seq FROM chat_messages y WHERE y.room = m.room AND y.countable
		ORDER BY y.seq DESC LIMIT 1), 0)
	FROM chat_members m
	JOIN chat_rooms r ON r.id = m.room
	LEFT JOIN chat_read_markers k ON k.room = m.room AND k.user_id = m.user_id
	WHERE m.user_id = $1
	ORDER BY r.last_at DESC, r.id`

	// The marker only moves forward, and never past the head; its time is the
	// time it last moved. An unknown room inserts nothing and returns no row.
	upsertReadMarker = `INSERT INTO chat_read_markers (room, user_id, seq, at)
	SELECT id, $2::text, greatest(0, least($3::bigint, head_seq)), $4::bigint FROM chat_rooms WHERE id = $1
	ON CONFLICT (room, user_id) DO UPDATE SET
		at = CASE WHEN excluded.seq > chat_read_markers.seq THEN excluded.at ELSE chat_read_markers.at END,
		seq = greatest(chat_read_markers.seq, excluded.seq)
	RETURNING seq`
	selectReadMarkers = `SELECT room, user_id, seq, at FROM chat_read_markers WHERE room = $1 ORDER BY user_id`
)

// CreateRoom stores r with created (kind chat.RoomCreate, its payload
// describing r) as entry 1, whose members become the room's. An existing id,
// or a second unit room of one unit, is chat.ErrExists. It fills created as
// Append does; a zero r.CreatedAt becomes created's.
func (s *Store) CreateRoom(ctx context.Context, r chat.Room, created *chat.Message) error {
	e := *created
	if e.Room == "" {
		e.Room = r.ID
	}
	if err := chatsql.CheckCreate(r, &e); err != nil {
		return fmt.Errorf("chat/postgres: create room %s: %w", r.ID, err)
	}
	e.CreatedAt = chatsql.Stamp(e.CreatedAt, time.Time{})
	if r.CreatedAt.IsZero() {
		r.CreatedAt = e.CreatedAt
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("chat/postgres: create room %s: %w", r.ID, err)
	}
	defer tx.Rollback(ctx)
	at := r.CreatedAt.UnixMicro()
	_, err = tx.Exec(ctx, insertRoom, string(r.ID), string(r.Kind), r.Name, string(r.OwnerUnit),
		string(r.Region), r.Archived, string(r.CreatedBy), at, at)
	if err != nil {
		return fmt.Errorf("chat/postgres: create room %s: %w", r.ID, dbError(err))
	}
	var after head
	e, _, err = appendEntry(ctx, tx, &e, 0, nil, &after)
	if err != nil {
		return fmt.Errorf("chat/postgres: create room %s: %w", r.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("chat/postgres: create room %s: commit: %w", r.ID, err)
	}
	s.heads.remember(e.Room, &after)
	*created = e
	return nil
}

// Room returns a room, or chat.ErrNotFound.
func (s *Store) Room(ctx context.Context, id chat.RoomID) (chat.Room, error) {
	r, err := scanRoom(s.pool.QueryRow(ctx, selectRoom, string(id)))
	if err != nil {
		return chat.Room{}, fmt.Errorf("chat/postgres: room %s: %w", id, dbError(err))
	}
	return r, nil
}

// UnitRoom returns the unit room of unit, or chat.ErrNotFound.
func (s *Store) UnitRoom(ctx context.Context, unit acl.UnitID) (chat.Room, error) {
	r, err := scanRoom(s.pool.QueryRow(ctx, selectUnitRoom, string(unit)))
	if err != nil {
		return chat.Room{}, fmt.Errorf("chat/postgres: unit room of %s: %w", unit, dbError(err))
	}
	return r, nil
}

// RoomAccess returns room and user's membership of it (Role "" when not a
// member) in one read, or chat.ErrNotFound when there is no such room.
func (s *Store) RoomAccess(ctx context.Context, id chat.RoomID, user acl.UserID) (chat.Room, chat.Membership, error) {
	var (
		r          room
		unit, role sql.NullString
		since      sql.NullInt64
	)
	err := s.pool.QueryRow(ctx, selectRoomAccess, string(id), string(user)).Scan(&r.id, &r.kind, &r.name, &r.ownerUnit,
		&r.region, &r.archived, &r.createdBy, &r.createdAt, &r.head, &r.lastAt, &unit, &role, &since)
	if err != nil {
		return chat.Room{}, chat.Membership{}, fmt.Errorf("chat/postgres: room %s: %w", id, dbError(err))
	}
	var m chat.Membership
	if role.Valid {
		m = chat.Membership{Room: id, User: user, Unit: acl.UnitID(unit.String), Role: chat.RoomRole(role.String), Since: chat.Seq(since.Int64)}
	}
	return r.room(), m, nil
}

// Membership returns user's membership of room, or chat.ErrNotFound.
func (s *Store) Membership(ctx context.Context, room chat.RoomID, user acl.UserID) (chat.Membership, error) {
	m, err := scanMembership(s.pool.QueryRow(ctx, selectMembership, string(room), string(user)))
	if err != nil {
		return chat.Membership{}, fmt.Errorf("chat/postgres: membership of %s in %s: %w", user, room, dbError(err))
	}
	return m, nil
}

// Members returns the members of room ordered by user id; an unknown room is
// chat.ErrNotFound.
func (s *Store) Members(ctx context.Context, room chat.RoomID) ([]chat.Membership, error) {
	ms, err := scanMemberships(s.pool.Query(ctx, selectMembers, string(room)))
	if err == nil && len(ms) == 0 {
		err = roomExists(ctx, s.pool, room)
	}
	if err != nil {
		return nil, fmt.Errorf("chat/postgres: members of %s: %w", room, err)
	}
	return ms, nil
}

// MemberHeads returns user's rooms with their heads, ordered by room.
func (s *Store) MemberHeads(ctx context.Context, user acl.UserID) ([]chat.RoomHead, error) {
	rows, err := s.pool.Query(ctx, selectMemberHeads, string(user))
	if err != nil {
		return nil, fmt.Errorf("chat/postgres: heads of %s: %w", user, err)
	}
	defer rows.Close()
	out, err := chatsql.ScanRoomHeads(rows)
	if err != nil {
		return nil, fmt.Errorf("chat/postgres: heads of %s: %w", user, err)
	}
	return out, nil
}

// Memberships returns user's memberships ordered by room.
func (s *Store) Memberships(ctx context.Context, user acl.UserID) ([]chat.Membership, error) {
	ms, err := scanMemberships(s.pool.Query(ctx, selectMemberships, string(user)))
	if err != nil {
		return nil, fmt.Errorf("chat/postgres: memberships of %s: %w", user, err)
	}
	return ms, nil
}

// Units returns the units that joined room (chat.UnitAdd), ordered; an
// unknown room is chat.ErrNotFound.
func (s *Store) Units(ctx context.Context, room chat.RoomID) ([]acl.UnitID, error) {
	units, err := func() ([]acl.UnitID, error) {
		rows, err := s.pool.Query(ctx, selectUnits, string(room))
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var units []acl.UnitID
		for rows.Next() {
			var u string
			if err := rows.Scan(&u); err != nil {
				return nil, err
			}
			units = append(units, acl.UnitID(u))
		}
		return units, rows.Err()
	}()
	if err == nil && len(units) == 0 {
		err = roomExists(ctx, s.pool, room)
	}
	if err != nil {
		return nil, fmt.Errorf("chat/postgres: units of %s: %w", room, err)
	}
	return units, nil
}

// RoomsOf returns user's rooms, the most recently active first (then by id),
// each with user's role and read marker, the number of entries others posted
// that count as unread after both the marker and user's joining, and the
// latest entry that counts (nil if none). Last is returned as stored, even if
// retracted: hiding its content is the caller's part.
func (s *Store) RoomsOf(ctx context.Context, user acl.UserID) ([]chat.RoomSummary, error) {
	sums, lasts, err := roomsOf(ctx, s.pool, user)
	if err != nil {
		return nil, fmt.Errorf("chat/postgres: rooms of %s: %w", user, err)
	}
	// The last entries in one round trip. No snapshot is needed to join the
	// two reads: an entry, once stored, never goes away.
	var batch pgx.Batch
	for i, seq := range lasts {
		if seq == 0 {
			continue
		}
		batch.Queue(selectMessage, string(sums[i].Room.ID), seq).QueryRow(func(row pgx.Row) error {
			m, err := scanMessage(row)
			if err != nil {
				return fmt.Errorf("last entry of %s: %w", sums[i].Room.ID, dbError(err))
			}
			sums[i].Last = &m
			return nil
		})
	}
	if batch.Len() > 0 {
		if err := s.pool.SendBatch(ctx, &batch).Close(); err != nil {
			return nil, fmt.Errorf("chat/postgres: rooms of %s: %w", user, err)
		}
	}
	return sums, nil
}

// roomsOf returns user's room summaries without Last, and beside them the seq
// of each room's last countable entry (0 if none).
func roomsOf(ctx context.Context, pool *pgxpool.Pool, user acl.UserID) ([]chat.RoomSummary, []int64, error) {
	rows, err := pool.Query(ctx, selectRoomsOf, string(user))
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		sums  []chat.RoomSummary
		lasts []int64
	)
	for rows.Next() {
		var (
			r                  room
			role               string
			read, unread, last int64
		)
		err := rows.Scan(&r.id, &r.kind, &r.name, &r.ownerUnit, &r.region, &r.archived, &r.createdBy,
			&r.createdAt, &r.head, &r.lastAt, &role, &read, &unread, &last)
		if err != nil {
			return nil, nil, err
		}
		sums = append(sums, chat.RoomSummary{Room: r.room(), Role: chat.RoomRole(role), Unread: int(unread), Read: chat.Seq(read)})
		lasts = append(lasts, last)
	}
	return sums, lasts, rows.Err()
}

// MarkRead moves user's read marker in room forward to seq, but not past the
// room's head, and returns the marker now stored; an unknown room is
// chat.ErrNotFound. A zero at is now.
func (s *Store) MarkRead(ctx context.Context, room chat.RoomID, user acl.UserID, seq chat.Seq, at time.Time) (chat.Seq, error) {
	if at.IsZero() {
		at = time.Now()
	}
	var stored int64
	err := s.pool.QueryRow(ctx, upsertReadMarker, string(room), string(user), int64(seq), at.UnixMicro()).Scan(&stored)
	if err != nil {
		return 0, fmt.Errorf("chat/postgres: mark %s read in %s: %w", user, room, dbError(err))
	}
	return chat.Seq(stored), nil
}

// ReadMarkers returns the read markers of room ordered by user id; an unknown
// room is chat.ErrNotFound.
func (s *Store) ReadMarkers(ctx context.Context, room chat.RoomID) ([]chat.ReadMarker, error) {
	markers, err := func() ([]chat.ReadMarker, error) {
		rows, err := s.pool.Query(ctx, selectReadMarkers, string(room))
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var markers []chat.ReadMarker
		for rows.Next() {
			var (
				room, user string
				seq, at    int64
			)
			if err := rows.Scan(&room, &user, &seq, &at); err != nil {
				return nil, err
			}
			markers = append(markers, chat.ReadMarker{Room: chat.RoomID(room), User: acl.UserID(user), Seq: chat.Seq(seq), At: time.UnixMicro(at).UTC()})
		}
		return markers, rows.Err()
	}()
	if err == nil && len(markers) == 0 {
		err = roomExists(ctx, s.pool, room)
	}
	if err != nil {
		return nil, fmt.Errorf("chat/postgres: read markers of %s: %w", room, err)
	}
	return markers, nil
}

// room is a chat_rooms row as the driver scans it.
type room struct {
	id, kind, name, ownerUnit, region, createdBy string
	archived                                     bool
	createdAt, head, lastAt                      int64
}

func (r room) room() chat.Room {
	return chat.Room{
		ID: chat.RoomID(r.id), Kind: chat.RoomKind(r.kind), Name: r.name,
		OwnerUnit: acl.UnitID(r.ownerUnit), Region: acl.RegionCode(r.region), Archived: r.archived,
		CreatedBy: acl.UserID(r.createdBy), CreatedAt: time.UnixMicro(r.createdAt).UTC(),
		Head: chat.Seq(r.head), LastAt: time.UnixMicro(r.lastAt).UTC(),
	}
}

// scanRoom reads a row of roomColumns.
func scanRoom(sc scanner) (chat.Room, error) {
	var r room
	err := sc.Scan(&r.id, &r.kind, &r.name, &r.ownerUnit, &r.region, &r.archived, &r.createdBy, &r.createdAt, &r.head, &r.lastAt)
	if err != nil {
		return chat.Room{}, err
	}
	return r.room(), nil
}

// scanMembership reads a row of (room, user_id, unit, role, since).
func scanMembership(sc scanner) (chat.Membership, error) {
	var (
		room, user, unit, role string
		since                  int64
	)
	if err := sc.Scan(&room, &user, &unit, &role, &since); err != nil {
		return chat.Membership{}, err
	}
	return chat.Membership{Room: chat.RoomID(room), User: acl.UserID(user), Unit: acl.UnitID(unit), Role: chat.RoomRole(role), Since: chat.Seq(since)}, nil
}

func scanMemberships(rows pgx.Rows, err error) ([]chat.Membership, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ms []chat.Membership
	for rows.Next() {
		m, err := scanMembership(rows)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, rows.Err()
}
