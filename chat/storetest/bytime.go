package storetest

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"caseroom/chat"
)

// History by time is answered through a sparse index of every 64th entry's
// time, which is only right while created_at never decreases along a room's
// log. These tests hold both halves: the stamps, and every answer against one
// computed from the whole log.

// stampsNeverGoBack appends entries whose given times go back as well as
// forward and checks that each is stored no earlier than the one before it,
// and at its given time when that is not earlier.
func stampsNeverGoBack(t *testing.T, s chat.Store) {
	mustCreateAt(t, s, "r1", base, ref(alice, chat.Owner), ref(bob, ""))
	given := []time.Duration{time.Minute, 30 * time.Second, time.Minute, 2 * time.Minute, 90 * time.Second, 3 * time.Minute}
	last := base
	for i, d := range given {
		m := mustPostAt(t, s, "r1", bob, fmt.Sprintf("post %d", i), base.Add(d))
		want := later(last, base.Add(d))
		if !m.CreatedAt.Equal(want) {
			t.Errorf("post %d given %v after the one stored at %v: stored at %v, want %v", i, base.Add(d), last, m.CreatedAt, want)
		}
		last = m.CreatedAt
	}
	all := mustAll(t, s, "r1")
	for i := 1; i < len(all); i++ {
		if all[i].CreatedAt.Before(all[i-1].CreatedAt) {
			t.Errorf("entry %d read back at %v, before entry %d at %v", all[i].Seq, all[i].CreatedAt, all[i-1].Seq, all[i-1].CreatedAt)
		}
	}
	mustVerify(t, s, "r1")
}

// historyByTimeFindsEveryEntry stores a log of several hundred entries whose
// times move in irregular steps, with runs of equal times and times given
// out of order, and compares History with Since and Until at every stored
// time (and a microsecond either side), alone and with After, Before and
// Limit, against the same selection made from the whole log.
func historyByTimeFindsEveryEntry(t *testing.T, s chat.Store) {
	rng := rand.New(rand.NewPCG(7, 11))
	fillByTime(t, s, "r1", rng, base, 399)
	checkByTime(t, s, "r1", rng, mustAll(t, s, "r1"))
}

// historyByTimeOverOlderEntries is a log of which a first part was stored
// before the stamps were kept in order (as by a release before migration
// "time marks"): its times are then put out of order past the store, and the
// room's time_from set to the first entry after it, as the migration does.
// Answers must still hold every entry of the range, older part included.
func historyByTimeOverOlderEntries(t *testing.T, s chat.Store, exec Exec) {
	rng := rand.New(rand.NewPCG(3, 5))
	fillByTime(t, s, "r1", rng, base, 199)
	// Move some of the older entries later and some earlier than their
	// neighbours, marks (64, 128, 192) among them.
	for _, seq := range []int{10, 64, 100, 128, 150, 192} {
		exec(t, s, `UPDATE chat_messages SET created_at = created_at + $1 WHERE room = $2 AND seq = $3`,
			int64(rng.IntN(600_000_000)-300_000_000), "r1", seq)
	}
	exec(t, s, `UPDATE chat_rooms SET time_from = head_seq + 1,
		last_at = (SELECT max(created_at) FROM chat_messages WHERE room = chat_rooms.id) WHERE id = $1`, "r1")
	all := mustAll(t, s, "r1")
	latest := all[0].CreatedAt
	for _, m := range all {
		latest = later(latest, m.CreatedAt)
	}
	fillByTime(t, s, "r1", rng, all[len(all)-1].CreatedAt.Add(-time.Hour), 200)
	all = mustAll(t, s, "r1")
	if first := all[200]; first.CreatedAt.Before(latest) {
		t.Errorf("entry 201, the first after the older part, stored at %v, before that part's latest %v", first.CreatedAt, latest)
	}
	checkByTime(t, s, "r1", rng, all)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// fillByTime appends n posts to room, creating it first when it does not
// exist, given times from start in random steps of 0 to 90 seconds, one in
// eight of them going back instead.
func fillByTime(t *testing.T, s chat.Store, room chat.RoomID, rng *rand.Rand, start time.Time, n int) {
	t.Helper()
	at := start
	if _, err := s.Room(t.Context(), room); err != nil {
		mustCreateAt(t, s, room, at, ref(alice, chat.Owner), ref(bob, ""))
	}
	for i := range n {
		step := time.Duration(rng.IntN(4)) * time.Duration(rng.IntN(30)) * time.Second
		if rng.IntN(8) == 0 {
			step = -step
		}
		at = at.Add(step)
		mustPostAt(t, s, room, bob, fmt.Sprintf("post %d", i), at)
	}
}

// checkByTime asks room's History by time in many ways and compares each
// answer with the selection made from all, the room's whole log.
func checkByTime(t *testing.T, s chat.Store, room chat.RoomID, rng *rand.Rand, all []chat.Message) {
	t.Helper()
	var times []time.Time
	for _, m := range all {
		times = append(times, m.CreatedAt, m.CreatedAt.Add(-time.Microsecond), m.CreatedAt.Add(time.Microsecond))
	}
	times = append(times, all[0].CreatedAt.Add(-time.Hour), all[len(all)-1].CreatedAt.Add(time.Hour))
	pick := func() time.Time { return times[rng.IntN(len(times))] }
	head := all[len(all)-1].Seq
	var queries []chat.HistoryQuery
	for _, at := range times {
		queries = append(queries, chat.HistoryQuery{Since: at, Limit: 5}, chat.HistoryQuery{Until: at, Limit: chat.MaxPage})
	}
	for range 300 {
		since, until := pick(), pick()
		if until.Before(since) {
			since, until = until, since
		}
		q := chat.HistoryQuery{Since: since, Until: until, Limit: []int{3, 64, chat.MaxPage}[rng.IntN(3)]}
		switch rng.IntN(4) {
		case 1:
			q.After = chat.Seq(rng.Int64N(int64(head)))
		case 2:
			q.Before = chat.Seq(1 + rng.Int64N(int64(head)+1))
		case 3:
			q.Since = time.Time{}
		}
		queries = append(queries, q)
	}
	wrong := 0
	for _, q := range queries {
		got, want := seqs(mustHistory(t, s, room, q)), seqs(selectByTime(all, q))
		if !slices.Equal(got, want) && len(got)+len(want) > 0 {
			if wrong++; wrong <= 5 {
				t.Errorf("History(%s, %+v) = %v, want %v", room, q, got, want)
			}
		}
	}
	if wrong > 5 {
		t.Errorf("… and %d more wrong answers of %d", wrong-5, len(queries))
	}
}

// selectByTime is History's answer to q made from the whole log: entries with
// After < seq < Before and Since <= created_at < Until, the first Limit of
// them, or the last Limit when q has Before and no After.
func selectByTime(all []chat.Message, q chat.HistoryQuery) []chat.Message {
	var in []chat.Message
	for _, m := range all {
		if m.Seq <= q.After || (q.Before > 0 && m.Seq >= q.Before) ||
			(!q.Since.IsZero() && m.CreatedAt.Before(q.Since)) || (!q.Until.IsZero() && !m.CreatedAt.Before(q.Until)) {
			continue
		}
		in = append(in, m)
	}
	limit := min(q.Limit, chat.MaxPage)
	if len(in) <= limit {
		return in
	}
	if q.Before > 0 && q.After == 0 {
		return in[len(in)-limit:]
	}
	return in[:limit]
}

// FillOlderLog stores room "older" with 100 entries through s, a store whose
// schema stops before the migration that keeps stamps in order, and then puts
// their times out of order past the store, as the old stamps could leave
// them: one entry later than the head, one earlier than its neighbours. It
// returns the latest time stored, in Unix microseconds.
func FillOlderLog(t *testing.T, s chat.Store, exec Exec) int64 {
	t.Helper()
	mustCreateAt(t, s, "older", base, ref(alice, chat.Owner), ref(bob, ""))
	for i := 2; i <= 100; i++ {
		mustPostAt(t, s, "older", bob, fmt.Sprintf("post %d", i), base.Add(time.Duration(i)*time.Minute))
	}
	latest := base.Add(500 * time.Minute)
	exec(t, s, `UPDATE chat_messages SET created_at = $1 WHERE room = 'older' AND seq = 30`, latest.UnixMicro())
	exec(t, s, `UPDATE chat_messages SET created_at = $1 WHERE room = 'older' AND seq = 64`, base.UnixMicro())
	return latest.UnixMicro()
}

// CheckOlderLogMigrated checks room "older" of FillOlderLog once migrated:
// timeFrom, lastAt and whether the indexes of every entry's time (created)
// and of the marks exist are what the store's migration left; then an entry
// given a time before the latest is stamped at the latest, and History by
// time finds every entry of the older part and the newer.
func CheckOlderLogMigrated(t *testing.T, s chat.Store, latest, timeFrom, lastAt int64, created, marks bool) {
	t.Helper()
	if timeFrom != 101 || lastAt != latest || created || !marks {
		t.Errorf("after the migration: time_from %d, last_at %d, index of every time %v, of the marks %v; want 101, %d, false, true",
			timeFrom, lastAt, created, marks, latest)
	}
	m := mustPostAt(t, s, "older", bob, "after the migration", base.Add(200*time.Minute))
	if m.CreatedAt.UnixMicro() != latest {
		t.Errorf("entry %d given %v stored at %v, want the older part's latest %v",
			m.Seq, base.Add(200*time.Minute), m.CreatedAt, time.UnixMicro(latest).UTC())
	}
	rng := rand.New(rand.NewPCG(1, 2))
	fillByTime(t, s, "older", rng, time.UnixMicro(latest), 150)
	checkByTime(t, s, "older", rng, mustAll(t, s, "older"))
}

// MigrationsBefore is migrations without the one whose name starts with
// version and those after it, to build a schema as an older release left it.
func MigrationsBefore(t *testing.T, migrations fs.FS, version string) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if name >= version {
			continue
		}
		b, err := fs.ReadFile(migrations, name)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: b}
	}
	return fsys
}
