package bots_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/pgdb/pgdbtest"
	"caseroom/casework"
	"caseroom/casework/bots"
	"caseroom/chat"
	"caseroom/configs"
)

// TestMain lets the test binary be the crash test's child process too.
func TestMain(m *testing.M) {
	if os.Getenv("BOTS_CRASH_CHILD") != "" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

// crashChild is one run of a node: it opens the database the parent seeded,
// rebuilds the parent's clocks from a file, ticks once at BOTS_CHILD_NOW and
// exits. With BOTS_CHILD_HANG set to a point id it stops at the scheduler's
// AfterPost hook for that point — after the point's entries are committed, before
// the cursor moves — says "HOOK <key> <point>" and waits there for the parent's
// SIGKILL.
func crashChild() int {
	fail := func(err error) int {
		fmt.Println("ERROR", err)
		return 2
	}
	now, err := time.Parse(time.RFC3339Nano, os.Getenv("BOTS_CHILD_NOW"))
	if err != nil {
		return fail(err)
	}
	clock := &testClock{t: now}
	n, err := buildNode(backend{kind: os.Getenv("BOTS_CHILD_BACKEND"), dsn: os.Getenv("BOTS_CHILD_DSN")}, clock)
	if err != nil {
		return fail(err)
	}
	defer n.close()
	var defs []clockDef
	b, err := os.ReadFile(os.Getenv("BOTS_CHILD_CLOCKS"))
	if err == nil {
		err = json.Unmarshal(b, &defs)
	}
	if err != nil {
		return fail(err)
	}
	domainOnce.Do(func() {}) // the child loads its own
	d, rem, err := loadDomain()
	if err != nil {
		return fail(err)
	}
	src := newSource(d)
	for _, def := range defs {
		if _, err := src.addDef(def); err != nil {
			return fail(err)
		}
	}
	hang := os.Getenv("BOTS_CHILD_HANG")
	opts := bots.SchedulerOptions{Node: "child", Lease: -1, AfterPost: func(key, point string) {
		if hang != "" && (hang == "*" || hang == point) {
			fmt.Println("HOOK", key, point)
			os.Stdout.Sync()
			select {} // the parent kills us here with SIGKILL
		}
	}}
	s := bots.NewScheduler(src, n.chat, n.acl, n.store, rem, d.Clocks, botSubject(), clock.Now, slog.New(slog.DiscardHandler), opts)
	rep, err := s.Tick(context.Background())
	if err != nil {
		return fail(err)
	}
	fmt.Printf("DONE points=%d catchups=%d\n", rep.Points, rep.CatchUps)
	return 0
}

// runChild runs crashChild at now; with hang set it waits for the HOOK line and
// kills the child with SIGKILL, returning what the hook reported.
func runChild(t *testing.T, be backend, clocks string, now time.Time, hang string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // bounds a hung test only
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BOTS_CRASH_CHILD=1", "BOTS_CHILD_BACKEND="+be.kind, "BOTS_CHILD_DSN="+be.dsn,
		"BOTS_CHILD_CLOCKS="+clocks, "BOTS_CHILD_NOW="+now.Format(time.RFC3339Nano), "BOTS_CHILD_HANG="+hang)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var last string
	for sc.Scan() {
		last = sc.Text()
		if hang != "" && strings.HasPrefix(last, "HOOK ") {
			// SIGKILL: no deferred function, no flush, nothing of the child runs on.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if st, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !st.Signaled() {
				t.Fatalf("child was not killed by a signal: %v", err)
			}
			return strings.TrimPrefix(last, "HOOK ")
		}
		if strings.HasPrefix(last, "DONE") || strings.HasPrefix(last, "ERROR") {
			break
		}
	}
	if err := cmd.Wait(); err != nil || !strings.HasPrefix(last, "DONE") {
		t.Fatalf("child at %s (hang %q): %q, %v", now, hang, last, err)
	}
	return last
}

// loadDomain loads the shipped configs without a testing.TB.
func loadDomain() (*casework.Domain, *bots.Reminders, error) {
	d, err := casework.Load(configs.FS, ".")
	if err != nil {
		return nil, nil, err
	}
	rem, err := bots.LoadReminders(configs.FS, "reminders.json", d)
	return d, rem, err
}

// checkExactlyOnce checks, for every clock of src as it is at now, that each
// point of its plan due by now is in the case room exactly once: posted, or
// named as missed by exactly one catch-up — never both, never twice — and that
// every escalation reached each unit room once.
func checkExactlyOnce(t *testing.T, n *node, src *memSource, now time.Time) (posted int) {
	t.Helper()
	_, rem := mustDomain(t)
	clocks, err := src.OpenClocks(context.Background(), bots.ClockFilter{})
	if err != nil {
		t.Fatal(err)
	}
	unitSeen := map[string]int{}
	for _, u := range []acl.UnitID{committee, procuratorate} {
		_, ns := n.botEntries(n.unitRoom(u))
		for _, no := range ns {
			unitSeen[string(u)+" "+string(no.Room)+" "+no.Key]++
		}
	}
	for _, c := range clocks {
		ms, ns := n.botEntries(c.Room)
		seen := map[string]int{}
		clientIDs := map[string]bool{}
		for i, no := range ns {
			if no.Key != c.Key() {
				continue
			}
			if clientIDs[ms[i].ClientID] {
				t.Errorf("%s: client id %s twice", c.Room, ms[i].ClientID)
			}
			clientIDs[ms[i].ClientID] = true
			seen[no.Point]++
			posted++
			for _, p := range no.Missed {
				seen[p]++
			}
			if ms[i].Kind == bots.KindOverdue {
				for _, u := range no.EscalatedTo {
					if k := string(u) + " " + string(c.Room) + " " + no.Key; unitSeen[k] != 1 {
						t.Errorf("%s %s: escalated to %s %d times", c.Room, no.Key, u, unitSeen[k])
					}
				}
			}
		}
		for _, p := range rem.Plan(&c) {
			want := 0
			if !p.At.After(now) {
				want = 1
			}
			if seen[p.ID] != want {
				t.Errorf("%s %s point %s (due %s): covered %d times, want %d", c.Room, c.Key(), p.ID, p.At, seen[p.ID], want)
			}
			delete(seen, p.ID)
		}
		for p, k := range seen {
			t.Errorf("%s %s: %d entries for point %s, which is not in the plan", c.Room, c.Key(), k, p)
		}
	}
	return posted
}

// A scheduler killed with SIGKILL after a reminder's commit and before its
// cursor moves leaves one reminder: the restarted scheduler posts the same
// client id again and chat answers with the stored entry. A catch-up after such
// a crash does not call the reminder that did go out "missed".
func TestSIGKILLBetweenCommitAndAdvance(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { crashTest(t, sqliteBackend(t)) })
	t.Run("postgres", func(t *testing.T) {
		crashTest(t, backend{kind: "postgres", dsn: pgdbtest.URLWithSchema(t)})
	})
}

func crashTest(t *testing.T, be backend) {
	d, _ := mustDomain(t)
	start := bj(2026, time.March, 2, 10, 0)
	clock := &testClock{t: start}
	n := openNode(t, be, clock)
	n.seed()
	src := newSource(d)
	a, b, c := n.openCase("kill-a"), n.openCase("kill-b"), n.openCase("kill-c")
	src.add(t, clockDef{Room: a, Clock: "CR-DET-02", Suspect: "p1", Start: start, Detained: true, Holder: police})
	src.add(t, clockDef{Room: b, Clock: "CR-DET-01.family", Suspect: "p1", Start: start, Detained: true, Holder: police})
	src.add(t, clockDef{Room: c, Clock: "CR-CUS-01", Suspect: "p1", Start: start, Detained: true, Holder: police})
	clocks := writeJSON(t, t.TempDir(), "clocks.json", src.defs())
	key := func(room chat.RoomID) string {
		cs, _ := src.OpenClocks(context.Background(), bots.ClockFilter{Rooms: []chat.RoomID{room}})
		return cs[0].Key()
	}
	cursor := func(room chat.RoomID) string {
		cs, err := n.store.Cursors(context.Background(), []string{key(room)})
		if err != nil {
			t.Fatal(err)
		}
		return cs[key(room)].Point
	}

	// 1. Killed after b's T-12h reminder was committed.
	at := bj(2026, time.March, 2, 23, 0)
	hook := runChild(t, be, clocks, at, "T-12h")
	if hook != key(b)+" T-12h" {
		t.Fatalf("hook at %q", hook)
	}
	if got := n.points(b); !eq(got, []string{"T-12h"}) || cursor(b) != "" {
		t.Fatalf("after the kill: room b %q, cursor %q; want the reminder committed and no cursor", got, cursor(b))
	}
	runChild(t, be, clocks, at, "")
	if got := n.points(b); !eq(got, []string{"T-12h"}) || cursor(b) != "T-12h" {
		t.Fatalf("after the restart: room b %q, cursor %q; want one T-12h and the cursor on it", got, cursor(b))
	}

	// 2. Killed after a's escalation reached the case room and both unit rooms.
	at = bj(2026, time.March, 6, 0, 0)
	runChild(t, be, clocks, at, "overdue")
	runChild(t, be, clocks, at, "overdue") // killed again at the same point
	if got := n.points(a); !eq(got, []string{"overdue"}) || cursor(a) != "" {
		t.Fatalf("room a %q, cursor %q", got, cursor(a))
	}
	runChild(t, be, clocks, at, "")
	if got := n.points(a); !eq(got, []string{"overdue"}) || cursor(a) != "overdue" {
		t.Fatalf("room a %q, cursor %q", got, cursor(a))
	}

	// 3. Killed after c's T-15d reminder; down until T-7d is due too. The
	// restarted scheduler sees two points pending, finds T-15d in the room log,
	// and posts T-7d as it is, with nothing missed.
	runChild(t, be, clocks, bj(2026, time.April, 18, 9, 0), "T-15d")
	runChild(t, be, clocks, bj(2026, time.April, 26, 9, 0), "")
	_, ns := n.botEntries(c)
	if len(ns) != 2 || ns[0].Point != "T-15d" || ns[1].Point != "T-7d+ext:complex" || ns[1].CatchUp || len(ns[1].Missed) != 0 {
		t.Fatalf("room c: %+v", ns)
	}
	clock.Set(bj(2026, time.April, 26, 9, 0))
	// a: the escalation; b: T-12h, then (down from 23:00 on 2 March) one
	// catch-up escalation naming T-4h and T-1h; c: T-15d and T-7d.
	if posted := checkExactlyOnce(t, n, src, clock.Now()); posted != 5 {
		t.Errorf("%d entries posted, want 5", posted)
	}
}

// Schedulers on several nodes over one PostgreSQL, ticking at the same moments
// with no lease to keep them apart, still leave exactly one entry per (clock,
// point); with the lease the same holds with less work.
func TestSchedulersRacingOverOnePostgreSQL(t *testing.T) {
	for _, lease := range []time.Duration{-1, time.Minute} {
		name := "no-lease"
		if lease > 0 {
			name = "lease"
		}
		t.Run(name, func(t *testing.T) {
			url := pgdbtest.URLWithSchema(t)
			d, _ := mustDomain(t)
			start := bj(2026, time.March, 2, 10, 0)
			clock := &testClock{t: start}
			be := backend{kind: "postgres", dsn: url}
			var nodes []*node
			for range 3 {
				nodes = append(nodes, openNode(t, be, clock))
			}
			nodes[0].seed()
			src := newSource(d)
			for i, id := range []string{"CR-DET-02", "CR-DET-01.family", "CR-DET-01.interrogate", "CR-CUS-01", "CR-ARR-01",
				"CR-PRS-01", "CR-APP-01.judgment", "CR-CRT-04", "CR-SUPP-01", "CV-FIL-01", "CR-PRC-01", "CR-ARR-05.family"} {
				room := nodes[0].openCase(fmt.Sprintf("race%02d", i))
				src.add(t, clockDef{Room: room, Clock: id, Suspect: "p1", Start: start.Add(time.Duration(i) * 37 * time.Minute), Detained: true, Holder: police})
			}
			var ss []*bots.Scheduler
			for i, n := range nodes {
				ss = append(ss, n.scheduler(src, bots.SchedulerOptions{Node: fmt.Sprint("node-", i), Lease: lease}))
			}
			var mu sync.Mutex
			attempts := 0 // points handled by any node, the same point counted once per node that handled it
			tickAll := func() {
				var wg sync.WaitGroup
				for _, s := range ss {
					wg.Add(1)
					go func() {
						defer wg.Done()
						rep, err := s.Tick(context.Background())
						if err != nil {
							t.Errorf("Tick: %v", err)
						}
						mu.Lock()
						attempts += rep.Points
						mu.Unlock()
					}()
				}
				wg.Wait()
			}
			// Every hour for a week, then down for three weeks (all catch up at
			// once), then every two hours until everything has run out.
			end := bj(2026, time.May, 5, 0, 0)
			for clock.Now().Before(end) {
				tickAll()
				switch {
				case clock.Now().Before(start.Add(7 * 24 * time.Hour)):
					clock.Advance(time.Hour)
				case clock.Now().Before(start.Add(8 * 24 * time.Hour)):
					clock.Advance(21 * 24 * time.Hour)
				default:
					clock.Advance(2 * time.Hour)
				}
				if lease > 0 {
					clock.Advance(lease) // let the lease change hands between ticks
				}
			}
			posted := checkExactlyOnce(t, nodes[0], src, clock.Now())
			t.Logf("%d entries for 12 clocks; the %d nodes handled points %d times", posted, len(nodes), attempts)
			if lease < 0 && attempts <= posted {
				t.Errorf("the nodes never raced: %d attempts for %d entries", attempts, posted)
			}
		})
	}
}
