package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
)

const (
	upsertRegion = `INSERT INTO acl_regions (code, parent, name, pinyin, level, kind) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (code) DO UPDATE SET parent = excluded.parent, name = excluded.name,
			pinyin = excluded.pinyin, level = excluded.level, kind = excluded.kind`
	selectRegions = `SELECT code, parent, name, pinyin, level, kind FROM acl_regions ORDER BY code`

	insertUnit = `INSERT INTO acl_units (id, kind, region, name, non_territorial, disabled, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	updateUnitDisabled = `UPDATE acl_units SET disabled = ? WHERE id = ?`
	unitColumns        = `SELECT id, kind, region, name, non_territorial, disabled, created_at FROM acl_units`
	selectUnit         = unitColumns + ` WHERE id = ?`
	selectUnits        = unitColumns + ` WHERE (?1 = '' OR region = ?1) AND (?2 = '' OR kind = ?2) ORDER BY id`

	insertUser = `INSERT INTO acl_users (id, username, name, unit, roles, bot, disabled, password_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	userColumns        = `SELECT id, username, name, unit, roles, bot, disabled, created_at FROM acl_users`
	selectUser         = userColumns + ` WHERE id = ?`
	selectUsers        = userColumns + ` WHERE (?1 = '' OR unit = ?1) ORDER BY id`
	updateUserDisabled = `UPDATE acl_users SET disabled = ? WHERE id = ?`
	updatePassword     = `UPDATE acl_users SET password_hash = ?, failed_logins = 0, locked_until = NULL WHERE id = ?`
	updateRoles        = `UPDATE acl_users SET roles = ? WHERE id = ?`
	revokeUserSessions = `UPDATE acl_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`
)

// PutRegions inserts rs, or updates the regions whose codes exist.
func (s *Store) PutRegions(ctx context.Context, rs []acl.Region, rec audit.Record) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("acl/sqlite: put regions: %w", err)
	}
	defer tx.Rollback()
	for _, r := range rs {
		_, err := tx.ExecContext(ctx, upsertRegion, r.Code, r.Parent, r.Name, r.Pinyin, r.Level, r.Kind)
		if err != nil {
			return fmt.Errorf("acl/sqlite: put region %s: %w", r.Code, dbError(err))
		}
	}
	if err := appendAudit(ctx, tx, rec); err != nil {
		return fmt.Errorf("acl/sqlite: put regions: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acl/sqlite: put regions: commit: %w", err)
	}
	return nil
}

// Regions returns every region, ordered by code.
func (s *Store) Regions(ctx context.Context) ([]acl.Region, error) {
	rows, err := s.db.Read.QueryContext(ctx, selectRegions)
	if err != nil {
		return nil, fmt.Errorf("acl/sqlite: regions: %w", err)
	}
	defer rows.Close()
	var out []acl.Region
	for rows.Next() {
		var r acl.Region
		if err := rows.Scan(&r.Code, &r.Parent, &r.Name, &r.Pinyin, &r.Level, &r.Kind); err != nil {
			return nil, fmt.Errorf("acl/sqlite: regions: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("acl/sqlite: regions: %w", err)
	}
	return out, nil
}

// CreateUnit stores u. An existing id is acl.ErrExists; a region not stored
// is acl.ErrNotFound.
func (s *Store) CreateUnit(ctx context.Context, u acl.Unit, rec audit.Record) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("acl/sqlite: create unit: %w", err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, insertUnit, u.ID, u.Kind, u.Region, u.Name, u.NonTerritorial, u.Disabled, micros(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("acl/sqlite: create unit %s at region %s: %w", u.ID, u.Region, dbError(err))
	}
	if err := appendAudit(ctx, tx, rec); err != nil {
		return fmt.Errorf("acl/sqlite: create unit %s: %w", u.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acl/sqlite: create unit %s: commit: %w", u.ID, err)
	}
	return nil
}

// SetUnitDisabled disables or re-enables unit id; an unknown id is acl.ErrNotFound.
func (s *Store) SetUnitDisabled(ctx context.Context, id acl.UnitID, disabled bool, rec audit.Record) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("acl/sqlite: set unit disabled: %w", err)
	}
	defer tx.Rollback()
	if err := oneRow(tx.ExecContext(ctx, updateUnitDisabled, disabled, id)); err != nil {
		return fmt.Errorf("acl/sqlite: set unit %s disabled: %w", id, dbError(err))
	}
	if err := appendAudit(ctx, tx, rec); err != nil {
		return fmt.Errorf("acl/sqlite: set unit %s disabled: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acl/sqlite: set unit %s disabled: commit: %w", id, err)
	}
	return nil
}

// Unit returns unit id, or acl.ErrNotFound.
func (s *Store) Unit(ctx context.Context, id acl.UnitID) (acl.Unit, error) {
	u, err := scanUnit(s.db.Read.QueryRowContext(ctx, selectUnit, id))
	if err != nil {
		return acl.Unit{}, fmt.Errorf("acl/sqlite: unit %s: %w", id, dbError(err))
	}
	return u, nil
}

// Units returns the units f selects, ordered by id.
func (s *Store) Units(ctx context.Context, f acl.UnitFilter) ([]acl.Unit, error) {
	rows, err := s.db.Read.QueryContext(ctx, selectUnits, f.Region, f.Kind)
	if err != nil {
		return nil, fmt.Errorf("acl/sqlite: units: %w", err)
	}
	defer rows.Close()
	var out []acl.Unit
	for rows.Next() {
		u, err := scanUnit(rows)
		if err != nil {
			return nil, fmt.Errorf("acl/sqlite: units: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("acl/sqlite: units: %w", err)
	}
	return out, nil
}

// A scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanUnit(row scanner) (acl.Unit, error) {
	var u acl.Unit
	var created sql.NullInt64
	if err := row.Scan(&u.ID, &u.Kind, &u.Region, &u.Name, &u.NonTerritorial, &u.Disabled, &created); err != nil {
		return acl.Unit{}, err
	}
	u.CreatedAt = fromMicros(created)
	return u, nil
}

// CreateUser stores u with its password hash ("" for a bot). The username is
// stored lowercase; an existing id or username is acl.ErrExists, a unit not
// stored acl.ErrNotFound.
func (s *Store) CreateUser(ctx context.Context, u acl.User, passwordHash string, rec audit.Record) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("acl/sqlite: create user: %w", err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, insertUser, u.ID, strings.ToLower(u.Username), u.Name, u.Unit,
		encodeRoles(u.Roles), u.Bot, u.Disabled, passwordHash, micros(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("acl/sqlite: create user %s (username %q, unit %s): %w", u.ID, u.Username, u.Unit, dbError(err))
	}
	if err := appendAudit(ctx, tx, rec); err != nil {
		return fmt.Errorf("acl/sqlite: create user %s: %w", u.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acl/sqlite: create user %s: commit: %w", u.ID, err)
	}
	return nil
}

// User returns user id, or acl.ErrNotFound.
func (s *Store) User(ctx context.Context, id acl.UserID) (acl.User, error) {
	u, err := scanUser(s.db.Read.QueryRowContext(ctx, selectUser, id))
	if err != nil {
		return acl.User{}, fmt.Errorf("acl/sqlite: user %s: %w", id, dbError(err))
	}
	return u, nil
}

// Users returns the users f selects, ordered by id.
func (s *Store) Users(ctx context.Context, f acl.UserFilter) ([]acl.User, error) {
	rows, err := s.db.Read.QueryContext(ctx, selectUsers, f.Unit)
	if err != nil {
		return nil, fmt.Errorf("acl/sqlite: users: %w", err)
	}
	defer rows.Close()
	var out []acl.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("acl/sqlite: users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("acl/sqlite: users: %w", err)
	}
	return out, nil
}

func scanUser(row scanner, more ...any) (acl.User, error) {
	var u acl.User
	var roles string
	var created sql.NullInt64
	dest := append([]any{&u.ID, &u.Username, &u.Name, &u.Unit, &roles, &u.Bot, &u.Disabled, &created}, more...)
	if err := row.Scan(dest...); err != nil {
		return acl.User{}, err
	}
	var err error
	if u.Roles, err = decodeRoles(roles); err != nil {
		return acl.User{}, err
	}
	u.CreatedAt = fromMicros(created)
	return u, nil
}

// SetUserDisabled disables or re-enables user id; disabling revokes, as of at,
// every session of theirs. An unknown id is acl.ErrNotFound; disabling at the
// zero time is acl.ErrInvalid, since a revocation needs its time.
func (s *Store) SetUserDisabled(ctx context.Context, id acl.UserID, disabled bool, at time.Time, rec audit.Record) error {
	if disabled && at.IsZero() {
		return fmt.Errorf("acl/sqlite: disable user %s: %w", id, acl.Invalid("at", "a revocation needs its time"))
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("acl/sqlite: set user disabled: %w", err)
	}
	defer tx.Rollback()
	if err := oneRow(tx.ExecContext(ctx, updateUserDisabled, disabled, id)); err != nil {
		return fmt.Errorf("acl/sqlite: set user %s disabled: %w", id, dbError(err))
	}
	if disabled {
		if _, err := tx.ExecContext(ctx, revokeUserSessions, micros(at), id); err != nil {
			return fmt.Errorf("acl/sqlite: disable user %s: revoke sessions: %w", id, err)
		}
	}
	if err := appendAudit(ctx, tx, rec); err != nil {
		return fmt.Errorf("acl/sqlite: set user %s disabled: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acl/sqlite: set user %s disabled: commit: %w", id, err)
	}
	return nil
}

// SetPassword replaces the password hash of user id, clears a lockout and the
// failure count, and revokes, as of at, every session of theirs. An unknown id
// is acl.ErrNotFound; the zero at is acl.ErrInvalid.
func (s *Store) SetPassword(ctx context.Context, id acl.UserID, hash string, at time.Time, rec audit.Record) error {
	if at.IsZero() {
		return fmt.Errorf("acl/sqlite: set password of %s: %w", id, acl.Invalid("at", "a revocation needs its time"))
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("acl/sqlite: set password: %w", err)
	}
	defer tx.Rollback()
	if err := oneRow(tx.ExecContext(ctx, updatePassword, hash, id)); err != nil {
		return fmt.Errorf("acl/sqlite: set password of %s: %w", id, dbError(err))
	}
	if _, err := tx.ExecContext(ctx, revokeUserSessions, micros(at), id); err != nil {
		return fmt.Errorf("acl/sqlite: set password of %s: revoke sessions: %w", id, err)
	}
	if err := appendAudit(ctx, tx, rec); err != nil {
		return fmt.Errorf("acl/sqlite: set password of %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acl/sqlite: set password of %s: commit: %w", id, err)
	}
	return nil
}

// SetRoles replaces the roles of user id; an unknown id is acl.ErrNotFound.
func (s *Store) SetRoles(ctx context.Context, id acl.UserID, roles []acl.Role, at time.Time, rec audit.Record) error {
	if at.IsZero() {
		return fmt.Errorf("acl/sqlite: set roles of %s: a revocation needs a time: %w", id, acl.ErrInvalid)
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("acl/sqlite: set roles: %w", err)
	}
	defer tx.Rollback()
	if err := oneRow(tx.ExecContext(ctx, updateRoles, encodeRoles(roles), id)); err != nil {
		return fmt.Errorf("acl/sqlite: set roles of %s: %w", id, dbError(err))
	}
	if _, err := tx.ExecContext(ctx, revokeUserSessions, micros(at), id); err != nil {
		return fmt.Errorf("acl/sqlite: set roles of %s: revoke sessions: %w", id, err)
	}
	if err := appendAudit(ctx, tx, rec); err != nil {
		return fmt.Errorf("acl/sqlite: set roles of %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acl/sqlite: set roles of %s: commit: %w", id, err)
	}
	return nil
}
