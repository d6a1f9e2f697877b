// Package httpjson holds the JSON conventions every caseroom HTTP handler
// shares: size-limited strict decoding, responses, and the error envelope
// {"error":{"code":"…","message":"…"}} with stable codes. Each handler package
// keeps its own writeError for its domain's errors and falls back to Error here.
package httpjson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"caseroom/acl"
)

// DefaultLimit is the largest request body Decode accepts unless told otherwise.
const DefaultLimit = 1 << 20

// ErrorBody is the envelope of every error response.
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// ErrorInfo is a stable code, a message written for users, and optional details.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Rule    string `json:"rule,omitempty"`  // for "forbidden": the rule that refused
	Field   string `json:"field,omitempty"` // for "invalid": the field at fault
	Until   string `json:"until,omitempty"` // for "account_locked": RFC 3339
}

// A StatusError is an error with its HTTP status and code, for transports to send.
type StatusError struct {
	Status  int
	Code    string
	Message string
	Field   string
	Err     error
}

func (e *StatusError) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}
func (e *StatusError) Unwrap() error { return e.Err }

// Bad returns a 400 StatusError with code.
func Bad(code, message string) *StatusError {
	return &StatusError{Status: http.StatusBadRequest, Code: code, Message: message}
}

// Decode reads r's body as one JSON value of type T: at most limit bytes
// (DefaultLimit when 0), unknown fields refused, nothing after the value. Errors
// are *StatusError with codes body_too_large, malformed_json, unknown_field or
// invalid_json_type.
func Decode[T any](r *http.Request, limit int64) (T, error) {
	var v T
	if limit <= 0 {
		limit = DefaultLimit
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return v, &StatusError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "the request body must be application/json"}
	}
	body := http.MaxBytesReader(nil, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, decodeError(err, limit)
	}
	if _, err := dec.Token(); err != io.EOF {
		return v, Bad("malformed_json", "the request body must hold exactly one JSON value")
	}
	return v, nil
}

func decodeError(err error, limit int64) error {
	var maxErr *http.MaxBytesError
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &maxErr):
		return &StatusError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
			Message: fmt.Sprintf("the request body is larger than %d bytes", limit)}
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return Bad("malformed_json", "the request body is not valid JSON")
	case errors.As(err, &typeErr):
		e := Bad("invalid_json_type", fmt.Sprintf("field %q has the wrong type", typeErr.Field))
		e.Field = typeErr.Field
		return e
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		e := Bad("unknown_field", fmt.Sprintf("unknown field %q", name))
		e.Field = name
		return e
	}
	return Bad("malformed_json", "the request body is not valid JSON")
}

// Respond writes v as JSON with status.
func Respond(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

// RespondEncoded writes b, JSON encoded already, as Respond would write the
// value it encodes: the same headers, and a newline after it.
func RespondEncoded(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// WriteError sends the envelope for info with status.
func WriteError(w http.ResponseWriter, status int, info ErrorInfo) {
	Respond(w, status, ErrorBody{Error: info})
}

// Error writes err as the error envelope: a *StatusError as it is, a
// *acl.DeniedError as 403 forbidden with its rule, acl's sentinels with their
// codes, and anything else as 500 "internal error" — logged here, the only log
// line that error gets.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var se *StatusError
	var de *acl.DeniedError
	var ie *acl.InvalidError
	switch {
	case errors.As(err, &se):
		WriteError(w, se.Status, ErrorInfo{Code: se.Code, Message: se.Message, Field: se.Field})
	case errors.As(err, &de):
		WriteError(w, http.StatusForbidden, ErrorInfo{Code: "forbidden", Message: de.Reason, Rule: de.Rule})
	case errors.As(err, &ie):
		WriteError(w, http.StatusBadRequest, ErrorInfo{Code: "invalid", Message: ie.Field + ": " + ie.Reason, Field: ie.Field})
	case errors.Is(err, acl.ErrNotFound):
		WriteError(w, http.StatusNotFound, ErrorInfo{Code: "not_found", Message: "not found"})
	case errors.Is(err, acl.ErrExists):
		WriteError(w, http.StatusConflict, ErrorInfo{Code: "exists", Message: "already exists"})
	case errors.Is(err, acl.ErrUnauthenticated):
		WriteError(w, http.StatusUnauthorized, ErrorInfo{Code: "unauthenticated", Message: "sign in first"})
	case errors.Is(err, acl.ErrBadCredentials):
		WriteError(w, http.StatusUnauthorized, ErrorInfo{Code: "bad_credentials", Message: "wrong username or password"})
	case errors.Is(err, acl.ErrLocked):
		info := ErrorInfo{Code: "account_locked", Message: "the account is locked after repeated failed logins"}
		var until interface{ LockedUntil() string }
		if errors.As(err, &until) {
			info.Until = until.LockedUntil()
		}
		WriteError(w, http.StatusForbidden, info)
	case errors.Is(err, acl.ErrDisabled):
		WriteError(w, http.StatusForbidden, ErrorInfo{Code: "account_disabled", Message: "the account is disabled"})
	case errors.Is(err, acl.ErrTokenExpired):
		WriteError(w, http.StatusUnauthorized, ErrorInfo{Code: "token_expired", Message: "the token has expired"})
	case errors.Is(err, acl.ErrTokenReused):
		WriteError(w, http.StatusUnauthorized, ErrorInfo{Code: "token_reused", Message: "the refresh token was already used; the session is revoked"})
	case errors.Is(err, acl.ErrTokenInvalid):
		WriteError(w, http.StatusUnauthorized, ErrorInfo{Code: "token_invalid", Message: "the token is not valid"})
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
	default:
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		WriteError(w, http.StatusInternalServerError, ErrorInfo{Code: "internal", Message: "internal error"})
	}
}
