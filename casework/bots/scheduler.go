package bots

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

	"caseroom/acl"
	"caseroom/casework"
	"caseroom/chat"
)

// Units is what the Scheduler and Due need from the directory; acl.Store is one.
type Units interface {
	Unit(ctx context.Context, id acl.UnitID) (acl.Unit, error)
	Units(ctx context.Context, f acl.UnitFilter) ([]acl.Unit, error)
}

// LeaseName is the lease the deadline bot's schedulers share.
const LeaseName = "deadline-bot"

// SchedulerOptions tune a Scheduler. Zero fields take the defaults stated.
type SchedulerOptions struct {
	// Node names this scheduler as a lease holder; default a random id.
	Node string
	// Lease is how long a tick holds the lease; default 2 minutes. A negative
	// Lease disables it: every node then does every tick's work, and the room
	// logs' unique client ids still let each reminder through once.
	Lease time.Duration
	// Keep is how long after a clock's due instant its cursor is kept; default
	// 90 days.
	Keep time.Duration
	// AfterPost, if set, is called after a point's entries are committed and
	// before the cursor moves (the crash test kills the process there).
	AfterPost func(key, point string)
}

// A Scheduler is the deadline bot's schedule: each Tick posts what the plans of
// the open clocks have made due since the last, as the bot. See the package
// documentation for why it posts each reminder once.
type Scheduler struct {
	src   ClockSource
	chat  *chat.Service
	units Units
	store Store
	cfg   *Reminders
	lead  time.Duration
	bot   acl.Subject
	now   func() time.Time
	log   *slog.Logger
	opts  SchedulerOptions
}

// NewScheduler returns a Scheduler that reads clocks from src, posts through
// svc as bot (a Subject with Bot set), keeps its cursors and lease in store and
// plans with cfg against the clock table.
func NewScheduler(src ClockSource, svc *chat.Service, units Units, store Store, cfg *Reminders, table *casework.ClockTable,
	bot acl.Subject, now func() time.Time, log *slog.Logger, opts SchedulerOptions) *Scheduler {
	if opts.Node == "" {
		opts.Node = "node-" + rand.Text()[:10]
	}
	if opts.Lease == 0 {
		opts.Lease = 2 * time.Minute
	}
	if opts.Keep <= 0 {
		opts.Keep = 90 * 24 * time.Hour
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{src: src, chat: svc, units: units, store: store, cfg: cfg, lead: cfg.Lead(table),
		bot: bot, now: now, log: log, opts: opts}
}

// A TickReport says what one Tick did.
type TickReport struct {
	Skipped    bool // another node holds the lease
	Clocks     int  // open clocks read
	Points     int  // points handled (a catch-up counts once)
	CatchUps   int  // of them, catch-ups
	Escalated  int  // overdue escalations
	Unitrooms  int  // unit-room escalation entries
	TimedActs  int  // timed acts asked of the source
	Failed     int  // clocks whose points failed; retried next tick
	Pruned     int  // cursors pruned
	FirstError error
}

// Tick posts every point that has come due. A clock whose post fails keeps its
// cursor and is retried by the next tick; the others go on. The error is the
// first failure, or the failure to read the clocks.
func (s *Scheduler) Tick(ctx context.Context) (TickReport, error) {
	var rep TickReport
	now := s.now()
	if s.opts.Lease > 0 {
		ok, err := s.store.Lease(ctx, LeaseName, s.opts.Node, now, now.Add(s.opts.Lease))
		if err != nil {
			return rep, fmt.Errorf("bots: lease: %w", err)
		}
		if !ok {
			rep.Skipped = true
			return rep, nil
		}
	}
	clocks, err := s.src.OpenClocks(ctx, ClockFilter{DueBefore: now.Add(s.lead), States: []casework.ClockState{casework.ClockRunning}})
	if err != nil {
		return rep, fmt.Errorf("bots: open clocks: %w", err)
	}
	rep.Clocks = len(clocks)
	type work struct {
		c   OpenClock
		due []Point
	}
	var ws []work
	var keys []string
	for _, c := range clocks {
		if c.State != casework.ClockRunning || c.Due.IsZero() {
			continue // a paused clock's time does not count: nothing to remind of
		}
		plan := s.cfg.Plan(&c)
		n := 0
		for n < len(plan) && !plan[n].At.After(now) {
			n++
		}
		if n == 0 {
			continue
		}
		ws = append(ws, work{c: c, due: plan[:n]})
		keys = append(keys, c.Key())
	}
	cursors, err := s.store.Cursors(ctx, keys)
	if err != nil {
		return rep, fmt.Errorf("bots: cursors: %w", err)
	}
	for _, w := range ws {
		pending := w.due
		if cur, ok := cursors[w.c.Key()]; ok {
			pending = slices.DeleteFunc(slices.Clone(pending), func(p Point) bool { return !p.At.After(cur.At) })
		}
		if len(pending) == 0 {
			continue
		}
		if err := s.handle(ctx, &w.c, pending, now, &rep); err != nil {
			rep.Failed++
			if rep.FirstError == nil {
				rep.FirstError = err
			}
			s.log.WarnContext(ctx, "deadline reminder failed; retried next tick", "room", w.c.Room, "clock", w.c.Key(), "err", err)
		}
	}
	if n, err := s.store.PruneCursors(ctx, now.Add(-s.opts.Keep)); err == nil {
		rep.Pruned = n
	}
	return rep, rep.FirstError
}

// Run ticks every interval until ctx ends, then frees the lease. Errors of a
// tick are logged and the next tick tries again.
func (s *Scheduler) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if rep, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "deadline tick failed", "err", err, "failed", rep.Failed)
		}
		select {
		case <-ctx.Done():
			if s.opts.Lease > 0 {
				s.store.ReleaseLease(context.WithoutCancel(ctx), LeaseName, s.opts.Node)
			}
			return nil
		case <-t.C:
		}
	}
}

// ReminderClientID is the client id of the case-room entry for point of the
// clock with key: chat keeps one entry per (room, sender, client id).
func ReminderClientID(key, point string) string { return "reminder:" + key + ":" + point }

// escalationClientID is the client id of an overdue escalation in a unit room,
// which many cases share.
func escalationClientID(room chat.RoomID, key string) string {
	return "overdue:" + string(room) + ":" + key
}

// handle posts the latest of pending (a catch-up when there are several) and
// moves the cursor.
func (s *Scheduler) handle(ctx context.Context, c *OpenClock, pending []Point, now time.Time, rep *TickReport) error {
	key := c.Key()
	latest := pending[len(pending)-1]
	var missed []string
	if len(pending) > 1 {
		// A catch-up: say which earlier points it covers, leaving out any that a
		// scheduler killed before its cursor moved did post.
		handled, err := s.handledPoints(ctx, c)
		if err != nil {
			return err
		}
		for _, p := range pending[:len(pending)-1] {
			if !handled[p.ID] {
				missed = append(missed, p.ID)
			}
		}
	}
	n := s.notice(c, latest, now)
	n.CatchUp, n.Missed = len(missed) > 0, missed
	kind := KindReminder
	var targets []escalation
	if latest.Final && !n.Expired {
		kind = KindOverdue
		var err error
		if targets, err = s.escalationTargets(ctx, c); err != nil {
			return err
		}
		for _, t := range targets {
			n.EscalatedTo = append(n.EscalatedTo, t.unit)
		}
	}
	payload, _ := json.Marshal(n)
	holder := s.unitName(ctx, c.Holder)
	m := &chat.Message{Room: c.Room, Kind: kind, Sender: s.bot.User, SenderUnit: s.bot.Unit,
		ClientID: ReminderClientID(key, latest.ID), Body: caseText(c, n, holder, targets), Payload: payload}
	err := s.chat.Append(ctx, m, 0)
	if errors.Is(err, chat.ErrArchived) || errors.Is(err, chat.ErrNotFound) {
		// The case is closed (its room archived) or gone: nothing to remind of.
		s.log.InfoContext(ctx, "deadline reminder not posted: room closed", "room", c.Room, "clock", key, "point", latest.ID)
		return s.advance(ctx, c, latest, 0, now)
	}
	if err != nil {
		return fmt.Errorf("post %s %s: %w", key, latest.ID, err)
	}
	rep.Points++
	if n.CatchUp {
		rep.CatchUps++
	}
	if kind == KindOverdue {
		rep.Escalated++
		for _, t := range targets {
			un := n
			un.Suspect, un.Extensions = "", nil // unit rooms hear of the case, not of the people in it
			up, _ := json.Marshal(un)
			em := &chat.Message{Room: t.room, Kind: KindOverdue, Sender: s.bot.User, SenderUnit: s.bot.Unit,
				ClientID: escalationClientID(c.Room, key), Body: unitText(c, holder), Payload: up}
			if err := s.chat.Append(ctx, em, 0); err != nil && !errors.Is(err, chat.ErrArchived) {
				return fmt.Errorf("escalate %s to %s: %w", key, t.unit, err)
			}
			rep.Unitrooms++
		}
	}
	if latest.Final {
		if tr, ok := s.cfg.TimedTransition(c.Spec.ID); ok {
			if ta, ok := s.src.(TimedActor); ok {
				if err := ta.TimedAct(ctx, s.bot, *c, tr); err != nil {
					return fmt.Errorf("timed act %s for %s: %w", tr, key, err)
				}
				rep.TimedActs++
			} else {
				s.log.DebugContext(ctx, "timed act not supported by the clock source", "clock", key, "transition", tr)
			}
		}
	}
	if s.opts.AfterPost != nil {
		s.opts.AfterPost(key, latest.ID)
	}
	return s.advance(ctx, c, latest, m.Seq, now)
}

// advance moves c's cursor to p, posted as seq.
func (s *Scheduler) advance(ctx context.Context, c *OpenClock, p Point, seq chat.Seq, now time.Time) error {
	cur := Cursor{Key: c.Key(), Room: c.Room, Point: p.ID, At: p.At, Due: c.Due, Seq: seq, UpdatedAt: now}
	if _, err := s.store.Advance(ctx, cur); err != nil {
		return fmt.Errorf("advance %s: %w", cur.Key, err)
	}
	return nil
}

// handledPoints reads the case room for the bot's entries about c's key and
// returns the points they posted or declared missed.
func (s *Scheduler) handledPoints(ctx context.Context, c *OpenClock) (map[string]bool, error) {
	prefix := ReminderClientID(c.Key(), "")
	out := map[string]bool{}
	// Entries for this key were posted at or after their points, which are not
	// before Since; an hour's margin absorbs clock skew between nodes.
	q := chat.HistoryQuery{Since: c.Since.Add(-time.Hour), Limit: chat.MaxPage}
	for {
		ms, err := s.chat.Store().History(ctx, c.Room, q)
		if errors.Is(err, chat.ErrNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", c.Room, err)
		}
		for _, m := range ms {
			p, ok := strings.CutPrefix(m.ClientID, prefix)
			if !ok || m.Sender != s.bot.User {
				continue
			}
			out[p] = true
			var n Notice
			if json.Unmarshal(m.Payload, &n) == nil {
				for _, id := range n.Missed {
					out[id] = true
				}
			}
		}
		if len(ms) < chat.MaxPage {
			return out, nil
		}
		q.After = ms[len(ms)-1].Seq
	}
}

// notice is the payload for point p of c, as of now.
func (s *Scheduler) notice(c *OpenClock, p Point, now time.Time) Notice {
	left := c.Due.Sub(now)
	n := Notice{Case: c.Case, CaseNumber: c.CaseNumber, Room: c.Room, Clock: c.Spec.ID, Key: c.Key(), Row: c.Spec.Row,
		Name: c.Spec.NameZH, Basis: c.Spec.Basis, Suspect: c.Suspect, Holder: c.Holder, Due: c.Due.UTC(),
		LastDay: c.LastDay().String(), LeftSeconds: int64(left / time.Second), Left: leftText(left), Point: p.ID,
		Strict: c.Strict, Provisional: c.Provisional, Expired: p.Final && s.cfg.Window(c.Spec.ID)}
	for _, x := range c.Extensions {
		if x.RequestBy.Before(now) {
			continue // too late to ask
		}
		n.Extensions = append(n.Extensions, ExtensionNote{ID: x.Spec.ID, Condition: x.Spec.Condition,
			Approver: approverText(x.Spec.Approval), RequestBy: x.RequestBy.UTC(),
			LastDay: casework.DateOf(x.RequestBy.Add(-time.Nanosecond)).String()})
	}
	return n
}

func approverText(a *casework.Approval) string {
	if a == nil {
		return ""
	}
	return a.Agency + " " + a.Role + ", " + a.Level
}

// An escalation is a unit room an overdue clock is reported to.
type escalation struct {
	unit acl.UnitID
	name string
	room chat.RoomID
}

// escalationTargets returns the unit rooms of the jurisdiction's committee and
// of the supervising procuratorate (as reminders.json's escalate_to says). A
// unit without a unit room is left out and logged.
func (s *Scheduler) escalationTargets(ctx context.Context, c *OpenClock) ([]escalation, error) {
	var units []acl.UnitID
	for _, to := range s.cfg.EscalateTo {
		switch to {
		case EscalateCommittee:
			u := c.Committee
			if u == "" {
				r, err := s.chat.Store().Room(ctx, c.Room)
				if err != nil && !errors.Is(err, chat.ErrNotFound) {
					return nil, err
				}
				u = r.OwnerUnit
			}
			if u != "" {
				units = append(units, u)
			}
		case EscalateProcuratorate:
			u := c.Procuratorate
			if u == "" {
				var err error
				if u, err = s.supervisingProcuratorate(ctx, c.Region); err != nil {
					return nil, err
				}
			}
			if u != "" {
				units = append(units, u)
			} else {
				s.log.WarnContext(ctx, "no supervising procuratorate to escalate to", "room", c.Room, "region", c.Region)
			}
		}
	}
	var out []escalation
	for _, u := range units {
		if slices.ContainsFunc(out, func(e escalation) bool { return e.unit == u }) {
			continue
		}
		r, err := s.chat.Store().UnitRoom(ctx, u)
		if errors.Is(err, chat.ErrNotFound) {
			s.log.WarnContext(ctx, "unit has no unit room; escalation not posted there", "unit", u, "room", c.Room)
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, escalation{unit: u, name: s.unitName(ctx, u), room: r.ID})
	}
	return out, nil
}

// unitName returns u's name in the directory, or its id.
func (s *Scheduler) unitName(ctx context.Context, u acl.UnitID) string {
	if u == "" {
		return ""
	}
	if unit, err := s.units.Unit(ctx, u); err == nil && unit.Name != "" {
		return unit.Name
	}
	return string(u)
}

// supervisingProcuratorate returns the territorial procuratorate of region:
// the procuratorate supervises the legality of the case's handling there.
func (s *Scheduler) supervisingProcuratorate(ctx context.Context, region acl.RegionCode) (acl.UnitID, error) {
	if region == "" {
		return "", nil
	}
	us, err := s.units.Units(ctx, acl.UnitFilter{Region: region, Kind: "procuratorate"})
	if err != nil {
		return "", err
	}
	var fallback acl.UnitID
	for _, u := range us {
		if u.Disabled {
			continue
		}
		if !u.NonTerritorial {
			return u.ID, nil
		}
		if fallback == "" {
			fallback = u.ID
		}
	}
	return fallback, nil
}

// dueText is how the rooms show a due instant: "2026-03-15 24:00" for a day
// period (which ends at 24:00 of its last day), the exact time for hours.
func dueText(c *OpenClock) string {
	d := c.Due.In(casework.Shanghai)
	if !c.Hourly() && d.Hour() == 0 && d.Minute() == 0 {
		return c.LastDay().String() + " 24:00"
	}
	return d.Format("2006-01-02 15:04")
}

// pointText says a plan point in words: "T-7d" is 届满前7日, "T-12h"
// 届满前12小时, "T-0d" 届满当日, "ext:complex" 延长申请截止日（complex）.
func pointText(id string) string {
	var parts []string
	for _, p := range strings.Split(id, "+") {
		switch {
		case p == "T-0d":
			parts = append(parts, "届满当日")
		case strings.HasPrefix(p, "T-") && strings.HasSuffix(p, "d"):
			parts = append(parts, "届满前"+strings.TrimSuffix(strings.TrimPrefix(p, "T-"), "d")+"日")
		case strings.HasPrefix(p, "T-") && strings.HasSuffix(p, "h"):
			parts = append(parts, "届满前"+strings.TrimSuffix(strings.TrimPrefix(p, "T-"), "h")+"小时")
		case strings.HasPrefix(p, "ext:"):
			parts = append(parts, "延长申请截止日（"+strings.TrimPrefix(p, "ext:")+"）")
		case p == "overdue":
			parts = append(parts, "超期")
		case p == "expired":
			parts = append(parts, "期间届满")
		default:
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "及")
}

// caseText is the body of the case-room entry: Chinese, as the rooms read.
func caseText(c *OpenClock, n Notice, holder string, targets []escalation) string {
	var b strings.Builder
	what := fmt.Sprintf("%s（%s，%s）", c.Spec.NameZH, c.Spec.ID, c.Spec.Basis)
	who := ""
	switch {
	case c.SuspectName != "":
		who = "，" + c.SuspectName
	case c.Suspect != "":
		who = "，当事人 " + c.Suspect
	}
	switch {
	case n.Expired:
		fmt.Fprintf(&b, "【期间届满】%s%s：已于 %s 届满。", what, who, dueText(c))
	case n.Point == "overdue" || strings.HasSuffix(n.Point, "+overdue"):
		fmt.Fprintf(&b, "【超期预警】%s%s：已于 %s 届满，", what, who, dueText(c))
		if holder != "" {
			fmt.Fprintf(&b, "%s尚未办结。", holder)
		} else {
			b.WriteString("尚未办结。")
		}
		if len(targets) > 0 {
			names := make([]string, len(targets))
			for i, t := range targets {
				names[i] = t.name
			}
			fmt.Fprintf(&b, "已通报：%s。", strings.Join(names, "、"))
		}
	case strings.HasPrefix(n.Point, "ext:"):
		fmt.Fprintf(&b, "【延长期限申请提醒】%s%s：今天是提请延长的最后一天，期限于 %s 届满，%s。", what, who, dueText(c), n.Left)
	default:
		if n.CatchUp {
			b.WriteString("【期限提醒·补发】")
		} else {
			b.WriteString("【期限提醒】")
		}
		fmt.Fprintf(&b, "%s%s：将于 %s 届满，%s。", what, who, dueText(c), n.Left)
		if strings.Contains(n.Point, "ext:") {
			b.WriteString("今天是提请延长的最后一天。")
		}
	}
	if c.Strict {
		b.WriteString("羁押期限，节假日不顺延。")
	}
	if c.Provisional {
		b.WriteString("（届满日暂按周末推算，节假日安排公布后重算。）")
	}
	if !n.Expired && n.Point != "overdue" {
		for _, x := range n.Extensions {
			fmt.Fprintf(&b, "如需延长（%s），最迟应于 %s 前提请批准。", x.Condition, x.LastDay+" 24:00")
		}
	}
	if n.CatchUp {
		missed := make([]string, len(n.Missed))
		for i, p := range n.Missed {
			missed[i] = pointText(p)
		}
		fmt.Fprintf(&b, "（%s提醒的时点已过，未单独发送。）", strings.Join(missed, "、"))
	}
	return b.String()
}

// unitText is the body of an escalation in a unit room: the case and the clock,
// never the parties.
func unitText(c *OpenClock, holder string) string {
	name := c.CaseNumber
	if name == "" {
		name = string(c.Room)
	}
	if holder == "" {
		holder = "（未知）"
	}
	return fmt.Sprintf("【超期通报】案件 %s：%s（%s，%s）已于 %s 届满未办结，承办单位：%s。", name, c.Spec.NameZH, c.Spec.ID, c.Spec.Basis, dueText(c), holder)
}
