// Package casehttp is the HTTP API of cases. Each handler decodes, calls one
// casework.Service method and encodes a view type; visibility, policy and
// audit happen in the service.
package casehttp

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"caseroom/acl"
	"caseroom/acl/httpjson"
	"caseroom/casework"
	"caseroom/chat"
)

// A Route is one method and pattern this package serves, for the OpenAPI check.
type Route struct{ Method, Pattern string }

// Routes lists every route NewHandler serves.
func Routes() []Route {
	return []Route{
		{"POST", "/api/v1/cases"},
		{"GET", "/api/v1/cases"},
		{"GET", "/api/v1/cases/search"},
		{"GET", "/api/v1/cases/{case}"},
		{"POST", "/api/v1/cases/{case}/acts"},
		{"GET", "/api/v1/cases/{case}/acts/{seq}/receipt"},
		{"POST", "/api/v1/cases/{case}/transfers/{seq}/accept"},
		{"POST", "/api/v1/cases/{case}/transfers/{seq}/return"},
		{"POST", "/api/v1/cases/{case}/approvals"},
		{"POST", "/api/v1/cases/{case}/approvals/{seq}/decision"},
		{"POST", "/api/v1/cases/{case}/extensions"},
		{"POST", "/api/v1/cases/{case}/challenges"},
		{"POST", "/api/v1/cases/{case}/supervision"},
		{"POST", "/api/v1/cases/{case}/handlers"},
		{"POST", "/api/v1/cases/{case}/delegations"},
		{"POST", "/api/v1/cases/{case}/corrections"},
		{"GET", "/api/v1/cases/{case}/interventions"},
		{"POST", "/api/v1/cases/{case}/interventions"},
		{"GET", "/api/v1/todo"},
		{"GET", "/api/v1/procedures"},
	}
}

// NewHandler returns the cases API. It expects the subject in the request
// context (cmd mounts acl/token's middleware in front).
func NewHandler(svc *casework.Service, log *slog.Logger) http.Handler {
	h := &handler{svc: svc, log: log}
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/cases", h.open())
	mux.Handle("GET /api/v1/cases", h.list())
	mux.Handle("GET /api/v1/cases/search", h.search())
	mux.Handle("GET /api/v1/cases/{case}", h.get())
	mux.Handle("POST /api/v1/cases/{case}/acts", h.act())
	mux.Handle("GET /api/v1/cases/{case}/acts/{seq}/receipt", h.receipt())
	mux.Handle("POST /api/v1/cases/{case}/transfers/{seq}/accept", h.answer(true))
	mux.Handle("POST /api/v1/cases/{case}/transfers/{seq}/return", h.answer(false))
	mux.Handle("POST /api/v1/cases/{case}/approvals", h.requestApproval())
	mux.Handle("POST /api/v1/cases/{case}/approvals/{seq}/decision", h.decide())
	mux.Handle("POST /api/v1/cases/{case}/extensions", h.requestExtension())
	mux.Handle("POST /api/v1/cases/{case}/challenges", h.challenge())
	mux.Handle("POST /api/v1/cases/{case}/supervision", h.supervise())
	mux.Handle("POST /api/v1/cases/{case}/handlers", h.handlers())
	mux.Handle("POST /api/v1/cases/{case}/delegations", h.delegate())
	mux.Handle("POST /api/v1/cases/{case}/corrections", h.correct())
	mux.Handle("GET /api/v1/cases/{case}/interventions", h.interventions())
	mux.Handle("POST /api/v1/cases/{case}/interventions", h.recordIntervention())
	mux.Handle("GET /api/v1/todo", h.todo())
	mux.Handle("GET /api/v1/procedures", h.procedures())
	return mux
}

type handler struct {
	svc *casework.Service
	log *slog.Logger
}

// writeError maps casework's and chat's errors to statuses and stable codes
// and leaves the rest (denials: 403 with the rule) to httpjson.Error.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ie *casework.InvalidError
	var ce *chat.InvalidError
	var re *casework.RefusedError
	switch {
	case errors.As(err, &ie):
		httpjson.WriteError(w, http.StatusBadRequest, httpjson.ErrorInfo{Code: "invalid", Message: ie.Field + ": " + ie.Reason, Field: ie.Field})
	case errors.As(err, &ce):
		httpjson.WriteError(w, http.StatusBadRequest, httpjson.ErrorInfo{Code: "invalid", Message: ce.Field + ": " + ce.Reason, Field: ce.Field})
	case errors.As(err, &re):
		httpjson.WriteError(w, http.StatusConflict, httpjson.ErrorInfo{Code: "refused", Message: re.Reason, Rule: re.Rule})
	case errors.Is(err, casework.ErrCaseNotFound), errors.Is(err, chat.ErrNotFound):
		httpjson.WriteError(w, http.StatusNotFound, httpjson.ErrorInfo{Code: "not_found", Message: "not found"})
	case errors.Is(err, chat.ErrConflict):
		httpjson.WriteError(w, http.StatusConflict, httpjson.ErrorInfo{Code: "conflict", Message: "the case has moved on; reload and try again"})
	case errors.Is(err, chat.ErrArchived):
		httpjson.WriteError(w, http.StatusConflict, httpjson.ErrorInfo{Code: "room_archived", Message: "the case is closed and its room read-only"})
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

func pathSeq(r *http.Request) (chat.Seq, error) {
	n, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || n <= 0 {
		return 0, httpjson.Bad("invalid", "seq: must be a positive integer")
	}
	return chat.Seq(n), nil
}

func caseID(r *http.Request) casework.CaseID { return casework.CaseID(r.PathValue("case")) }

// ---- views ----

// CaseView is a case as the API shows it.
type CaseView struct {
	ID           casework.CaseID             `json:"id"`
	Room         chat.RoomID                 `json:"room"`
	Procedure    string                      `json:"procedure"`
	Title        string                      `json:"title"`
	Cause        string                      `json:"cause,omitempty"`
	Checklist    string                      `json:"checklist,omitempty"`
	Stage        string                      `json:"stage"`
	StageName    string                      `json:"stage_name"`
	Holder       acl.UnitID                  `json:"holder"`
	Opener       acl.UnitID                  `json:"opener"`
	Committee    acl.UnitID                  `json:"committee"`
	Region       acl.RegionCode              `json:"region"`
	Closed       bool                        `json:"closed"`
	Archived     bool                        `json:"archived"`
	Reopened     int                         `json:"reopened,omitempty"`
	MyRole       chat.RoomRole               `json:"my_role,omitempty"`
	Pending      *TransferView               `json:"pending,omitempty"`
	ReturnedTo   acl.UnitID                  `json:"returned_to,omitempty"`
	Returns      int                         `json:"returns"`
	Requests     []RequestView               `json:"requests"`
	Participants []acl.UnitID                `json:"participants"`
	Numbers      []casework.CaseNumber       `json:"numbers"`
	Handlers     map[acl.UnitID][]acl.UserID `json:"handlers"`
	Acting       []casework.Delegation       `json:"acting"`
	Parties      []casework.Party            `json:"parties"`
	Suspects     []SuspectView               `json:"suspects"`
	Approvals    []ApprovalView              `json:"approvals"`
	Clocks       []ClockView                 `json:"clocks"`
	Evidence     []string                    `json:"evidence"`
	Missing      []string                    `json:"missing"`
	Supervisions []SupervisionView           `json:"supervisions"`
	Acts         []ActView                   `json:"acts"`
	Available    []AvailableView             `json:"available"`
	Head         chat.Seq                    `json:"head"`
	OpenedAt     time.Time                   `json:"opened_at"`
	UpdatedAt    time.Time                   `json:"updated_at"`
}

// TransferView is a pending transfer.
type TransferView struct {
	Seq        chat.Seq   `json:"seq"`
	Transition string     `json:"transition"`
	From       acl.UnitID `json:"from"`
	To         acl.UnitID `json:"to"`
	By         acl.UserID `json:"by"`
	At         time.Time  `json:"at"`
}

// RequestView is an open request, notice or challenge.
type RequestView struct {
	Seq        chat.Seq   `json:"seq"`
	Kind       string     `json:"kind"`
	Transition string     `json:"transition,omitempty"`
	Suspect    string     `json:"suspect,omitempty"`
	From       acl.UnitID `json:"from"`
	To         acl.UnitID `json:"to"`
	By         acl.UserID `json:"by"`
	At         time.Time  `json:"at"`
}

// SuspectView is a suspect's state.
type SuspectView struct {
	Party   string       `json:"party"`
	State   string       `json:"state"`
	Custody bool         `json:"custody"`
	Request *RequestView `json:"request,omitempty"`
}

// ApprovalView is an approval request and its decision: of a transition's
// approval, or (Clock and Extension set, Transition empty) of the extension
// of a clock.
type ApprovalView struct {
	Seq        chat.Seq   `json:"seq"`
	Transition string     `json:"transition"`
	Clock      string     `json:"clock,omitempty"`
	Extension  string     `json:"extension,omitempty"`
	Length     string     `json:"length,omitempty"` // an extension: the length asked, where the law gives a range
	Suspect    string     `json:"suspect,omitempty"`
	Index      int        `json:"index"`
	Unit       acl.UnitID `json:"unit"`
	By         acl.UserID `json:"by"`
	Target     acl.UnitID `json:"target"`
	Internal   bool       `json:"internal"`
	Decided    chat.Seq   `json:"decided,omitempty"`
	DecidedBy  acl.UserID `json:"decided_by,omitempty"`
	Granted    bool       `json:"granted"`
	Used       chat.Seq   `json:"used,omitempty"`
}

// SupervisionView is a supervision notice.
type SupervisionView struct {
	Seq    chat.Seq     `json:"seq"`
	By     acl.UserID   `json:"by"`
	Notice string       `json:"notice"`
	Units  []acl.UnitID `json:"units"`
	DueBy  *time.Time   `json:"due_by,omitempty"`
}

// ActView is one act of the case.
type ActView struct {
	Seq        chat.Seq   `json:"seq"`
	Kind       chat.Kind  `json:"kind"`
	Transition string     `json:"transition"`
	Suspect    string     `json:"suspect,omitempty"`
	From       string     `json:"from"`
	To         string     `json:"to"`
	Unit       acl.UnitID `json:"unit"`
	By         acl.UserID `json:"by"`
	Target     acl.UnitID `json:"target,omitempty"`
	OccurredAt time.Time  `json:"occurred_at"`
	PostedAt   time.Time  `json:"posted_at"`
}

// AvailableView is a transition the caller could perform now.
type AvailableView struct {
	Transition string `json:"transition"`
	NameZH     string `json:"name_zh"`
	NameEN     string `json:"name_en"`
	Act        string `json:"act"`
	To         string `json:"to"`
	Suspect    string `json:"suspect,omitempty"`
	Receiver   string `json:"receiver,omitempty"`
	Approvals  int    `json:"approvals"`
	Ready      bool   `json:"ready"`
	Needs      string `json:"needs,omitempty"`
}

func requestView(r casework.Request) RequestView {
	return RequestView{Seq: r.Seq, Kind: r.Kind, Transition: r.Transition, Suspect: r.Suspect, From: r.From, To: r.To, By: r.By, At: r.At.UTC()}
}

func (h *handler) caseView(cv casework.CaseView) CaseView {
	c := cv.Case
	v := CaseView{ID: c.ID, Room: c.Room, Procedure: c.Procedure, Title: c.Title, Cause: c.Cause, Checklist: c.Checklist,
		Stage: c.Stage, Holder: c.Holder, Opener: c.Opener, Committee: c.Committee, Region: c.Region, Closed: c.Closed,
		Archived: cv.Archived, Reopened: c.Reopened, MyRole: cv.RoomRole, ReturnedTo: c.ReturnedTo, Returns: c.Returns,
		Requests: []RequestView{}, Participants: c.Participants, Numbers: c.Numbers, Handlers: c.Handlers, Acting: c.Acting,
		Parties: c.Parties, Suspects: []SuspectView{}, Approvals: []ApprovalView{}, Evidence: c.Evidence, Missing: c.Missing,
		Supervisions: []SupervisionView{}, Acts: []ActView{}, Available: []AvailableView{}, Clocks: h.clockViews(&c), Head: c.Head,
		OpenedAt: c.OpenedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
	if p := h.svc.Procedure(c.Procedure); p != nil {
		if st, ok := p.Stage(c.Stage); ok {
			v.StageName = st.NameZH
		}
	}
	if t := c.Pending; t != nil {
		v.Pending = &TransferView{Seq: t.Seq, Transition: t.Transition, From: t.From, To: t.To, By: t.By, At: t.At.UTC()}
	}
	for _, r := range c.Requests {
		v.Requests = append(v.Requests, requestView(r))
	}
	for _, s := range c.Suspects {
		sv := SuspectView{Party: s.Party, State: s.State, Custody: s.Custody}
		if s.Request != nil {
			rv := requestView(*s.Request)
			sv.Request = &rv
		}
		v.Suspects = append(v.Suspects, sv)
	}
	for _, a := range c.Approvals {
		av := ApprovalView{Seq: a.Seq, Transition: a.Transition, Clock: a.Clock, Extension: a.Extension, Suspect: a.Suspect, Index: a.Index,
			Unit: a.Unit, By: a.By, Target: a.Target, Internal: a.Internal, Decided: a.Decided, DecidedBy: a.DecidedBy,
			Granted: a.Granted, Used: a.Used}
		if !a.ExtendBy.IsZero() {
			av.Length = a.ExtendBy.String()
		}
		v.Approvals = append(v.Approvals, av)
	}
	for _, s := range c.Supervisions {
		sv := SupervisionView{Seq: s.Seq, By: s.By, Notice: s.Notice, Units: s.Units}
		if !s.DueBy.IsZero() {
			d := s.DueBy.UTC()
			sv.DueBy = &d
		}
		v.Supervisions = append(v.Supervisions, sv)
	}
	for _, a := range c.Acts {
		v.Acts = append(v.Acts, ActView{Seq: a.Seq, Kind: a.Kind, Transition: a.Transition, Suspect: a.Suspect, From: a.From,
			To: a.To, Unit: a.Unit, By: a.By, Target: a.Target, OccurredAt: a.OccurredAt.UTC(), PostedAt: a.PostedAt.UTC()})
	}
	for _, a := range cv.Available {
		t := a.Transition
		v.Available = append(v.Available, AvailableView{Transition: t.ID, NameZH: t.NameZH, NameEN: t.NameEN, Act: t.Act,
			To: t.To, Suspect: a.Suspect, Receiver: t.Receiver, Approvals: len(t.Approvals), Ready: a.Ready, Needs: a.Needs})
	}
	return v
}

// ActResult is what an act answers: the entry posted and the case after it.
type ActResult struct {
	Message chat.MessageView `json:"message"`
	Case    CaseView         `json:"case"`
}

// result answers an act: the entry, and the case as the caller now sees it.
func (h *handler) result(w http.ResponseWriter, r *http.Request, m chat.Message, err error) {
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	cv, err := h.svc.Case(r.Context(), caseID(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpjson.Respond(w, http.StatusCreated, ActResult{Message: chat.View(&m), Case: h.caseView(cv)})
}

// ---- handlers ----

type openRequest struct {
	Procedure  string                 `json:"procedure"`
	Transition string                 `json:"transition"`
	Title      string                 `json:"title"`
	Cause      string                 `json:"cause"`
	Checklist  string                 `json:"checklist"`
	Parties    []casework.Party       `json:"parties"`
	Handlers   []acl.UserID           `json:"handlers"`
	Target     acl.UnitID             `json:"target"`
	Evidence   []string               `json:"evidence"`
	Documents  []casework.DocumentRef `json:"documents"`
	OccurredAt *time.Time             `json:"occurred_at"`
	Note       string                 `json:"note"`
}

func (h *handler) open() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[openRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		oi := casework.OpenInput{Procedure: in.Procedure, Transition: in.Transition, Title: in.Title, Cause: in.Cause,
			Checklist: in.Checklist, Parties: in.Parties, Handlers: in.Handlers, Target: in.Target, Evidence: in.Evidence,
			Documents: in.Documents, Note: in.Note}
		if in.OccurredAt != nil {
			oi.OccurredAt = *in.OccurredAt
		}
		c, err := h.svc.OpenCase(r.Context(), oi)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		cv, err := h.svc.Case(r.Context(), c.ID)
		h.respond(w, r, http.StatusCreated, h.caseView(cv), err)
	})
}

// SummaryView is one line of a case list.
type SummaryView struct {
	ID         casework.CaseID     `json:"id"`
	Procedure  string              `json:"procedure"`
	Title      string              `json:"title"`
	Stage      string              `json:"stage"`
	Holder     acl.UnitID          `json:"holder"`
	PendingTo  acl.UnitID          `json:"pending_to,omitempty"`
	ReturnedTo acl.UnitID          `json:"returned_to,omitempty"`
	Region     acl.RegionCode      `json:"region"`
	Numbers    []string            `json:"numbers"`
	Closed     bool                `json:"closed"`
	Returns    int                 `json:"returns"`
	NextDue    *time.Time          `json:"next_due,omitempty"`
	Open       []casework.OpenItem `json:"open"`
	UpdatedAt  time.Time           `json:"updated_at"`
}

func summaryView(s casework.Summary) SummaryView {
	v := SummaryView{ID: s.ID, Procedure: s.Procedure, Title: s.Title, Stage: s.Stage, Holder: s.Holder, PendingTo: s.PendingTo,
		ReturnedTo: s.ReturnedTo, Region: s.Region, Numbers: s.Numbers, Closed: s.Closed, Returns: s.Returns, Open: s.Open,
		UpdatedAt: s.UpdatedAt.UTC()}
	if !s.NextDue.IsZero() {
		d := s.NextDue.UTC()
		v.NextDue = &d
	}
	return v
}

func (h *handler) list() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		lq := casework.ListQuery{Scope: q.Get("scope"), Stage: q.Get("stage"), Procedure: q.Get("procedure"),
			Region: acl.RegionCode(q.Get("region")), Holder: acl.UnitID(q.Get("holder"))}
		switch q.Get("overdue") {
		case "", "false", "0":
		case "true", "1":
			lq.Overdue = true
		default:
			h.writeError(w, r, httpjson.Bad("invalid", "overdue: must be true or false"))
			return
		}
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n <= 0 {
				h.writeError(w, r, httpjson.Bad("invalid", "limit: must be a positive integer"))
				return
			}
			lq.Limit = n
		}
		ss, err := h.svc.List(r.Context(), lq)
		out := make([]SummaryView, 0, len(ss))
		for _, s := range ss {
			out = append(out, summaryView(s))
		}
		h.respond(w, r, http.StatusOK, map[string]any{"cases": out}, err)
	})
}

func (h *handler) search() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss, err := h.svc.Search(r.Context(), r.URL.Query().Get("number"))
		out := make([]SummaryView, 0, len(ss))
		for _, s := range ss {
			out = append(out, summaryView(s))
		}
		h.respond(w, r, http.StatusOK, map[string]any{"cases": out}, err)
	})
}

func (h *handler) get() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cv, err := h.svc.Case(r.Context(), caseID(r))
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		httpjson.Respond(w, http.StatusOK, h.caseView(cv))
	})
}

type actRequest struct {
	Transition string                 `json:"transition"`
	Suspect    string                 `json:"suspect"`
	Target     acl.UnitID             `json:"target"`
	Documents  []casework.DocumentRef `json:"documents"`
	Evidence   []string               `json:"evidence"`
	Reason     string                 `json:"reason"`
	Missing    []string               `json:"missing"`
	Approvals  []chat.Seq             `json:"approvals"`
	OccurredAt *time.Time             `json:"occurred_at"`
	Note       string                 `json:"note"`
}

func (in actRequest) input() casework.ActInput {
	a := casework.ActInput{Transition: in.Transition, Suspect: in.Suspect, Target: in.Target, Documents: in.Documents,
		Evidence: in.Evidence, Reason: in.Reason, Missing: in.Missing, Approvals: in.Approvals, Note: in.Note}
	if in.OccurredAt != nil {
		a.OccurredAt = *in.OccurredAt
	}
	return a
}

func (h *handler) act() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[actRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		m, _, err := h.svc.Act(r.Context(), caseID(r), in.input())
		h.result(w, r, m, err)
	})
}

func (h *handler) answer(accept bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seq, err := pathSeq(r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		in, err := httpjson.Decode[actRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		var m chat.Message
		if accept {
			m, _, err = h.svc.Accept(r.Context(), caseID(r), seq, in.input())
		} else {
			m, _, err = h.svc.Return(r.Context(), caseID(r), seq, in.input())
		}
		h.result(w, r, m, err)
	})
}

// ReceiptView is what became of an act addressed to a unit.
type ReceiptView struct {
	Seq       chat.Seq   `json:"seq"`
	Unit      acl.UnitID `json:"unit"`
	Delivered time.Time  `json:"delivered"`
	Read      []ReadView `json:"read"`
	Answered  chat.Seq   `json:"answered,omitempty"`
	Outcome   string     `json:"outcome,omitempty"`
	By        acl.UserID `json:"by,omitempty"`
	At        *time.Time `json:"at,omitempty"`
}

// ReadView is one member of the addressed unit and whether they read the act.
type ReadView struct {
	User acl.UserID `json:"user"`
	Read bool       `json:"read"`
	At   *time.Time `json:"at,omitempty"`
}

func (h *handler) receipt() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seq, err := pathSeq(r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		rc, err := h.svc.Receipt(r.Context(), caseID(r), seq)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		v := ReceiptView{Seq: rc.Seq, Unit: rc.Unit, Delivered: rc.Delivered.UTC(), Read: []ReadView{}, Answered: rc.Answered, Outcome: rc.Outcome, By: rc.By}
		if !rc.At.IsZero() {
			at := rc.At.UTC()
			v.At = &at
		}
		for _, rd := range rc.Read {
			rv := ReadView{User: rd.User, Read: rd.Read}
			if rd.Read {
				at := rd.At.UTC()
				rv.At = &at
			}
			v.Read = append(v.Read, rv)
		}
		httpjson.Respond(w, http.StatusOK, v)
	})
}

type approvalRequest struct {
	Transition string     `json:"transition"`
	Suspect    string     `json:"suspect"`
	Index      int        `json:"index"`
	Target     acl.UnitID `json:"target"`
	Summary    string     `json:"summary"`
}

func (h *handler) requestApproval() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[approvalRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		m, _, err := h.svc.RequestApproval(r.Context(), caseID(r), casework.ApprovalInput{Transition: in.Transition,
			Suspect: in.Suspect, Index: in.Index, Target: in.Target, Summary: in.Summary})
		h.result(w, r, m, err)
	})
}

type decisionRequest struct {
	Granted *bool  `json:"granted"`
	Note    string `json:"note"`
}

func (h *handler) decide() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seq, err := pathSeq(r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		in, err := httpjson.Decode[decisionRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		if in.Granted == nil {
			h.writeError(w, r, httpjson.Bad("invalid", "granted: say true or false"))
			return
		}
		m, _, err := h.svc.Decide(r.Context(), caseID(r), seq, *in.Granted, in.Note)
		h.result(w, r, m, err)
	})
}

type challengeRequest struct {
	Type       string                 `json:"type"`
	Against    chat.Seq               `json:"against"`
	Target     acl.UnitID             `json:"target"`
	Transition string                 `json:"transition"`
	Suspect    string                 `json:"suspect"`
	Reason     string                 `json:"reason"`
	Documents  []casework.DocumentRef `json:"documents"`
}

func (h *handler) challenge() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[challengeRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		m, _, err := h.svc.Challenge(r.Context(), caseID(r), casework.ChallengeInput{Type: in.Type, Against: in.Against,
			Target: in.Target, Transition: in.Transition, Suspect: in.Suspect, Reason: in.Reason, Documents: in.Documents})
		h.result(w, r, m, err)
	})
}

type superviseRequest struct {
	Notice string       `json:"notice"`
	Units  []acl.UnitID `json:"units"`
	DueBy  *time.Time   `json:"due_by"`
}

func (h *handler) supervise() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[superviseRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		m, _, err := h.svc.Supervise(r.Context(), caseID(r), casework.SuperviseInput{Notice: in.Notice, Units: in.Units, DueBy: in.DueBy})
		h.result(w, r, m, err)
	})
}

type handlersRequest struct {
	Unit     acl.UnitID   `json:"unit"`
	Handlers []acl.UserID `json:"handlers"`
}

func (h *handler) handlers() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[handlersRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		m, _, err := h.svc.AssignHandlers(r.Context(), caseID(r), in.Unit, in.Handlers)
		h.result(w, r, m, err)
	})
}

type delegationRequest struct {
	User  acl.UserID `json:"user"`
	From  time.Time  `json:"from"`
	Until time.Time  `json:"until"`
}

func (h *handler) delegate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[delegationRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		m, _, err := h.svc.Delegate(r.Context(), caseID(r), in.User, in.From, in.Until)
		h.result(w, r, m, err)
	})
}

type correctionRequest struct {
	Target     chat.Seq        `json:"target"`
	Reason     string          `json:"reason"`
	OccurredAt *time.Time      `json:"occurred_at"`
	Party      *casework.Party `json:"party"`
}

func (h *handler) correct() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[correctionRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		m, _, err := h.svc.Correct(r.Context(), caseID(r), casework.CorrectionInput{Target: in.Target, Reason: in.Reason,
			OccurredAt: in.OccurredAt, Party: in.Party})
		h.result(w, r, m, err)
	})
}

// InterventionView is one entry of the intervention register.
type InterventionView struct {
	Seq             int64           `json:"seq"`
	Case            casework.CaseID `json:"case"`
	SourceSeq       chat.Seq        `json:"source_seq,omitempty"`
	Auto            bool            `json:"auto"`
	At              time.Time       `json:"at"`
	Recorder        acl.UserID      `json:"recorder"`
	Regulation      string          `json:"regulation"`
	IntervenorUser  acl.UserID      `json:"intervenor_user,omitempty"`
	IntervenorName  string          `json:"intervenor_name"`
	IntervenorUnit  string          `json:"intervenor_unit,omitempty"`
	IntervenorPost  string          `json:"intervenor_post,omitempty"`
	Relationship    string          `json:"relationship,omitempty"`
	Channel         string          `json:"channel"`
	OccurredAt      time.Time       `json:"occurred_at"`
	Place           string          `json:"place,omitempty"`
	Summary         string          `json:"summary"`
	Attachments     []string        `json:"attachments,omitempty"`
	MaterialsPassed bool            `json:"materials_passed"`
	Response        string          `json:"response,omitempty"`
	Impact          string          `json:"impact"`
	ReportedTo      string          `json:"reported_to,omitempty"`
	Corrects        int64           `json:"corrects,omitempty"`
	Hash            []byte          `json:"hash"`
}

func interventionView(r casework.Intervention) InterventionView {
	return InterventionView{Seq: r.Seq, Case: r.Case, SourceSeq: r.SourceSeq, Auto: r.Auto, At: r.At.UTC(), Recorder: r.Recorder,
		Regulation: r.Regulation, IntervenorUser: r.IntervenorUser, IntervenorName: r.IntervenorName, IntervenorUnit: r.IntervenorUnit,
		IntervenorPost: r.IntervenorPost, Relationship: r.Relationship, Channel: r.Channel, OccurredAt: r.OccurredAt.UTC(),
		Place: r.Place, Summary: r.Summary, Attachments: r.Attachments, MaterialsPassed: r.MaterialsPassed, Response: r.Response,
		Impact: r.Impact, ReportedTo: r.ReportedTo, Corrects: r.Corrects, Hash: r.Hash}
}

func (h *handler) interventions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs, err := h.svc.Interventions(r.Context(), caseID(r))
		out := make([]InterventionView, 0, len(rs))
		for _, e := range rs {
			out = append(out, interventionView(e))
		}
		h.respond(w, r, http.StatusOK, map[string]any{"interventions": out}, err)
	})
}

type interventionRequest struct {
	Regulation      string    `json:"regulation"`
	IntervenorName  string    `json:"intervenor_name"`
	IntervenorUnit  string    `json:"intervenor_unit"`
	IntervenorPost  string    `json:"intervenor_post"`
	Relationship    string    `json:"relationship"`
	Channel         string    `json:"channel"`
	OccurredAt      time.Time `json:"occurred_at"`
	Place           string    `json:"place"`
	Summary         string    `json:"summary"`
	Attachments     []string  `json:"attachments"`
	MaterialsPassed bool      `json:"materials_passed"`
	Response        string    `json:"response"`
	Impact          string    `json:"impact"`
	ReportedTo      string    `json:"reported_to"`
	Corrects        int64     `json:"corrects"`
}

func (h *handler) recordIntervention() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[interventionRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		e, err := h.svc.RecordIntervention(r.Context(), caseID(r), casework.InterventionInput{Regulation: in.Regulation,
			IntervenorName: in.IntervenorName, IntervenorUnit: in.IntervenorUnit, IntervenorPost: in.IntervenorPost,
			Relationship: in.Relationship, Channel: in.Channel, OccurredAt: in.OccurredAt, Place: in.Place, Summary: in.Summary,
			Attachments: in.Attachments, MaterialsPassed: in.MaterialsPassed, Response: in.Response, Impact: in.Impact,
			ReportedTo: in.ReportedTo, Corrects: in.Corrects})
		h.respond(w, r, http.StatusCreated, interventionView(e), err)
	})
}

// TodoView is one item of the caller's to-do queue.
type TodoView struct {
	Case       casework.CaseID   `json:"case"`
	Title      string            `json:"title"`
	Numbers    []string          `json:"numbers,omitempty"`
	Stage      string            `json:"stage,omitempty"`
	Kind       string            `json:"kind"`
	Seq        chat.Seq          `json:"seq"`
	From       acl.UnitID        `json:"from,omitempty"`
	By         acl.UserID        `json:"by,omitempty"`
	Transition string            `json:"transition,omitempty"`
	Suspect    string            `json:"suspect,omitempty"`
	Clock      string            `json:"clock,omitempty"`     // an extension's approval: the clock
	Extension  string            `json:"extension,omitempty"` // and the extension asked for
	Message    *chat.MessageView `json:"message,omitempty"`
}

func (h *handler) todo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		items, err := h.svc.Todo(r.Context())
		out := make([]TodoView, 0, len(items))
		for _, it := range items {
			v := TodoView{Case: it.Case, Title: it.Title, Numbers: it.Numbers, Stage: it.Stage, Kind: it.Item.Kind, Seq: it.Item.Seq,
				From: it.Item.From, By: it.Item.By, Transition: it.Item.Transition, Suspect: it.Item.Suspect,
				Clock: it.Item.Clock, Extension: it.Item.Extension}
			if it.Mention != nil {
				mv := chat.View(it.Mention)
				v.Message = &mv
			}
			out = append(out, v)
		}
		h.respond(w, r, http.StatusOK, map[string]any{"todo": out}, err)
	})
}

// ProcedureView is a procedure for the web client: its stages and
// transitions, each marked with whether the caller's agency and roles perform
// it (Mine).
type ProcedureView struct {
	ID          string           `json:"id"`
	NameZH      string           `json:"name_zh"`
	NameEN      string           `json:"name_en"`
	Initial     string           `json:"initial"`
	Stages      []casework.Stage `json:"stages"`
	Transitions []TransitionView `json:"transitions"`
	Suspect     *MachineView     `json:"suspect,omitempty"`
}

// MachineView is the suspect machine of a procedure.
type MachineView struct {
	Initial     string           `json:"initial"`
	Stages      []casework.Stage `json:"stages"`
	Transitions []TransitionView `json:"transitions"`
}

// TransitionView is one transition.
type TransitionView struct {
	ID             string              `json:"id"`
	NameZH         string              `json:"name_zh"`
	NameEN         string              `json:"name_en"`
	From           []string            `json:"from"`
	To             string              `json:"to"`
	Act            string              `json:"act"`
	By             []casework.Actor    `json:"by"`
	Receiver       string              `json:"receiver,omitempty"`
	Approvals      []casework.Approval `json:"approvals,omitempty"`
	Documents      []casework.Document `json:"documents,omitempty"`
	Evidence       string              `json:"evidence,omitempty"`
	MaxCount       int                 `json:"max_count,omitempty"`
	ReasonRequired bool                `json:"reason_required,omitempty"`
	During         []string            `json:"during,omitempty"`
	Basis          string              `json:"basis"`
	Mine           bool                `json:"mine"`
}

func transitionViews(ts []casework.Transition, who acl.Subject) []TransitionView {
	out := make([]TransitionView, 0, len(ts))
	for _, t := range ts {
		mine := slices.ContainsFunc(who.Roles, func(r acl.Role) bool { return t.MayPerform(string(who.UnitKind), string(r)) })
		out = append(out, TransitionView{ID: t.ID, NameZH: t.NameZH, NameEN: t.NameEN, From: t.From, To: t.To, Act: t.Act,
			By: t.By, Receiver: t.Receiver, Approvals: t.Approvals, Documents: t.Documents, Evidence: t.Evidence,
			MaxCount: t.MaxCount, ReasonRequired: t.ReasonRequired, During: t.During, Basis: t.Basis, Mine: mine})
	}
	return out
}

func (h *handler) procedures() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, ok := acl.SubjectFrom(r.Context())
		if !ok {
			h.writeError(w, r, acl.ErrUnauthenticated)
			return
		}
		var ids []string
		for id := range h.svc.Procedures() {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		out := make([]ProcedureView, 0, len(ids))
		for _, id := range ids {
			p := h.svc.Procedure(id)
			v := ProcedureView{ID: p.ID, NameZH: p.NameZH, NameEN: p.NameEN, Initial: p.Initial, Stages: p.Stages,
				Transitions: transitionViews(p.Transitions, who)}
			if p.Suspect != nil {
				v.Suspect = &MachineView{Initial: p.Suspect.Initial, Stages: p.Suspect.Stages, Transitions: transitionViews(p.Suspect.Transitions, who)}
			}
			out = append(out, v)
		}
		httpjson.Respond(w, http.StatusOK, map[string]any{"procedures": out})
	})
}
