package acl

import "errors"

// A DeniedError names the rule that refused an action. Its text is written for
// the person refused, so transports may show it as it is.
type DeniedError struct {
	Rule   string // stable id, e.g. "no-self-approval"
	Reason string // one plain sentence
}

func (e *DeniedError) Error() string { return "acl: denied by " + e.Rule + ": " + e.Reason }

// Sentinel errors of the directory and of authentication. Transports map each to
// a stable code (see Code).
var (
	ErrNotFound        = errors.New("acl: not found")
	ErrExists          = errors.New("acl: already exists")
	ErrInvalid         = errors.New("acl: invalid input")
	ErrUnauthenticated = errors.New("acl: not signed in")
	ErrBadCredentials  = errors.New("acl: wrong username or password")
	ErrLocked          = errors.New("acl: account locked")
	ErrDisabled        = errors.New("acl: account disabled")
	ErrTokenInvalid    = errors.New("acl: token invalid")
	ErrTokenExpired    = errors.New("acl: token expired")
	ErrTokenReused     = errors.New("acl: refresh token reused")
)

// An InvalidError says which input field is wrong and why; it wraps ErrInvalid.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return "acl: invalid " + e.Field + ": " + e.Reason }
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Invalid returns an *InvalidError for field.
func Invalid(field, reason string) error { return &InvalidError{Field: field, Reason: reason} }
