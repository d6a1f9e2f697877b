package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"caseroom/chat"
	"caseroom/chat/chatsql"
)

const (
	// A blob is stored once however many rooms hold it.
	insertBlob = `INSERT INTO chat_blobs (sha256, size, type, content, created_at) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (sha256) DO NOTHING`
	insertRoomBlob = `INSERT INTO chat_room_blobs (room, sha256) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	selectBlob     = `SELECT b.size, b.type, b.created_at, b.content
	FROM chat_room_blobs rb JOIN chat_blobs b ON b.sha256 = rb.sha256
	WHERE rb.room = $1 AND rb.sha256 = $2`
	statBlob = `SELECT b.size, b.type, b.created_at
	FROM chat_room_blobs rb JOIN chat_blobs b ON b.sha256 = rb.sha256
	WHERE rb.room = $1 AND rb.sha256 = $2`
)

// PutBlob reads content to its end, checks that it is b.Size bytes whose
// SHA-256 is b.SHA256 (else an error wrapping chat.ErrInvalid), and stores it,
// unless it is stored already, as held by room. An unknown room is
// chat.ErrNotFound. Content is read before the write transaction begins, so a
// slow upload never holds the writer.
func (s *Store) PutBlob(ctx context.Context, room chat.RoomID, b chat.Blob, content io.Reader) error {
	data, err := chatsql.ReadBlob(b, content)
	if err != nil {
		return fmt.Errorf("chat/postgres: put blob %s in %s: %w", b.SHA256, room, err)
	}
	if b.CreatedAt.IsZero() {
		b.CreatedAt = time.Now()
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("chat/postgres: put blob %s in %s: %w", b.SHA256, room, err)
	}
	defer tx.Rollback(ctx)
	if err := roomExists(ctx, tx, room); err != nil {
		return fmt.Errorf("chat/postgres: put blob %s in %s: %w", b.SHA256, room, err)
	}
	if _, err := tx.Exec(ctx, insertBlob, b.SHA256, b.Size, b.Type, data, b.CreatedAt.UnixMicro()); err != nil {
		return fmt.Errorf("chat/postgres: put blob %s in %s: %w", b.SHA256, room, dbError(err))
	}
	if _, err := tx.Exec(ctx, insertRoomBlob, string(room), b.SHA256); err != nil {
		return fmt.Errorf("chat/postgres: put blob %s in %s: %w", b.SHA256, room, dbError(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("chat/postgres: put blob %s in %s: commit: %w", b.SHA256, room, err)
	}
	return nil
}

// OpenBlob returns a blob room holds and its content, or chat.ErrNotFound, also
// when the blob is stored but room never held it.
func (s *Store) OpenBlob(ctx context.Context, room chat.RoomID, sha256 string) (chat.Blob, io.ReadCloser, error) {
	var (
		b       = chat.Blob{SHA256: sha256}
		created int64
		data    []byte
	)
	err := s.pool.QueryRow(ctx, selectBlob, string(room), sha256).Scan(&b.Size, &b.Type, &created, &data)
	if err != nil {
		return chat.Blob{}, nil, fmt.Errorf("chat/postgres: open blob %s in %s: %w", sha256, room, dbError(err))
	}
	b.CreatedAt = time.UnixMicro(created).UTC()
	return b, io.NopCloser(bytes.NewReader(data)), nil
}

// StatBlob returns a blob room holds, without its content, or chat.ErrNotFound.
func (s *Store) StatBlob(ctx context.Context, room chat.RoomID, sha256 string) (chat.Blob, error) {
	b := chat.Blob{SHA256: sha256}
	var created int64
	err := s.pool.QueryRow(ctx, statBlob, string(room), sha256).Scan(&b.Size, &b.Type, &created)
	if err != nil {
		return chat.Blob{}, fmt.Errorf("chat/postgres: stat blob %s in %s: %w", sha256, room, dbError(err))
	}
	b.CreatedAt = time.UnixMicro(created).UTC()
	return b, nil
}
