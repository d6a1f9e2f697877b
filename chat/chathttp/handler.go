// Package chathttp is the HTTP API of rooms and messages. Each handler decodes,
// calls one chat.Service method and encodes a view type; policy and audit
// happen in the service.
package chathttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"caseroom/acl"
	"caseroom/acl/httpjson"
	"caseroom/chat"
)

// A Route is one method and pattern this package serves, for the OpenAPI check.
type Route struct{ Method, Pattern string }

// Routes lists every route NewHandler serves.
func Routes() []Route {
	return []Route{
		{"GET", "/api/v1/rooms"},
		{"POST", "/api/v1/rooms"},
		{"GET", "/api/v1/rooms/{room}"},
		{"PATCH", "/api/v1/rooms/{room}"},
		{"GET", "/api/v1/rooms/{room}/members"},
		{"POST", "/api/v1/rooms/{room}/members"},
		{"DELETE", "/api/v1/rooms/{room}/members/{user}"},
		{"GET", "/api/v1/rooms/{room}/units"},
		{"POST", "/api/v1/rooms/{room}/units"},
		{"GET", "/api/v1/rooms/{room}/messages"},
		{"POST", "/api/v1/rooms/{room}/messages"},
		{"PATCH", "/api/v1/rooms/{room}/messages/{seq}"},
		{"DELETE", "/api/v1/rooms/{room}/messages/{seq}"},
		{"GET", "/api/v1/rooms/{room}/messages/{seq}/versions"},
		{"GET", "/api/v1/rooms/{room}/messages/{seq}/receipts"},
		{"POST", "/api/v1/rooms/{room}/read"},
		{"POST", "/api/v1/rooms/{room}/files"},
		{"GET", "/api/v1/rooms/{room}/files/{sha256}"},
		{"GET", "/api/v1/rooms/{room}/verify"},
	}
}

// NewHandler returns the rooms API. It expects the subject in the request
// context (cmd mounts acl/token's middleware in front).
func NewHandler(svc *chat.Service, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	h := &handler{svc: svc, log: log}
	mux.Handle("GET /api/v1/rooms", h.myRooms())
	mux.Handle("POST /api/v1/rooms", h.createRoom())
	mux.Handle("GET /api/v1/rooms/{room}", h.room())
	mux.Handle("PATCH /api/v1/rooms/{room}", h.patchRoom())
	mux.Handle("GET /api/v1/rooms/{room}/members", h.members())
	mux.Handle("POST /api/v1/rooms/{room}/members", h.addMembers())
	mux.Handle("DELETE /api/v1/rooms/{room}/members/{user}", h.removeMember())
	mux.Handle("GET /api/v1/rooms/{room}/units", h.units())
	mux.Handle("POST /api/v1/rooms/{room}/units", h.addUnits())
	mux.Handle("GET /api/v1/rooms/{room}/messages", h.history())
	mux.Handle("POST /api/v1/rooms/{room}/messages", h.post())
	mux.Handle("PATCH /api/v1/rooms/{room}/messages/{seq}", h.edit())
	mux.Handle("DELETE /api/v1/rooms/{room}/messages/{seq}", h.retract())
	mux.Handle("GET /api/v1/rooms/{room}/messages/{seq}/versions", h.versions())
	mux.Handle("GET /api/v1/rooms/{room}/messages/{seq}/receipts", h.receipts())
	mux.Handle("POST /api/v1/rooms/{room}/read", h.markRead())
	mux.Handle("POST /api/v1/rooms/{room}/files", h.upload())
	mux.Handle("GET /api/v1/rooms/{room}/files/{sha256}", h.download())
	mux.Handle("GET /api/v1/rooms/{room}/verify", h.verify())
	return mux
}

type handler struct {
	svc *chat.Service
	log *slog.Logger
}

// writeError maps chat's errors to statuses and stable codes and leaves the
// rest to httpjson.Error.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ie *chat.InvalidError
	switch {
	case errors.As(err, &ie):
		httpjson.WriteError(w, http.StatusBadRequest, httpjson.ErrorInfo{Code: "invalid", Message: ie.Field + ": " + ie.Reason, Field: ie.Field})
	case errors.Is(err, chat.ErrNotFound):
		httpjson.WriteError(w, http.StatusNotFound, httpjson.ErrorInfo{Code: "not_found", Message: "not found"})
	case errors.Is(err, chat.ErrConflict):
		httpjson.WriteError(w, http.StatusConflict, httpjson.ErrorInfo{Code: "conflict", Message: "the room has moved on; reload and try again"})
	case errors.Is(err, chat.ErrArchived):
		httpjson.WriteError(w, http.StatusConflict, httpjson.ErrorInfo{Code: "room_archived", Message: "the room is archived and read-only"})
	case errors.Is(err, chat.ErrTooLarge):
		httpjson.WriteError(w, http.StatusRequestEntityTooLarge, httpjson.ErrorInfo{Code: "file_too_large",
			Message: fmt.Sprintf("the file is larger than %d bytes", h.svc.Options().MaxUpload)})
	case errors.Is(err, chat.ErrRateLimit):
		w.Header().Set("Retry-After", "1")
		httpjson.WriteError(w, http.StatusTooManyRequests, httpjson.ErrorInfo{Code: "rate_limited", Message: "too many messages; slow down"})
	case errors.Is(err, chat.ErrInvalid):
		httpjson.WriteError(w, http.StatusBadRequest, httpjson.ErrorInfo{Code: "invalid", Message: err.Error()})
	default:
		httpjson.Error(w, r, h.log, err)
	}
}

func (h *handler) respond(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpjson.Respond(w, status, v)
}

// RoomView is a room as the API shows it.
type RoomView struct {
	ID        chat.RoomID    `json:"id"`
	Kind      chat.RoomKind  `json:"kind"`
	Name      string         `json:"name"`
	OwnerUnit acl.UnitID     `json:"owner_unit"`
	Region    acl.RegionCode `json:"region"`
	Archived  bool           `json:"archived"`
	CreatedBy acl.UserID     `json:"created_by"`
	CreatedAt time.Time      `json:"created_at"`
	Head      chat.Seq       `json:"head"`
	LastAt    time.Time      `json:"last_at"`
	MyRole    chat.RoomRole  `json:"my_role,omitempty"`
}

func roomView(r chat.Room, role chat.RoomRole) RoomView {
	return RoomView{ID: r.ID, Kind: r.Kind, Name: r.Name, OwnerUnit: r.OwnerUnit, Region: r.Region, Archived: r.Archived,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC(), Head: r.Head, LastAt: r.LastAt.UTC(), MyRole: role}
}

// SummaryView is one line of "my rooms".
type SummaryView struct {
	RoomView
	Unread int               `json:"unread"`
	Read   chat.Seq          `json:"read"`
	Last   *chat.MessageView `json:"last,omitempty"`
}

func (h *handler) myRooms() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs, err := h.svc.MyRooms(r.Context())
		out := make([]SummaryView, 0, len(rs))
		for _, s := range rs {
			v := SummaryView{RoomView: roomView(s.Room, s.Role), Unread: s.Unread, Read: s.Read}
			if s.Last != nil {
				mv := chat.View(s.Last)
				v.Last = &mv
			}
			out = append(out, v)
		}
		h.respond(w, r, http.StatusOK, map[string]any{"rooms": out}, err)
	})
}

type createRoomRequest struct {
	Name    string       `json:"name"`
	Members []acl.UserID `json:"members"`
}

func (h *handler) createRoom() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[createRoomRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		room, err := h.svc.CreateRoom(r.Context(), chat.NewRoom{Name: in.Name, Members: in.Members})
		h.respond(w, r, http.StatusCreated, roomView(room, chat.Owner), err)
	})
}

func (h *handler) room() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		room, role, err := h.svc.Room(r.Context(), chat.RoomID(r.PathValue("room")))
		h.respond(w, r, http.StatusOK, roomView(room, role), err)
	})
}

type patchRoomRequest struct {
	Name     *string `json:"name"`
	Archived *bool   `json:"archived"`
}

func (h *handler) patchRoom() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[patchRoomRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		id := chat.RoomID(r.PathValue("room"))
		if (in.Name == nil) == (in.Archived == nil) {
			h.writeError(w, r, &chat.InvalidError{Field: "name", Reason: "give either name or archived"})
			return
		}
		var m chat.Message
		if in.Name != nil {
			m, err = h.svc.Rename(r.Context(), id, *in.Name)
		} else {
			m, err = h.svc.Archive(r.Context(), id, *in.Archived)
		}
		h.respond(w, r, http.StatusOK, chat.View(&m), err)
	})
}

// MemberView is one member of a room.
type MemberView struct {
	User  acl.UserID    `json:"user"`
	Unit  acl.UnitID    `json:"unit"`
	Role  chat.RoomRole `json:"role"`
	Since chat.Seq      `json:"since"`
}

func (h *handler) members() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ms, err := h.svc.Members(r.Context(), chat.RoomID(r.PathValue("room")))
		out := make([]MemberView, 0, len(ms))
		for _, m := range ms {
			out = append(out, MemberView{User: m.User, Unit: m.Unit, Role: m.Role, Since: m.Since})
		}
		h.respond(w, r, http.StatusOK, map[string]any{"members": out}, err)
	})
}

type addMembersRequest struct {
	Users []acl.UserID  `json:"users"`
	Role  chat.RoomRole `json:"role"`
}

func (h *handler) addMembers() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[addMembersRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		m, err := h.svc.AddMembers(r.Context(), chat.RoomID(r.PathValue("room")), in.Users, in.Role)
		if err == nil && m.Seq == 0 {
			httpjson.Respond(w, http.StatusOK, map[string]any{"added": 0})
			return
		}
		h.respond(w, r, http.StatusCreated, chat.View(&m), err)
	})
}

func (h *handler) units() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		us, err := h.svc.Units(r.Context(), chat.RoomID(r.PathValue("room")))
		if us == nil {
			us = []acl.UnitID{}
		}
		h.respond(w, r, http.StatusOK, map[string]any{"units": us}, err)
	})
}

type addUnitsRequest struct {
	Units []acl.UnitID `json:"units"`
}

func (h *handler) addUnits() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[addUnitsRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		m, err := h.svc.AddUnits(r.Context(), chat.RoomID(r.PathValue("room")), in.Units)
		if err == nil && m.Seq == 0 {
			httpjson.Respond(w, http.StatusOK, map[string]any{"added": 0})
			return
		}
		h.respond(w, r, http.StatusCreated, chat.View(&m), err)
	})
}

func (h *handler) removeMember() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := h.svc.RemoveMember(r.Context(), chat.RoomID(r.PathValue("room")), acl.UserID(r.PathValue("user")))
		h.respond(w, r, http.StatusOK, chat.View(&m), err)
	})
}

func seqParam(v url.Values, name string) (chat.Seq, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, &chat.InvalidError{Field: name, Reason: "must be a non-negative integer"}
	}
	return chat.Seq(n), nil
}

func timeParam(v url.Values, name string) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, &chat.InvalidError{Field: name, Reason: "must be an RFC 3339 time"}
	}
	return t, nil
}

func (h *handler) history() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		var q chat.HistoryQuery
		var err error
		if q.After, err = seqParam(v, "after"); err == nil {
			if q.Before, err = seqParam(v, "before"); err == nil {
				if q.Since, err = timeParam(v, "since"); err == nil {
					q.Until, err = timeParam(v, "until")
				}
			}
		}
		if err == nil && v.Get("limit") != "" {
			var n int
			n, err = strconv.Atoi(v.Get("limit"))
			if err != nil || n < 1 || n > chat.MaxPage {
				err = &chat.InvalidError{Field: "limit", Reason: fmt.Sprintf("must be 1 to %d", chat.MaxPage)}
			}
			q.Limit = n
		}
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		ms, full, err := h.svc.History(r.Context(), chat.RoomID(r.PathValue("room")), q)
		out := make([]chat.MessageView, len(ms))
		for i := range ms {
			if full {
				out[i] = chat.Full(&ms[i])
			} else {
				out[i] = chat.View(&ms[i])
			}
		}
		h.respond(w, r, http.StatusOK, map[string]any{"messages": out}, err)
	})
}

type postRequest struct {
	ClientID string          `json:"client_id"`
	Kind     chat.Kind       `json:"kind"`
	Body     string          `json:"body"`
	Payload  json.RawMessage `json:"payload"`
	ReplyTo  chat.Seq        `json:"reply_to"`
	Mentions []acl.UserID    `json:"mentions"`
}

// maxPostBody allows a 16 KiB text with every byte escaped (\u00XX is 6 bytes)
// plus a 64 KiB payload and the envelope.
const maxPostBody = 6*16<<10 + 64<<10 + 4<<10

func (h *handler) post() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[postRequest](r, max(maxPostBody, int64(6*h.svc.Options().MaxText+68<<10)))
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		m, dup, err := h.svc.Post(r.Context(), chat.RoomID(r.PathValue("room")), chat.Post{
			ClientID: in.ClientID, Kind: in.Kind, Body: in.Body, Payload: in.Payload, ReplyTo: in.ReplyTo, Mentions: in.Mentions})
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		status := http.StatusCreated
		if dup {
			status = http.StatusOK
		}
		httpjson.RespondEncoded(w, status, chat.EncodeView(&m))
	})
}

type editRequest struct {
	Body string `json:"body"`
}

func (h *handler) seq(r *http.Request) (chat.Seq, error) {
	n, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || n < 1 {
		return 0, chat.ErrNotFound
	}
	return chat.Seq(n), nil
}

func (h *handler) edit() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seq, err := h.seq(r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		in, err := httpjson.Decode[editRequest](r, max(maxPostBody, int64(6*h.svc.Options().MaxText+4<<10)))
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		m, err := h.svc.Edit(r.Context(), chat.RoomID(r.PathValue("room")), seq, in.Body)
		h.respond(w, r, http.StatusCreated, chat.View(&m), err)
	})
}

func (h *handler) retract() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seq, err := h.seq(r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		m, err := h.svc.Retract(r.Context(), chat.RoomID(r.PathValue("room")), seq)
		h.respond(w, r, http.StatusCreated, chat.View(&m), err)
	})
}

func (h *handler) versions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seq, err := h.seq(r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		orig, vs, err := h.svc.Versions(r.Context(), chat.RoomID(r.PathValue("room")), seq)
		out := make([]chat.MessageView, len(vs))
		for i := range vs {
			out[i] = chat.Full(&vs[i])
		}
		h.respond(w, r, http.StatusOK, map[string]any{"original": chat.Full(&orig), "edits": out}, err)
	})
}

// ReceiptView says whether one member has read a message.
type ReceiptView struct {
	User acl.UserID `json:"user"`
	Unit acl.UnitID `json:"unit"`
	Read bool       `json:"read"`
	At   *time.Time `json:"at,omitempty"`
}

func (h *handler) receipts() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seq, err := h.seq(r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		rs, err := h.svc.Receipts(r.Context(), chat.RoomID(r.PathValue("room")), seq, acl.UnitID(r.URL.Query().Get("unit")))
		out := make([]ReceiptView, 0, len(rs))
		unread := 0
		for _, rc := range rs {
			v := ReceiptView{User: rc.User, Unit: rc.Unit, Read: rc.Read}
			if rc.Read {
				at := rc.At.UTC()
				v.At = &at
			} else {
				unread++
			}
			out = append(out, v)
		}
		h.respond(w, r, http.StatusOK, map[string]any{"receipts": out, "unread": unread}, err)
	})
}

type readRequest struct {
	Seq chat.Seq `json:"seq"`
}

func (h *handler) markRead() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[readRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		seq, err := h.svc.MarkRead(r.Context(), chat.RoomID(r.PathValue("room")), in.Seq)
		h.respond(w, r, http.StatusOK, map[string]any{"seq": seq}, err)
	})
}

// upload takes the file as the raw request body; its name comes from the
// "name" query parameter and its type from Content-Type.
func (h *handler) upload() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := h.svc.Options().MaxUpload
		if r.ContentLength > limit {
			h.writeError(w, r, chat.ErrTooLarge)
			return
		}
		typ := r.Header.Get("Content-Type")
		if typ != "" {
			if mt, _, err := mime.ParseMediaType(typ); err == nil {
				typ = mt
			} else {
				typ = "application/octet-stream"
			}
		}
		body := http.MaxBytesReader(w, r.Body, limit+1)
		ref, err := h.svc.Upload(r.Context(), chat.RoomID(r.PathValue("room")), r.URL.Query().Get("name"), typ, body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = chat.ErrTooLarge
		}
		h.respond(w, r, http.StatusCreated, ref, err)
	})
}

func (h *handler) download() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, rc, err := h.svc.Download(r.Context(), chat.RoomID(r.PathValue("room")), r.PathValue("sha256"))
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Type", b.Type)
		w.Header().Set("Content-Length", strconv.FormatInt(b.Size, 10))
		w.Header().Set("ETag", `"`+b.SHA256+`"`)
		w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// Attachments are never rendered inline by the browser: no uploaded HTML runs.
		disp := mime.FormatMediaType("attachment", map[string]string{"filename": r.URL.Query().Get("name")})
		if r.URL.Query().Get("name") == "" {
			disp = "attachment"
		}
		w.Header().Set("Content-Disposition", disp)
		io.Copy(w, rc)
	})
}

func (h *handler) verify() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h.svc.Verify(r.Context(), chat.RoomID(r.PathValue("room")))
		if ce := asChainError(err); ce != nil {
			httpjson.Respond(w, http.StatusOK, map[string]any{"intact": false, "first_bad_seq": ce.Seq, "reason": ce.Reason})
			return
		}
		h.respond(w, r, http.StatusOK, map[string]any{"intact": true}, err)
	})
}
