package casehttp

import (
	"net/http"
	"strings"
	"time"

	"caseroom/acl"
	"caseroom/acl/httpjson"
	"caseroom/casework"
	"caseroom/chat"
)

// ClockView is one statutory clock of a case as its room's log has run it,
// at the moment of the answer: the case panel's 办案期限.
type ClockView struct {
	ID          string     `json:"id"`  // the clock's ID in configs/clocks.json, e.g. CR-CUS-01
	Key         string     `json:"key"` // the ID with "/" and the party id for a suspect's clock
	Row         string     `json:"row"` // the deadline row of procedure.md
	NameZH      string     `json:"name_zh"`
	NameEN      string     `json:"name_en"`
	Basis       string     `json:"basis"`
	Suspect     string     `json:"suspect,omitempty"` // party id
	Unit        acl.UnitID `json:"unit"`              // the unit that must act on it
	State       string     `json:"state"`             // running, paused or stopped
	Due         time.Time  `json:"due"`
	LastDay     string     `json:"last_day"`
	Hourly      bool       `json:"hourly"`       // counted in hours: Due is an exact time, not 24:00 of LastDay
	LeftSeconds int64      `json:"left_seconds"` // frozen while paused, at the stop once stopped; negative: overdue (or stopped late)
	Overdue     bool       `json:"overdue"`
	Strict      bool       `json:"strict"` // a custody period: no holiday roll-over
	Provisional bool       `json:"provisional"`
	// RequestBy is the last moment to ask for the first extension still open
	// to the clock that may be asked now; absent when none may.
	RequestBy  *time.Time      `json:"request_by,omitempty"`
	Granted    []string        `json:"granted"`    // extensions granted in the current period
	Extensions []ExtensionView `json:"extensions"` // still open to the clock
}

// ExtensionView is an extension still open to a clock.
type ExtensionView struct {
	ID        string            `json:"id"`
	Length    string            `json:"length"`
	Min       string            `json:"min,omitempty"` // the least that may be granted, for a range
	Mode      string            `json:"mode"`          // add, or total: the period becomes Length from its start
	Condition string            `json:"condition"`
	Basis     string            `json:"basis"`
	Approver  casework.Approval `json:"approver"` // agency "self": a leader of the asking unit
	RequestBy time.Time         `json:"request_by"`
	Earliest  *time.Time        `json:"earliest,omitempty"`
	Pending   chat.Seq          `json:"pending,omitempty"` // the request awaiting a decision
	Askable   bool              `json:"askable"`           // may be asked for now: inside its window, none pending
}

// clockViews returns the clocks of c, as the case service evaluates them now.
func (h *handler) clockViews(c *casework.Case) []ClockView {
	out := []ClockView{}
	for _, cc := range h.svc.ClocksOf(c) {
		v := ClockView{ID: cc.Spec.ID, Key: cc.Key, Row: cc.Spec.Row, NameZH: cc.Spec.NameZH, NameEN: cc.Spec.NameEN,
			Basis: cc.Spec.Basis, Suspect: cc.Suspect, Unit: cc.Unit, State: string(cc.State), Due: cc.Due.UTC(),
			LastDay: cc.LastDay.String(), Hourly: cc.Spec.Length.Hours > 0, LeftSeconds: int64(cc.Left / time.Second),
			Overdue: cc.Overdue, Strict: cc.Strict, Provisional: cc.Provisional, Granted: cc.Granted, Extensions: []ExtensionView{}}
		if v.Granted == nil {
			v.Granted = []string{}
		}
		for _, x := range cc.Extensions {
			ev := ExtensionView{ID: x.Spec.ID, Length: x.Spec.Length.String(), Mode: x.Spec.Mode, Condition: x.Spec.Condition,
				Basis: x.Spec.Basis, Approver: x.Approver, RequestBy: x.RequestBy.UTC(), Pending: x.Pending, Askable: x.Askable}
			if !x.Spec.Min.IsZero() {
				ev.Min = x.Spec.Min.String()
			}
			if !x.Earliest.IsZero() {
				e := x.Earliest.UTC()
				ev.Earliest = &e
			}
			if x.Askable && (v.RequestBy == nil || x.RequestBy.Before(*v.RequestBy)) {
				rb := x.RequestBy.UTC()
				v.RequestBy = &rb
			}
			v.Extensions = append(v.Extensions, ev)
		}
		out = append(out, v)
	}
	return out
}

type extensionRequest struct {
	Clock     string     `json:"clock"`
	Suspect   string     `json:"suspect"`
	Extension string     `json:"extension"`
	By        string     `json:"by"` // e.g. "2d", for an extension the law gives as a range; default its full length
	Target    acl.UnitID `json:"target"`
	Summary   string     `json:"summary"`
}

// requestExtension asks for the extension of a clock: an approval request to
// the approver the clock's data names, decided at /approvals/{seq}/decision.
func (h *handler) requestExtension() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[extensionRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		var by casework.Period
		if s := strings.TrimSpace(in.By); s != "" {
			if by, err = casework.ParsePeriod(s); err != nil {
				httpjson.WriteError(w, http.StatusBadRequest, httpjson.ErrorInfo{Code: "invalid", Message: "by: " + err.Error(), Field: "by"})
				return
			}
		}
		m, _, err := h.svc.RequestExtension(r.Context(), caseID(r), casework.ExtensionInput{Clock: in.Clock, Suspect: in.Suspect,
			Extension: in.Extension, By: by, Target: in.Target, Summary: in.Summary})
		h.result(w, r, m, err)
	})
}
