package bots_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/casework"
	"caseroom/casework/bots"
	"caseroom/chat"
)

// world is one node on SQLite, seeded, with a test clock source.
type world struct {
	*node
	src *memSource
}

func newWorld(t *testing.T, start time.Time) *world {
	t.Helper()
	d, _ := mustDomain(t)
	clk := &testClock{t: start}
	n := openNode(t, sqliteBackend(t), clk)
	n.seed()
	return &world{node: n, src: newSource(d)}
}

// tickUntil ticks s every step from the clock's now until end (inclusive) and
// returns, for every bot entry in rooms, the tick time it was posted at.
func (w *world) tickUntil(t *testing.T, s *bots.Scheduler, step time.Duration, end time.Time) {
	t.Helper()
	for ; !w.clock.Now().After(end); w.clock.Advance(step) {
		mustTick(t, s)
	}
}

// wantPosted checks that room's bot entries are points, each stamped at when[i].
func wantPosted(t *testing.T, w *world, room chat.RoomID, points []string, when []time.Time) []bots.Notice {
	t.Helper()
	ms, ns := w.botEntries(room)
	got := make([]string, len(ns))
	for i, n := range ns {
		got[i] = n.Point
	}
	if !eq(got, points) {
		t.Fatalf("room %s: bot posted %q, want %q", room, got, points)
	}
	for i := range when {
		if !ms[i].CreatedAt.Equal(when[i]) {
			t.Errorf("room %s: %s posted at %s, want %s", room, points[i], ms[i].CreatedAt.In(casework.Shanghai), when[i])
		}
	}
	return ns
}

// A custody clock of 3 days (CR-DET-02: request arrest approval within 3 d of
// detention, CPL Art. 91) started at 10:00 on Monday: the T-3 and T-7 points lie
// before the detention and do not apply; T-1 and the due day come at 08:00,
// the escalation at 24:00 of the last day, each once however often the
// scheduler ticks.
func TestCustodyClockReminders(t *testing.T) {
	start := bj(2026, time.March, 2, 10, 0)
	w := newWorld(t, start)
	room := w.openCase("det02")
	w.src.add(t, clockDef{Room: room, Clock: "CR-DET-02", Suspect: "p1", Start: start, Detained: true, Holder: police})
	s := w.scheduler(w.src, bots.SchedulerOptions{})
	w.tickUntil(t, s, time.Hour, bj(2026, time.March, 7, 0, 0))

	ns := wantPosted(t, w, room, []string{"T-1d", "T-0d", "overdue"},
		[]time.Time{bj(2026, time.March, 4, 8, 0), bj(2026, time.March, 5, 8, 0), bj(2026, time.March, 6, 0, 0)})
	ms, _ := w.botEntries(room)
	for i, m := range ms {
		n := ns[i]
		if n.Clock != "CR-DET-02" || n.Row != "CR-DET-02" || n.Basis != "CPL Art. 91 ¶1" || n.Suspect != "p1" || !n.Strict ||
			n.LastDay != "2026-03-05" || !n.Due.Equal(bj(2026, time.March, 6, 0, 0)) || n.Holder != police || n.CatchUp {
			t.Errorf("%s: notice %+v", n.Point, n)
		}
		if m.ClientID != bots.ReminderClientID(n.Key, n.Point) || m.Kind != map[bool]chat.Kind{true: bots.KindOverdue, false: bots.KindReminder}[n.Point == "overdue"] {
			t.Errorf("%s: kind %s, client id %q", n.Point, m.Kind, m.ClientID)
		}
		t.Logf("case room, seq %d, %s: %s", m.Seq, m.Kind, m.Body)
		t.Logf("client id %s, payload %s", m.ClientID, m.Payload)
	}
	if ns[0].LeftSeconds != int64(40*time.Hour/time.Second) || ns[0].Left != "剩余1天16小时" {
		t.Errorf("T-1d: left %d s, %q; want 40 h", ns[0].LeftSeconds, ns[0].Left)
	}
	if !strings.Contains(ms[0].Body, "提请批准逮捕（CR-DET-02，CPL Art. 91 ¶1）") || !strings.Contains(ms[0].Body, "2026-03-05 24:00") ||
		!strings.Contains(ms[0].Body, "节假日不顺延") {
		t.Errorf("T-1d body: %s", ms[0].Body)
	}
}

// A 24-hour rule (CR-DET-01.family: notify the family within 24 h of
// detention, CPL Art. 85) is counted from the next full hour; reminders come
// 12, 4 and 1 hours before.
func TestHourClockReminders(t *testing.T) {
	start := bj(2026, time.March, 2, 10, 20)
	w := newWorld(t, start)
	room := w.openCase("det01")
	w.src.add(t, clockDef{Room: room, Clock: "CR-DET-01.family", Suspect: "p1", Start: start, Detained: true, Holder: police})
	s := w.scheduler(w.src, bots.SchedulerOptions{})
	w.clock.Set(bj(2026, time.March, 2, 10, 30))
	w.tickUntil(t, s, 10*time.Minute, bj(2026, time.March, 3, 12, 0))
	ns := wantPosted(t, w, room, []string{"T-12h", "T-4h", "T-1h", "overdue"}, []time.Time{
		bj(2026, time.March, 2, 23, 0), bj(2026, time.March, 3, 7, 0), bj(2026, time.March, 3, 10, 0), bj(2026, time.March, 3, 11, 0)})
	if ns[2].Left != "剩余1小时" {
		t.Errorf("T-1h left %q", ns[2].Left)
	}
}

// Investigative custody (CR-CUS-01, 2 months, CPL Art. 156) has its own
// offsets, and the last day to ask for the first extension (7 d before expiry,
// MPS-R Art. 148) falls on the T-7 reminder, which names it. The clock ends on
// its calendar date even in the May Day holiday.
func TestLongCustodyClockWithExtensionDeadline(t *testing.T) {
	start := bj(2026, time.March, 2, 10, 0)
	w := newWorld(t, start)
	room := w.openCase("cus01")
	w.src.add(t, clockDef{Room: room, Clock: "CR-CUS-01", Suspect: "p1", Start: start, Detained: true, Holder: police})
	s := w.scheduler(w.src, bots.SchedulerOptions{})
	w.tickUntil(t, s, time.Hour, bj(2026, time.May, 4, 0, 0))
	ns := wantPosted(t, w, room, []string{"T-15d", "T-7d+ext:complex", "T-3d", "T-1d", "T-0d", "overdue"}, []time.Time{
		bj(2026, time.April, 17, 8, 0), bj(2026, time.April, 25, 8, 0), bj(2026, time.April, 29, 8, 0),
		bj(2026, time.May, 1, 8, 0), bj(2026, time.May, 2, 8, 0), bj(2026, time.May, 3, 0, 0)})
	if len(ns[1].Extensions) != 1 || ns[1].Extensions[0].ID != "complex" || ns[1].Extensions[0].LastDay != "2026-04-25" ||
		ns[1].Extensions[0].Approver != "procuratorate leader, higher" {
		t.Errorf("T-7d extensions: %+v", ns[1].Extensions)
	}
	if len(ns[2].Extensions) != 0 {
		t.Errorf("T-3d still offers an extension whose lead time has passed: %+v", ns[2].Extensions)
	}
	ms, _ := w.botEntries(room)
	if !strings.Contains(ms[1].Body, "最迟应于 2026-04-25 24:00 前提请批准") {
		t.Errorf("T-7d body: %s", ms[1].Body)
	}
}

// On expiry the escalation goes to the case room and to the unit rooms of the
// county committee (the room's owner) and of the county procuratorate, found in
// the directory; the unit rooms learn of the case, never of the suspect.
func TestOverdueEscalatesToCommitteeAndProcuratorate(t *testing.T) {
	start := bj(2026, time.March, 2, 10, 0)
	w := newWorld(t, start)
	room := w.openCase("esc")
	w.src.add(t, clockDef{Room: room, Clock: "CR-DET-02", Suspect: "p1", SuspectName: "张某", Start: start, Detained: true, Holder: police})
	s := w.scheduler(w.src, bots.SchedulerOptions{})
	w.clock.Set(bj(2026, time.March, 5, 23, 0))
	mustTick(t, s)
	w.clock.Set(bj(2026, time.March, 6, 0, 0))
	rep := mustTick(t, s)
	if rep.Escalated != 1 || rep.Unitrooms != 2 {
		t.Errorf("report %+v; want 1 escalation to 2 unit rooms", rep)
	}
	ms, ns := w.botEntries(room)
	last := ns[len(ns)-1]
	if last.Point != "overdue" || len(last.EscalatedTo) != 2 || last.EscalatedTo[0] != committee || last.EscalatedTo[1] != procuratorate {
		t.Errorf("case room escalation: %+v", last)
	}
	t.Logf("case room, seq %d, %s: %s", ms[len(ms)-1].Seq, ms[len(ms)-1].Kind, ms[len(ms)-1].Body)
	if !strings.Contains(ms[len(ms)-1].Body, "张某") || !strings.Contains(ms[len(ms)-1].Body, "新城区公安分局尚未办结") {
		t.Errorf("case room body: %s", ms[len(ms)-1].Body)
	}
	for _, u := range []acl.UnitID{committee, procuratorate} {
		ums, uns := w.botEntries(w.unitRoom(u))
		if len(ums) != 1 || ums[0].Kind != bots.KindOverdue || uns[0].Room != room || uns[0].Suspect != "" || uns[0].Clock != "CR-DET-02" {
			t.Fatalf("unit room of %s: %d entries %+v", u, len(ums), uns)
		}
		if strings.Contains(ums[0].Body, "p1") || strings.Contains(ums[0].Body, "张某") || !strings.Contains(ums[0].Body, "承办单位：新城区公安分局") {
			t.Errorf("unit room body: %s", ums[0].Body)
		}
		t.Logf("unit room of %s, seq %d, %s: %s", u, ums[0].Seq, ums[0].Kind, ums[0].Body)
	}
	// Ticking on changes nothing.
	for range 5 {
		w.clock.Advance(time.Hour)
		mustTick(t, s)
	}
	if got := len(w.points(room)); got != len(ns) {
		t.Errorf("later ticks posted %d more entries", got-len(ns))
	}
	for _, u := range []acl.UnitID{committee, procuratorate, leagueCommit, rootCommittee} {
		want := 1
		if u == leagueCommit || u == rootCommittee {
			want = 0
		}
		if ms, _ := w.botEntries(w.unitRoom(u)); len(ms) != want {
			t.Errorf("unit room of %s: %d escalations, want %d", u, len(ms), want)
		}
	}
}

// After downtime a clock gets one catch-up message, the latest point due,
// naming the points it missed — not one message per missed point.
func TestCatchUpAfterDowntime(t *testing.T) {
	start := bj(2026, time.March, 2, 10, 0)
	w := newWorld(t, start)
	a := w.openCase("catchup-a")
	b := w.openCase("catchup-b")
	w.src.add(t, clockDef{Room: a, Clock: "CR-CUS-01", Suspect: "p1", Start: start, Detained: true, Holder: police})
	w.src.add(t, clockDef{Room: b, Clock: "CR-DET-02", Suspect: "p2", Start: start, Detained: true, Holder: police})
	s := w.scheduler(w.src, bots.SchedulerOptions{})
	mustTick(t, s)
	// Down from 2 March to 30 April 09:00: CR-CUS-01 missed T-15d and T-7d, is at
	// T-3d; CR-DET-02 ran out meanwhile.
	w.clock.Set(bj(2026, time.April, 30, 9, 0))
	rep := mustTick(t, s)
	if rep.Points != 2 || rep.CatchUps != 2 {
		t.Errorf("report %+v; want 2 points, both catch-ups", rep)
	}
	ms, ns := w.botEntries(a)
	if len(ns) != 1 || ns[0].Point != "T-3d" || !ns[0].CatchUp || !eq(ns[0].Missed, []string{"T-15d", "T-7d+ext:complex"}) {
		t.Fatalf("case a after downtime: %+v", ns)
	}
	if !strings.HasPrefix(ms[0].Body, "【期限提醒·补发】") || !strings.Contains(ms[0].Body, "届满前15日、届满前7日及延长申请截止日（complex）提醒") {
		t.Errorf("catch-up body: %s", ms[0].Body)
	}
	t.Logf("case room, seq %d, %s: %s", ms[0].Seq, ms[0].Kind, ms[0].Body)
	_, nb := w.botEntries(b)
	if len(nb) != 1 || nb[0].Point != "overdue" || !eq(nb[0].Missed, []string{"T-1d", "T-0d"}) {
		t.Fatalf("case b after downtime: %+v", nb)
	}
	if um, _ := w.botEntries(w.unitRoom(committee)); len(um) != 1 {
		t.Errorf("committee unit room: %d escalations, want 1", len(um))
	}
	// Back to normal: the next points come one by one.
	w.tickUntil(t, s, time.Hour, bj(2026, time.May, 3, 1, 0))
	if got := w.points(a); !eq(got, []string{"T-3d", "T-1d", "T-0d", "overdue"}) {
		t.Errorf("case a: %q", got)
	}
}

// An extension moves the due instant: the clock gets a new key and the new
// deadline its own reminders; the old key's points are not repeated.
func TestExtensionGetsNewReminders(t *testing.T) {
	start := bj(2026, time.March, 2, 10, 0)
	w := newWorld(t, start)
	room := w.openCase("ext")
	mc := w.src.add(t, clockDef{Room: room, Clock: "CR-CUS-01", Suspect: "p1", Start: start, Detained: true, Holder: police})
	s := w.scheduler(w.src, bots.SchedulerOptions{})
	w.tickUntil(t, s, time.Hour, bj(2026, time.April, 26, 0, 0))
	if got := w.points(room); !eq(got, []string{"T-15d", "T-7d+ext:complex"}) {
		t.Fatalf("before the extension: %q", got)
	}
	// The higher procuratorate grants a month on 26 April (CPL Art. 156).
	w.src.apply(t, mc, casework.ClockEvent{Kind: casework.EventExtend, At: bj(2026, time.April, 26, 10, 0), Ref: "complex"})
	w.tickUntil(t, s, time.Hour, bj(2026, time.June, 3, 0, 0))
	_, ns := w.botEntries(room)
	var got []string
	for _, n := range ns {
		got = append(got, n.Point+"@"+n.LastDay)
	}
	// New due: 24:00 on 2 June; the art158 extension (+2 m, provincial) is now
	// open with its own last day to ask, 26 May, the T-7d point.
	want := []string{"T-15d@2026-05-02", "T-7d+ext:complex@2026-05-02",
		"T-15d@2026-06-02", "T-7d+ext:art158@2026-06-02", "T-3d@2026-06-02", "T-1d@2026-06-02", "T-0d@2026-06-02", "overdue@2026-06-02"}
	if !eq(got, want) {
		t.Errorf("points %q, want %q", got, want)
	}
}

// A paused clock (psychiatric appraisal, CPL Art. 149) is silent, and resumes
// with a due instant moved by the days paused.
func TestPausedClockIsSilent(t *testing.T) {
	start := bj(2026, time.March, 2, 10, 0)
	w := newWorld(t, start)
	room := w.openCase("pause")
	mc := w.src.add(t, clockDef{Room: room, Clock: "CR-CUS-01", Suspect: "p1", Start: start, Detained: true, Holder: police})
	s := w.scheduler(w.src, bots.SchedulerOptions{})
	w.src.apply(t, mc, casework.ClockEvent{Kind: casework.EventPause, At: bj(2026, time.April, 10, 9, 0), Ref: "psychiatric"})
	w.tickUntil(t, s, 6*time.Hour, bj(2026, time.May, 10, 0, 0))
	if got := w.points(room); len(got) != 0 {
		t.Fatalf("a paused clock got reminders: %q", got)
	}
	w.src.apply(t, mc, casework.ClockEvent{Kind: casework.EventResume, At: bj(2026, time.May, 10, 9, 0)})
	w.tickUntil(t, s, time.Hour, bj(2026, time.June, 3, 0, 0))
	// 30 days paused (10 April to 10 May): the last day moves from 2 May to 1 June.
	_, ns := w.botEntries(room)
	if len(ns) == 0 || ns[0].LastDay != "2026-06-01" || ns[0].CatchUp {
		t.Fatalf("after resuming: %+v", ns)
	}
	var got []string
	for _, n := range ns {
		got = append(got, n.Point)
	}
	if !eq(got, []string{"T-15d", "T-7d+ext:complex", "T-3d", "T-1d", "T-0d", "overdue"}) {
		t.Errorf("after resuming: %q", got)
	}
}

// A party's period (the appeal window, CR-APP-01.judgment) passing is no
// breach: the bot says so in the case room, escalates nothing, and asks the
// case service for the act it makes happen (the judgment becomes effective).
func TestWindowExpiryIsNotEscalated(t *testing.T) {
	start := bj(2026, time.March, 2, 15, 0)
	w := newWorld(t, start)
	room := w.openCase("appeal")
	w.src.add(t, clockDef{Room: room, Clock: "CR-APP-01.judgment", Start: start, Holder: court})
	s := w.scheduler(w.src, bots.SchedulerOptions{})
	w.tickUntil(t, s, time.Hour, bj(2026, time.March, 14, 0, 0))
	ms, ns := w.botEntries(room)
	if got := w.points(room); !eq(got, []string{"T-3d", "T-1d", "T-0d", "expired"}) {
		t.Fatalf("points %q", got)
	}
	last := ns[len(ns)-1]
	if !last.Expired || ms[len(ms)-1].Kind != bots.KindReminder || len(last.EscalatedTo) != 0 || last.LastDay != "2026-03-12" {
		t.Errorf("expiry: %s %+v", ms[len(ms)-1].Kind, last)
	}
	t.Logf("case room, seq %d, %s: %s", ms[len(ms)-1].Seq, ms[len(ms)-1].Kind, ms[len(ms)-1].Body)
	for _, u := range []acl.UnitID{committee, procuratorate} {
		if um, _ := w.botEntries(w.unitRoom(u)); len(um) != 0 {
			t.Errorf("unit room of %s heard of a party's period: %d entries", u, len(um))
		}
	}
	if len(w.src.timed) != 1 || !strings.HasSuffix(w.src.timed[0], " becomes_effective") {
		t.Errorf("timed acts asked: %q; want one becomes_effective", w.src.timed)
	}
}

// A closed case's room is archived: the bot posts nothing there, and its
// schedule moves on instead of failing every tick.
func TestArchivedRoomIsSkipped(t *testing.T) {
	start := bj(2026, time.March, 2, 10, 0)
	w := newWorld(t, start)
	room := w.openCase("closed")
	w.src.add(t, clockDef{Room: room, Clock: "CR-DET-02", Suspect: "p1", Start: start, Detained: true, Holder: police})
	// A case room is archived by closing the case, which appends the
	// room.archive entry through chat.Service.Append (nobody archives it
	// through the rooms API).
	archive := &chat.Message{Room: room, Kind: chat.RoomArchive, Sender: "court.officer1", SenderUnit: court, Payload: []byte(`{"archived":true}`)}
	if err := w.chat.Append(context.Background(), archive, 0); err != nil {
		t.Fatal(err)
	}
	s := w.scheduler(w.src, bots.SchedulerOptions{})
	w.tickUntil(t, s, time.Hour, bj(2026, time.March, 7, 0, 0))
	if got := w.points(room); len(got) != 0 {
		t.Errorf("an archived room got %q", got)
	}
}

// With the lease, a second node's tick is skipped while the first holds it,
// and takes over once it has expired.
func TestLeaseSkipsOtherNodes(t *testing.T) {
	start := bj(2026, time.March, 2, 10, 0)
	w := newWorld(t, start)
	a := w.scheduler(w.src, bots.SchedulerOptions{Node: "a", Lease: time.Minute})
	b := w.scheduler(w.src, bots.SchedulerOptions{Node: "b", Lease: time.Minute})
	if rep := mustTick(t, a); rep.Skipped {
		t.Fatal("a skipped a free lease")
	}
	if rep := mustTick(t, b); !rep.Skipped {
		t.Error("b ticked while a held the lease")
	}
	w.clock.Advance(2 * time.Minute)
	if rep := mustTick(t, b); rep.Skipped {
		t.Error("b skipped an expired lease")
	}
	if rep := mustTick(t, a); !rep.Skipped {
		t.Error("a ticked while b held the lease")
	}
}
