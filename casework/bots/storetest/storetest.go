// Package storetest checks any bots.Store against the contract bots needs of
// it, so that the SQLite and PostgreSQL stores answer alike. Each backend's
// store_test.go calls Run with a constructor of fresh, migrated stores.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/casework/bots"
	"caseroom/chat"
)

// Run runs the conformance suite; every subtest gets a fresh store.
func Run(t *testing.T, newStore func(t *testing.T) bots.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s bots.Store)
	}{
		{"CursorNeverMovesBack", cursorNeverMovesBack},
		{"CursorsPrunedByDue", cursorsPrunedByDue},
		{"LeaseIsExclusive", leaseIsExclusive},
		{"LeaseRaceHasOneWinner", leaseRaceHasOneWinner},
		{"TokensRoundTripAndRevoke", tokensRoundTripAndRevoke},
		{"WebhooksRoundTripAndDelete", webhooksRoundTripAndDelete},
		{"EnqueueMovesFeedOnce", enqueueMovesFeedOnce},
		{"ClaimsAreDisjointAndFinish", claimsAreDisjointAndFinish},
		{"MissingIsNotFound", missingIsNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

var t0 = time.Date(2026, time.March, 2, 8, 0, 0, 0, time.UTC)

func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func cursorNeverMovesBack(t *testing.T, s bots.Store) {
	ctx := context.Background()
	c := bots.Cursor{Key: "CR-DET-02/p1@20260305T0000", Room: "r1", Point: "T-1d", At: t0, Due: t0.Add(40 * time.Hour), Seq: 7, UpdatedAt: t0}
	moved, err := s.Advance(ctx, c)
	mustOK(t, "Advance", err)
	if !moved {
		t.Fatal("first Advance did not move the cursor")
	}
	back := c
	back.Point, back.At, back.Seq = "T-3d", t0.Add(-48*time.Hour), 5
	if moved, err := s.Advance(ctx, back); err != nil || moved {
		t.Errorf("Advance to an earlier point = %v, %v; want false, nil", moved, err)
	}
	same := c
	same.Seq = 99
	if moved, err := s.Advance(ctx, same); err != nil || moved {
		t.Errorf("Advance to the same point = %v, %v; want false, nil", moved, err)
	}
	got, err := s.Cursors(ctx, []string{c.Key, "other"})
	mustOK(t, "Cursors", err)
	if len(got) != 1 || got[c.Key].Point != "T-1d" || got[c.Key].Seq != 7 || !got[c.Key].At.Equal(t0) || got[c.Key].Room != "r1" {
		t.Errorf("Cursors = %+v; want only %s at T-1d, seq 7", got, c.Key)
	}
	on := c
	on.Point, on.At, on.Seq = "overdue", t0.Add(40*time.Hour), 9
	if moved, err := s.Advance(ctx, on); err != nil || !moved {
		t.Errorf("Advance to a later point = %v, %v; want true, nil", moved, err)
	}
	got, _ = s.Cursors(ctx, []string{c.Key})
	if got[c.Key].Point != "overdue" || got[c.Key].Seq != 9 {
		t.Errorf("after a later Advance: %+v", got[c.Key])
	}
	if got, err := s.Cursors(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("Cursors(nil) = %v, %v", got, err)
	}
	// Many keys in one call.
	var keys []string
	for i := range 1200 {
		k := fmt.Sprintf("K%d", i)
		keys = append(keys, k)
		if i%100 == 0 {
			mustOK(t, "Advance", func() error {
				_, err := s.Advance(ctx, bots.Cursor{Key: k, Room: "r", Point: "p", At: t0, Due: t0})
				return err
			}())
		}
	}
	if got, err := s.Cursors(ctx, keys); err != nil || len(got) != 12 {
		t.Errorf("Cursors of 1200 keys = %d, %v; want 12", len(got), err)
	}
}

func cursorsPrunedByDue(t *testing.T, s bots.Store) {
	ctx := context.Background()
	for i, due := range []time.Time{t0.Add(-48 * time.Hour), t0.Add(-time.Hour), t0, t0.Add(time.Hour)} {
		_, err := s.Advance(ctx, bots.Cursor{Key: fmt.Sprint("k", i), Room: "r", Point: "T-0d", At: due.Add(-time.Hour), Due: due, UpdatedAt: t0})
		mustOK(t, "Advance", err)
	}
	n, err := s.PruneCursors(ctx, t0)
	mustOK(t, "PruneCursors", err)
	got, _ := s.Cursors(ctx, []string{"k0", "k1", "k2", "k3"})
	if n != 2 || len(got) != 2 || got["k2"].Key == "" || got["k3"].Key == "" {
		t.Errorf("PruneCursors = %d, left %v; want 2 pruned, k2 and k3 left", n, got)
	}
}

func leaseIsExclusive(t *testing.T, s bots.Store) {
	ctx := context.Background()
	take := func(holder string, now time.Time) bool {
		t.Helper()
		ok, err := s.Lease(ctx, "deadline-bot", holder, now, now.Add(time.Minute))
		mustOK(t, "Lease", err)
		return ok
	}
	if !take("a", t0) {
		t.Fatal("a could not take a free lease")
	}
	if take("b", t0.Add(30*time.Second)) {
		t.Error("b took a lease a holds")
	}
	if !take("a", t0.Add(50*time.Second)) {
		t.Error("a could not renew its lease")
	}
	if take("b", t0.Add(100*time.Second)) {
		t.Error("b took a's renewed lease before it expired")
	}
	if !take("b", t0.Add(111*time.Second)) {
		t.Error("b could not take an expired lease")
	}
	mustOK(t, "ReleaseLease by a non-holder", s.ReleaseLease(ctx, "deadline-bot", "a"))
	if take("a", t0.Add(112*time.Second)) {
		t.Error("a non-holder's release freed the lease")
	}
	mustOK(t, "ReleaseLease", s.ReleaseLease(ctx, "deadline-bot", "b"))
	if !take("a", t0.Add(113*time.Second)) {
		t.Error("a could not take a released lease")
	}
	if ok, err := s.Lease(ctx, "other", "b", t0, t0.Add(time.Minute)); err != nil || !ok {
		t.Errorf("another lease name: %v, %v", ok, err)
	}
}

func leaseRaceHasOneWinner(t *testing.T, s bots.Store) {
	ctx := context.Background()
	for round := range 5 {
		now := t0.Add(time.Duration(round) * time.Hour)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := fmt.Sprint("node-", i)
				ok, err := s.Lease(ctx, "race", h, now, now.Add(time.Minute))
				if err != nil {
					t.Errorf("Lease: %v", err)
				}
				if ok {
					mu.Lock()
					winners = append(winners, h)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Errorf("round %d: winners %v; want exactly one", round, winners)
		}
	}
}

func tokensRoundTripAndRevoke(t *testing.T, s bots.Store) {
	ctx := context.Background()
	tok := bots.Token{ID: "t1", Bot: "bot-digest", Name: "digest", Hash: bytes.Repeat([]byte{7}, 32),
		Scope:     bots.Scope{Rooms: []chat.RoomID{"r1", "r2"}, Post: []chat.Kind{chat.Text}, Read: true, Due: []acl.UnitID{"150102-court"}},
		CreatedBy: "sys.admin", CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	mustOK(t, "CreateToken", s.CreateToken(ctx, tok))
	if err := s.CreateToken(ctx, tok); !errors.Is(err, bots.ErrExists) {
		t.Errorf("CreateToken twice: %v, want ErrExists", err)
	}
	tok2 := tok
	tok2.ID, tok2.CreatedAt, tok2.ExpiresAt, tok2.Scope = "t2", t0.Add(time.Minute), time.Time{}, bots.Scope{}
	mustOK(t, "CreateToken", s.CreateToken(ctx, tok2))
	got, err := s.Token(ctx, "t1")
	mustOK(t, "Token", err)
	if got.Bot != tok.Bot || !bytes.Equal(got.Hash, tok.Hash) || !slices.Equal(got.Scope.Rooms, tok.Scope.Rooms) ||
		!got.Scope.Read || !slices.Equal(got.Scope.Post, tok.Scope.Post) || !slices.Equal(got.Scope.Due, tok.Scope.Due) ||
		!got.CreatedAt.Equal(t0) || !got.ExpiresAt.Equal(tok.ExpiresAt) || !got.RevokedAt.IsZero() || got.CreatedBy != "sys.admin" {
		t.Errorf("Token = %+v; want %+v", got, tok)
	}
	list, err := s.Tokens(ctx, "bot-digest")
	mustOK(t, "Tokens", err)
	if len(list) != 2 || list[0].ID != "t1" || list[1].ID != "t2" || !list[1].ExpiresAt.IsZero() {
		t.Errorf("Tokens = %+v", list)
	}
	hook := bots.Webhook{ID: "h1", Bot: "bot-digest", Token: "t1", URL: "https://example.test/h", Secret: "s", Kinds: []chat.Kind{chat.Text},
		Rooms: []chat.RoomID{"r1"}, CreatedBy: "sys.admin", CreatedAt: t0}
	mustOK(t, "CreateWebhook", s.CreateWebhook(ctx, hook))
	mustOK(t, "RevokeToken", s.RevokeToken(ctx, "t1", t0.Add(time.Hour)))
	mustOK(t, "RevokeToken again", s.RevokeToken(ctx, "t1", t0.Add(2*time.Hour)))
	got, _ = s.Token(ctx, "t1")
	if !got.RevokedAt.Equal(t0.Add(time.Hour)) || got.Active(t0.Add(time.Hour)) {
		t.Errorf("revoked token: %+v", got)
	}
	if hs, _ := s.Webhooks(ctx, "bot-digest"); len(hs) != 0 {
		t.Errorf("webhooks of a revoked token are still active: %+v", hs)
	}
	if err := s.RevokeToken(ctx, "nope", t0); !errors.Is(err, bots.ErrNotFound) {
		t.Errorf("RevokeToken(unknown) = %v, want ErrNotFound", err)
	}
}

func webhooksRoundTripAndDelete(t *testing.T, s bots.Store) {
	ctx := context.Background()
	mustOK(t, "CreateToken", s.CreateToken(ctx, bots.Token{ID: "t1", Bot: "b1", Name: "x", Hash: []byte{1}, CreatedBy: "a", CreatedAt: t0}))
	mustOK(t, "CreateToken", s.CreateToken(ctx, bots.Token{ID: "t2", Bot: "b2", Name: "x", Hash: []byte{2}, CreatedBy: "a", CreatedAt: t0}))
	h1 := bots.Webhook{ID: "h1", Bot: "b1", Token: "t1", URL: "http://127.0.0.1:1/x", Secret: "sec", Kinds: []chat.Kind{"case.reminder", chat.Text},
		Rooms: []chat.RoomID{"r1", "r2"}, CreatedBy: "a", CreatedAt: t0}
	h2 := h1
	h2.ID, h2.Bot, h2.Token, h2.CreatedAt = "h2", "b2", "t2", t0.Add(time.Second)
	mustOK(t, "CreateWebhook", s.CreateWebhook(ctx, h1))
	mustOK(t, "CreateWebhook", s.CreateWebhook(ctx, h2))
	if err := s.CreateWebhook(ctx, h1); !errors.Is(err, bots.ErrExists) {
		t.Errorf("CreateWebhook twice: %v", err)
	}
	got, err := s.Webhook(ctx, "h1")
	mustOK(t, "Webhook", err)
	if got.URL != h1.URL || got.Secret != "sec" || !slices.Equal(got.Kinds, h1.Kinds) || !slices.Equal(got.Rooms, h1.Rooms) || got.Token != "t1" {
		t.Errorf("Webhook = %+v", got)
	}
	all, _ := s.Webhooks(ctx, "")
	mine, _ := s.Webhooks(ctx, "b2")
	if len(all) != 2 || len(mine) != 1 || mine[0].ID != "h2" {
		t.Errorf("Webhooks all = %d, of b2 = %+v", len(all), mine)
	}
	ok, err := s.Enqueue(ctx, "h1", "r1", 0, 3, []bots.Delivery{{ID: "d1", Seq: 3, Kind: chat.Text, NextAt: t0, CreatedAt: t0}})
	mustOK(t, "Enqueue", err)
	if !ok {
		t.Fatal("Enqueue did not move a fresh feed")
	}
	mustOK(t, "DeleteWebhook", s.DeleteWebhook(ctx, "h1", t0.Add(time.Minute)))
	if got, _ := s.Webhook(ctx, "h1"); got.DeletedAt.IsZero() {
		t.Error("deleted webhook has no DeletedAt")
	}
	if all, _ := s.Webhooks(ctx, ""); len(all) != 1 {
		t.Errorf("Webhooks after delete = %+v", all)
	}
	if ds, _ := s.ClaimDeliveries(ctx, t0.Add(time.Hour), t0.Add(2*time.Hour), 10); len(ds) != 0 {
		t.Errorf("a deleted webhook's delivery was claimed: %+v", ds)
	}
	if ds, _ := s.Deliveries(ctx, "h1"); len(ds) != 1 || ds[0].State != bots.DeliveryFailed {
		t.Errorf("deliveries of a deleted webhook: %+v; want one, failed", ds)
	}
}

func enqueueMovesFeedOnce(t *testing.T, s bots.Store) {
	ctx := context.Background()
	mustOK(t, "CreateToken", s.CreateToken(ctx, bots.Token{ID: "t1", Bot: "b1", Name: "x", Hash: []byte{1}, CreatedBy: "a", CreatedAt: t0}))
	mustOK(t, "CreateWebhook", s.CreateWebhook(ctx, bots.Webhook{ID: "h1", Bot: "b1", Token: "t1", URL: "http://127.0.0.1:1/", Secret: "s", CreatedBy: "a", CreatedAt: t0}))
	if seq, err := s.FeedCursor(ctx, "h1", "r1"); err != nil || seq != 0 {
		t.Fatalf("FeedCursor of a new feed = %d, %v", seq, err)
	}
	// Nodes racing to queue the same entries: one moves the feed, none queues twice.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ds := []bots.Delivery{
				{ID: fmt.Sprint("d", i, "-1"), Seq: 2, Kind: chat.Text, NextAt: t0, CreatedAt: t0},
				{ID: fmt.Sprint("d", i, "-2"), Seq: 5, Kind: chat.Text, NextAt: t0, CreatedAt: t0},
			}
			ok, err := s.Enqueue(ctx, "h1", "r1", 0, 5, ds)
			if err != nil {
				t.Errorf("Enqueue: %v", err)
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d Enqueues moved the feed from 0; want 1", wins)
	}
	if seq, _ := s.FeedCursor(ctx, "h1", "r1"); seq != 5 {
		t.Errorf("FeedCursor = %d, want 5", seq)
	}
	ds, err := s.Deliveries(ctx, "h1")
	mustOK(t, "Deliveries", err)
	if len(ds) != 2 || ds[0].Seq != 2 || ds[1].Seq != 5 || ds[0].State != bots.DeliveryPending {
		t.Errorf("Deliveries = %+v; want seqs 2 and 5, pending", ds)
	}
	// A stale mover does nothing.
	if ok, err := s.Enqueue(ctx, "h1", "r1", 0, 9, []bots.Delivery{{ID: "late", Seq: 9, Kind: chat.Text, NextAt: t0, CreatedAt: t0}}); err != nil || ok {
		t.Errorf("stale Enqueue = %v, %v", ok, err)
	}
	if ok, err := s.Enqueue(ctx, "h1", "r1", 5, 9, []bots.Delivery{{ID: "next", Seq: 9, Kind: chat.Text, NextAt: t0, CreatedAt: t0}}); err != nil || !ok {
		t.Errorf("Enqueue from the cursor = %v, %v", ok, err)
	}
	// A delivery already queued for (hook, room, seq) is not queued twice.
	if ok, err := s.Enqueue(ctx, "h1", "r1", 9, 10, []bots.Delivery{{ID: "again", Seq: 9, Kind: chat.Text, NextAt: t0, CreatedAt: t0}}); err != nil || !ok {
		t.Errorf("Enqueue = %v, %v", ok, err)
	}
	if ds, _ := s.Deliveries(ctx, "h1"); len(ds) != 3 {
		t.Errorf("Deliveries = %d, want 3", len(ds))
	}
}

func claimsAreDisjointAndFinish(t *testing.T, s bots.Store) {
	ctx := context.Background()
	mustOK(t, "CreateToken", s.CreateToken(ctx, bots.Token{ID: "t1", Bot: "b1", Name: "x", Hash: []byte{1}, CreatedBy: "a", CreatedAt: t0}))
	mustOK(t, "CreateWebhook", s.CreateWebhook(ctx, bots.Webhook{ID: "h1", Bot: "b1", Token: "t1", URL: "http://127.0.0.1:1/", Secret: "s", CreatedBy: "a", CreatedAt: t0}))
	var ds []bots.Delivery
	for i := range 20 {
		ds = append(ds, bots.Delivery{ID: fmt.Sprintf("d%02d", i), Seq: chat.Seq(i + 1), Kind: chat.Text, NextAt: t0.Add(time.Duration(i) * time.Second), CreatedAt: t0})
	}
	_, err := s.Enqueue(ctx, "h1", "r1", 0, 20, ds)
	mustOK(t, "Enqueue", err)
	now := t0.Add(time.Minute)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.ClaimDeliveries(ctx, now, now.Add(time.Minute), 8)
			if err != nil {
				t.Errorf("ClaimDeliveries: %v", err)
			}
			mu.Lock()
			for _, d := range got {
				seen[d.ID]++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 20 {
		t.Errorf("claimed %d distinct deliveries, want 20", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %s claimed %d times", id, n)
		}
	}
	if got, _ := s.ClaimDeliveries(ctx, now, now.Add(time.Minute), 50); len(got) != 0 {
		t.Errorf("claimed deliveries were claimed again before their lock ran out: %d", len(got))
	}
	d := ds[0]
	d.State, d.Attempts, d.NextAt, d.LastStatus, d.LastError = bots.DeliveryPending, 1, now.Add(2*time.Minute), 500, "HTTP 500"
	mustOK(t, "FinishAttempt", s.FinishAttempt(ctx, d))
	others, _ := s.ClaimDeliveries(ctx, now.Add(time.Minute+time.Second), now.Add(3*time.Minute), 50)
	if len(others) != 19 {
		t.Errorf("after the locks ran out: %d claimable, want the 19 not yet retried", len(others))
	}
	for _, o := range others {
		o.State, o.Attempts, o.DeliveredAt = bots.DeliveryDelivered, 1, now
		mustOK(t, "FinishAttempt", s.FinishAttempt(ctx, o))
	}
	got, _ := s.ClaimDeliveries(ctx, now.Add(5*time.Minute), now.Add(6*time.Minute), 1)
	if len(got) != 1 || got[0].ID != "d00" || got[0].Attempts != 1 || got[0].LastStatus != 500 || got[0].LastError != "HTTP 500" {
		t.Fatalf("retry claim = %+v", got)
	}
	d = got[0]
	d.State, d.Attempts, d.LastStatus, d.LastError, d.DeliveredAt = bots.DeliveryDelivered, 2, 204, "", now.Add(5*time.Minute)
	mustOK(t, "FinishAttempt", s.FinishAttempt(ctx, d))
	all, _ := s.Deliveries(ctx, "h1")
	if all[0].State != bots.DeliveryDelivered || !all[0].DeliveredAt.Equal(now.Add(5*time.Minute)) || all[0].Attempts != 2 {
		t.Errorf("delivered: %+v", all[0])
	}
	if got, _ := s.ClaimDeliveries(ctx, now.Add(time.Hour), now.Add(2*time.Hour), 50); slices.ContainsFunc(got, func(x bots.Delivery) bool { return x.ID == "d00" }) {
		t.Error("a delivered delivery was claimed again")
	}
	if err := s.FinishAttempt(ctx, bots.Delivery{ID: "nope", State: bots.DeliveryFailed}); !errors.Is(err, bots.ErrNotFound) {
		t.Errorf("FinishAttempt(unknown) = %v", err)
	}
}

func missingIsNotFound(t *testing.T, s bots.Store) {
	ctx := context.Background()
	if _, err := s.Token(ctx, "nope"); !errors.Is(err, bots.ErrNotFound) {
		t.Errorf("Token: %v", err)
	}
	if _, err := s.Webhook(ctx, "nope"); !errors.Is(err, bots.ErrNotFound) {
		t.Errorf("Webhook: %v", err)
	}
	if err := s.DeleteWebhook(ctx, "nope", t0); !errors.Is(err, bots.ErrNotFound) {
		t.Errorf("DeleteWebhook: %v", err)
	}
	if ts, err := s.Tokens(ctx, "nobody"); err != nil || len(ts) != 0 {
		t.Errorf("Tokens: %v, %v", ts, err)
	}
}
