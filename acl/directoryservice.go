package acl

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"caseroom/acl/audit"
)

// A PasswordHasher turns a new password into the hash the store keeps.
// *token.Auth is one (its NewPasswordHash applies the configured policy and
// argon2id parameters); acl cannot import acl/token, so the Directory names
// only this method.
type PasswordHasher interface {
	// NewPasswordHash checks password against the password policy — personal are
	// the username and display name, which it must not contain — and returns its
	// hash. A refused password answers an *InvalidError for field "password" that
	// never quotes the password.
	NewPasswordHash(password string, personal ...string) (string, error)
}

// Invariants of directory administration, written here so that no policy data
// can undo them (等保's separation of system, security and audit administration).
const (
	// RuleNoSelfGrant refuses anyone setting their own roles.
	RuleNoSelfGrant = "no-self-grant"
	// RuleSeparateAdminRoles refuses a user holding two of the three
	// administrator roles (sysadmin, secadmin, auditor).
	RuleSeparateAdminRoles = "separate-admin-roles"
	// RuleNoSelfDisable refuses anyone disabling or enabling their own account,
	// so that the last administrator cannot lock everyone out by a slip.
	RuleNoSelfDisable = "no-self-disable"
	// RuleAuditWholeRegion refuses the acl audit streams, which span the whole
	// region, to auditors and security administrators below the region level.
	RuleAuditWholeRegion = "audit-whole-region"
)

// ConsoleUser is the actor id of ConsoleSubject in audit records. It is
// reserved: no user can be created with it as username.
const ConsoleUser UserID = "console"

// ConsoleSubject is the subject of `caseroomd admin`, run by an operator on the
// server itself (who can read the database and the signing key anyway): it holds
// the sysadmin and secadmin roles, so that the first administrators can be made,
// and its acts are audited under the actor "console". No token is ever issued
// for it and no HTTP path builds it; only cmd/caseroomd's admin command may put
// it in a context.
func ConsoleSubject() Subject {
	return Subject{User: ConsoleUser, Name: "caseroomd admin (console)", Roles: []Role{SysAdmin, SecAdmin}}
}

// reservedUsernames can never be created: they name actors that are not users.
var reservedUsernames = []string{string(ConsoleUser), "system", "root", "admin", "anonymous"}

// Input bounds of the directory.
const (
	minUsernameLen = 3
	maxUsernameLen = 64
	maxNameLen     = 64  // display names, in characters
	maxUnitNameLen = 100 // unit names, in characters
	minUnitIDLen   = 3
	maxUnitIDLen   = 64
	maxImport      = 100_000 // regions in one import
)

// A Directory administers regions, units and users. Every method acts for the
// subject in its context (SubjectFrom; none answers ErrUnauthenticated), asks
// the Guard, validates its input (an *InvalidError naming the field), and has
// the store commit the change together with its audit record in
// audit.StreamDirectory. Refusals are *DeniedError naming the rule, audited in
// audit.StreamDenials; a refused or invalid call changes nothing.
//
// A Directory is safe for concurrent use. Set the hooks before first use.
type Directory struct {
	store  Store
	guard  *Guard
	hasher PasswordHasher
	kinds  []KindInfo
	now    func() time.Time
	log    *slog.Logger

	// OnUnitCreated, when set, is called after the store has committed a new
	// unit (cmd creates the unit room there). Its error is returned by
	// CreateUnit, wrapped, with the unit that was created all the same.
	OnUnitCreated func(ctx context.Context, u Unit) error
	// OnSessionsRevoked, when set, is called after the store has revoked every
	// session of a user (the user disabled, the password reset, the roles
	// changed), so that this node drops cached sessions and closes the user's
	// sockets at once.
	OnSessionsRevoked func(UserID)
	// GeneratePassword makes the passwords that CreateUser and ResetPassword
	// return when none is given. Default: 26 random base32 characters (130 bits);
	// cmd sets token.GeneratePassword, which reads more easily.
	GeneratePassword func() (string, error)
}

// NewDirectory returns a Directory over store, deciding with guard, hashing with
// hasher, accepting the unit kinds kinds, reading the time from now and logging
// to log (nil discards).
func NewDirectory(store Store, guard *Guard, hasher PasswordHasher, kinds []KindInfo, now func() time.Time, log *slog.Logger) *Directory {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Directory{store: store, guard: guard, hasher: hasher, kinds: kinds, now: now, log: log}
}

// Kinds returns the unit kinds the directory accepts.
func (d *Directory) Kinds() []KindInfo { return slices.Clone(d.kinds) }

// Kind returns the kind named id, and false if there is none.
func (d *Directory) Kind(id UnitKind) (KindInfo, bool) {
	for _, k := range d.kinds {
		if k.ID == id {
			return k, true
		}
	}
	return KindInfo{}, false
}

// maxTarget bounds what of an input id reaches an audit record, so that a
// refused request cannot fill the denials stream with its body.
const maxTarget = 128

// clip shortens an id taken from input to maxTarget bytes of valid UTF-8.
func clip(id string) string {
	if len(id) <= maxTarget {
		return id
	}
	return strings.ToValidUTF8(id[:maxTarget], "") + "…"
}

// subject returns the acting subject of ctx.
func subject(ctx context.Context) (Subject, error) {
	who, ok := SubjectFrom(ctx)
	if !ok || who.User == "" {
		return Subject{}, ErrUnauthenticated
	}
	return who, nil
}

// check asks the guard whether who may do a on res.
func (d *Directory) check(ctx context.Context, who Subject, a Action, res Resource) error {
	_, err := d.guard.Check(ctx, who, a, res)
	return err
}

// refuse audits, as Guard.Check does, a refusal by one of this file's
// invariants, and returns the *DeniedError naming rule.
func (d *Directory) refuse(ctx context.Context, who Subject, a Action, res Resource, rule, reason string) error {
	detail, _ := json.Marshal(map[string]string{"rule": rule, "kind": res.Kind, "unit": string(who.Unit)})
	rec := audit.Record{Stream: audit.StreamDenials, At: d.now(), Actor: string(who.User),
		Action: string(a), Target: res.Kind + ":" + res.ID, Outcome: audit.Denied, Detail: string(detail)}
	if err := d.store.Audit(ctx, rec); err != nil {
		return fmt.Errorf("acl: audit denial by %s: %w", rule, err)
	}
	return &DeniedError{Rule: rule, Reason: reason}
}

// record is the audit record of a successful directory change by who.
func (d *Directory) record(who Subject, a Action, target string, detail map[string]any) audit.Record {
	b, _ := json.Marshal(detail) // strings, bools and slices of strings: always marshals, keys sorted
	return audit.Record{Stream: audit.StreamDirectory, At: d.now(), Actor: string(who.User),
		Action: string(a), Target: target, Outcome: audit.OK, Detail: string(b)}
}

func (d *Directory) revoked(id UserID) {
	if d.OnSessionsRevoked != nil {
		d.OnSessionsRevoked(id)
	}
}

// ImportRegions inserts the regions rs, or updates those whose codes exist, and
// puts the resulting tree in force in the Guard. Every region needs a 6-digit
// code, a name and a level (0 region, 1 league, 2 county); the root alone has no
// parent, and every other region's parent is in rs or already stored, one level
// up. Needs ImportDirectory (sysadmin).
func (d *Directory) ImportRegions(ctx context.Context, rs []Region) error {
	who, err := subject(ctx)
	if err != nil {
		return err
	}
	if err := d.check(ctx, who, ImportDirectory, Resource{Kind: "directory", ID: "regions"}); err != nil {
		return err
	}
	stored, err := d.store.Regions(ctx)
	if err != nil {
		return fmt.Errorf("acl: import regions: %w", err)
	}
	if err := validateRegions(rs, stored); err != nil {
		return err
	}
	rec := d.record(who, ImportDirectory, "regions", map[string]any{"regions": len(rs)})
	if err := d.store.PutRegions(ctx, rs, rec); err != nil {
		return fmt.Errorf("acl: import regions: %w", err)
	}
	all, err := d.store.Regions(ctx)
	if err != nil {
		return fmt.Errorf("acl: import regions: reload: %w", err)
	}
	d.guard.SetRegions(NewRegions(all))
	return nil
}

func validateRegions(rs []Region, stored []Region) error {
	if len(rs) == 0 {
		return Invalid("regions", "the list is empty")
	}
	if len(rs) > maxImport {
		return Invalid("regions", fmt.Sprintf("at most %d regions in one import", maxImport))
	}
	level := make(map[RegionCode]int, len(stored)+len(rs))
	var root RegionCode
	for _, r := range stored {
		level[r.Code] = r.Level
		if r.Level == LevelProvince {
			root = r.Code
		}
	}
	seen := make(map[RegionCode]bool, len(rs))
	for i, r := range rs {
		at := fmt.Sprintf("regions[%d]", i)
		if !sixDigits(r.Code) {
			return Invalid(at+".code", fmt.Sprintf("%q is not a 6-digit region code", r.Code))
		}
		if seen[r.Code] {
			return Invalid(at+".code", fmt.Sprintf("duplicate region %s", r.Code))
		}
		seen[r.Code] = true
		level[r.Code] = r.Level
		if err := checkName(at+".name", r.Name, maxNameLen); err != nil {
			return err
		}
		if r.Level < LevelProvince || r.Level > LevelCounty {
			return Invalid(at+".level", fmt.Sprintf("must be %d, %d or %d", LevelProvince, LevelLeague, LevelCounty))
		}
		if (r.Level == LevelProvince) != (r.Parent == "") {
			return Invalid(at+".parent", "only the root region (level 0) has no parent")
		}
		if r.Level == LevelProvince {
			if root != "" && root != r.Code {
				return Invalid(at+".code", fmt.Sprintf("the tree has one root, %s", root))
			}
			root = r.Code
		}
	}
	for i, r := range rs {
		if r.Parent == "" {
			continue
		}
		pl, ok := level[r.Parent]
		if !ok {
			return Invalid(fmt.Sprintf("regions[%d].parent", i), fmt.Sprintf("unknown region %s", r.Parent))
		}
		if pl != r.Level-1 {
			return Invalid(fmt.Sprintf("regions[%d].parent", i), fmt.Sprintf("region %s is at level %d, not %d", r.Parent, pl, r.Level-1))
		}
	}
	return nil
}

func sixDigits(c RegionCode) bool {
	if len(c) != 6 {
		return false
	}
	for _, r := range c {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// checkName requires a non-empty, trimmed name of at most max characters
// without control characters.
func checkName(field, name string, max int) error {
	switch {
	case strings.TrimSpace(name) == "":
		return Invalid(field, "is required")
	case name != strings.TrimSpace(name):
		return Invalid(field, "must not start or end with spaces")
	case !utf8.ValidString(name):
		return Invalid(field, "must be valid UTF-8 text")
	case utf8.RuneCountInString(name) > max:
		return Invalid(field, fmt.Sprintf("must be at most %d characters", max))
	case strings.ContainsFunc(name, unicode.IsControl):
		return Invalid(field, "must not contain control characters")
	}
	return nil
}

// Regions returns every region, ordered by code. Needs ReadDirectory.
func (d *Directory) Regions(ctx context.Context) ([]Region, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	if err := d.check(ctx, who, ReadDirectory, Resource{Kind: "directory", ID: "regions"}); err != nil {
		return nil, err
	}
	return d.store.Regions(ctx)
}

// CreateUnit stores a new unit and returns it as stored. Kind must be a known
// unit kind, Region a stored region and Name given; an empty ID becomes
// "<region>-<kind>" (e.g. "150102-court"), except for a non-territorial unit,
// which needs its own ID (e.g. "150100-railway-police") since its region's
// territorial unit of that kind has the derived one. IDs are 3–64 characters of
// [a-z0-9_-]. Disabled and CreatedAt are set here. An existing ID answers
// ErrExists. Needs CreateUnit (sysadmin). OnUnitCreated runs after the commit.
func (d *Directory) CreateUnit(ctx context.Context, u Unit) (Unit, error) {
	who, err := subject(ctx)
	if err != nil {
		return Unit{}, err
	}
	if err := d.check(ctx, who, CreateUnit, Resource{Kind: "unit", ID: clip(string(u.ID)), Unit: UnitID(clip(string(u.ID))), Region: RegionCode(clip(string(u.Region)))}); err != nil {
		return Unit{}, err
	}
	if _, ok := d.Kind(u.Kind); !ok {
		return Unit{}, Invalid("kind", fmt.Sprintf("unknown unit kind %q", u.Kind))
	}
	if !sixDigits(u.Region) {
		return Unit{}, Invalid("region", fmt.Sprintf("%q is not a 6-digit region code", u.Region))
	}
	known, err := d.regionKnown(ctx, u.Region)
	if err != nil {
		return Unit{}, err
	}
	if !known {
		return Unit{}, Invalid("region", fmt.Sprintf("unknown region %s", u.Region))
	}
	if err := checkName("name", u.Name, maxUnitNameLen); err != nil {
		return Unit{}, err
	}
	if u.ID == "" {
		if u.NonTerritorial {
			return Unit{}, Invalid("id", "a non-territorial unit needs its own id, e.g. "+string(u.Region)+"-railway-police")
		}
		u.ID = UnitID(string(u.Region) + "-" + string(u.Kind))
	}
	if err := checkUnitID(u.ID); err != nil {
		return Unit{}, err
	}
	u.Disabled = false
	u.CreatedAt = d.now().UTC().Truncate(time.Microsecond)
	rec := d.record(who, CreateUnit, "unit:"+string(u.ID), map[string]any{
		"kind": u.Kind, "region": u.Region, "name": u.Name, "non_territorial": u.NonTerritorial})
	if err := d.store.CreateUnit(ctx, u, rec); err != nil {
		return Unit{}, fmt.Errorf("acl: create unit %s: %w", u.ID, err)
	}
	if d.OnUnitCreated != nil {
		if err := d.OnUnitCreated(ctx, u); err != nil {
			return u, fmt.Errorf("acl: unit %s created, but OnUnitCreated failed: %w", u.ID, err)
		}
	}
	return u, nil
}

func (d *Directory) regionKnown(ctx context.Context, code RegionCode) (bool, error) {
	if d.guard.Regions().Known(code) {
		return true, nil
	}
	// The guard's tree may predate an import on another node: ask the store.
	rs, err := d.store.Regions(ctx)
	if err != nil {
		return false, fmt.Errorf("acl: regions: %w", err)
	}
	return slices.ContainsFunc(rs, func(r Region) bool { return r.Code == code }), nil
}

func checkUnitID(id UnitID) error {
	if n := len(id); n < minUnitIDLen || n > maxUnitIDLen {
		return Invalid("id", fmt.Sprintf("must be %d to %d characters", minUnitIDLen, maxUnitIDLen))
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return Invalid("id", "may hold only a-z, 0-9, _ and -")
		}
	}
	return nil
}

// DisableUnit disables or re-enables unit id; an unknown id answers ErrNotFound.
// The users of a disabled unit cannot log in or refresh their sessions. Needs
// DisableUnit (sysadmin).
func (d *Directory) DisableUnit(ctx context.Context, id UnitID, disabled bool) error {
	who, err := subject(ctx)
	if err != nil {
		return err
	}
	if err := d.check(ctx, who, DisableUnit, Resource{Kind: "unit", ID: clip(string(id)), Unit: UnitID(clip(string(id)))}); err != nil {
		return err
	}
	rec := d.record(who, DisableUnit, "unit:"+string(id), map[string]any{"disabled": disabled})
	if err := d.store.SetUnitDisabled(ctx, id, disabled, rec); err != nil {
		return fmt.Errorf("acl: disable unit %s: %w", id, err)
	}
	return nil
}

// Units returns the units f selects, ordered by id. Needs ReadDirectory.
func (d *Directory) Units(ctx context.Context, f UnitFilter) ([]Unit, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	if err := d.check(ctx, who, ReadDirectory, Resource{Kind: "directory", ID: "units"}); err != nil {
		return nil, err
	}
	return d.store.Units(ctx, f)
}

// Unit returns unit id, or ErrNotFound. Needs ReadDirectory.
func (d *Directory) Unit(ctx context.Context, id UnitID) (Unit, error) {
	who, err := subject(ctx)
	if err != nil {
		return Unit{}, err
	}
	if err := d.check(ctx, who, ReadDirectory, Resource{Kind: "unit", ID: clip(string(id)), Unit: UnitID(clip(string(id)))}); err != nil {
		return Unit{}, err
	}
	return d.store.Unit(ctx, id)
}

// NewUser is what CreateUser needs.
type NewUser struct {
	Username string // 3–64 characters of [a-z0-9._-], starting with a letter or digit; stored lowercase
	Name     string // display name, e.g. 新城区公安分局 民警1
	Unit     UnitID // an existing, enabled unit
	Roles    []Role
	Password string // "" makes CreateUser generate one and return it
}

// CreateUser stores a new user of an existing, enabled unit and returns it, with
// the generated password when nu.Password was empty ("" otherwise). The user's
// id is its username, which is never reused (users are never deleted). A
// taken username answers ErrExists; a password the policy refuses an
// *InvalidError for "password".
//
// Creating a user needs CreateUser (sysadmin). Giving it roles is a grant, so
// when nu.Roles is not empty it needs GrantRoles (secadmin) as well: under
// 等保's separation the system administrator opens accounts and the security
// administrator gives them roles (ConsoleSubject holds both). RULE
// separate-admin-roles: no user holds two of sysadmin, secadmin and auditor.
func (d *Directory) CreateUser(ctx context.Context, nu NewUser) (User, string, error) {
	who, err := subject(ctx)
	if err != nil {
		return User{}, "", err
	}
	username := strings.ToLower(strings.TrimSpace(nu.Username))
	res := Resource{Kind: "user", ID: clip(username), Unit: UnitID(clip(string(nu.Unit)))}
	if err := d.check(ctx, who, CreateUser, res); err != nil {
		return User{}, "", err
	}
	if err := checkUsername(username); err != nil {
		return User{}, "", err
	}
	if err := checkName("name", nu.Name, maxNameLen); err != nil {
		return User{}, "", err
	}
	roles, err := normalizeRoles(nu.Roles)
	if err != nil {
		return User{}, "", err
	}
	unit, err := d.store.Unit(ctx, nu.Unit)
	if errors.Is(err, ErrNotFound) {
		return User{}, "", Invalid("unit", fmt.Sprintf("unknown unit %q", nu.Unit))
	}
	if err != nil {
		return User{}, "", fmt.Errorf("acl: create user: unit %s: %w", nu.Unit, err)
	}
	if unit.Disabled {
		return User{}, "", Invalid("unit", fmt.Sprintf("unit %s is disabled", unit.ID))
	}
	res.Region = unit.Region
	if len(roles) > 0 {
		if err := d.check(ctx, who, GrantRoles, res); err != nil {
			return User{}, "", err
		}
		if a, b, clash := adminClash(roles); clash {
			return User{}, "", d.refuse(ctx, who, GrantRoles, res, RuleSeparateAdminRoles, separateReason(a, b))
		}
	}
	password, generated := nu.Password, ""
	if password == "" {
		if password, err = d.generate(); err != nil {
			return User{}, "", err
		}
		generated = password
	}
	hash, err := d.hasher.NewPasswordHash(password, username, nu.Name)
	if err != nil {
		return User{}, "", err
	}
	u := User{ID: UserID(username), Username: username, Name: nu.Name, Unit: unit.ID, Roles: roles,
		CreatedAt: d.now().UTC().Truncate(time.Microsecond)}
	rec := d.record(who, CreateUser, "user:"+string(u.ID), map[string]any{
		"username": u.Username, "name": u.Name, "unit": u.Unit, "roles": roleStrings(roles),
		"password_generated": generated != ""})
	if err := d.store.CreateUser(ctx, u, hash, rec); err != nil {
		return User{}, "", fmt.Errorf("acl: create user %s: %w", u.Username, err)
	}
	return u, generated, nil
}

func checkUsername(s string) error {
	if n := len(s); n < minUsernameLen || n > maxUsernameLen {
		return Invalid("username", fmt.Sprintf("must be %d to %d characters", minUsernameLen, maxUsernameLen))
	}
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if i == 0 && !alnum {
			return Invalid("username", "must start with a letter or a digit")
		}
		if !alnum && r != '.' && r != '_' && r != '-' {
			return Invalid("username", "may hold only a-z, 0-9, '.', '_' and '-'")
		}
	}
	if slices.Contains(reservedUsernames, s) {
		return Invalid("username", fmt.Sprintf("%q is reserved", s))
	}
	return nil
}

// normalizeRoles checks roles and returns them in the order of Roles.
func normalizeRoles(roles []Role) ([]Role, error) {
	seen := map[Role]bool{}
	for _, r := range roles {
		if !ValidRole(r) {
			return nil, Invalid("roles", fmt.Sprintf("unknown role %q", r))
		}
		if seen[r] {
			return nil, Invalid("roles", fmt.Sprintf("role %q is given twice", r))
		}
		seen[r] = true
	}
	var out []Role
	for _, r := range Roles {
		if seen[r] {
			out = append(out, r)
		}
	}
	return out, nil
}

// adminRoles are the three administrators of 等保's separation of duties.
var adminRoles = []Role{SysAdmin, SecAdmin, Auditor}

// adminClash reports the first two administrator roles that roles holds together.
func adminClash(roles []Role) (a, b Role, clash bool) {
	var held []Role
	for _, r := range adminRoles {
		if slices.Contains(roles, r) {
			held = append(held, r)
		}
	}
	if len(held) < 2 {
		return "", "", false
	}
	return held[0], held[1], true
}

func separateReason(a, b Role) string {
	return fmt.Sprintf("The system administrator, the security administrator and the auditor must be different people; %s and %s cannot be held together.", a, b)
}

func roleStrings(roles []Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	return out
}

func (d *Directory) generate() (string, error) {
	if d.GeneratePassword != nil {
		p, err := d.GeneratePassword()
		if err != nil {
			return "", fmt.Errorf("acl: generate password: %w", err)
		}
		return p, nil
	}
	return rand.Text(), nil
}

// userResource returns the resource of user id, or ErrNotFound.
func (d *Directory) user(ctx context.Context, id UserID) (User, Resource, error) {
	u, err := d.store.User(ctx, id)
	if err != nil {
		return User{}, Resource{}, err
	}
	return u, Resource{Kind: "user", ID: string(u.ID), Unit: u.Unit}, nil
}

// DisableUser disables or re-enables user id. Disabling revokes every session
// of theirs in the same commit, so their access tokens are refused at once (on
// this node through OnSessionsRevoked; on others within the session cache's
// window). Nobody disables themselves. Unknown users answer ErrNotFound. Needs
// DisableUser (sysadmin).
func (d *Directory) DisableUser(ctx context.Context, id UserID, disabled bool) error {
	who, err := subject(ctx)
	if err != nil {
		return err
	}
	res := Resource{Kind: "user", ID: clip(string(id))}
	if err := d.check(ctx, who, DisableUser, res); err != nil {
		return err
	}
	if id == who.User {
		return d.refuse(ctx, who, DisableUser, res, RuleNoSelfDisable, "Nobody can disable or enable their own account.")
	}
	rec := d.record(who, DisableUser, "user:"+string(id), map[string]any{"disabled": disabled})
	if err := d.store.SetUserDisabled(ctx, id, disabled, d.now(), rec); err != nil {
		return fmt.Errorf("acl: disable user %s: %w", id, err)
	}
	if disabled {
		d.revoked(id)
	}
	return nil
}

// ResetPassword replaces the password of user id with newPassword, or with a
// generated one when newPassword is empty, and returns the generated one ("" when
// newPassword was given). It clears a lockout and revokes every session of the
// user. The password must pass the policy (an *InvalidError for "password");
// bots have no password (an *InvalidError for "user"); unknown users answer
// ErrNotFound. Needs ResetPassword (secadmin); a user changes their own
// password through token.Auth.ChangePassword, which asks for the old one.
func (d *Directory) ResetPassword(ctx context.Context, id UserID, newPassword string) (string, error) {
	who, err := subject(ctx)
	if err != nil {
		return "", err
	}
	if err := d.check(ctx, who, ResetPassword, Resource{Kind: "user", ID: clip(string(id))}); err != nil {
		return "", err
	}
	u, _, err := d.user(ctx, id)
	if err != nil {
		return "", fmt.Errorf("acl: reset password of %s: %w", id, err)
	}
	if u.Bot {
		return "", Invalid("user", "a bot has no password")
	}
	password, generated := newPassword, ""
	if password == "" {
		if password, err = d.generate(); err != nil {
			return "", err
		}
		generated = password
	}
	hash, err := d.hasher.NewPasswordHash(password, u.Username, u.Name)
	if err != nil {
		return "", err
	}
	rec := d.record(who, ResetPassword, "user:"+string(id), map[string]any{"generated": generated != ""})
	if err := d.store.SetPassword(ctx, id, hash, d.now(), rec); err != nil {
		return "", fmt.Errorf("acl: reset password of %s: %w", id, err)
	}
	d.revoked(id)
	return generated, nil
}

// SetRoles replaces the roles of user id and returns the user as stored.
// RULE no-self-grant: nobody sets their own roles. RULE separate-admin-roles: no
// user holds two of sysadmin, secadmin and auditor. Unknown users answer
// ErrNotFound. Needs GrantRoles (secadmin).
//
// The roles are written into access tokens, so the store revokes the user's
// sessions with the change: they sign in again and get tokens with the new roles.
func (d *Directory) SetRoles(ctx context.Context, id UserID, roles []Role) (User, error) {
	who, err := subject(ctx)
	if err != nil {
		return User{}, err
	}
	res := Resource{Kind: "user", ID: clip(string(id))}
	if id == who.User {
		return User{}, d.refuse(ctx, who, GrantRoles, res, RuleNoSelfGrant, "Nobody can grant or change their own roles.")
	}
	if err := d.check(ctx, who, GrantRoles, res); err != nil {
		return User{}, err
	}
	norm, err := normalizeRoles(roles)
	if err != nil {
		return User{}, err
	}
	u, res, err := d.user(ctx, id)
	if err != nil {
		return User{}, fmt.Errorf("acl: set roles of %s: %w", id, err)
	}
	if a, b, clash := adminClash(norm); clash {
		return User{}, d.refuse(ctx, who, GrantRoles, res, RuleSeparateAdminRoles, separateReason(a, b))
	}
	rec := d.record(who, GrantRoles, "user:"+string(id), map[string]any{
		"roles": roleStrings(norm), "previous": roleStrings(u.Roles)})
	if err := d.store.SetRoles(ctx, id, norm, d.now(), rec); err != nil {
		return User{}, fmt.Errorf("acl: set roles of %s: %w", id, err)
	}
	d.revoked(id)
	u.Roles = norm
	return u, nil
}

// Unlock clears a lockout of user id and its failure count; unknown users answer
// ErrNotFound. Needs UnlockUser (secadmin).
func (d *Directory) Unlock(ctx context.Context, id UserID) error {
	who, err := subject(ctx)
	if err != nil {
		return err
	}
	if err := d.check(ctx, who, UnlockUser, Resource{Kind: "user", ID: clip(string(id))}); err != nil {
		return err
	}
	rec := d.record(who, UnlockUser, "user:"+string(id), map[string]any{})
	if err := d.store.Unlock(ctx, id, rec); err != nil {
		return fmt.Errorf("acl: unlock %s: %w", id, err)
	}
	return nil
}

// Users returns the users f selects, ordered by id. Needs ReadDirectory.
func (d *Directory) Users(ctx context.Context, f UserFilter) ([]User, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	if err := d.check(ctx, who, ReadDirectory, Resource{Kind: "directory", ID: "users"}); err != nil {
		return nil, err
	}
	return d.store.Users(ctx, f)
}

// User returns user id, or ErrNotFound. Needs ReadDirectory.
func (d *Directory) User(ctx context.Context, id UserID) (User, error) {
	who, err := subject(ctx)
	if err != nil {
		return User{}, err
	}
	if err := d.check(ctx, who, ReadDirectory, Resource{Kind: "user", ID: clip(string(id))}); err != nil {
		return User{}, err
	}
	return d.store.User(ctx, id)
}

// Audit returns up to limit entries of the acl audit stream after seq after
// (audit.StreamDirectory, StreamAuth or StreamDenials; any other name answers
// ErrNotFound). Under 等保's separation the auditor (ReadAudit) reads every
// stream; the security administrator (ReadSecurityLog) reviews the security
// events — logins, lockouts and sessions (auth) and refused actions (denials) —
// but not the directory stream, which records the administrators' own acts,
// their own included, and is the auditor's alone. These streams are not split by
// region, so a reader must also sit at the region root (RootRegion): a league's
// auditor is refused by RuleAuditWholeRegion. limit is 1 to 1000.
func (d *Directory) Audit(ctx context.Context, stream string, after int64, limit int) ([]audit.Entry, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	switch stream {
	case audit.StreamDirectory, audit.StreamDenials, audit.StreamAuth:
	default:
		return nil, fmt.Errorf("acl: audit stream %q: %w", stream, ErrNotFound)
	}
	res := Resource{Kind: "audit", ID: stream}
	if stream != audit.StreamDirectory && who.Has(SecAdmin) {
		err = d.check(ctx, who, ReadSecurityLog, res)
	} else {
		err = d.check(ctx, who, ReadAudit, res)
	}
	if err != nil {
		return nil, err
	}
	// RULE invariant 6 and the auditor's jurisdiction: these streams are not split
	// by region, so only the region-level administrators read them.
	if !d.guard.Regions().Covers(who.Region, RootRegion) {
		return nil, d.refuse(ctx, who, ReadAudit, res, RuleAuditWholeRegion,
			"The directory, sign-in and denial records cover the whole region; only auditors and security administrators at the region level read them.")
	}
	if after < 0 {
		return nil, Invalid("after", "must not be negative")
	}
	if limit < 1 || limit > 1000 {
		return nil, Invalid("limit", "must be 1 to 1000")
	}
	return d.store.AuditEntries(ctx, stream, after, limit)
}
