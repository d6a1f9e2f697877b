package bots

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"caseroom/acl"
	"caseroom/chat"
)

// The message kinds the deadline bot posts. Both count as unread, and neither
// can be posted by members (Direct is false): only the Scheduler appends them.
const (
	// KindReminder is a reminder that a clock is running out, the last day to
	// ask for an extension, or the notice that a party's period has passed.
	KindReminder chat.Kind = "case.reminder"
	// KindOverdue is the escalation of a clock that ran out, posted in the case
	// room and in the unit rooms of the jurisdiction's committee and of the
	// supervising procuratorate.
	KindOverdue chat.Kind = "case.overdue"
)

// RegisterKinds registers KindReminder and KindOverdue with reg; call it once at
// start, before the chat.Service takes posts.
func RegisterKinds(reg *chat.Registry) {
	reg.Register(KindReminder, chat.KindSpec{Validate: validateNotice, Countable: true})
	reg.Register(KindOverdue, chat.KindSpec{Validate: validateNotice, Countable: true})
}

// A Notice is the payload of KindReminder and KindOverdue entries: one clock
// of one case (and suspect), when it runs out and why the bot speaks now.
type Notice struct {
	Case        string      `json:"case,omitempty"`
	CaseNumber  string      `json:"case_number,omitempty"`
	Room        chat.RoomID `json:"room"`      // the case room, also when posted in a unit room
	Clock       string      `json:"clock"`     // the ClockSpec ID, e.g. "CR-DET-01.family"
	Key         string      `json:"clock_key"` // the clock instance and its due instant
	Row         string      `json:"row"`       // the deadline-table row, e.g. "CR-DET-01"
	Name        string      `json:"name"`      // the clock's Chinese name
	Basis       string      `json:"basis"`     // the article(s) the period comes from
	Suspect     string      `json:"suspect,omitempty"`
	Holder      acl.UnitID  `json:"holder,omitempty"` // the unit that must act
	Due         time.Time   `json:"due"`              // the instant the period expires
	LastDay     string      `json:"last_day"`         // its last day, YYYY-MM-DD, Beijing time
	LeftSeconds int64       `json:"left_seconds"`     // at posting; negative once overdue
	Left        string      `json:"left"`             // the same in words, e.g. "2天6小时"
	Point       string      `json:"offset"`           // the plan point: "T-7d", "T-12h", "ext:complex", "overdue", "expired"
	Strict      bool        `json:"strict"`           // a custody period: no holiday roll-over
	Provisional bool        `json:"provisional,omitempty"`
	// Expired marks a party's period that has passed: no breach, nothing escalated.
	Expired bool `json:"expired,omitempty"`
	// CatchUp marks a message posted late, after downtime; Missed lists the
	// earlier points of the plan that were never posted and are covered by it.
	CatchUp bool     `json:"catch_up,omitempty"`
	Missed  []string `json:"missed,omitempty"`
	// Extensions are the extensions still open to the clock and the last
	// moment to ask for each (its lead time before expiry).
	Extensions  []ExtensionNote `json:"extensions,omitempty"`
	EscalatedTo []acl.UnitID    `json:"escalated_to,omitempty"` // KindOverdue: the unit rooms told
}

// An ExtensionNote is one extension a clock may still get and the last moment
// to ask for it.
type ExtensionNote struct {
	ID        string    `json:"id"`
	Condition string    `json:"condition,omitempty"`
	Approver  string    `json:"approver,omitempty"` // e.g. "procuratorate leader, higher"
	RequestBy time.Time `json:"request_by"`
	LastDay   string    `json:"last_day"` // the last day to ask, YYYY-MM-DD
}

func validateNotice(p json.RawMessage) error {
	var n Notice
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if len(p) == 0 {
		return &chat.InvalidError{Field: "payload", Reason: "is required"}
	}
	if err := dec.Decode(&n); err != nil {
		return &chat.InvalidError{Field: "payload", Reason: err.Error()}
	}
	switch {
	case n.Room == "":
		return &chat.InvalidError{Field: "payload.room", Reason: "is required"}
	case n.Clock == "" || n.Key == "":
		return &chat.InvalidError{Field: "payload.clock", Reason: "clock and clock_key are required"}
	case n.Due.IsZero():
		return &chat.InvalidError{Field: "payload.due", Reason: "is required"}
	case n.Point == "":
		return &chat.InvalidError{Field: "payload.offset", Reason: "is required"}
	}
	return nil
}

// leftText says d in days and hours (or hours and minutes under a day), in
// Chinese, as the rooms show it: "2天6小时", "5小时30分", "已超期1天2小时".
func leftText(d time.Duration) string {
	prefix := "剩余"
	if d < 0 {
		prefix, d = "已超期", -d
	}
	d = d.Round(time.Minute)
	if d == 0 {
		return "已到期"
	}
	days := int(d / (24 * time.Hour))
	hours := int(d % (24 * time.Hour) / time.Hour)
	mins := int(d % time.Hour / time.Minute)
	switch {
	case days > 0 && hours > 0:
		return fmt.Sprintf("%s%d天%d小时", prefix, days, hours)
	case days > 0:
		return fmt.Sprintf("%s%d天", prefix, days)
	case hours > 0 && mins > 0:
		return fmt.Sprintf("%s%d小时%d分", prefix, hours, mins)
	case hours > 0:
		return fmt.Sprintf("%s%d小时", prefix, hours)
	}
	return fmt.Sprintf("%s%d分", prefix, mins)
}
